package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// serve starts a server on 127.0.0.1, port 0, until the test ends.
func serve(t *testing.T) *Server {
	t.Helper()
	s := newTestServer()
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

// resolver is Go's own DNS client, talking only to s over network (udp
// lets it fall back to TCP on truncation; tcp forces TCP).
func resolver(s *Server, network string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, n, _ string) (net.Conn, error) {
		if network == "tcp" {
			n = "tcp"
		}
		var d net.Dialer
		return d.DialContext(ctx, n, s.Addr())
	}}
}

func TestListenSamePort(t *testing.T) {
	s := New(Config{Addr: "127.0.0.1:0"})
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.udp.Close(); _ = s.tcp.Close() }()
	if s.udp.LocalAddr().String() != s.tcp.Addr().String() || s.Addr() != s.tcp.Addr().String() {
		t.Errorf("udp %s tcp %s addr %s", s.udp.LocalAddr(), s.tcp.Addr(), s.Addr())
	}
	if err := s.Listen(); err == nil {
		t.Error("second Listen succeeded")
	}
	// The port is taken now: a server asking for it explicitly fails.
	other := New(Config{Addr: s.Addr()})
	if err := other.Listen(); err == nil {
		t.Error("Listen on a taken port succeeded")
	}
	if err := New(Config{Addr: "nonsense"}).Listen(); err == nil {
		t.Error("Listen on a bad address succeeded")
	}
}

func TestGoResolver(t *testing.T) {
	s := serve(t)
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			r := resolver(s, network)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := r.LookupNetIP(ctx, "ip", webName+".")
			if err != nil || !slices.Contains(got, web4) || !slices.Contains(got, web6) || len(got) != 2 {
				t.Errorf("ip %s: %v %v", webName, got, err)
			}
			if got, err := r.LookupNetIP(ctx, "ip4", strings.ToUpper(webName)+"."); err != nil || !slices.Equal(got, []netip.Addr{web4}) {
				t.Errorf("ip4 upper case: %v %v", got, err)
			}
			// Without a trailing dot and with no search domains.
			if got, err := r.LookupHost(ctx, custom); err != nil || !slices.Equal(got, []string{"10.0.0.9"}) {
				t.Errorf("host %s: %v %v", custom, got, err)
			}
			// 100 records: over UDP they arrive truncated, and the
			// resolver retries over TCP.
			got, err = r.LookupNetIP(ctx, "ip4", bigName+".")
			if err != nil || len(got) != 100 {
				t.Errorf("big: %d addresses, %v", len(got), err)
			}
			if _, err := r.LookupNetIP(ctx, "ip6", v4Name+"."); !isNotFound(err) {
				t.Errorf("NODATA AAAA: %v, want not found", err)
			}
			if _, err := r.LookupHost(ctx, "gone-1.7d67968.vpc-lattice-svcs.us-east-1.on.aws."); !isNotFound(err) {
				t.Errorf("NXDOMAIN: %v, want not found", err)
			}
			_, err = r.LookupHost(ctx, "www.example.com.")
			if err == nil || isNotFound(err) {
				t.Errorf("REFUSED: %v, want a server error", err)
			}
		})
	}
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// digResult is what dig printed.
type digResult struct {
	status  string
	flags   []string
	answers []string // "name ttl class type data"
	edns    string   // the "; EDNS: ..." line, "" when none
	out     string
}

var (
	digStatus = regexp.MustCompile(`status: ([A-Z]+)`)
	digFlags  = regexp.MustCompile(`;; flags: ([a-z ]*);`)
	digEDNS   = regexp.MustCompile(`; EDNS: [^\n]*`)
)

func dig(t *testing.T, s *Server, args ...string) digResult {
	t.Helper()
	path, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("dig is not installed (CI installs dnsutils)")
	}
	host, port, _ := net.SplitHostPort(s.Addr())
	args = append([]string{"@" + host, "-p", port, "+time=5", "+tries=1", "+norecurse", "+nocookie", "+noall", "+comments", "+answer"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %v: %v\n%s", args, err, out)
	}
	r := digResult{out: string(out)}
	if m := digStatus.FindStringSubmatch(r.out); m != nil {
		r.status = m[1]
	}
	if m := digFlags.FindStringSubmatch(r.out); m != nil {
		r.flags = strings.Fields(m[1])
	}
	r.edns = digEDNS.FindString(r.out)
	for line := range strings.SplitSeq(r.out, "\n") {
		if line != "" && !strings.HasPrefix(line, ";") {
			r.answers = append(r.answers, strings.Join(strings.Fields(line), " "))
		}
	}
	return r
}

func TestDig(t *testing.T) {
	s := serve(t)
	for _, tc := range []struct {
		name    string
		args    []string
		status  string
		flags   []string // must be present
		noFlags []string // must be absent
		answers []string
		nAns    int // when answers is nil: how many
		edns    string
		outHas  string
	}{
		{name: "A", args: []string{webName, "A"}, status: "NOERROR", flags: []string{"qr", "aa"}, noFlags: []string{"ra", "tc"},
			answers: []string{webName + ". 10 IN A 169.254.171.1"}, edns: "; EDNS: version: 0, flags:; udp: 1232"},
		{name: "AAAA mixed case", args: []string{strings.ToUpper(webName) + ".", "AAAA"}, status: "NOERROR", flags: []string{"aa"},
			answers: []string{strings.ToUpper(webName) + ". 10 IN AAAA fd00:ec2:80::a9fe:ab01"}},
		{name: "NODATA", args: []string{v4Name, "AAAA"}, status: "NOERROR", flags: []string{"aa"}},
		{name: "NODATA MX", args: []string{webName, "MX"}, status: "NOERROR", flags: []string{"aa"}},
		{name: "NXDOMAIN", args: []string{"gone-1.7d67968.vpc-lattice-svcs.us-east-1.on.aws", "A"}, status: "NXDOMAIN", flags: []string{"aa"}},
		{name: "REFUSED", args: []string{"www.example.com", "A"}, status: "REFUSED", noFlags: []string{"aa"}},
		{name: "no EDNS", args: []string{"+noedns", webName, "A"}, status: "NOERROR", nAns: 1},
		{name: "EDNS version 1", args: []string{"+edns=1", "+noednsnegotiation", webName, "A"}, status: "BADVERS", edns: "; EDNS: version: 0, flags:; udp: 1232"},
		{name: "TC over UDP without EDNS", args: []string{"+noedns", "+ignore", bigName, "A"}, status: "NOERROR", flags: []string{"tc"}},
		{name: "UDP falls back to TCP", args: []string{bigName, "A"}, status: "NOERROR", noFlags: []string{"tc"}, nAns: 100,
			outHas: "Truncated, retrying in TCP mode"},
		{name: "TCP", args: []string{"+tcp", bigName, "A"}, status: "NOERROR", nAns: 100},
		{name: "TCP keepopen, two queries", args: []string{"+tcp", "+keepopen", webName, "A", webName, "AAAA"}, status: "NOERROR", answers: []string{
			webName + ". 10 IN A 169.254.171.1", webName + ". 10 IN AAAA fd00:ec2:80::a9fe:ab01"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dig(t, s, tc.args...)
			if r.status != tc.status {
				t.Errorf("status %q, want %q\n%s", r.status, tc.status, r.out)
			}
			for _, f := range tc.flags {
				if !slices.Contains(r.flags, f) {
					t.Errorf("flags %v lack %q", r.flags, f)
				}
			}
			for _, f := range tc.noFlags {
				if slices.Contains(r.flags, f) {
					t.Errorf("flags %v have %q", r.flags, f)
				}
			}
			switch {
			case tc.answers != nil:
				if !slices.Equal(r.answers, tc.answers) {
					t.Errorf("answers %q, want %q", r.answers, tc.answers)
				}
			case len(r.answers) != tc.nAns:
				t.Errorf("%d answers, want %d\n%s", len(r.answers), tc.nAns, r.out)
			}
			if !strings.Contains(r.out, tc.outHas) {
				t.Errorf("dig output lacks %q\n%s", tc.outHas, r.out)
			}
			if tc.edns != "" && r.edns != tc.edns {
				t.Errorf("EDNS line %q, want %q", r.edns, tc.edns)
			}
		})
	}
}

// exchange sends msg over a fresh UDP socket and waits for one answer.
func exchange(t *testing.T, s *Server, msg []byte) ([]byte, error) {
	t.Helper()
	c, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, maxMsgSize)
	n, err := c.Read(buf)
	return buf[:n], err
}

func TestSocketsSurviveGarbage(t *testing.T) {
	s := serve(t)
	for _, junk := range [][]byte{{}, {1}, []byte("GET / HTTP/1.1\r\n\r\n"), make([]byte, 3000)} {
		if resp, err := exchange(t, s, junk); err == nil && len(junk) < 12 {
			t.Errorf("answered %x to %x", resp, junk)
		}
	}
	resp, err := exchange(t, s, query(t, webName+".", dnsmessage.TypeA, -1))
	if err != nil {
		t.Fatalf("after garbage: %v", err)
	}
	if m := parse(t, resp); len(m.Answers) != 1 {
		t.Errorf("after garbage: %d answers", len(m.Answers))
	}

	// TCP: two pipelined queries in one write, answered in order; then a
	// truncated frame ends the connection.
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	frame := func(m []byte) []byte { return append([]byte{byte(len(m) >> 8), byte(len(m))}, m...) }
	q1 := query(t, webName+".", dnsmessage.TypeA, -1)
	q2 := query(t, bigName+".", dnsmessage.TypeA, -1)
	q2[1] = 0x42 // another ID
	if _, err := c.Write(append(frame(q1), frame(q2)...)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, want := range []struct {
		id uint16
		n  int
	}{{0xbeef, 1}, {0xbe42, 100}} {
		var l [2]byte
		if _, err := readFull(c, l[:]); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, int(l[0])<<8|int(l[1]))
		if _, err := readFull(c, buf); err != nil {
			t.Fatal(err)
		}
		if m := parse(t, buf); m.ID != want.id || len(m.Answers) != want.n {
			t.Errorf("TCP answer id %x with %d answers, want %x with %d", m.ID, len(m.Answers), want.id, want.n)
		}
	}
	if _, err := c.Write([]byte{0, 5, 1, 2}); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	if n, err := c.Read(make([]byte, 10)); err == nil {
		t.Errorf("read %d bytes after a truncated frame", n)
	}
}

func TestSetRecordsWhileServing(t *testing.T) {
	s := serve(t)
	r := resolver(s, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			recs := testRecords()
			recs[webName] = []netip.Addr{netip.AddrFrom4([4]byte{169, 254, 171, byte(i)})}
			s.SetRecords(recs)
		}
	})
	for range 50 {
		got, err := r.LookupNetIP(ctx, "ip4", webName+".")
		if err != nil || len(got) != 1 || !netip.MustParsePrefix("169.254.171.0/24").Contains(got[0]) {
			t.Errorf("during swaps: %v %v", got, err)
			break
		}
	}
	close(stop)
	wg.Wait()
	s.SetRecords(map[string][]netip.Addr{"Other.Example.": {netip.MustParseAddr("192.0.2.1")}})
	if got, err := r.LookupHost(ctx, "other.example."); err != nil || !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Errorf("after swap: %v %v", got, err)
	}
	if _, err := r.LookupHost(ctx, webName+"."); err == nil {
		t.Error("old name still answered after swap")
	}
}

func TestServeStops(t *testing.T) {
	base := runtime.NumGoroutine()
	s := New(Config{Addr: "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }() // Serve listens itself
	deadline := time.Now().Add(5 * time.Second)
	var c net.Conn
	for {
		var err error
		if c, err = net.Dial("tcp", s.Addr()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server never listened: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	defer c.Close()
	if _, err := c.Write([]byte{0}); err != nil { // a connection mid-frame
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("open connection survived shutdown")
	}
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > base+1; { // +1: the test's Serve goroutine may not have exited yet
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before", runtime.NumGoroutine(), base)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func BenchmarkUDPQuery(b *testing.B) {
	s := newTestServer()
	if err := s.Listen(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	c, err := net.Dial("udp", s.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	q := query(b, webName+".", dnsmessage.TypeA, -1)
	buf := make([]byte, 512)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(q); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			b.Fatal(fmt.Errorf("read: %w", err))
		}
	}
}

// TestGoResolverSRV: Go's resolver finds a Cloud Map SRV service by
// service and protocol, and resolves each target.
func TestGoResolverSRV(t *testing.T) {
	s := New(Config{Addr: "127.0.0.1:0"})
	s.SetRecords(nil, srvZone())
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	r := resolver(s, "udp")
	_, srvs, err := r.LookupSRV(ctx, "pg", "tcp", "corp.internal.")
	if err != nil || len(srvs) != 2 {
		t.Fatalf("LookupSRV: %v %v", srvs, err)
	}
	ports := map[string]uint16{}
	for _, srv := range srvs {
		ports[srv.Target] = srv.Port
		if addrs, err := r.LookupHost(ctx, srv.Target); err != nil || len(addrs) == 0 {
			t.Errorf("target %s: %v %v", srv.Target, addrs, err)
		}
	}
	if ports["pg-1._pg._tcp.corp.internal."] != 5432 || ports["pg-2._pg._tcp.corp.internal."] != 5433 {
		t.Errorf("targets %v", ports)
	}
}

// TestGoResolverCNAME: Go's resolver follows an alias to the addresses of
// its target when the server holds them.
func TestGoResolverCNAME(t *testing.T) {
	s := New(Config{Addr: "127.0.0.1:0"})
	s.SetRecords(nil, Zone{Apex: "corp.internal", Names: []Name{
		{Name: "www.corp.internal", CNAME: []string{"db.corp.internal"}, CNAMETTL: 45, Weighted: true},
		{Name: "db.corp.internal", A: []netip.Addr{netip.MustParseAddr("10.0.0.5")}, ATTL: 30},
	}})
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	r := resolver(s, "udp")
	if cname, err := r.LookupCNAME(ctx, "www.corp.internal."); err != nil || cname != "db.corp.internal." {
		t.Errorf("LookupCNAME = %q, %v", cname, err)
	}
	if addrs, err := r.LookupHost(ctx, "www.corp.internal."); err != nil || !slices.Equal(addrs, []string{"10.0.0.5"}) {
		t.Errorf("LookupHost through the alias = %v, %v", addrs, err)
	}
}
