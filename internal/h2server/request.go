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

// newStream checks a request's header fields (RFC 9113 §8.2–8.3) and
// builds its stream and http.Request. An error makes the request
// malformed: the stream is reset with PROTOCOL_ERROR.
func (c *conn) newStream(id uint32, fields []hpack.HeaderField, endStream bool) (*stream, error) {
	var method, scheme, authority, path string
	var seen [4]bool
	regular := false
	h := make(http.Header, len(fields))
	var cookies []string
	for _, f := range fields {
		if f.IsPseudo() {
			if regular {
				return nil, errors.New("pseudo-header after a regular field")
			}
			var i int
			switch f.Name {
			case ":method":
				i, method = 0, f.Value
			case ":scheme":
				i, scheme = 1, f.Value
			case ":authority":
				i, authority = 2, f.Value
			case ":path":
				i, path = 3, f.Value
			default:
				return nil, errors.New("unknown pseudo-header " + f.Name)
			}
			if seen[i] {
				return nil, errors.New("repeated pseudo-header " + f.Name)
			}
			seen[i] = true
			continue
		}
		regular = true
		if !validFieldName(f.Name) {
			return nil, errors.New("invalid header field name")
		}
		if !httpguts.ValidHeaderFieldValue(f.Value) {
			return nil, errors.New("invalid value of header field " + f.Name)
		}
		if connectionSpecific(f.Name) {
			return nil, errors.New("connection-specific header field " + f.Name)
		}
		if f.Name == "te" && f.Value != "trailers" {
			return nil, errors.New(`te other than "trailers"`)
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
	if method == "" || !httpguts.ValidHeaderFieldName(method) {
		return nil, errors.New("missing or invalid :method")
	}
	if method == http.MethodConnect {
		if scheme != "" || path != "" || authority == "" {
			return nil, errors.New("CONNECT needs :authority and no :scheme or :path")
		}
	} else if scheme == "" || path == "" {
		return nil, errors.New("missing :scheme or :path")
	}
	// The request's host is :authority, or a Host field without it; a
	// Host that names something else makes the request malformed
	// (§8.3.1), lest rules and targets read different hosts. Either way
	// it leaves the header, as net/http's server takes it out of
	// HTTP/1 requests.
	if hosts := h["Host"]; len(hosts) > 0 {
		if len(hosts) > 1 || authority != "" && !strings.EqualFold(hosts[0], authority) {
			return nil, errors.New("host field differs from :authority")
		}
		if authority == "" {
			authority = hosts[0]
		}
		delete(h, "Host")
	}
	if !httpguts.ValidHostHeader(authority) {
		return nil, errors.New("invalid :authority")
	}
	if method != http.MethodConnect && !validPath(path, method) {
		return nil, errors.New("invalid :path")
	}
	var u *url.URL
	var err error
	if method == http.MethodConnect {
		u = &url.URL{Host: authority}
	} else if u, err = url.ParseRequestURI(path); err != nil {
		if path != "*" || method != http.MethodOptions {
			return nil, errors.New("invalid :path")
		}
		u = &url.URL{Path: "*"}
	}

	s := &stream{c: c, id: id, recvWindow: streamRecvWindow}
	s.cond.L = &c.mu
	s.ctx, s.cancel = context.WithCancel(c.ctx)
	s.w = responseWriter{s: s, isHead: method == http.MethodHead}
	s.body = requestBody{s: s, length: -1}
	length := int64(-1)
	if v := h["Content-Length"]; len(v) > 0 {
		n, err := strconv.ParseInt(v[0], 10, 64)
		if err != nil || n < 0 || v[0][0] < '0' || v[0][0] > '9' || len(v) > 1 && !allSame(v) {
			return nil, errors.New("invalid content-length")
		}
		length = n
		h["Content-Length"] = v[:1]
	}
	if endStream {
		if length > 0 {
			return nil, errors.New("content-length without a body")
		}
		s.remoteDone = true
	}
	req := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     h,
		Host:       authority,
		RemoteAddr: c.remote,
		RequestURI: path,
		TLS:        c.tls,
	}
	switch {
	case endStream:
		req.Body, req.ContentLength = http.NoBody, 0
	default:
		s.body.length = length
		s.body.expect = strings.EqualFold(h.Get("Expect"), "100-continue")
		req.Body, req.ContentLength = &s.body, length
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
	s.req = req.WithContext(s.ctx)
	return s, nil
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

func allSame(v []string) bool {
	for _, x := range v[1:] {
		if x != v[0] {
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
