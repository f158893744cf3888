package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

const (
	algorithm       = "AWS4-HMAC-SHA256"
	amzDateLayout   = "20060102T150405Z"
	scopeDateLayout = "20060102"
	terminator      = "aws4_request"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	streamingPrefix = "STREAMING-"

	// Query parameter names of the presigned form.
	qAlgorithm     = "X-Amz-Algorithm"
	qCredential    = "X-Amz-Credential"
	qDate          = "X-Amz-Date"
	qExpires       = "X-Amz-Expires"
	qSignedHeaders = "X-Amz-SignedHeaders"
	qSignature     = "X-Amz-Signature"
	qSecurityToken = "X-Amz-Security-Token"
	qContentSHA256 = "X-Amz-Content-Sha256"
)

const upperHex = "0123456789ABCDEF"

// isUnreserved reports whether c is in the RFC 3986 unreserved set, the only
// bytes SigV4 leaves unencoded.
func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

// uriEncode percent-encodes every byte of s outside the unreserved set with
// upper-case hex; with keepSlash, '/' is left as is (for paths).
func uriEncode(s string, keepSlash bool) string {
	i := 0
	for ; i < len(s); i++ {
		if c := s[i]; !isUnreserved(c) && (c != '/' || !keepSlash) {
			break
		}
	}
	if i == len(s) {
		return s
	}
	b := make([]byte, i, len(s)+16)
	copy(b, s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || (c == '/' && keepSlash) {
			b = append(b, c)
		} else {
			b = append(b, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return string(b)
}

// pathForm is one candidate canonical URI.
type pathForm struct {
	uri string
	// normalized is set when the form had dot segments removed or duplicate
	// slashes collapsed, so it differs from the path as sent.
	normalized bool
}

// requestPath returns the request path as it was escaped on the wire.
func requestPath(u *url.URL) string {
	p := ""
	if u.Opaque != "" {
		// "//host/path" form, as the AWS SDKs allow for pre-escaped paths.
		o, _, _ := strings.Cut(u.Opaque, "?")
		o = strings.TrimPrefix(o, "//")
		if i := strings.IndexByte(o, '/'); i >= 0 {
			p = o[i:]
		}
	} else {
		p = u.EscapedPath()
	}
	if p == "" {
		p = "/"
	}
	return p
}

// canonicalPaths returns the canonical URIs under which a request may have
// been signed, most likely first, without duplicates:
//
//  1. the AWS SDK form for non-S3 services: the escaped request path escaped
//     once more, no normalization (path labels such as ARNs arrive as
//     "%3A", which this form signs as "%253A");
//  2. the test suite's un-normalized form: each segment decoded and encoded
//     once;
//  3. the test suite's normalized form: as 2, after RFC 3986 dot-segment
//     removal and collapsing of empty segments.
//
// Forms 2 and 3 are only offered when no decoded segment contains '%'. Were
// they offered, "/a%2541" (a literal "a%41") would have the same canonical URI
// under form 2 as "/a%41" ("aA") has under form 1, and a signature made for
// one resource would be good for the other.
func canonicalPaths(u *url.URL) []pathForm {
	escaped := requestPath(u)
	forms := make([]pathForm, 1, 3)
	forms[0] = pathForm{uri: uriEncode(escaped, true)}
	if !strings.Contains(escaped, "%") {
		// Decoding changes nothing, so form 2 equals form 1.
		if needsNormalizing(escaped) {
			forms = append(forms, pathForm{uri: normalizedPath(strings.Split(escaped, "/")), normalized: true})
		}
		return dedupe(forms)
	}
	segs := strings.Split(escaped, "/")
	for i, s := range segs {
		d, err := url.PathUnescape(s)
		if err != nil || strings.Contains(d, "%") {
			return forms
		}
		segs[i] = d
	}
	enc := make([]string, len(segs))
	for i, s := range segs {
		enc[i] = uriEncode(s, false)
	}
	forms = append(forms, pathForm{uri: strings.Join(enc, "/")})
	if needsNormalizing(escaped) || slices.Contains(segs, ".") || slices.Contains(segs, "..") {
		forms = append(forms, pathForm{uri: normalizedPath(segs), normalized: true})
	}
	return dedupe(forms)
}

func dedupe(forms []pathForm) []pathForm {
	out := forms[:1]
	for _, f := range forms[1:] {
		if !slices.ContainsFunc(out, func(g pathForm) bool { return g.uri == f.uri }) {
			out = append(out, f)
		}
	}
	return out
}

// needsNormalizing reports whether p has empty or dot segments.
func needsNormalizing(p string) bool {
	return strings.Contains(p, "//") || strings.Contains(p, "/./") || strings.Contains(p, "/../") ||
		strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..") || !strings.HasPrefix(p, "/")
}

// normalizedPath removes "." and ".." segments (RFC 3986 section 5.2.4) and
// empty segments from the decoded segments of a path, keeps a trailing slash,
// and encodes the result.
func normalizedPath(segs []string) string {
	if len(segs) > 0 && segs[0] == "" {
		segs = segs[1:]
	}
	out := make([]string, 0, len(segs))
	trailing := false
	for i, s := range segs {
		switch s {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, uriEncode(s, false))
		}
		if i == len(segs)-1 {
			trailing = s == "" || s == "." || s == ".."
		}
	}
	if len(out) == 0 {
		return "/"
	}
	p := "/" + strings.Join(out, "/")
	if trailing {
		p += "/"
	}
	return p
}

// queryParam is one decoded query parameter.
type queryParam struct{ key, value string }

// parseQuery splits a raw query string on '&' and decodes each name and
// value the way url.ParseQuery does ('+' is a space). Empty pieces are
// skipped. A bad percent-encoding is an error.
func parseQuery(raw string) ([]queryParam, error) {
	if raw == "" {
		return nil, nil
	}
	out := make([]queryParam, 0, strings.Count(raw, "&")+1)
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, err := queryUnescape(k)
		if err != nil {
			return nil, err
		}
		dv, err := queryUnescape(v)
		if err != nil {
			return nil, err
		}
		out = append(out, queryParam{dk, dv})
	}
	return out, nil
}

func queryUnescape(s string) (string, error) {
	if !strings.ContainsAny(s, "%+") {
		return s, nil
	}
	return url.QueryUnescape(s)
}

// canonicalQuery encodes, sorts (by encoded name, then encoded value) and
// joins params, leaving out those named in skip.
func canonicalQuery(params []queryParam, skip ...string) string {
	enc := make([]queryParam, 0, len(params))
	n := 0
	for _, p := range params {
		if slices.Contains(skip, p.key) {
			continue
		}
		e := queryParam{uriEncode(p.key, false), uriEncode(p.value, false)}
		n += len(e.key) + len(e.value) + 2
		enc = append(enc, e)
	}
	slices.SortFunc(enc, func(a, b queryParam) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	var b strings.Builder
	b.Grow(n)
	for i, p := range enc {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.key)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String()
}

// headerValues returns the values of the (lower-case) header name, other
// than host, as the client sent them. Go moves Content-Length and
// Transfer-Encoding out of r.Header at times; they are recovered from the
// request.
func headerValues(r *http.Request, name string) []string {
	ck := textproto.CanonicalMIMEHeaderKey(name)
	vs := r.Header[ck]
	// Requests built by hand may use non-canonical keys.
	var other []string
	for k := range r.Header {
		if k != ck && strings.EqualFold(k, name) {
			other = append(other, k)
		}
	}
	if len(other) > 0 {
		slices.Sort(other)
		vs = slices.Clone(vs)
		for _, k := range other {
			vs = append(vs, r.Header[k]...)
		}
	}
	if len(vs) > 0 {
		return vs
	}
	switch name {
	case "content-length":
		if r.ContentLength >= 0 {
			return []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	case "transfer-encoding":
		if len(r.TransferEncoding) > 0 {
			return []string{strings.Join(r.TransferEncoding, ",")}
		}
	}
	return nil
}

// requestHost returns the Host the client sent (r.Host on the server,
// URL.Host for a client request without Host).
func requestHost(r *http.Request) string {
	if r.Host == "" && r.URL != nil {
		return r.URL.Host
	}
	return r.Host
}

// canonicalValue trims a header value and collapses runs of spaces.
func canonicalValue(s string) string {
	s = strings.Trim(s, " \t")
	if !strings.Contains(s, "  ") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' && i > 0 && s[i-1] == ' ' {
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

// canonicalHeaders renders the canonical headers block (each line ending in
// a newline) for the signed header names, which are lower case and sorted.
func canonicalHeaders(r *http.Request, names []string) string {
	var b strings.Builder
	for _, name := range names {
		b.WriteString(name)
		b.WriteByte(':')
		if name == "host" {
			// Spares a slice for the header every request signs.
			b.WriteString(canonicalValue(requestHost(r)))
			b.WriteByte('\n')
			continue
		}
		for i, v := range headerValues(r, name) {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(canonicalValue(v))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// canonicalParts are the pieces of a canonical request that do not vary
// between candidate forms.
type canonicalParts struct {
	method        string
	headers       string // canonical headers block
	signedHeaders string // semicolon-joined names
}

// appendCanonicalRequest appends the canonical request:
//
//	method \n uri \n query \n headers \n signed-headers \n payload-hash
func (p *canonicalParts) appendCanonicalRequest(dst []byte, uri, query, payloadHash string) []byte {
	dst = append(dst, p.method...)
	dst = append(dst, '\n')
	dst = append(dst, uri...)
	dst = append(dst, '\n')
	dst = append(dst, query...)
	dst = append(dst, '\n')
	dst = append(dst, p.headers...)
	dst = append(dst, '\n')
	dst = append(dst, p.signedHeaders...)
	dst = append(dst, '\n')
	dst = append(dst, payloadHash...)
	return dst
}

// appendStringToSign appends the string to sign for a canonical request.
func appendStringToSign(dst []byte, alg, amzDate, scope string, canonicalRequest []byte) []byte {
	sum := sha256.Sum256(canonicalRequest)
	dst = append(dst, alg...)
	dst = append(dst, '\n')
	dst = append(dst, amzDate...)
	dst = append(dst, '\n')
	dst = append(dst, scope...)
	dst = append(dst, '\n')
	return hex.AppendEncode(dst, sum[:])
}

func hmacSHA256(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

// signingKey derives the SigV4 signing key for a credential scope.
func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k, []byte(region))
	k = hmacSHA256(k, []byte(service))
	return hmacSHA256(k, []byte(terminator))
}

// hashBody returns the hex SHA-256 of body.
func hashBody(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// isSHA256Hex reports whether s looks like a hex SHA-256 digest.
func isSHA256Hex(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
