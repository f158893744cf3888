package sigv4

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxPresignExpiry is the longest X-Amz-Expires SigV4 allows: seven days.
const maxPresignExpiry = 7 * 24 * time.Hour

// authFields are the three components of an AWS4-HMAC-SHA256 Authorization
// header, unparsed.
type authFields struct {
	algorithm     string // algorithm or algorithmV4A
	credential    string
	signedHeaders string
	signature     string
}

// parseAuthorization splits an Authorization header of the form
//
//	AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=<64 hex>
//
// (or AWS4-ECDSA-P256-SHA256 with a scope without region). The components
// may come in any order, each exactly once.
func parseAuthorization(h string) (authFields, error) {
	var f authFields
	alg, rest, _ := strings.Cut(strings.TrimLeft(h, " \t"), " ")
	if alg != algorithm && alg != algorithmV4A {
		return f, fmt.Errorf("%w: unsupported signing algorithm %q in the Authorization header; sign the request with AWS Signature Version 4 (%s)",
			ErrMalformed, truncate(alg), algorithm)
	}
	f.algorithm = alg
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.Trim(part, " \t")
		k, v, ok := strings.Cut(part, "=")
		var dst *string
		switch k {
		case "Credential":
			dst = &f.credential
		case "SignedHeaders":
			dst = &f.signedHeaders
		case "Signature":
			dst = &f.signature
		}
		if !ok || dst == nil {
			return f, fmt.Errorf("%w: the Authorization header component %q is not one of Credential=, SignedHeaders=, Signature=", ErrMalformed, truncate(part))
		}
		if *dst != "" {
			return f, fmt.Errorf("%w: the Authorization header has %s= more than once", ErrMalformed, k)
		}
		if v == "" {
			return f, fmt.Errorf("%w: the Authorization header has an empty %s=", ErrMalformed, k)
		}
		*dst = v
	}
	var missing []string
	if f.credential == "" {
		missing = append(missing, "Credential")
	}
	if f.signedHeaders == "" {
		missing = append(missing, "SignedHeaders")
	}
	if f.signature == "" {
		missing = append(missing, "Signature")
	}
	if len(missing) > 0 {
		return f, fmt.Errorf("%w: the Authorization header is missing %s", ErrMalformed, strings.Join(missing, ", "))
	}
	return f, nil
}

// credentialScope is a parsed X-Amz-Credential / Credential= value.
type credentialScope struct {
	accessKeyID string
	date        string // yyyymmdd
	region      string // "" for SigV4a
	service     string
	terminator  string
}

// String returns the scope part (without the access key id) as it appears
// in the string to sign.
func (c credentialScope) String() string {
	if c.region == "" {
		return c.date + "/" + c.service + "/" + c.terminator
	}
	return c.date + "/" + c.region + "/" + c.service + "/" + c.terminator
}

// parseCredential parses "AKID/yyyymmdd/region/service/aws4_request", or
// for SigV4a "AKID/yyyymmdd/service/aws4_request". Only syntax is checked
// here; values are checked against the verifier later.
func parseCredential(s string, v4a bool) (credentialScope, error) {
	var c credentialScope
	parts := strings.Split(s, "/")
	names := []string{"access key id", "date", "region", "service", "terminator"}
	if v4a {
		names = slices.Delete(names, 2, 3)
	}
	if len(parts) != len(names) {
		return c, fmt.Errorf("%w: the credential must have the form <%s>, got %d slash-separated parts",
			ErrMalformed, strings.Join(names, ">/<"), len(parts))
	}
	for i, p := range parts {
		if p == "" {
			return c, fmt.Errorf("%w: the credential has an empty %s", ErrMalformed, names[i])
		}
	}
	if v4a {
		parts = slices.Insert(parts, 2, "")
	}
	c = credentialScope{parts[0], parts[1], parts[2], parts[3], parts[4]}
	if !allDigits(c.date) || len(c.date) != len(scopeDateLayout) {
		return c, fmt.Errorf("%w: the credential date %q is not in yyyymmdd form", ErrMalformed, truncate(c.date))
	}
	if _, err := time.Parse(scopeDateLayout, c.date); err != nil {
		return c, fmt.Errorf("%w: the credential date %q is not a valid date", ErrMalformed, c.date)
	}
	return c, nil
}

// parseSignedHeaders parses "host;x-amz-date", which must be lower case,
// sorted and without duplicates.
func parseSignedHeaders(s string) ([]string, error) {
	names := strings.Split(s, ";")
	for i, n := range names {
		if n == "" || !isLowerToken(n) {
			return nil, fmt.Errorf("%w: SignedHeaders must be lower-case header names separated by ';', got %q", ErrMalformed, truncate(s))
		}
		if i > 0 && names[i-1] >= n {
			return nil, fmt.Errorf("%w: SignedHeaders must be sorted and without duplicates, got %q", ErrMalformed, truncate(s))
		}
	}
	return names, nil
}

// isLowerToken reports whether s is an HTTP token without upper-case letters.
func isLowerToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// parseSignature decodes the hex signature: an HMAC-SHA256, or for SigV4a
// a DER ECDSA P-256 signature (at most 72 bytes).
func parseSignature(s string, v4a bool) ([]byte, error) {
	if v4a {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) < 8 || len(b) > 72 {
			return nil, fmt.Errorf("%w: the SigV4a signature must be a hex-encoded DER ECDSA signature", ErrMalformed)
		}
		return b, nil
	}
	if len(s) != 64 {
		return nil, fmt.Errorf("%w: the signature must be 64 hexadecimal characters, got %d characters", ErrMalformed, len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: the signature must be 64 hexadecimal characters", ErrMalformed)
	}
	return b, nil
}

// parseAmzDate parses an X-Amz-Date value, strictly yyyymmddThhmmssZ.
func parseAmzDate(s string) (time.Time, error) {
	ok := len(s) == len(amzDateLayout) && s[8] == 'T' && s[15] == 'Z' && allDigits(s[:8]) && allDigits(s[9:15])
	if ok {
		if t, err := time.Parse(amzDateLayout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: X-Amz-Date %q is not a valid date in ISO 8601 basic form (yyyymmddThhmmssZ, UTC)", ErrMalformed, truncate(s))
}

// parseExpires parses X-Amz-Expires (seconds, at most seven days).
func parseExpires(s string) (time.Duration, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || !allDigits(s) {
		return 0, fmt.Errorf("%w: X-Amz-Expires %q must be a non-negative number of seconds", ErrMalformed, truncate(s))
	}
	if n > int64(maxPresignExpiry/time.Second) {
		return 0, fmt.Errorf("%w: X-Amz-Expires must be at most 604800 seconds (seven days), got %d", ErrExpired, n)
	}
	return time.Duration(n) * time.Second, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// truncate shortens attacker-controlled text quoted in error messages.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// authorizationHeader returns the AWS Signature Version 4 Authorization
// header of r. found is false if r has no Authorization header or one with a
// non-AWS scheme; an AWS scheme other than AWS4-HMAC-SHA256 (SigV2, SigV4a)
// is found and fails to parse later.
func authorizationHeader(r *http.Request) (value string, found bool, err error) {
	vs := r.Header.Values("Authorization")
	if len(vs) == 0 {
		return "", false, nil
	}
	if len(vs) > 1 {
		return "", true, fmt.Errorf("%w: the request has more than one Authorization header", ErrMalformed)
	}
	v := strings.TrimLeft(vs[0], " \t")
	if len(v) < 3 || !strings.EqualFold(v[:3], "AWS") {
		return "", false, nil
	}
	return v, true, nil
}

// hasQueryAuth reports whether a raw query string carries presigned
// authentication parameters. It tolerates bad encodings.
func hasQueryAuth(raw string) bool {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		k, _, _ := strings.Cut(part, "=")
		if d, err := queryUnescape(k); err == nil {
			k = d
		}
		switch k {
		case qAlgorithm, qSignature, qCredential:
			return true
		}
	}
	return false
}

// queryValue returns the only value of the query parameter name. Repeating
// an authentication parameter is an error.
func queryValue(params []queryParam, name string) (string, bool, error) {
	val, found := "", false
	for _, p := range params {
		if p.key != name {
			continue
		}
		if found {
			return "", true, fmt.Errorf("%w: the query parameter %s appears more than once", ErrMalformed, name)
		}
		val, found = p.value, true
	}
	return val, found, nil
}

// singleHeader returns the only value of header name; more than one is an
// error.
func singleHeader(r *http.Request, name string) (string, bool, error) {
	vs := r.Header.Values(name)
	switch len(vs) {
	case 0:
		return "", false, nil
	case 1:
		return vs[0], true, nil
	}
	return "", true, fmt.Errorf("%w: the request has more than one %s header", ErrMalformed, name)
}
