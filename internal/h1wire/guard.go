package h1wire

import (
	"crypto/tls"
	"log/slog"
	"net"
)

// GuardConn checks the HTTP/1.x framing of every request on a client
// connection before net/http parses it, so that the gateway and the target
// can never disagree about where a request ends (request smuggling).
// net/http is lenient where a proxy must not be: it folds obs-fold lines,
// takes a bare LF as a line end and lets Transfer-Encoding override
// Content-Length. The guard tracks message boundaries (Content-Length
// bodies, chunked bodies with their trailers) and holds back each request
// head until the whole head is valid:
//
//   - request line: token method, one SP, a target of visible ASCII, one
//     SP, HTTP/1.0 or HTTP/1.1, CRLF;
//   - header lines: a token name directly followed by ':', a value of
//     HTAB, SP, visible ASCII and obs-text, CRLF; no obs-fold (a line
//     starting with SP or HTAB), no bare CR or LF, no NUL or other controls;
//   - at most one Host, one Content-Length (1–18 digits) and one
//     Transfer-Encoding, whose value must be exactly "chunked" (any case);
//     never both Content-Length and Transfer-Encoding, and no
//     Transfer-Encoding on HTTP/1.0; no Content_Length or
//     Transfer_Encoding (which '_'-to-'-' servers would frame by);
//   - chunk-size lines of 1–15 hex digits with optional extensions, CRLF
//     after each chunk's data, and trailer lines under the header rules.
//
// A violation makes Read fail with a FramingError, on which net/http answers
// "400 Bad Request" and closes the connection: the rejected head is never
// parsed, so it never reaches a target. The HTTP/2 connection preface
// switches the guard off (HTTP/2 frames its own messages).
//
// The guard stands before net/http only (connections the fast path hands
// over, and HTTPS ones it does not take); the fast path parses heads and
// bodies with the same functions (checkRequestLine, checkHeaderLine,
// Framing.check, chunkSize, checkFieldLine), so both reject the same
// requests.
type GuardConn struct {
	net.Conn
	log *slog.Logger
	max int // largest head

	// buf[r:ok] is checked and waits to be read; buf[ok:w] is unchecked.
	buf         []byte
	r, ok, w    int
	scan        int // head state: where the line scan resumes
	state       guardState
	remain      int64 // bytes left in the body or the chunk
	trailerSize int
	head        Framing
	bad         error // violation found after buf[:ok]: rejected once buf[r:ok] is read
	rerr        error // read error of the connection, returned once buffered data is used up
	err         error // a framing violation: returned by every Read once set
}

type guardState uint8

const (
	gHead      guardState = iota // reading a request head
	gBody                        // remain bytes of a Content-Length body
	gChunkSize                   // a chunk-size line
	gChunkData                   // remain bytes of chunk data
	gChunkEnd                    // the CRLF after chunk data
	gTrailer                     // trailer lines after the last chunk
	gOpen                        // HTTP/2: no more checks
)

// Framing collects the framing headers of the head being read.
type Framing struct {
	lines   int
	HTTP10  bool
	Pri     bool
	CL, TE  int // occurrences
	CLValue int64
	Hosts   int
}

// FramingError is a framing violation. It is not a net.Error, so net/http
// answers 400 rather than closing silently.
type FramingError struct{ Reason string }

func (e *FramingError) Error() string { return "http/1 framing rejected: " + e.Reason }

const (
	guardInitialBuf = 4 << 10
	maxChunkLine    = 4 << 10
	http2Preface    = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
)

func NewGuardConn(c net.Conn, maxHead int, log *slog.Logger) *GuardConn {
	return &GuardConn{Conn: c, max: maxHead, log: log}
}

// Replay gives the guard bytes already read from its connection, which
// its reads return first, checked as if they came from the connection.
// It is for a connection handed over with input buffered, before the
// first Read.
func (g *GuardConn) Replay(p []byte) {
	if len(p) == 0 {
		return
	}
	g.buf = make([]byte, max(guardInitialBuf, len(p)))
	g.w = copy(g.buf, p)
}

// TLSGuardConn is a guarded HTTP/1 connection over TLS; ConnectionState
// lets net/http fill Request.TLS.
type TLSGuardConn struct {
	*GuardConn
	tc *tls.Conn
}

// NewTLSGuardConn guards the HTTP/1 requests of a TLS connection.
func NewTLSGuardConn(tc *tls.Conn, maxHead int, log *slog.Logger) *TLSGuardConn {
	return &TLSGuardConn{GuardConn: NewGuardConn(tc, maxHead, log), tc: tc}
}

// ConnectionState is the TLS connection's, for Request.TLS.
func (c *TLSGuardConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// TLSConn is the guarded TLS connection.
func (c *TLSGuardConn) TLSConn() *tls.Conn { return c.tc }

func (g *GuardConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for g.r == g.ok {
		if g.err != nil {
			return 0, g.err
		}
		if g.bad != nil {
			g.reject(g.bad)
			return 0, g.err
		}
		if g.w == g.ok && g.rerr == nil && g.direct(len(p)) {
			return g.readDirect(p)
		}
		if g.w > g.ok {
			if err := g.process(); err != nil {
				// Requests checked before the violation are released
				// first; the rejection comes with the next read.
				g.bad = err
				continue
			}
			if g.r < g.ok {
				break
			}
		}
		if g.rerr != nil {
			// Connection errors are not sticky: net/http interrupts
			// reads with a past deadline and then reads on.
			err := g.rerr
			g.rerr = nil
			return 0, err
		}
		if err := g.fill(); err != nil {
			g.reject(err)
			return 0, g.err
		}
	}
	n := copy(p, g.buf[g.r:g.ok])
	g.r += n
	return n, nil
}

// direct reports whether the next bytes may be read straight into the
// caller's buffer of n bytes: body bytes (bounded by what remains), or
// HTTP/2 when the caller asks for a buffer's worth. net/http's HTTP/2
// server reads its frames unbuffered, a 9-byte header and then the
// payload; through buf, the frames a client sent together cost one
// system call rather than two each.
func (g *GuardConn) direct(n int) bool {
	if g.state == gOpen {
		return n >= guardInitialBuf
	}
	return (g.state == gBody || g.state == gChunkData) && g.remain > 0
}

func (g *GuardConn) readDirect(p []byte) (int, error) {
	if g.state != gOpen && int64(len(p)) > g.remain {
		p = p[:g.remain]
	}
	n, err := g.Conn.Read(p)
	if g.state != gOpen {
		g.remain -= int64(n)
		if g.remain == 0 {
			g.endOfData()
		}
	}
	return n, err
}

// endOfData moves on once a body or a chunk's data is complete.
func (g *GuardConn) endOfData() {
	if g.state == gChunkData {
		g.state = gChunkEnd
		return
	}
	g.startHead()
}

func (g *GuardConn) startHead() {
	g.state = gHead
	g.scan = g.ok
	g.head = Framing{}
}

// fill reads more bytes into buf, compacting and growing it as needed.
func (g *GuardConn) fill() error {
	if g.buf == nil {
		g.buf = make([]byte, guardInitialBuf)
	}
	if g.r > 0 {
		copy(g.buf, g.buf[g.r:g.w])
		g.ok -= g.r
		g.scan -= g.r
		g.w -= g.r
		g.r = 0
	}
	if g.w == len(g.buf) {
		limit := g.max + len(http2Preface)
		if len(g.buf) >= limit {
			return &FramingError{"request head too large"}
		}
		nb := make([]byte, min(2*len(g.buf), limit))
		copy(nb, g.buf[:g.w])
		g.buf = nb
	}
	n, err := g.Conn.Read(g.buf[g.w:])
	g.w += n
	if err != nil {
		g.rerr = err
	}
	return nil
}

// reject makes the connection fail with err; a connection error is passed
// through unchanged so that net/http treats it as one.
func (g *GuardConn) reject(err error) {
	if ge, ok := err.(*FramingError); ok {
		g.log.Debug("request rejected", "remote", g.RemoteAddr().String(), "reason", ge.Reason)
	}
	g.err = err
	g.buf = nil
	g.r, g.ok, g.w, g.scan = 0, 0, 0, 0
}

// process checks unchecked bytes, advancing ok over what is valid. It
// stops when it needs more bytes.
func (g *GuardConn) process() error {
	for g.ok < g.w {
		switch g.state {
		case gHead:
			done, err := g.scanHead()
			if err != nil || !done {
				return err
			}
		case gBody, gChunkData:
			n := min(int64(g.w-g.ok), g.remain)
			g.ok += int(n)
			g.remain -= n
			if g.remain == 0 {
				g.endOfData()
			}
		case gChunkEnd:
			if g.w-g.ok < 2 {
				return nil
			}
			if g.buf[g.ok] != '\r' || g.buf[g.ok+1] != '\n' {
				return &FramingError{"chunk data not followed by CRLF"}
			}
			g.ok += 2
			g.state = gChunkSize
		case gChunkSize:
			line, err := g.nextLine(g.ok, maxChunkLine)
			if err != nil || line == nil {
				return err
			}
			size, err := parseChunkSize(line)
			if err != nil {
				return err
			}
			g.ok += len(line)
			if size == 0 {
				g.state, g.trailerSize = gTrailer, 0
			} else {
				g.state, g.remain = gChunkData, size
			}
		case gTrailer:
			line, err := g.nextLine(g.ok, g.max)
			if err != nil || line == nil {
				return err
			}
			g.trailerSize += len(line)
			if g.trailerSize > g.max {
				return &FramingError{"trailer section too large"}
			}
			g.ok += len(line)
			if len(line) == 2 {
				g.startHead()
				continue
			}
			if _, err := checkFieldLine(line); err != nil {
				return err
			}
		case gOpen:
			g.ok = g.w
		}
	}
	return nil
}

// nextLine returns the line starting at from, with its LF, or nil when it
// is not complete yet. A line must end in CRLF and hold no other CR.
func (g *GuardConn) nextLine(from, limit int) ([]byte, error) {
	for i := from; i < g.w; i++ {
		switch g.buf[i] {
		case '\n':
			if i == from || g.buf[i-1] != '\r' {
				return nil, &FramingError{"bare LF"}
			}
			return g.buf[from : i+1], nil
		case '\r':
			if i+1 < g.w && g.buf[i+1] != '\n' {
				return nil, &FramingError{"bare CR"}
			}
		}
		if i-from >= limit {
			return nil, &FramingError{"line too long"}
		}
	}
	if g.w-from > limit {
		return nil, &FramingError{"line too long"}
	}
	return nil, nil
}

// scanHead checks the complete lines of the head from g.scan on and
// reports whether the head is complete (ok then moves past it).
func (g *GuardConn) scanHead() (bool, error) {
	for {
		line, err := g.nextLine(g.scan, g.max)
		if err != nil {
			return false, err
		}
		if line == nil {
			if g.w-g.ok > g.max {
				return false, &FramingError{"request head too large"}
			}
			return false, nil
		}
		h := &g.head
		end := g.scan + len(line)
		switch {
		case h.lines == 0:
			if _, _, err := checkRequestLine(line, h); err != nil {
				return false, err
			}
		case len(line) == 2:
			if h.Pri {
				// The HTTP/2 preface: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".
				if g.w-g.ok < len(http2Preface) {
					return false, nil
				}
				if string(g.buf[g.ok:g.ok+len(http2Preface)]) != http2Preface {
					return false, &FramingError{"bad HTTP/2 preface"}
				}
				g.state = gOpen
				g.ok = g.w
				return true, nil
			}
			if err := g.endHead(end); err != nil {
				return false, err
			}
			return true, nil
		default:
			if h.Pri {
				return false, &FramingError{"bad HTTP/2 preface"}
			}
			if _, _, err := checkHeaderLine(line, h); err != nil {
				return false, err
			}
		}
		h.lines++
		g.scan = end
	}
}

// endHead decides how the body of the head ending at end is framed and
// releases the head; on a violation nothing is released.
func (g *GuardConn) endHead(end int) error {
	h := &g.head
	if err := h.check(); err != nil {
		return err
	}
	g.ok = end
	switch {
	case h.TE == 1:
		g.state = gChunkSize
	case h.CL == 1 && h.CLValue > 0:
		g.state, g.remain = gBody, h.CLValue
	default:
		g.startHead()
	}
	return nil
}

// check applies the rules on a complete head's framing headers.
func (h *Framing) check() error {
	switch {
	case h.Hosts > 1:
		return &FramingError{"several Host headers"}
	case h.TE > 0 && h.CL > 0:
		return &FramingError{"both Transfer-Encoding and Content-Length"}
	case h.TE > 1:
		return &FramingError{"several Transfer-Encoding headers"}
	case h.CL > 1:
		return &FramingError{"several Content-Length headers"}
	case h.TE == 1 && h.HTTP10:
		return &FramingError{"Transfer-Encoding in an HTTP/1.0 request"}
	}
	return nil
}

// checkRequestLine checks "method SP target SP version CRLF" and returns
// the method and the target. The fast paths (Head.ParseRequest) parse with the
// same checks as the guard, so both reject exactly the same requests.
func checkRequestLine(line []byte, h *Framing) (method, target []byte, err error) {
	s := line[:len(line)-2]
	i := 0
	for i < len(s) && isTchar(s[i]) {
		i++
	}
	if i == 0 || i == len(s) || s[i] != ' ' {
		return nil, nil, &FramingError{"bad method"}
	}
	method = s[:i]
	i++
	j := i
	for j < len(s) && s[j] > 0x20 && s[j] < 0x7f {
		j++
	}
	if j == i || j == len(s) || s[j] != ' ' {
		return nil, nil, &FramingError{"bad request target"}
	}
	target = s[i:j]
	switch string(s[j+1:]) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		h.HTTP10 = true
	case "HTTP/2.0":
		if string(method) != "PRI" || string(target) != "*" {
			return nil, nil, &FramingError{"bad HTTP version"}
		}
		h.Pri = true
	default:
		return nil, nil, &FramingError{"bad HTTP version"}
	}
	return method, target, nil
}

// checkHeaderLine checks a header line, records the framing headers and
// returns the field's name and value (without surrounding whitespace).
func checkHeaderLine(line []byte, h *Framing) (name, value []byte, err error) {
	name, err = checkFieldLine(line)
	if err != nil {
		return nil, nil, err
	}
	value = trimOWSBytes(line[len(name)+1 : len(line)-2])
	switch {
	case equalFoldBytes(name, "content-length"):
		h.CL++
		if len(value) == 0 || len(value) > 18 {
			return nil, nil, &FramingError{"bad Content-Length"}
		}
		var v int64
		for _, c := range value {
			if c < '0' || c > '9' {
				return nil, nil, &FramingError{"bad Content-Length"}
			}
			v = v*10 + int64(c-'0')
		}
		h.CLValue = v
	case equalFoldBytes(name, "transfer-encoding"):
		h.TE++
		if !equalFoldBytes(value, "chunked") {
			return nil, nil, &FramingError{"unsupported Transfer-Encoding"}
		}
	case equalFoldBytes(name, "host"):
		h.Hosts++
	case equalFoldUnderscore(name, "content-length"), equalFoldUnderscore(name, "transfer-encoding"):
		// Content_Length is an ordinary header to us, but servers that
		// map '_' to '-' (CGI-style gateways) would frame by it.
		return nil, nil, &FramingError{"framing header name spelled with '_'"}
	}
	return name, value, nil
}

// equalFoldUnderscore compares b with the lower-case p, taking '_' in b
// for '-'.
func equalFoldUnderscore(b []byte, p string) bool {
	if len(b) != len(p) {
		return false
	}
	for i := range b {
		c := LowerASCII(b[i])
		if c == '_' {
			c = '-'
		}
		if c != p[i] {
			return false
		}
	}
	return true
}

// checkFieldLine checks "name: value CRLF" and returns the name.
func checkFieldLine(line []byte) ([]byte, error) {
	s := line[:len(line)-2]
	i := 0
	for i < len(s) && isTchar(s[i]) {
		i++
	}
	if i == 0 {
		if len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
			return nil, &FramingError{"obs-fold or whitespace before a header name"}
		}
		return nil, &FramingError{"bad header name"}
	}
	if i == len(s) || s[i] != ':' {
		return nil, &FramingError{"bad header name"}
	}
	for _, c := range s[i+1:] {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return nil, &FramingError{"control character in header value"}
		}
	}
	return s[:i], nil
}

// parseChunkSize parses "hex [ext] CRLF".
func parseChunkSize(line []byte) (int64, error) {
	return chunkSize(line[:len(line)-2])
}

// chunkSize parses a chunk-size line without its line end: 1–15 hex
// digits, then optional extensions free of control characters.
func chunkSize(s []byte) (int64, error) {
	var size int64
	i := 0
	for i < len(s) && IsHex(s[i]) {
		size = size<<4 | int64(unhex(s[i]))
		i++
	}
	if i == 0 || i > 15 {
		return 0, &FramingError{"bad chunk size"}
	}
	rest := s[i:]
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = rest[1:]
	}
	if len(rest) > 0 && rest[0] != ';' {
		return 0, &FramingError{"bad chunk size"}
	}
	for _, c := range rest {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return 0, &FramingError{"control character in chunk extension"}
		}
	}
	return size, nil
}

// isTchar reports whether c may appear in a token (RFC 9110 §5.6.2).
func isTchar(c byte) bool {
	if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

func trimOWSBytes(s []byte) []byte {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// equalFoldBytes compares b with the lower-case ASCII string p.
func equalFoldBytes[T string | []byte](b T, p string) bool {
	if len(b) != len(p) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if LowerASCII(b[i]) != p[i] {
			return false
		}
	}
	return true
}

// equalFoldDash is equalFoldBytes that also takes '_' in b for '-' in p:
// for the headers the gateway owns, since servers that map header names
// to CGI-style variables (HTTP_X_AMZN_LATTICE_IDENTITY) read both
// spellings as one.
func equalFoldDash[T string | []byte](b T, p string) bool {
	if len(b) != len(p) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if c := LowerASCII(b[i]); c != p[i] && !(c == '_' && p[i] == '-') {
			return false
		}
	}
	return true
}

func IsHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unhex is the value of the hex digit c (isHex(c) must hold).
func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// LowerASCII folds an ASCII upper-case letter to lower case.
func LowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}
