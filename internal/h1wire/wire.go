// Package h1wire is HTTP/1.x on the wire, for the proxies' paths that do
// without net/http: reading message heads in place into reused buffers
// and structures (Buf, Head), relaying bodies between two connections
// (Relay: by length, chunked, until close), lazily armed deadlines, the
// framing guard that stands before net/http (GuardConn) with the checks
// the fast paths share, and writing helpers: a status line as net/http
// writes it, and a Date field formatted once a second. Nothing here
// allocates per message in the steady state.
//
// Every request head is checked by the same rules (guard.go), whichever
// path reads it, so that a proxy and its peer never disagree about where
// a message ends (request smuggling).
package h1wire

import (
	"bufio"
	"net/http"
	"strconv"
	"time"
)

// WriteStatusLine writes "HTTP/1.1 200 OK\r\n" (HTTP/1.0 with http10) for
// code, with net/http's reason phrase, or "status code N" for a code it
// does not know.
func WriteStatusLine(w *bufio.Writer, http10 bool, code int) {
	if http10 {
		_, _ = w.WriteString("HTTP/1.0 ")
	} else {
		_, _ = w.WriteString("HTTP/1.1 ")
	}
	writeCode(w, code)
	_ = w.WriteByte(' ')
	if text := http.StatusText(code); text != "" {
		_, _ = w.WriteString(text)
	} else {
		_, _ = w.WriteString("status code ")
		writeCode(w, code)
	}
	_, _ = w.WriteString("\r\n")
}

// writeCode writes a status code: three digits byte by byte (every code
// net/http sends), anything else through strconv.
func writeCode(w *bufio.Writer, code int) {
	if code < 100 || code > 999 {
		_, _ = w.WriteString(strconv.Itoa(code))
		return
	}
	_ = w.WriteByte(byte('0' + code/100))
	_ = w.WriteByte(byte('0' + code/10%10))
	_ = w.WriteByte(byte('0' + code%10))
}

// Date is a Date field value, formatted again only when the second
// changes. The zero Date is ready to use; it is not safe for concurrent
// use (one per connection).
type Date struct {
	sec int64
	b   []byte
}

// WriteField writes "Date: <now>\r\n".
func (d *Date) WriteField(w *bufio.Writer) {
	now := time.Now()
	if sec := now.Unix(); sec != d.sec || d.b == nil {
		d.sec = sec
		d.b = now.UTC().AppendFormat(d.b[:0], http.TimeFormat)
	}
	_, _ = w.WriteString("Date: ")
	_, _ = w.Write(d.b)
	_, _ = w.WriteString("\r\n")
}
