package h2server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// head is what newStream's checks found in a request's header block.
type head struct {
	method, scheme, authority, path string
	length                          int64 // Content-Length, -1: none
	cookies                         int   // cookie fields
	expect                          bool  // the first Expect field is 100-continue
}

// checkFields checks a request's header fields (RFC 9113 §8.2–8.3)
// without allocating. An error makes the request malformed.
func checkFields(fields []hpack.HeaderField) (head, error) {
	hd := head{length: -1}
	var seen [4]bool
	regular := false
	var host string
	hosts := 0
	var lengthValue string
	expects := 0
	for _, f := range fields {
		if f.IsPseudo() {
			if regular {
				return hd, errors.New("pseudo-header after a regular field")
			}
			var i int
			switch f.Name {
			case ":method":
				i, hd.method = 0, f.Value
			case ":scheme":
				i, hd.scheme = 1, f.Value
			case ":authority":
				i, hd.authority = 2, f.Value
			case ":path":
				i, hd.path = 3, f.Value
			default:
				return hd, errors.New("unknown pseudo-header " + f.Name)
			}
			if seen[i] {
				return hd, errors.New("repeated pseudo-header " + f.Name)
			}
			seen[i] = true
			continue
		}
		regular = true
		if !validFieldName(f.Name) {
			return hd, errors.New("invalid header field name")
		}
		if !httpguts.ValidHeaderFieldValue(f.Value) {
			return hd, errors.New("invalid value of header field " + f.Name)
		}
		if connectionSpecific(f.Name) {
			return hd, errors.New("connection-specific header field " + f.Name)
		}
		switch f.Name {
		case "te":
			if f.Value != "trailers" {
				return hd, errors.New(`te other than "trailers"`)
			}
		case "cookie":
			hd.cookies++
		case "host":
			host = f.Value
			hosts++
		case "content-length":
			if hd.length == -1 {
				n, err := strconv.ParseInt(f.Value, 10, 64)
				if err != nil || n < 0 || f.Value[0] < '0' || f.Value[0] > '9' {
					return hd, errors.New("invalid content-length")
				}
				hd.length, lengthValue = n, f.Value
			} else if f.Value != lengthValue {
				return hd, errors.New("invalid content-length")
			}
		case "expect":
			if expects++; expects == 1 {
				hd.expect = strings.EqualFold(f.Value, "100-continue")
			}
		}
	}
	if hd.method == "" || !httpguts.ValidHeaderFieldName(hd.method) {
		return hd, errors.New("missing or invalid :method")
	}
	if hd.method == http.MethodConnect {
		if hd.scheme != "" || hd.path != "" || hd.authority == "" {
			return hd, errors.New("CONNECT needs :authority and no :scheme or :path")
		}
	} else if hd.scheme == "" || hd.path == "" {
		return hd, errors.New("missing :scheme or :path")
	}
	// The request's host is :authority, or a Host field without it; a
	// Host that names something else makes the request malformed
	// (§8.3.1), lest rules and targets read different hosts. Either way
	// it leaves the header, as net/http's server takes it out of
	// HTTP/1 requests.
	if hosts > 0 {
		if hosts > 1 || hd.authority != "" && !strings.EqualFold(host, hd.authority) {
			return hd, errors.New("host field differs from :authority")
		}
		if hd.authority == "" {
			hd.authority = host
		}
	}
	if !httpguts.ValidHostHeader(hd.authority) {
		return hd, errors.New("invalid :authority")
	}
	if hd.method != http.MethodConnect {
		if !validPath(hd.path, hd.method) {
			return hd, errors.New("invalid :path")
		}
		// Only an escape can fail the URL parse request() makes of a
		// path validPath took.
		if strings.IndexByte(hd.path, '%') >= 0 && hd.path != "*" {
			if _, err := url.ParseRequestURI(hd.path); err != nil {
				return hd, errors.New("invalid :path")
			}
		}
	}
	return hd, nil
}

// newStream checks a request's header fields and builds its stream. A
// request is offered to a StreamHandler as it is, but for CONNECT and
// one that expects 100-continue; any other gets its http.Request now. An error
// makes the request malformed: the stream is reset with PROTOCOL_ERROR.
func (c *conn) newStream(id uint32, fields []hpack.HeaderField, endStream bool) (*stream, error) {
	hd, err := checkFields(fields)
	if err != nil {
		return nil, err
	}
	if endStream && hd.length > 0 {
		return nil, errors.New("content-length without a body")
	}
	s := &stream{c: c, id: id, recvWindow: streamRecvWindow}
	s.cond.L = &c.mu
	s.w = responseWriter{s: s, isHead: hd.method == http.MethodHead}
	s.body = requestBody{s: s, length: -1}
	if !endStream {
		// Set before any DATA comes (deliver checks the length).
		s.body.length, s.body.expect = hd.length, hd.expect
		s.body.idle = c.srv.BodyIdleTimeout
	}
	s.remoteDone = endStream
	if c.direct != nil && hd.method != http.MethodConnect && !hd.expect {
		s.dreq = Request{
			Method: hd.method, Scheme: hd.scheme, Authority: hd.authority, Path: hd.path,
			Fields:     directFields(s.fieldsBuf[:0], fields, hd.cookies),
			RemoteAddr: c.remote, TLS: c.tls, s: s, hd: hd,
		}
		if !endStream {
			s.dreq.Body, s.dreq.ContentLength = &s.body, hd.length
		}
		s.direct = &s.dreq
		return s, nil
	}
	s.ctx, s.cancel = context.WithCancel(c.ctx)
	s.req = c.request(s, hd, fields, endStream)
	return s, nil
}

// directFields appends a request's regular fields to out for a Request,
// less Host and with cookie fields joined into the first (§8.2.3).
func directFields(out, fields []hpack.HeaderField, cookies int) []hpack.HeaderField {
	n := 0
	for n < len(fields) && fields[n].IsPseudo() {
		n++
	}
	at := -1
	for _, f := range fields[n:] {
		switch f.Name {
		case "host":
			continue
		case "cookie":
			if cookies > 1 {
				if at >= 0 {
					out[at].Value += "; " + f.Value
					continue
				}
				at = len(out)
			}
		}
		out = append(out, f)
	}
	return out
}

// request builds the http.Request of a stream whose fields checkFields
// took; s.ctx is its context.
func (c *conn) request(s *stream, hd head, fields []hpack.HeaderField, endStream bool) *http.Request {
	h := make(http.Header, len(fields))
	var cookies []string
	for _, f := range fields {
		if f.IsPseudo() || f.Name == "host" {
			continue
		}
		if f.Name == "cookie" {
			cookies = append(cookies, f.Value)
			continue
		}
		k := http.CanonicalHeaderKey(f.Name)
		h[k] = append(h[k], f.Value)
	}
	if len(cookies) > 0 {
		// Split cookie fields are joined again for HTTP/1 (§8.2.3).
		h["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	if v := h["Content-Length"]; len(v) > 1 {
		h["Content-Length"] = v[:1]
	}
	var u *url.URL
	switch {
	case hd.method == http.MethodConnect:
		u = &url.URL{Host: hd.authority}
	case hd.path == "*":
		u = &url.URL{Path: "*"}
	default:
		u, _ = url.ParseRequestURI(hd.path) // checkFields made sure it parses
	}
	req := &http.Request{
		Method:     hd.method,
		URL:        u,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     h,
		Host:       hd.authority,
		RemoteAddr: c.remote,
		RequestURI: hd.path,
		TLS:        c.tls,
	}
	switch {
	case endStream:
		req.Body, req.ContentLength = http.NoBody, 0
	default:
		req.Body, req.ContentLength = &s.body, hd.length
		if tr := h["Trailer"]; len(tr) > 0 {
			req.Trailer = make(http.Header)
			for _, v := range tr {
				for name := range strings.SplitSeq(v, ",") {
					if k := http.CanonicalHeaderKey(strings.TrimSpace(name)); k != "" {
						req.Trailer[k] = nil
					}
				}
			}
			delete(h, "Trailer")
			s.body.declared = req.Trailer
		}
	}
	return req.WithContext(s.ctx)
}

// validPath: origin form (or "*" for OPTIONS), without spaces or
// control bytes.
func validPath(p, method string) bool {
	if p == "*" {
		return method == http.MethodOptions
	}
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// validFieldName: a token in lower case (§8.2.1).
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return httpguts.ValidHeaderFieldName(name)
}

// connectionSpecific names the fields HTTP/2 forbids (§8.2.2).
func connectionSpecific(name string) bool {
	switch name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return true
	}
	return false
}

// lowerName lower-cases a canonical header name, without allocating for
// the common ones.
func lowerName(k string) string {
	if v, ok := commonLower[k]; ok {
		return v
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(k)
		}
	}
	return k
}

var commonLower = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Access-Control-Allow-Origin", "Age", "Allow", "Authorization", "Cache-Control",
		"Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Location", "Content-Range", "Content-Type", "Cookie", "Date", "Etag",
		"Expect", "Expires", "From", "Grpc-Encoding", "Grpc-Message", "Grpc-Status",
		"Host", "If-Match", "If-Modified-Since", "If-None-Match", "If-Unmodified-Since",
		"Last-Modified", "Link", "Location", "Max-Forwards", "Proxy-Authenticate",
		"Proxy-Authorization", "Range", "Referer", "Refresh", "Retry-After", "Server",
		"Set-Cookie", "Strict-Transport-Security", "Te", "Trailer", "Transfer-Encoding",
		"User-Agent", "Vary", "Via", "Www-Authenticate", "X-Amzn-Requestid",
		"X-Content-Type-Options", "X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto",
		"X-Request-Id", "Traceparent",
	} {
		m[k] = strings.ToLower(k)
	}
	return m
}()
