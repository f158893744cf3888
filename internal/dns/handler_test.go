package dns

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

const (
	webName  = "web-0123456789abcdef0.7d67968.vpc-lattice-svcs.us-east-1.on.aws"
	v4Name   = "v4-0123456789abcdef1.7d67968.vpc-lattice-svcs.us-east-1.on.aws"
	bigName  = "big-0123456789abcdef2.7d67968.vpc-lattice-svcs.us-east-1.on.aws"
	noneName = "none-0123456789abcdef3.7d67968.vpc-lattice-svcs.us-east-1.on.aws"
	custom   = "api.example.com"
)

var (
	web4 = netip.MustParseAddr("169.254.171.1")
	web6 = netip.MustParseAddr("fd00:ec2:80::a9fe:ab01")
)

func bigAddrs() []netip.Addr {
	var out []netip.Addr
	for i := range 100 {
		out = append(out, netip.AddrFrom4([4]byte{10, 0, byte(i / 250), byte(1 + i%250)}))
	}
	return out
}

func testRecords() map[string][]netip.Addr {
	return map[string][]netip.Addr{
		webName:  {web4, web6},
		v4Name:   {netip.MustParseAddr("::ffff:169.254.171.2")}, // mapped: answers A
		bigName:  bigAddrs(),
		noneName: nil,
		custom:   {netip.MustParseAddr("10.0.0.9")},
	}
}

func newTestServer() *Server {
	s := New(Config{Addr: "127.0.0.1:0"})
	s.SetRecords(testRecords())
	return s
}

// query builds a query; edns < 0 means no OPT record.
func query(t testing.TB, name string, typ dnsmessage.Type, edns int) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 0xbeef, RecursionDesired: true})
	must(t, b.StartQuestions())
	must(t, b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}))
	if edns >= 0 {
		must(t, b.StartAdditionals())
		var h dnsmessage.ResourceHeader
		must(t, h.SetEDNS0(edns, 0, false))
		must(t, b.OPTResource(h, dnsmessage.OPTResource{}))
	}
	msg, err := b.Finish()
	must(t, err)
	return msg
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func parse(t testing.TB, resp []byte) dnsmessage.Message {
	t.Helper()
	var m dnsmessage.Message
	if err := m.Unpack(resp); err != nil {
		t.Fatalf("unpack response: %v", err)
	}
	return m
}

func answers(m dnsmessage.Message) []string {
	var out []string
	for _, a := range m.Answers {
		switch b := a.Body.(type) {
		case *dnsmessage.AResource:
			out = append(out, netip.AddrFrom4(b.A).String())
		case *dnsmessage.AAAAResource:
			out = append(out, netip.AddrFrom16(b.AAAA).String())
		}
	}
	return out
}

func TestHandleAnswers(t *testing.T) {
	s := newTestServer()
	for _, tc := range []struct {
		name    string
		qname   string
		qtype   dnsmessage.Type
		rcode   dnsmessage.RCode
		aa      bool
		answers []string
	}{
		{"A", webName + ".", dnsmessage.TypeA, dnsmessage.RCodeSuccess, true, []string{"169.254.171.1"}},
		{"AAAA", webName + ".", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, true, []string{"fd00:ec2:80::a9fe:ab01"}},
		{"ANY", webName + ".", dnsmessage.TypeALL, dnsmessage.RCodeSuccess, true, []string{"169.254.171.1", "fd00:ec2:80::a9fe:ab01"}},
		{"mixed case", "WeB-0123456789ABCDEF0.7d67968.VPC-lattice-svcs.us-east-1.ON.AWS.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, true, []string{"169.254.171.1"}},
		{"mapped v4 is A", v4Name + ".", dnsmessage.TypeA, dnsmessage.RCodeSuccess, true, []string{"169.254.171.2"}},
		{"NODATA other type", webName + ".", dnsmessage.TypeTXT, dnsmessage.RCodeSuccess, true, nil},
		{"NODATA no AAAA", v4Name + ".", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, true, nil},
		{"NODATA no addresses", noneName + ".", dnsmessage.TypeA, dnsmessage.RCodeSuccess, true, nil},
		{"empty non-terminal", "7d67968.vpc-lattice-svcs.us-east-1.on.aws.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, true, nil},
		{"zone apex", "vpc-lattice-svcs.us-east-1.on.aws.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, true, nil},
		{"NXDOMAIN in zone", "gone-0123456789abcdef9.7d67968.vpc-lattice-svcs.us-east-1.on.aws.", dnsmessage.TypeA, dnsmessage.RCodeNameError, true, nil},
		{"NXDOMAIN other partition", "x.1234567.vpc-lattice-svcs.us-east-1.on.aws.", dnsmessage.TypeA, dnsmessage.RCodeNameError, true, nil},
		{"custom domain", custom + ".", dnsmessage.TypeA, dnsmessage.RCodeSuccess, true, []string{"10.0.0.9"}},
		{"custom domain sibling refused", "www.example.com.", dnsmessage.TypeA, dnsmessage.RCodeRefused, false, nil},
		{"other region refused", "x.7d67968.vpc-lattice-svcs.eu-west-1.on.aws.", dnsmessage.TypeA, dnsmessage.RCodeRefused, false, nil},
		{"above the zone refused", "us-east-1.on.aws.", dnsmessage.TypeA, dnsmessage.RCodeRefused, false, nil},
		{"lookalike suffix refused", "xvpc-lattice-svcs.us-east-1.on.aws.", dnsmessage.TypeA, dnsmessage.RCodeRefused, false, nil},
		{"root refused", ".", dnsmessage.TypeNS, dnsmessage.RCodeRefused, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := parse(t, s.handle(query(t, tc.qname, tc.qtype, -1), nil, true))
			if m.ID != 0xbeef || !m.Response || m.RCode != tc.rcode || m.Authoritative != tc.aa || !m.RecursionDesired || m.RecursionAvailable {
				t.Errorf("header %+v, want rcode %v aa=%v", m.Header, tc.rcode, tc.aa)
			}
			if len(m.Questions) != 1 || m.Questions[0].Name.String() != tc.qname || m.Questions[0].Type != tc.qtype {
				t.Errorf("question %v", m.Questions)
			}
			if got := answers(m); !slices.Equal(got, tc.answers) {
				t.Errorf("answers %v, want %v", got, tc.answers)
			}
			for _, a := range m.Answers {
				if a.Header.Name.String() != tc.qname || a.Header.TTL != 10 || a.Header.Class != dnsmessage.ClassINET {
					t.Errorf("answer header %+v", a.Header)
				}
			}
			if len(m.Authorities) != 0 || len(m.Additionals) != 0 {
				t.Errorf("authority %v additional %v, want none", m.Authorities, m.Additionals)
			}
		})
	}
}

func TestHandleEDNSAndTruncation(t *testing.T) {
	s := newTestServer()
	opt := func(t *testing.T, m dnsmessage.Message) *dnsmessage.Resource {
		t.Helper()
		for i, a := range m.Additionals {
			if a.Header.Type == dnsmessage.TypeOPT {
				return &m.Additionals[i]
			}
		}
		return nil
	}

	m := parse(t, s.handle(query(t, webName+".", dnsmessage.TypeA, 4096), nil, true))
	o := opt(t, m)
	if o == nil || o.Header.Class != maxUDPSize || o.Header.TTL != 0 {
		t.Fatalf("OPT %+v, want payload %d version 0", o, maxUDPSize)
	}

	// 100 A records do not fit 512 bytes: TC, empty, over UDP.
	m = parse(t, s.handle(query(t, bigName+".", dnsmessage.TypeA, -1), nil, true))
	if !m.Truncated || len(m.Answers) != 0 || m.RCode != dnsmessage.RCodeSuccess || len(m.Questions) != 1 {
		t.Errorf("no EDNS: truncated=%v answers=%d", m.Truncated, len(m.Answers))
	}
	// Nor 1232 (EDNS asks for more, the server caps it).
	resp := s.handle(query(t, bigName+".", dnsmessage.TypeA, 65000), nil, true)
	m = parse(t, resp)
	if !m.Truncated || len(m.Answers) != 0 || opt(t, m) == nil || len(resp) > maxUDPSize {
		t.Errorf("EDNS 65000: truncated=%v answers=%d opt=%v len=%d", m.Truncated, len(m.Answers), opt(t, m), len(resp))
	}
	// TCP carries everything.
	m = parse(t, s.handle(query(t, bigName+".", dnsmessage.TypeA, -1), nil, false))
	if m.Truncated || len(m.Answers) != 100 {
		t.Errorf("TCP: truncated=%v answers=%d", m.Truncated, len(m.Answers))
	}
	// A payload below 512 counts as 512: a small answer is not truncated.
	m = parse(t, s.handle(query(t, webName+".", dnsmessage.TypeA, 100), nil, true))
	if m.Truncated || len(m.Answers) != 1 {
		t.Errorf("EDNS 100: truncated=%v answers=%d", m.Truncated, len(m.Answers))
	}

	// EDNS version 1: BADVERS (16 = 1<<4 | 0).
	q := query(t, webName+".", dnsmessage.TypeA, 1232)
	q[len(q)-11+6] = 1 // OPT: name(1) type(2) class(2), then TTL = ext-rcode, VERSION, flags(2)
	m = parse(t, s.handle(q, nil, true))
	o = opt(t, m)
	if o == nil || o.Header.ExtendedRCode(m.RCode) != rcodeBadVers || len(m.Answers) != 0 {
		t.Errorf("EDNS version 1: rcode %v opt %+v", m.RCode, o)
	}
}

func TestHandleMalformed(t *testing.T) {
	s := newTestServer()
	good := query(t, webName+".", dnsmessage.TypeA, -1)
	withHeader := func(id uint16, bits uint16, qd, an, ns, ar uint16, rest []byte) []byte {
		b := []byte{byte(id >> 8), byte(id), byte(bits >> 8), byte(bits), byte(qd >> 8), byte(qd), byte(an >> 8), byte(an),
			byte(ns >> 8), byte(ns), byte(ar >> 8), byte(ar)}
		return append(b, rest...)
	}
	question := good[12:]
	twoOPT := query(t, webName+".", dnsmessage.TypeA, 1232)
	opt := twoOPT[len(twoOPT)-11:]
	twoOPT = append(twoOPT, opt...)
	twoOPT[11] = 2
	for _, tc := range []struct {
		name  string
		msg   []byte
		drop  bool
		rcode dnsmessage.RCode
	}{
		{name: "empty", msg: nil, drop: true},
		{name: "short header", msg: good[:11], drop: true},
		{name: "a response", msg: withHeader(1, 0x8000, 1, 0, 0, 0, question), drop: true},
		{name: "no question", msg: withHeader(1, 0, 0, 0, 0, 0, nil), rcode: dnsmessage.RCodeFormatError},
		{name: "cut question", msg: good[:20], rcode: dnsmessage.RCodeFormatError},
		{name: "two questions", msg: withHeader(1, 0, 2, 0, 0, 0, append(slices.Clone(question), question...)), rcode: dnsmessage.RCodeFormatError},
		{name: "missing answer section", msg: withHeader(1, 0, 1, 3, 0, 0, question), rcode: dnsmessage.RCodeFormatError},
		{name: "two OPT records", msg: twoOPT, rcode: dnsmessage.RCodeFormatError},
		{name: "opcode STATUS", msg: withHeader(1, 2<<11, 1, 0, 0, 0, question), rcode: dnsmessage.RCodeNotImplemented},
		{name: "class CHAOS", msg: append(slices.Clone(good[:len(good)-1]), 3), rcode: dnsmessage.RCodeRefused},
		{name: "pointer loop", msg: withHeader(1, 0, 1, 0, 0, 0, []byte{0xc0, 12, 0, 1, 0, 1}), rcode: dnsmessage.RCodeFormatError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := s.handle(tc.msg, nil, true)
			if tc.drop {
				if resp != nil {
					t.Fatalf("answered %x", resp)
				}
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(resp)
			if err != nil {
				t.Fatalf("response %x: %v", resp, err)
			}
			if !h.Response || h.RCode != tc.rcode || h.Authoritative {
				t.Errorf("header %+v, want rcode %v", h, tc.rcode)
			}
		})
	}
}

func FuzzHandle(f *testing.F) {
	s := New(Config{Addr: "127.0.0.1:0"})
	s.SetRecords(testRecords(), srvZone())
	f.Add(query(f, webName+".", dnsmessage.TypeA, -1))
	f.Add(query(f, "_pg._tcp.corp.internal.", dnsmessage.TypeSRV, -1))
	f.Add(query(f, "_pg._tcp.corp.internal.", dnsmessage.TypeALL, 1232))
	f.Add(query(f, "alias.corp.internal.", dnsmessage.TypeSRV, 1232))
	f.Add(query(f, bigName+".", dnsmessage.TypeA, 1232))
	f.Add(query(f, "www.example.com.", dnsmessage.TypeAAAA, 512))
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, udp := range []bool{true, false} {
			resp := s.handle(msg, nil, udp)
			if resp == nil {
				continue
			}
			var p dnsmessage.Parser
			h, err := p.Start(resp)
			if err != nil {
				t.Fatalf("unparsable response %x to %x: %v", resp, msg, err)
			}
			if !h.Response || h.ID != uint16(msg[0])<<8|uint16(msg[1]) {
				t.Fatalf("response header %+v to %x", h, msg)
			}
			if udp && len(resp) > maxUDPSize {
				t.Fatalf("UDP response of %d bytes", len(resp))
			}
			var m dnsmessage.Message
			if err := m.Unpack(resp); err != nil {
				t.Fatalf("response %x does not unpack: %v", resp, err)
			}
		}
	})
}

func BenchmarkHandle(b *testing.B) {
	s := newTestServer()
	for _, bc := range []struct {
		name string
		msg  []byte
	}{
		{"A", query(b, webName+".", dnsmessage.TypeA, -1)},
		{"AAAA+EDNS", query(b, webName+".", dnsmessage.TypeAAAA, 1232)},
		{"NXDOMAIN", query(b, "gone-0123456789abcdef9.7d67968.vpc-lattice-svcs.us-east-1.on.aws.", dnsmessage.TypeA, -1)},
		{"REFUSED", query(b, "www.example.com.", dnsmessage.TypeA, -1)},
		{"truncated", query(b, bigName+".", dnsmessage.TypeA, -1)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			out := make([]byte, 0, maxMsgSize)
			b.ReportAllocs()
			for b.Loop() {
				if s.handle(bc.msg, out[:0], true) == nil {
					b.Fatal("dropped")
				}
			}
		})
	}
}

// TestHandleZones: a private DNS namespace's zone answers its names with
// their own TTLs, NXDOMAIN for names it does not hold, NODATA for its apex
// and for parents of its names; names outside every zone stay REFUSED.
// Lattice names win over a zone's, the most specific of nested zones
// answers, and a zone inside Lattice's generated zone is ignored.
func TestHandleZones(t *testing.T) {
	ip := netip.MustParseAddr
	s := New(Config{Addr: "127.0.0.1:0"})
	s.SetRecords(testRecords(),
		Zone{Apex: "Corp.Internal.", Names: []Name{
			{Name: "db.corp.internal", A: []netip.Addr{ip("10.0.0.5"), ip("10.0.0.6")}, ATTL: 30,
				AAAA: []netip.Addr{ip("fd00::5")}, AAAATTL: 300},
			{Name: "x.inner.corp.internal", A: []netip.Addr{ip("10.6.6.6")}, ATTL: 5},
			{Name: "srv-only.corp.internal"},
			{Name: "stray.example.org", A: []netip.Addr{ip("10.9.9.9")}, ATTL: 5},
		}},
		Zone{Apex: "inner.corp.internal", Names: []Name{{Name: "x.inner.corp.internal", A: []netip.Addr{ip("10.0.0.7")}, ATTL: 7}}},
		// Inside Lattice's generated zone: ignored.
		Zone{Apex: strings.SplitN(webName, ".", 2)[1], Names: []Name{{Name: webName, A: []netip.Addr{ip("6.6.6.6")}, ATTL: 1}}},
		// A custom domain's parent: the zone stands, the Lattice name wins.
		Zone{Apex: strings.SplitN(custom, ".", 2)[1], Names: []Name{{Name: custom, A: []netip.Addr{ip("6.6.6.6")}, ATTL: 1}}},
	)
	ask := func(name string, typ dnsmessage.Type) dnsmessage.Message {
		return parse(t, s.handle(query(t, name, typ, 1232), make([]byte, 0, 512), true))
	}
	m := ask("DB.corp.internal.", dnsmessage.TypeA)
	if got := answers(m); m.RCode != dnsmessage.RCodeSuccess || len(got) != 2 || m.Answers[0].Header.TTL != 30 {
		t.Fatalf("db A: %v %v", m.RCode, got)
	}
	if m := ask("db.corp.internal.", dnsmessage.TypeAAAA); len(m.Answers) != 1 || m.Answers[0].Header.TTL != 300 {
		t.Fatalf("db AAAA: %+v", m.Answers)
	}
	if m := ask("x.inner.corp.internal.", dnsmessage.TypeA); !slices.Equal(answers(m), []string{"10.0.0.7"}) || m.Answers[0].Header.TTL != 7 {
		t.Fatalf("a name of a nested zone: %v, want only the inner zone's", answers(m))
	}
	for _, name := range []string{"corp.internal.", "inner.corp.internal.", "srv-only.corp.internal."} {
		if m := ask(name, dnsmessage.TypeA); m.RCode != dnsmessage.RCodeSuccess || len(m.Answers) != 0 {
			t.Fatalf("%s: %v %v, want NODATA", name, m.RCode, answers(m))
		}
	}
	if m := ask("missing.corp.internal.", dnsmessage.TypeA); m.RCode != dnsmessage.RCodeNameError {
		t.Fatalf("missing: %v, want NXDOMAIN", m.RCode)
	}
	if m := ask("stray.example.org.", dnsmessage.TypeA); m.RCode != dnsmessage.RCodeRefused {
		t.Fatalf("a name outside its zone: %v %v, want REFUSED", m.RCode, answers(m))
	}
	for _, name := range []string{webName, custom} {
		if got := answers(ask(name+".", dnsmessage.TypeA)); slices.Contains(got, "6.6.6.6") {
			t.Fatalf("a zone's name overrode the Lattice name %s: %v", name, got)
		}
	}
}

// TestHandleZoneRotation: a zone's name with more than eight addresses
// answers eight of them, consecutive from a random offset, so that every
// address is answered over many queries.
func TestHandleZoneRotation(t *testing.T) {
	var addrs []netip.Addr
	for i := range 20 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}))
	}
	s := New(Config{Addr: "127.0.0.1:0"})
	s.SetRecords(nil, Zone{Apex: "corp.internal", Names: []Name{{Name: "big.corp.internal", A: addrs, ATTL: 10}}})
	seen := map[string]bool{}
	for range 200 {
		m := parse(t, s.handle(query(t, "big.corp.internal.", dnsmessage.TypeA, 1232), make([]byte, 0, 512), true))
		got := answers(m)
		if len(got) != maxAnswers {
			t.Fatalf("%d answers, want %d", len(got), maxAnswers)
		}
		for _, a := range got {
			seen[a] = true
		}
	}
	if len(seen) != len(addrs) {
		t.Fatalf("%d of %d addresses answered over 200 queries", len(seen), len(addrs))
	}
}

// TestHandleZoneWeighted: a weighted name answers one address at a time,
// each of them over many queries.
func TestHandleZoneWeighted(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")}
	s := New(Config{Addr: "127.0.0.1:0"})
	s.SetRecords(nil, Zone{Apex: "corp.internal", Names: []Name{{Name: "w.corp.internal", A: addrs, ATTL: 10, Weighted: true}}})
	seen := map[string]bool{}
	for range 100 {
		got := answers(parse(t, s.handle(query(t, "w.corp.internal.", dnsmessage.TypeA, 1232), make([]byte, 0, 512), true)))
		if len(got) != 1 {
			t.Fatalf("%d answers, want 1", len(got))
		}
		seen[got[0]] = true
	}
	if len(seen) != len(addrs) {
		t.Fatalf("%d of %d addresses answered over 100 queries", len(seen), len(addrs))
	}
}

// srvZone is a zone with an SRV name of two targets, each a name with its
// addresses, as Cloud Map lays them out.
func srvZone() Zone {
	ip := netip.MustParseAddr
	return Zone{Apex: "corp.internal", Names: []Name{
		{Name: "_pg._tcp.corp.internal", SRVTTL: 20, SRV: []SRVTarget{
			{Host: "pg-1._pg._tcp.corp.internal", Port: 5432}, {Host: "PG-2._pg._tcp.corp.internal.", Port: 5433}}},
		{Name: "pg-1._pg._tcp.corp.internal", A: []netip.Addr{ip("10.0.0.1")}, ATTL: 20, AAAATTL: 20},
		{Name: "pg-2._pg._tcp.corp.internal", A: []netip.Addr{ip("10.0.0.2")}, AAAA: []netip.Addr{ip("fd00::2")}, ATTL: 20, AAAATTL: 20},
		{Name: "db.corp.internal", A: []netip.Addr{ip("10.0.0.5")}, ATTL: 30},
		{Name: "alias.corp.internal", CNAME: []string{"_pg._tcp.corp.internal", "db.corp.internal"}, CNAMETTL: 5, Weighted: true},
	}}
}

// TestHandleZoneSRV: an SRV name answers its targets (priority 1, weight
// 1, the instance's port) with the targets' addresses in the additional
// section; a target answers its own A and AAAA; a name without SRV
// records is NODATA for SRV, and the SRV name NODATA for A.
func TestHandleZoneSRV(t *testing.T) {
	s := New(Config{Addr: "127.0.0.1:0"})
	s.SetRecords(nil, srvZone())
	ask := func(name string, typ dnsmessage.Type) dnsmessage.Message {
		return parse(t, s.handle(query(t, name, typ, 1232), make([]byte, 0, 512), true))
	}
	m := ask("_PG._tcp.corp.internal.", dnsmessage.TypeSRV)
	if m.RCode != dnsmessage.RCodeSuccess || len(m.Answers) != 2 {
		t.Fatalf("SRV: %v, %d answers", m.RCode, len(m.Answers))
	}
	got := map[string]uint16{}
	for _, a := range m.Answers {
		srv, ok := a.Body.(*dnsmessage.SRVResource)
		if !ok || a.Header.TTL != 20 || srv.Priority != 1 || srv.Weight != 1 || a.Header.Name.String() != "_PG._tcp.corp.internal." {
			t.Fatalf("SRV answer %+v (the owner keeps the asker's case)", a)
		}
		got[srv.Target.String()] = srv.Port
	}
	want := map[string]uint16{"pg-1._pg._tcp.corp.internal.": 5432, "pg-2._pg._tcp.corp.internal.": 5433}
	if !maps.Equal(got, want) {
		t.Errorf("SRV targets %v, want %v", got, want)
	}
	extra := map[string][]string{}
	for _, r := range m.Additionals {
		if r.Header.Type != dnsmessage.TypeOPT && r.Header.TTL != 20 {
			t.Errorf("additional %+v: want the targets' TTL of 20", r.Header)
		}
		switch b := r.Body.(type) {
		case *dnsmessage.AResource:
			extra[r.Header.Name.String()] = append(extra[r.Header.Name.String()], netip.AddrFrom4(b.A).String())
		case *dnsmessage.AAAAResource:
			extra[r.Header.Name.String()] = append(extra[r.Header.Name.String()], netip.AddrFrom16(b.AAAA).String())
		}
	}
	wantExtra := map[string][]string{"pg-1._pg._tcp.corp.internal.": {"10.0.0.1"}, "pg-2._pg._tcp.corp.internal.": {"10.0.0.2", "fd00::2"}}
	if !maps.EqualFunc(extra, wantExtra, slices.Equal[[]string]) {
		t.Errorf("additional section %v, want %v", extra, wantExtra)
	}
	if got := answers(ask("pg-2._pg._tcp.corp.internal.", dnsmessage.TypeA)); !slices.Equal(got, []string{"10.0.0.2"}) {
		t.Errorf("target A: %v", got)
	}
	if got := answers(ask("pg-2._pg._tcp.corp.internal.", dnsmessage.TypeAAAA)); !slices.Equal(got, []string{"fd00::2"}) {
		t.Errorf("target AAAA: %v", got)
	}
	for _, q := range []struct {
		name string
		typ  dnsmessage.Type
	}{{"_pg._tcp.corp.internal.", dnsmessage.TypeA}, {"db.corp.internal.", dnsmessage.TypeSRV}} {
		if m := ask(q.name, q.typ); m.RCode != dnsmessage.RCodeSuccess || len(m.Answers) != 0 || len(m.Additionals) != 1 {
			t.Errorf("%s %v: %v, %d answers, %d additional; want NODATA with only OPT", q.name, q.typ, m.RCode, len(m.Answers), len(m.Additionals))
		}
	}
}

// TestHandleSRVSizes: an SRV answer too big for the client's UDP limit
// keeps its answers and drops the additional records, without TC (RFC 2181
// §9); only answers that do not fit themselves are truncated. Targets
// that DNS cannot carry are left out, and a target that is a Lattice name
// is added with the server's TTL.
func TestHandleSRVSizes(t *testing.T) {
	var srvs []SRVTarget
	names := []Name{}
	for i := range 12 {
		host := fmt.Sprintf("pg-%02d._pg._tcp.corp.internal", i)
		srvs = append(srvs, SRVTarget{Host: host, Port: uint16(5000 + i)})
		names = append(names, Name{Name: host, A: []netip.Addr{netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})},
			AAAA: []netip.Addr{netip.AddrFrom16([16]byte{0xfd, 15: byte(i)})}, ATTL: 20, AAAATTL: 20})
	}
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 50) + ".corp.internal"
	if len(long) != 256 {
		t.Fatalf("long name of %d bytes", len(long))
	}
	names = append(names,
		Name{Name: "_pg._tcp.corp.internal", SRV: srvs, SRVTTL: 20},
		Name{Name: "_long._tcp.corp.internal", SRV: []SRVTarget{{Host: long, Port: 1}}, SRVTTL: 20},
		Name{Name: "_web._tcp.corp.internal", SRV: []SRVTarget{{Host: custom, Port: 443}}, SRVTTL: 20})
	s := New(Config{Addr: "127.0.0.1:0", TTL: 60})
	s.SetRecords(testRecords(), Zone{Apex: "corp.internal", Names: names})
	ask := func(name string, edns int, udp bool) dnsmessage.Message {
		return parse(t, s.handle(query(t, name, dnsmessage.TypeSRV, edns), make([]byte, 0, maxMsgSize), udp))
	}
	for _, tc := range []struct {
		name       string
		edns       int
		udp        bool
		answers    int
		additional int
		tc         bool
	}{
		{"TCP", 1232, false, maxAnswers, 2 * maxAnswers, false},
		{"UDP, 1232 bytes", 1232, true, maxAnswers, 0, false}, // ~600 bytes of answers, ~1000 more of addresses
		// 512 bytes do not hold eight SRV records: TC, and the client
		// asks again over TCP.
		{"UDP without EDNS", -1, true, 0, 0, true},
	} {
		m := ask("_pg._tcp.corp.internal.", tc.edns, tc.udp)
		extra := 0
		for _, r := range m.Additionals {
			if r.Header.Type != dnsmessage.TypeOPT {
				extra++
			}
		}
		if m.Truncated != tc.tc || len(m.Answers) != tc.answers || extra != tc.additional {
			t.Errorf("%s: TC %v, %d answers, %d additional records; want %v, %d, %d", tc.name, m.Truncated, len(m.Answers), extra,
				tc.tc, tc.answers, tc.additional)
		}
	}
	if m := ask("_long._tcp.corp.internal.", -1, true); m.RCode != dnsmessage.RCodeSuccess || len(m.Answers) != 0 {
		t.Errorf("a target longer than a DNS name: %v %d answers, want NODATA", m.RCode, len(m.Answers))
	}
	m := ask("_web._tcp.corp.internal.", 1232, true)
	if len(m.Answers) != 1 || len(m.Additionals) < 2 {
		t.Fatalf("target %s: %d answers, %d additional", custom, len(m.Answers), len(m.Additionals))
	}
	if r := m.Additionals[0]; r.Header.Type != dnsmessage.TypeA || r.Header.TTL != 60 {
		t.Errorf("a Lattice name in the additional section: %+v, want its A at the server's TTL", r.Header)
	}
}

func BenchmarkHandleSRV(b *testing.B) {
	s := New(Config{Addr: "127.0.0.1:0"})
	s.SetRecords(nil, srvZone())
	msg := query(b, "_pg._tcp.corp.internal.", dnsmessage.TypeSRV, 1232)
	out := make([]byte, 0, maxMsgSize) // a UDP reader's buffer
	b.ReportAllocs()
	for b.Loop() {
		if s.handle(msg, out[:0], true) == nil {
			b.Fatal("dropped")
		}
	}
}

// TestHandleZoneCNAME: an alias answers CNAME with one of its targets,
// picked at random, for every type; the target's records follow when the
// server holds them; asked for CNAME, only the alias.
func TestHandleZoneCNAME(t *testing.T) {
	ip := netip.MustParseAddr
	s := New(Config{Addr: "127.0.0.1:0", TTL: 60})
	s.SetRecords(testRecords(), Zone{Apex: "corp.internal", Names: []Name{
		{Name: "www.corp.internal", CNAME: []string{"edge-a.example.com", "edge-b.example.com."}, CNAMETTL: 45, Weighted: true},
		{Name: "db-alias.corp.internal", CNAME: []string{"db.corp.internal"}, CNAMETTL: 45},
		{Name: "lattice-alias.corp.internal", CNAME: []string{custom}, CNAMETTL: 45},
		{Name: "big-alias.corp.internal", CNAME: []string{bigName}, CNAMETTL: 45},
		{Name: "alias-alias.corp.internal", CNAME: []string{"db-alias.corp.internal"}, CNAMETTL: 45},
		{Name: "dangling.corp.internal", CNAME: []string{"missing.corp.internal"}, CNAMETTL: 45},
		{Name: "both.corp.internal", CNAME: []string{"db.corp.internal"}, CNAMETTL: 45, A: []netip.Addr{ip("10.6.6.6")}, ATTL: 5},
		{Name: "db.corp.internal", A: []netip.Addr{ip("10.0.0.5")}, ATTL: 30},
	}})
	ask := func(name string, typ dnsmessage.Type) dnsmessage.Message {
		return parse(t, s.handle(query(t, name, typ, 1232), make([]byte, 0, 512), true))
	}
	seen := map[string]bool{}
	for range 50 {
		m := ask("WWW.corp.internal.", dnsmessage.TypeA)
		if m.RCode != dnsmessage.RCodeSuccess || len(m.Answers) != 1 || m.Answers[0].Header.TTL != 45 {
			t.Fatalf("www A: %v %+v", m.RCode, m.Answers)
		}
		seen[m.Answers[0].Body.(*dnsmessage.CNAMEResource).CNAME.String()] = true
	}
	if len(seen) != 2 || !seen["edge-a.example.com."] || !seen["edge-b.example.com."] {
		t.Errorf("targets answered over 50 queries: %v", seen)
	}
	m := ask("db-alias.corp.internal.", dnsmessage.TypeA)
	if len(m.Answers) != 2 || m.Answers[1].Header.Name.String() != "db.corp.internal." || m.Answers[1].Header.TTL != 30 ||
		netip.AddrFrom4(m.Answers[1].Body.(*dnsmessage.AResource).A) != ip("10.0.0.5") {
		t.Errorf("an alias of a name held here: %+v", m.Answers)
	}
	if m := ask("db-alias.corp.internal.", dnsmessage.TypeCNAME); len(m.Answers) != 1 {
		t.Errorf("CNAME asked: %+v, want the alias alone", m.Answers)
	}
	if m := ask("db-alias.corp.internal.", dnsmessage.TypeAAAA); len(m.Answers) != 1 || m.RCode != dnsmessage.RCodeSuccess {
		t.Errorf("AAAA of an alias whose target has none: %v %+v", m.RCode, m.Answers)
	}
	m = ask("lattice-alias.corp.internal.", dnsmessage.TypeA)
	if len(m.Answers) != 2 || m.Answers[1].Header.TTL != 60 {
		t.Errorf("an alias of a Lattice name: %+v, want its A at the server's TTL", m.Answers)
	}
	// The alias alone: asked ANY, an alias of an alias (the resolver
	// follows), an alias of a missing name, and an alias with addresses of
	// its own (a CNAME name has no other data).
	for _, q := range []struct {
		name string
		typ  dnsmessage.Type
	}{{"db-alias.corp.internal.", dnsmessage.TypeALL}, {"alias-alias.corp.internal.", dnsmessage.TypeA},
		{"dangling.corp.internal.", dnsmessage.TypeA}} {
		if m := ask(q.name, q.typ); m.RCode != dnsmessage.RCodeSuccess || len(m.Answers) != 1 || m.Answers[0].Header.Type != dnsmessage.TypeCNAME {
			t.Errorf("%s %v: %v %+v, want the CNAME alone", q.name, q.typ, m.RCode, m.Answers)
		}
	}
	if got := answers(ask("both.corp.internal.", dnsmessage.TypeA)); !slices.Equal(got, []string{"10.0.0.5"}) {
		t.Errorf("an alias given addresses too: %v, want only its target's", got)
	}
	// Over UDP the target's 100 addresses do not fit: the alias alone, not
	// truncated, and the resolver asks for the target.
	if m := ask("big-alias.corp.internal.", dnsmessage.TypeA); m.Truncated || len(m.Answers) != 1 {
		t.Errorf("alias of a big name over UDP: TC %v, %d answers; want the CNAME alone", m.Truncated, len(m.Answers))
	}
}

// TestNormalizeASCII: names compare case-insensitively in ASCII only (RFC
// 4343): the Kelvin sign does not become a "k".
func TestNormalizeASCII(t *testing.T) {
	if got := normalize("\u212A.Example.COM."); got != "\u212A.example.com" {
		t.Errorf("normalize = %q", got)
	}
}
