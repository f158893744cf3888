package proxy

import (
	"bytes"
	"io"
	"net"
	"time"
	"unsafe"
)

// rbuf is a read buffer over a connection. Unlike bufio.Reader it lets a
// message head be parsed in place across several reads (offsets from
// b[r] survive the compaction and growth fill does) and lets its memory
// be pooled with the connection state that owns it.
type rbuf struct {
	c    net.Conn
	b    []byte
	r, w int
	// until is the read deadline armed on c (zero: none).
	until time.Time
	// idle bounds each blocking read of a body: a peer silent for that
	// long mid-body is taken as gone (a service's idle timeout). 0: none.
	idle time.Duration
}

func (b *rbuf) buffered() int { return b.w - b.r }

// fill reads once into the buffer. Unread bytes move to the front first
// when the buffer is full (or empty); a full buffer grows up to limit
// bytes, and fill fails with errHeadTooLarge beyond.
func (b *rbuf) fill(limit int) error {
	if b.r == b.w {
		b.r, b.w = 0, 0
	} else if b.w == len(b.b) && b.r > 0 {
		b.w = copy(b.b, b.b[b.r:b.w])
		b.r = 0
	}
	if b.w == len(b.b) {
		if len(b.b) >= limit {
			return errHeadTooLarge
		}
		nb := make([]byte, min(2*len(b.b), limit))
		b.w = copy(nb, b.b[b.r:b.w])
		b.r = 0
		b.b = nb
	}
	n, err := b.c.Read(b.b[b.w:])
	b.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// headLines finds the lines of the head starting at b.r, reading more as
// needed, and appends the offset (from b.r) of each line's LF to ends,
// the empty line that ends the head included. strict requires CRLF line
// ends (requests); otherwise a bare LF ends a line too (responses, as Go's
// client reads them). The head is not consumed. onWait is called before
// each read that the buffered bytes could not spare (the fast path arms
// the header timeout there).
func (b *rbuf) headLines(ends []int32, limit int, strict bool, onWait func()) ([]int32, error) {
	scan, start := 0, 0 // next byte to look at, start of the current line
	for {
		i := bytes.IndexByte(b.b[b.r+scan:b.w], '\n')
		if i < 0 {
			if b.w-b.r > limit {
				return ends, errHeadTooLarge
			}
			scan = b.w - b.r
			if onWait != nil {
				onWait()
			}
			if err := b.fill(limit + 1); err != nil {
				return ends, err
			}
			continue
		}
		end := scan + i
		cr := end > start && b.b[b.r+end-1] == '\r'
		if strict && !cr {
			return ends, &guardError{"bare LF"}
		}
		ends = append(ends, int32(end))
		scan = end + 1
		if end == start || cr && end == start+1 {
			return ends, nil // the empty line
		}
		start = scan
		if start > limit {
			return ends, errHeadTooLarge
		}
	}
}

// fieldKind classifies the header fields the fast path acts on.
type fieldKind uint8

const (
	fOther fieldKind = iota
	fHost
	fContentLength
	fTransferEncoding
	fConnection
	fTE
	fExpect
	fUserAgent
	fTrailer
	fDate
	fHop     // hop-by-hop: Keep-Alive, Proxy-*, Upgrade
	fLattice // set by the gateway alone: x-forwarded-*, x-amzn-lattice-*
)

// classifyField tells a field's kind by its name, ignoring case.
func classifyField(name []byte) fieldKind {
	switch len(name) {
	case 2:
		if equalFoldBytes(name, "te") {
			return fTE
		}
	case 4:
		switch {
		case equalFoldBytes(name, "host"):
			return fHost
		case equalFoldBytes(name, "date"):
			return fDate
		}
	case 6:
		if equalFoldBytes(name, "expect") {
			return fExpect
		}
	case 7:
		switch {
		case equalFoldBytes(name, "upgrade"):
			return fHop
		case equalFoldBytes(name, "trailer"):
			return fTrailer
		}
	case 10:
		switch {
		case equalFoldBytes(name, "connection"):
			return fConnection
		case equalFoldBytes(name, "keep-alive"):
			return fHop
		case equalFoldBytes(name, "user-agent"):
			return fUserAgent
		}
	case 14:
		if equalFoldBytes(name, "content-length") {
			return fContentLength
		}
	case 15:
		if equalFoldDash(name, "x-forwarded-for") {
			return fLattice
		}
	case 16:
		switch {
		case equalFoldBytes(name, "proxy-connection"):
			return fHop
		case equalFoldDash(name, "x-forwarded-port"):
			return fLattice
		}
	case 17:
		switch {
		case equalFoldBytes(name, "transfer-encoding"):
			return fTransferEncoding
		case equalFoldDash(name, "x-forwarded-proto"):
			return fLattice
		}
	case 18:
		if equalFoldBytes(name, "proxy-authenticate") {
			return fHop
		}
	case 19:
		if equalFoldBytes(name, "proxy-authorization") {
			return fHop
		}
	case 21:
		if equalFoldDash(name, "x-amzn-lattice-target") {
			return fLattice
		}
	case 22:
		if equalFoldDash(name, "x-amzn-lattice-network") {
			return fLattice
		}
	case 23:
		if equalFoldDash(name, "x-amzn-lattice-identity") {
			return fLattice
		}
	case 28:
		if equalFoldDash(name, "x-amzn-lattice-identity-tags") {
			return fLattice
		}
	}
	return fOther
}

// h1Field is one header field line; name and value alias the buffer the
// head was read into.
type h1Field struct {
	name, value []byte
	kind        fieldKind
}

// h1Head is a parsed message head (request or response). Its slices
// alias the connection's read buffer: valid until the buffer is read
// again (for a request: until its body is read, after the head went to
// the target). Reset and reused for every message.
type h1Head struct {
	fields []h1Field
	// connList holds the names listed in Connection (other than close and
	// keep-alive): hop-by-hop fields not to forward.
	connList [][]byte
	size     int // bytes of the head, the empty line included

	// Request.
	method, target []byte
	http10         bool
	info           headInfo // framing headers, as the guard counts them
	host           []byte
	userAgent      []byte
	expect         []byte // first Expect value
	hasHost        bool
	hasExpect      bool
	connClose      bool // Connection: close
	connKeepAlive  bool // Connection: keep-alive
	teTrailers     bool // TE lists trailers

	// Response.
	status  int
	reason  []byte // the status line after the code: " OK"
	length  int64  // Content-Length, -1 when absent
	chunked bool
	hasDate bool
}

func (h *h1Head) reset() {
	*h = h1Head{fields: h.fields[:0], connList: h.connList[:0], length: -1}
}

// parseRequest checks and splits a request head whose line ends are
// known, with the guard's rules (h1guard.go): a violation is a
// *guardError, answered 400 like the guard's.
func (h *h1Head) parseRequest(head []byte, ends []int32) error {
	h.size = int(ends[len(ends)-1]) + 1
	var err error
	h.method, h.target, err = checkRequestLine(head[:ends[0]+1], &h.info)
	if err != nil {
		return err
	}
	h.http10 = h.info.http10
	if h.info.pri {
		// The HTTP/2 preface: its second line is empty; what follows is
		// net/http's business.
		return nil
	}
	for i := 1; i < len(ends)-1; i++ {
		line := head[ends[i-1]+1 : ends[i]+1]
		name, value, err := checkHeaderLine(line, &h.info)
		if err != nil {
			return err
		}
		k := classifyField(name)
		switch k {
		case fHost:
			h.host, h.hasHost = value, true
		case fUserAgent:
			if h.userAgent == nil {
				h.userAgent = value
			}
		case fExpect:
			if !h.hasExpect {
				h.expect, h.hasExpect = value, true
			}
		case fConnection:
			h.parseConnection(value)
		case fTE:
			h.teTrailers = h.teTrailers || hasTokenBytes(value, "trailers")
		}
		h.fields = append(h.fields, h1Field{name: name, value: value, kind: k})
	}
	return h.info.check()
}

// parseConnection records the tokens of a Connection value.
func (h *h1Head) parseConnection(v []byte) {
	for len(v) > 0 {
		var tok []byte
		tok, v = nextTokenBytes(v)
		switch {
		case len(tok) == 0:
		case equalFoldBytes(tok, "close"):
			h.connClose = true
		case equalFoldBytes(tok, "keep-alive"):
			h.connKeepAlive = true
		default:
			h.connList = append(h.connList, tok)
		}
	}
}

// listed reports whether name is listed in Connection.
func (h *h1Head) listed(name []byte) bool {
	for _, n := range h.connList {
		if bytes.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// next makes *h1Head a headerReader. Host is left out, as net/http moves
// it out of Request.Header. The value aliases the read buffer.
func (h *h1Head) next(name string, from int) (string, int) {
	for i := from; i < len(h.fields); i++ {
		f := &h.fields[i]
		if f.kind != fHost && equalFoldASCII(f.name, name) {
			return unsafe.String(unsafe.SliceData(f.value), len(f.value)), i + 1
		}
	}
	return "", -1
}

// parseResponse checks and splits a response head whose line ends are
// known. It is as lenient as Go's client (a bare LF ends a line) but
// refuses what could be forwarded unsafely: obs-fold, controls in values,
// conflicting lengths, transfer codings other than chunked.
func (h *h1Head) parseResponse(head []byte, ends []int32) error {
	h.size = int(ends[len(ends)-1]) + 1
	line := trimEOL(head[:ends[0]+1])
	switch {
	case len(line) < 12 || line[8] != ' ' || !isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]):
		return errBadResponse
	case string(line[:8]) == "HTTP/1.1":
	case string(line[:8]) == "HTTP/1.0":
		h.http10 = true
	default:
		return errBadResponse
	}
	h.status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	h.reason = line[12:]
	if h.status < 100 || len(h.reason) > 0 && h.reason[0] != ' ' || !validValue(h.reason) {
		return errBadResponse
	}
	for i := 1; i < len(ends)-1; i++ {
		line := trimEOL(head[ends[i-1]+1 : ends[i]+1])
		c := bytes.IndexByte(line, ':')
		if c <= 0 || !isToken(line[:c]) {
			return errBadResponse // obs-fold, a bad name or no colon
		}
		name, value := line[:c], trimOWSBytes(line[c+1:])
		if !validValue(value) {
			return errBadResponse
		}
		k := classifyField(name)
		switch k {
		case fContentLength:
			n, ok := parseLength(value)
			if !ok || h.length >= 0 && n != h.length {
				return errBadResponse
			}
			h.length = n
		case fTransferEncoding:
			if !equalFoldBytes(value, "chunked") || h.chunked {
				return errBadResponse
			}
			h.chunked = true
		case fConnection:
			h.parseConnection(value)
		case fDate:
			h.hasDate = true
		}
		h.fields = append(h.fields, h1Field{name: name, value: value, kind: k})
	}
	return nil
}

func trimEOL(line []byte) []byte {
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isToken(b []byte) bool {
	for _, c := range b {
		if !isTchar(c) {
			return false
		}
	}
	return len(b) > 0
}

// validValue: no control characters but HTAB.
func validValue(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// parseLength parses 1–18 decimal digits.
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// nextTokenBytes splits a comma-separated list: the first element,
// trimmed, and the rest.
func nextTokenBytes(v []byte) (tok, rest []byte) {
	if i := bytes.IndexByte(v, ','); i >= 0 {
		return trimOWSBytes(v[:i]), v[i+1:]
	}
	return trimOWSBytes(v), nil
}

// hasTokenBytes reports whether the list v holds token (case-insensitive,
// parameters ignored).
func hasTokenBytes(v []byte, token string) bool {
	for len(v) > 0 {
		var tok []byte
		tok, v = nextTokenBytes(v)
		if i := bytes.IndexByte(tok, ';'); i >= 0 {
			tok = trimOWSBytes(tok[:i])
		}
		if equalFoldBytes(tok, token) {
			return true
		}
	}
	return false
}

// equalFoldASCII compares b and s ignoring ASCII case.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lowerASCII(b[i]) != lowerASCII(s[i]) {
			return false
		}
	}
	return true
}
