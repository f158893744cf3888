package h1wire

import (
	"bytes"
	"errors"
	"io"
	"net"
	"time"
	"unsafe"
)

// Errors of the parsers.
var (
	// ErrHeadTooLarge: a head (or a chunk line) does not fit its limit.
	ErrHeadTooLarge = errors.New("head too large")
	// ErrBadResponse: a response head that is not relayed.
	ErrBadResponse = errors.New("malformed response head")
)

// Buf is a read buffer over a connection. Unlike bufio.Reader it lets a
// message head be parsed in place across several reads (offsets from
// b[r] survive the compaction and growth fill does) and lets its memory
// be pooled with the connection state that owns it.
type Buf struct {
	C    net.Conn
	B    []byte
	R, W int
	// Until is the read deadline armed on c (zero: none).
	Until time.Time
	// Idle bounds each blocking read of a body: a peer silent for that
	// long mid-body is taken as gone (a service's Idle timeout). 0: none.
	Idle time.Duration
}

func (b *Buf) Buffered() int { return b.W - b.R }

// Fill reads once into the buffer. Unread bytes move to the front first
// when the buffer is full (or empty); a full buffer grows up to limit
// bytes, and Fill fails with errHeadTooLarge beyond.
func (b *Buf) Fill(limit int) error {
	if b.R == b.W {
		b.R, b.W = 0, 0
	} else if b.W == len(b.B) && b.R > 0 {
		b.W = copy(b.B, b.B[b.R:b.W])
		b.R = 0
	}
	if b.W == len(b.B) {
		if len(b.B) >= limit {
			return ErrHeadTooLarge
		}
		nb := make([]byte, min(2*len(b.B), limit))
		b.W = copy(nb, b.B[b.R:b.W])
		b.R = 0
		b.B = nb
	}
	n, err := b.C.Read(b.B[b.W:])
	b.W += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// HeadLines finds the lines of the head starting at b.r, reading more as
// needed, and appends the offset (from b.r) of each line's LF to ends,
// the empty line that ends the head included. strict requires CRLF line
// ends (requests); otherwise a bare LF ends a line too (responses, as Go's
// client reads them). The head is not consumed. onWait is called before
// each read that the buffered bytes could not spare (the fast path arms
// the header timeout there).
func (b *Buf) HeadLines(ends []int32, limit int, strict bool, onWait func()) ([]int32, error) {
	scan, start := 0, 0 // next byte to look at, start of the current line
	for {
		i := bytes.IndexByte(b.B[b.R+scan:b.W], '\n')
		if i < 0 {
			if b.W-b.R > limit {
				return ends, ErrHeadTooLarge
			}
			scan = b.W - b.R
			if onWait != nil {
				onWait()
			}
			if err := b.Fill(limit + 1); err != nil {
				return ends, err
			}
			continue
		}
		end := scan + i
		cr := end > start && b.B[b.R+end-1] == '\r'
		if strict && !cr {
			return ends, &FramingError{"bare LF"}
		}
		ends = append(ends, int32(end))
		scan = end + 1
		if end == start || cr && end == start+1 {
			return ends, nil // the empty line
		}
		start = scan
		if start > limit {
			return ends, ErrHeadTooLarge
		}
	}
}

// FieldKind classifies the header fields the fast path acts on.
type FieldKind uint8

const (
	FieldOther FieldKind = iota
	FieldHost
	FieldContentLength
	FieldTransferEncoding
	FieldConnection
	FieldTE
	FieldExpect
	FieldUserAgent
	FieldTrailer
	FieldDate
	FieldHop     // hop-by-hop: Keep-Alive, Proxy-*, Upgrade
	FieldLattice // set by the gateway alone: x-forwarded-*, x-amzn-lattice-*
)

// FramingTwin reports whether name is Content-Length or
// Transfer-Encoding spelled with '_' for '-' (ignoring case): a server
// that maps '_' to '-' would frame a message by it.
func FramingTwin[T string | []byte](name T) bool {
	for i := 0; i < len(name); i++ {
		if name[i] == '_' {
			return equalFoldDash(name, "content-length") || equalFoldDash(name, "transfer-encoding")
		}
	}
	return false
}

// ClassifyField tells a field's kind by its name, ignoring case.
func ClassifyField[T string | []byte](name T) FieldKind {
	switch len(name) {
	case 2:
		if equalFoldBytes(name, "te") {
			return FieldTE
		}
	case 4:
		switch {
		case equalFoldBytes(name, "host"):
			return FieldHost
		case equalFoldBytes(name, "date"):
			return FieldDate
		}
	case 6:
		if equalFoldBytes(name, "expect") {
			return FieldExpect
		}
	case 7:
		switch {
		case equalFoldBytes(name, "upgrade"):
			return FieldHop
		case equalFoldBytes(name, "trailer"):
			return FieldTrailer
		}
	case 10:
		switch {
		case equalFoldBytes(name, "connection"):
			return FieldConnection
		case equalFoldBytes(name, "keep-alive"):
			return FieldHop
		case equalFoldBytes(name, "user-agent"):
			return FieldUserAgent
		}
	case 14:
		if equalFoldBytes(name, "content-length") {
			return FieldContentLength
		}
	case 15:
		if equalFoldDash(name, "x-forwarded-for") {
			return FieldLattice
		}
	case 16:
		switch {
		case equalFoldBytes(name, "proxy-connection"):
			return FieldHop
		case equalFoldDash(name, "x-forwarded-port"):
			return FieldLattice
		}
	case 17:
		switch {
		case equalFoldBytes(name, "transfer-encoding"):
			return FieldTransferEncoding
		case equalFoldDash(name, "x-forwarded-proto"):
			return FieldLattice
		}
	case 18:
		if equalFoldBytes(name, "proxy-authenticate") {
			return FieldHop
		}
	case 19:
		if equalFoldBytes(name, "proxy-authorization") {
			return FieldHop
		}
	case 21:
		if equalFoldDash(name, "x-amzn-lattice-target") {
			return FieldLattice
		}
	case 22:
		if equalFoldDash(name, "x-amzn-lattice-network") {
			return FieldLattice
		}
	case 23:
		if equalFoldDash(name, "x-amzn-lattice-identity") {
			return FieldLattice
		}
	case 28:
		if equalFoldDash(name, "x-amzn-lattice-identity-tags") {
			return FieldLattice
		}
	}
	return FieldOther
}

// Field is one header field line; name and value alias the buffer the
// head was read into.
type Field struct {
	Name, Value []byte
	Kind        FieldKind
}

// Head is a parsed message head (request or response). Its slices
// alias the connection's read buffer: valid until the buffer is read
// again (for a request: until its body is read, after the head went to
// the target). Reset and reused for every message.
type Head struct {
	Fields []Field
	// ConnList holds the names listed in Connection (other than close and
	// keep-alive): hop-by-hop fields not to forward.
	ConnList [][]byte
	Size     int // bytes of the head, the empty line included

	// Request.
	Method, Target []byte
	HTTP10         bool
	Info           Framing // framing headers, as the guard counts them
	Host           []byte
	UserAgent      []byte
	Expect         []byte // first Expect value
	HasHost        bool
	HasExpect      bool
	ConnClose      bool // Connection: close
	ConnKeepAlive  bool // Connection: keep-alive
	TETrailers     bool // TE lists trailers

	// Response.
	Status  int
	Reason  []byte // the status line after the code: " OK"
	Length  int64  // Content-Length, -1 when absent
	Chunked bool
	HasDate bool
}

func (h *Head) Reset() {
	*h = Head{Fields: h.Fields[:0], ConnList: h.ConnList[:0], Length: -1}
}

// ParseRequest checks and splits a request head whose line ends are
// known, with the guard's rules (guard.go): a violation is a
// *FramingError, answered 400 like the guard's.
func (h *Head) ParseRequest(head []byte, ends []int32) error {
	h.Size = int(ends[len(ends)-1]) + 1
	var err error
	h.Method, h.Target, err = checkRequestLine(head[:ends[0]+1], &h.Info)
	if err != nil {
		return err
	}
	h.HTTP10 = h.Info.HTTP10
	if h.Info.Pri {
		// The HTTP/2 preface: its second line is empty; what follows is
		// net/http's business.
		return nil
	}
	for i := 1; i < len(ends)-1; i++ {
		line := head[ends[i-1]+1 : ends[i]+1]
		name, value, err := checkHeaderLine(line, &h.Info)
		if err != nil {
			return err
		}
		k := ClassifyField(name)
		switch k {
		case FieldHost:
			h.Host, h.HasHost = value, true
		case FieldUserAgent:
			if h.UserAgent == nil {
				h.UserAgent = value
			}
		case FieldExpect:
			if !h.HasExpect {
				h.Expect, h.HasExpect = value, true
			}
		case FieldConnection:
			h.parseConnection(value)
		case FieldTE:
			h.TETrailers = h.TETrailers || HasToken(value, "trailers")
		}
		h.Fields = append(h.Fields, Field{Name: name, Value: value, Kind: k})
	}
	return h.Info.check()
}

// parseConnection records the tokens of a Connection value.
func (h *Head) parseConnection(v []byte) {
	for len(v) > 0 {
		var tok []byte
		tok, v = nextTokenBytes(v)
		switch {
		case len(tok) == 0:
		case equalFoldBytes(tok, "close"):
			h.ConnClose = true
		case equalFoldBytes(tok, "keep-alive"):
			h.ConnKeepAlive = true
		default:
			h.ConnList = append(h.ConnList, tok)
		}
	}
}

// Listed reports whether name is Listed in Connection.
func (h *Head) Listed(name []byte) bool {
	for _, n := range h.ConnList {
		if bytes.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// Next is read access to the fields by name (the proxy's headerReader). Host is left out, as net/http moves
// it out of Request.Header. The value aliases the read buffer.
func (h *Head) Next(name string, from int) (string, int) {
	for i := from; i < len(h.Fields); i++ {
		f := &h.Fields[i]
		if f.Kind != FieldHost && equalFoldASCII(f.Name, name) {
			return unsafe.String(unsafe.SliceData(f.Value), len(f.Value)), i + 1
		}
	}
	return "", -1
}

// ParseResponse checks and splits a response head whose line ends are
// known. It is as lenient as Go's client (a bare LF ends a line) but
// refuses what could be forwarded unsafely: obs-fold, controls in values,
// conflicting lengths, transfer codings other than chunked.
func (h *Head) ParseResponse(head []byte, ends []int32) error {
	h.Size = int(ends[len(ends)-1]) + 1
	line := trimEOL(head[:ends[0]+1])
	switch {
	case len(line) < 12 || line[8] != ' ' || !isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]):
		return ErrBadResponse
	case string(line[:8]) == "HTTP/1.1":
	case string(line[:8]) == "HTTP/1.0":
		h.HTTP10 = true
	default:
		return ErrBadResponse
	}
	h.Status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	h.Reason = line[12:]
	if h.Status < 100 || len(h.Reason) > 0 && h.Reason[0] != ' ' || !validValue(h.Reason) {
		return ErrBadResponse
	}
	for i := 1; i < len(ends)-1; i++ {
		line := trimEOL(head[ends[i-1]+1 : ends[i]+1])
		c := bytes.IndexByte(line, ':')
		if c <= 0 || !isToken(line[:c]) {
			return ErrBadResponse // obs-fold, a bad name or no colon
		}
		name, value := line[:c], trimOWSBytes(line[c+1:])
		if !validValue(value) {
			return ErrBadResponse
		}
		k := ClassifyField(name)
		switch k {
		case FieldContentLength:
			n, ok := parseLength(value)
			if !ok || h.Length >= 0 && n != h.Length {
				return ErrBadResponse
			}
			h.Length = n
		case FieldTransferEncoding:
			if !equalFoldBytes(value, "chunked") || h.Chunked {
				return ErrBadResponse
			}
			h.Chunked = true
		case FieldConnection:
			h.parseConnection(value)
		case FieldDate:
			h.HasDate = true
		}
		h.Fields = append(h.Fields, Field{Name: name, Value: value, Kind: k})
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

// HasToken reports whether the list v holds token (case-insensitive,
// parameters ignored).
func HasToken(v []byte, token string) bool {
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
		if LowerASCII(b[i]) != LowerASCII(s[i]) {
			return false
		}
	}
	return true
}

// HeadEnds finds a whole request head at the start of b, for a reader
// that already holds the bytes (a bufio.Reader's buffer): it appends the
// offset of each line's LF to ends, the empty line's included, and
// reports whether the head is complete. A bare LF ends the scan with
// false, as does a head longer than b: the caller then reads the head
// another way, which finds the error or the rest.
func HeadEnds(b []byte, ends []int32) ([]int32, bool) {
	start := 0
	for {
		i := bytes.IndexByte(b[start:], '\n')
		if i < 0 {
			return ends, false
		}
		end := start + i
		if end == start || b[end-1] != '\r' {
			return ends, false // a bare LF
		}
		ends = append(ends, int32(end))
		if end == start+1 {
			return ends, true // the empty line
		}
		start = end + 1
	}
}
