package dns

import (
	"errors"
	"math/rand/v2"

	"golang.org/x/net/dns/dnsmessage"
)

const (
	// minUDPSize is the limit of a UDP response without EDNS0 (RFC 1035).
	minUDPSize = 512
	// maxUDPSize is the most the server sends over UDP, and the payload size
	// it advertises: the DNS Flag Day 2020 value, which avoids IP
	// fragmentation on common paths.
	maxUDPSize = 1232
	// maxMsgSize is the largest DNS message (TCP's two-byte length).
	maxMsgSize = 65535
	// rcodeBadVers is EDNS0's BADVERS extended code (RFC 6891).
	rcodeBadVers dnsmessage.RCode = 16
)

// request is what the handler needs from a query.
type request struct {
	hdr      dnsmessage.Header
	q        dnsmessage.Question
	hasQ     bool
	edns     bool
	ednsVer  uint8
	udpLimit int
	tbl      *table // the records the answer comes from
}

// handle answers one query. msg is the query; out is a buffer (len 0) the
// response is appended to; udp selects UDP's size limit. It returns nil
// when the message must be dropped: too short to carry an ID, or itself a
// response (answering responses invites loops).
func (s *Server) handle(msg []byte, out []byte, udp bool) []byte {
	var p dnsmessage.Parser
	hdr, err := p.Start(msg)
	if err != nil || hdr.Response {
		return nil
	}
	req := request{hdr: hdr, udpLimit: minUDPSize}
	if hdr.OpCode != 0 { // only QUERY
		return s.respond(out, &req, dnsmessage.RCodeNotImplemented, nil, udp)
	}
	req.q, err = p.Question()
	if err != nil {
		return s.respond(out, &req, dnsmessage.RCodeFormatError, nil, udp)
	}
	req.hasQ = true
	if _, err := p.Question(); !errors.Is(err, dnsmessage.ErrSectionDone) {
		// More than one question: nobody supports that (RFC 9619).
		return s.respond(out, &req, dnsmessage.RCodeFormatError, nil, udp)
	}
	if err := readEDNS(&p, &req); err != nil {
		return s.respond(out, &req, dnsmessage.RCodeFormatError, nil, udp)
	}
	if req.edns && req.ednsVer != 0 {
		return s.respond(out, &req, rcodeBadVers, nil, udp)
	}
	if req.q.Class != dnsmessage.ClassINET && req.q.Class != dnsmessage.ClassANY {
		return s.respond(out, &req, dnsmessage.RCodeRefused, nil, udp)
	}

	var lower [255]byte
	name := lowerName(&lower, &req.q.Name)
	req.tbl = s.records.Load()
	rs, found, inZone := req.tbl.lookup(name)
	switch {
	case found:
		return s.respond(out, &req, dnsmessage.RCodeSuccess, rs, udp)
	case inZone:
		return s.respond(out, &req, dnsmessage.RCodeNameError, nil, udp)
	default:
		return s.respond(out, &req, dnsmessage.RCodeRefused, nil, udp)
	}
}

// readEDNS skips the answer and authority sections and reads the OPT
// record, if any, of the additional section.
func readEDNS(p *dnsmessage.Parser, req *request) error {
	if err := p.SkipAllAnswers(); err != nil {
		return err
	}
	if err := p.SkipAllAuthorities(); err != nil {
		return err
	}
	for {
		h, err := p.AdditionalHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Type == dnsmessage.TypeOPT {
			if req.edns {
				return errors.New("two OPT records")
			}
			req.edns = true
			req.ednsVer = uint8(h.TTL >> 16)
			req.udpLimit = min(max(int(h.Class), minUDPSize), maxUDPSize)
		}
		if err := p.SkipAdditional(); err != nil {
			return err
		}
	}
}

// lowerName writes n, lower-cased and without its trailing dot, into buf.
func lowerName(buf *[255]byte, n *dnsmessage.Name) []byte {
	l := int(n.Length)
	for i := range l {
		c := n.Data[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	if l > 0 && buf[l-1] == '.' {
		l--
	}
	return buf[:l]
}

// respond builds the response: rs's records of the asked type for
// RCodeSuccess (none: NODATA), nothing otherwise. Answers for names the
// server owns (found, or NXDOMAIN in its zones) are authoritative. Over
// UDP a response larger than the client's limit is replaced by an empty
// one with TC set, so the client retries over TCP (over TCP, the same for
// more than 64 KiB, which only thousands of addresses for one name reach).
// span chooses which of n addresses of rs an answer carries: all of them
// for a Lattice name; for a zone's name up to maxAnswers (one for a
// weighted name), consecutive from a random offset, so that every address
// gets its share of the clients.
func span(n int, rs *rrset) (from, count int) {
	switch {
	case n == 0 || !rs.zoned:
		return 0, n
	case rs.one:
		return rand.IntN(n), 1
	}
	return rand.IntN(n), min(n, maxAnswers)
}

func (s *Server) respond(out []byte, req *request, rcode dnsmessage.RCode, rs *rrset, udp bool) []byte {
	limit := maxMsgSize
	if udp {
		limit = req.udpLimit
	}
	resp, err := s.build(out, req, rcode, rs, modeFull)
	if err == nil && len(resp) > limit && rs != nil {
		// SRV targets' addresses are extra: without them, and without TC
		// (RFC 2181 §9), the client asks for what it still needs.
		resp, err = s.build(out[:0], req, rcode, rs, modeAnswers)
	}
	if err == nil && len(resp) > limit {
		resp, err = s.build(out[:0], req, rcode, nil, modeTruncated)
	}
	if err != nil {
		return nil // unreachable: names are checked when a table is built
	}
	return resp
}

// How much of a response build writes.
const (
	modeFull      = iota // answers and additional records
	modeAnswers          // answers only
	modeTruncated        // no records, TC set
)

func (s *Server) build(out []byte, req *request, rcode dnsmessage.RCode, rs *rrset, mode int) ([]byte, error) {
	truncated := mode == modeTruncated
	h := dnsmessage.Header{
		ID:               req.hdr.ID,
		Response:         true,
		OpCode:           req.hdr.OpCode,
		RecursionDesired: req.hdr.RecursionDesired,
		CheckingDisabled: req.hdr.CheckingDisabled,
		Authoritative:    rcode == dnsmessage.RCodeSuccess || rcode == dnsmessage.RCodeNameError,
		Truncated:        truncated,
		RCode:            rcode & 0xF, // the upper bits travel in OPT
	}
	b := dnsmessage.NewBuilder(out, h)
	var srvFrom, srvN int // the SRV records answered
	if req.hasQ {
		if err := b.StartQuestions(); err != nil {
			return nil, err
		}
		if err := b.Question(req.q); err != nil {
			return nil, err
		}
	}
	if rs != nil && !truncated {
		if err := b.StartAnswers(); err != nil {
			return nil, err
		}
		// The answer's owner name is the question's, in the asker's case
		// (resolvers that randomise case, 0x20, compare it).
		rh := dnsmessage.ResourceHeader{Name: req.q.Name, Class: dnsmessage.ClassINET, TTL: s.ttl}
		t := req.q.Type
		if len(rs.cname) > 0 {
			// An alias: its target, then the target's records of the type
			// asked when they are here (a resolver follows the rest).
			c := &rs.cname[rand.IntN(len(rs.cname))]
			rh.Type, rh.TTL = dnsmessage.TypeCNAME, rs.ttlCNAME
			if err := b.CNAMEResource(rh, dnsmessage.CNAMEResource{CNAME: c.target}); err != nil {
				return nil, err
			}
			if t == dnsmessage.TypeCNAME || t == dnsmessage.TypeALL || mode != modeFull {
				rs = nil // the alias alone: asked for, or what fits
			} else if rs = req.tbl.names[c.host]; rs == nil || len(rs.cname) > 0 {
				rs = nil // not here, or an alias again: the resolver follows it
			}
			rh.Name, rh.TTL = c.target, s.ttl
		}
		if rs == nil {
			t = 0 // nothing more to answer
		}
		if t == dnsmessage.TypeA || t == dnsmessage.TypeALL {
			rh.Type = dnsmessage.TypeA
			if rs.zoned {
				rh.TTL = rs.ttlA
			}
			from, n := span(len(rs.a), rs)
			for i := range n {
				a := rs.a[(from+i)%len(rs.a)]
				if err := b.AResource(rh, dnsmessage.AResource{A: a}); err != nil {
					return nil, err
				}
			}
		}
		if t == dnsmessage.TypeAAAA || t == dnsmessage.TypeALL {
			rh.Type = dnsmessage.TypeAAAA
			if rs.zoned {
				rh.TTL = rs.ttlAAAA
			}
			from, n := span(len(rs.aaaa), rs)
			for i := range n {
				a := rs.aaaa[(from+i)%len(rs.aaaa)]
				if err := b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a}); err != nil {
					return nil, err
				}
			}
		}
		if t == dnsmessage.TypeSRV || t == dnsmessage.TypeALL {
			rh.Type, rh.TTL = dnsmessage.TypeSRV, rs.ttlSRV
			from, n := span(len(rs.srv), rs)
			for i := range n {
				r := &rs.srv[(from+i)%len(rs.srv)]
				if err := b.SRVResource(rh, dnsmessage.SRVResource{Priority: 1, Weight: 1, Port: r.port, Target: r.target}); err != nil {
					return nil, err
				}
			}
			srvFrom, srvN = from, n
		}
	}
	if mode != modeFull {
		srvN = 0
	}
	if srvN > 0 || req.edns {
		if err := b.StartAdditionals(); err != nil {
			return nil, err
		}
	}
	// The targets' addresses, so that the client needs no second query.
	for i := range srvN {
		r := &rs.srv[(srvFrom+i)%len(rs.srv)]
		if err := s.additional(&b, req.tbl, r); err != nil {
			return nil, err
		}
	}
	if req.edns {
		var oh dnsmessage.ResourceHeader
		if err := oh.SetEDNS0(maxUDPSize, rcode, false); err != nil {
			return nil, err
		}
		if err := b.OPTResource(oh, dnsmessage.OPTResource{}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// additional adds the A and AAAA records of an SRV record's target, when
// the table holds the target, as a query for them would answer them.
func (s *Server) additional(b *dnsmessage.Builder, tbl *table, r *srvRecord) error {
	if tbl == nil {
		return nil
	}
	hs, ok := tbl.names[r.host]
	if !ok {
		return nil
	}
	ttlA, ttlAAAA := s.ttl, s.ttl
	if hs.zoned {
		ttlA, ttlAAAA = hs.ttlA, hs.ttlAAAA
	}
	rh := dnsmessage.ResourceHeader{Name: r.target, Class: dnsmessage.ClassINET, Type: dnsmessage.TypeA, TTL: ttlA}
	for _, a := range hs.a[:min(len(hs.a), maxAnswers)] {
		if err := b.AResource(rh, dnsmessage.AResource{A: a}); err != nil {
			return err
		}
	}
	rh.Type, rh.TTL = dnsmessage.TypeAAAA, ttlAAAA
	for _, a := range hs.aaaa[:min(len(hs.aaaa), maxAnswers)] {
		if err := b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a}); err != nil {
			return err
		}
	}
	return nil
}
