package h1client

import (
	"bufio"
	"net/http"
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// defaultUserAgent is what Request.Write sends when a request has no
// User-Agent field at all (a field with an empty value sends none).
const defaultUserAgent = "Go-http-client/1.1"

// writeRequest writes r's head, and its body if any, to w. A request
// without body whose head holds nothing unusual is written here, as
// Request.Write would write it but without its formatting, sorting and
// escaping costs (a sixteenth of a proxied HTTP/2 request's CPU); any
// other goes to Request.Write. Header fields go out in the map's order,
// values of one field in theirs.
func writeRequest(w *bufio.Writer, r *http.Request) error {
	host, path, ok := plainHead(r)
	if !ok {
		return r.Write(w)
	}
	_, _ = w.WriteString(r.Method)
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(path)
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		_ = w.WriteByte('?')
		_, _ = w.WriteString(r.URL.RawQuery)
	}
	_, _ = w.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = w.WriteString(host)
	_, _ = w.WriteString("\r\n")
	ua := defaultUserAgent
	if v, ok := r.Header["User-Agent"]; ok {
		ua = ""
		if len(v) > 0 {
			ua = v[0]
		}
	}
	if ua != "" { // checked before trimming, as Request.Write does
		_, _ = w.WriteString("User-Agent: ")
		_, _ = w.WriteString(textproto.TrimString(ua))
		_, _ = w.WriteString("\r\n")
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		// As Request.Write: many servers expect a length with these.
		_, _ = w.WriteString("Content-Length: 0\r\n")
	}
	for k, vv := range r.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		for _, v := range vv {
			_, _ = w.WriteString(k)
			_, _ = w.WriteString(": ")
			_, _ = w.WriteString(textproto.TrimString(v))
			_, _ = w.WriteString("\r\n")
		}
	}
	_, err := w.WriteString("\r\n")
	return err
}

// plainHead reports whether r can be written by writeRequest, and the
// Host field and the path it carries: no body, no Transfer-Encoding,
// Trailer or Close of its own, an ASCII host, field names that are tokens
// and values without CR or LF (which Request.Write replaces with spaces).
func plainHead(r *http.Request) (host, path string, ok bool) {
	if r.Body != nil && r.Body != http.NoBody || r.ContentLength != 0 || len(r.TransferEncoding) > 0 ||
		r.Close || len(r.Trailer) > 0 || r.URL == nil || r.Method == "" || r.Method == http.MethodConnect ||
		!httpguts.ValidHeaderFieldName(r.Method) {
		return "", "", false
	}
	host = r.Host
	if host == "" {
		host = r.URL.Host
	}
	if host == "" || !printable(host) || strings.IndexByte(host, '%') >= 0 || !httpguts.ValidHostHeader(host) {
		return "", "", false
	}
	u := r.URL
	if path = u.Opaque; path == "" {
		if path = u.EscapedPath(); path == "" {
			path = "/"
		}
	}
	// Request.Write turns an opaque "//x" into "scheme://x".
	if strings.HasPrefix(u.Opaque, "//") || !printable(path) || !printable(u.RawQuery) {
		return "", "", false
	}
	for k, vv := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return "", "", false
		}
		for _, v := range vv {
			if strings.IndexByte(v, '\n') >= 0 || strings.IndexByte(v, '\r') >= 0 {
				return "", "", false
			}
		}
	}
	return host, path, true
}

// printable reports whether s is visible ASCII without spaces.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
