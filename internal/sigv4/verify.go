package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// DefaultMaxSkew is the clock skew allowed when Verifier.MaxSkew is zero.
const DefaultMaxSkew = 15 * time.Minute

// Credential is an access key as stored by the server.
type Credential struct {
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken is set for temporary credentials and empty for long-term
	// keys. Requests made with temporary credentials must carry it.
	SessionToken string
}

// Lookup finds the credential for an access key id; ok is false if the key
// is unknown. An error is returned to the caller of Verify wrapped.
type Lookup func(ctx context.Context, accessKeyID string) (cred Credential, ok bool, err error)

// Scope is the credential scope of a request: the access key and the day,
// region and service its signing key was derived for.
type Scope struct {
	AccessKeyID string
	// Date is the scope date, yyyymmdd (UTC).
	Date    string
	Region  string
	Service string
}

// SigningKey is the SigV4 signing key of an access key for one Scope:
// HMAC-SHA256 chained over the scope from "AWS4"+secret (see
// DeriveSigningKey). It signs requests for that day, region and service
// only, so a verifier that holds it cannot sign anything else, nor learn
// the secret.
type SigningKey struct {
	// Key is the 32-byte derived key.
	Key []byte
	// SessionToken is set for temporary credentials and empty for
	// long-term keys, as in Credential.
	SessionToken string
	// Principal is opaque to the verifier and copied to Result.Principal,
	// so a caller can learn who signed from the same lookup.
	Principal string
}

// SigningKeyLookup finds the signing key of the scope's access key for the
// scope's date, region and service; ok is false if the access key is
// unknown. An error is returned to the caller of Verify wrapped, so a
// lookup that knows the key but holds no key for the scope's date may
// return an error wrapping ErrExpired (or ErrScope) to have the request
// rejected as such. Called after the scope and time checks, so Date is the
// X-Amz-Date day and Region and Service are accepted ones.
type SigningKeyLookup func(ctx context.Context, scope Scope) (key SigningKey, ok bool, err error)

// DeriveSigningKey derives the SigV4 signing key of secret for one day
// (yyyymmdd), region and service: the key a SigningKeyLookup returns.
func DeriveSigningKey(secret, date, region, service string) []byte {
	return signingKey(secret, date, region, service)
}

// Verifier checks AWS Signature Version 4 signatures. Its fields are read,
// never written, by Verify, so one Verifier may serve concurrent requests.
type Verifier struct {
	// Lookup finds the secret of an access key. Required unless SigningKey
	// is set.
	Lookup Lookup
	// SigningKey, when set, is used instead of Lookup: the verifier then
	// holds derived signing keys, never secrets (a data-plane gateway).
	// Every check is the same, except that SigV4a, whose key derives from
	// the secret itself, is rejected with ErrMalformed whatever
	// AllowSigV4A says.
	SigningKey SigningKeyLookup
	// Region is the region the credential scope must name; "" accepts any.
	Region string
	// Services are the accepted signing names (the credential scope's
	// service); empty accepts any.
	Services []string
	// MaxSkew is how far X-Amz-Date may be from the server clock;
	// DefaultMaxSkew when zero.
	MaxSkew time.Duration
	// Now returns the server time; time.Now when nil.
	Now func() time.Time
	// AllowPresigned accepts the presigned form (X-Amz-* query parameters).
	AllowPresigned bool
	// RequireUnsignedPayload requires x-amz-content-sha256: UNSIGNED-PAYLOAD
	// (header, or X-Amz-Content-Sha256 query parameter in the presigned
	// form). Presigned requests that name no payload hash are verified as
	// UNSIGNED-PAYLOAD.
	RequireUnsignedPayload bool
	// AllowSigV4A accepts SigV4a (AWS4-ECDSA-P256-SHA256) signatures, whose
	// X-Amz-Region-Set must cover Region.
	AllowSigV4A bool
}

// Result describes a request whose signature verified.
type Result struct {
	AccessKeyID string
	// Region is the credential scope's region; for SigV4a, the
	// X-Amz-Region-Set value.
	Region        string
	Service       string
	SignedHeaders []string
	// Time is X-Amz-Date.
	Time time.Time
	// Presigned is set for the query-string form.
	Presigned bool
	// SessionToken is the request's session token, "" for long-term keys.
	SessionToken string
	// PayloadHash is the payload hash the signature covers: a hex SHA-256
	// of the body, UNSIGNED-PAYLOAD, or STREAMING-... (the body's chunk
	// signatures are then not checked here).
	PayloadHash string
	// NormalizedPath is set when the signature matched only after dot
	// segments were removed and duplicate slashes collapsed; the path was
	// signed as if it were the cleaned path.
	NormalizedPath bool
	// Algorithm is AWS4-HMAC-SHA256, or AWS4-ECDSA-P256-SHA256 for SigV4a.
	Algorithm string
	// Principal is SigningKey.Principal of the key that verified (only
	// with Verifier.SigningKey; "" with Lookup).
	Principal string
}

// IsSigned reports whether r carries an AWS4-HMAC-SHA256 (or SigV4a
// AWS4-ECDSA-P256-SHA256) Authorization header or presigned X-Amz-Algorithm /
// X-Amz-Signature query parameters. It does not check the signature.
func IsSigned(r *http.Request) bool {
	if r == nil {
		return false
	}
	for _, v := range r.Header.Values("Authorization") {
		if v = strings.TrimLeft(v, " \t"); strings.HasPrefix(v, algorithm) || strings.HasPrefix(v, algorithmV4A) {
			return true
		}
	}
	return r.URL != nil && hasQueryAuth(r.URL.RawQuery)
}

// signedRequest is what Verify learns from the request before any key is
// used.
type signedRequest struct {
	algorithm     string // algorithm or algorithmV4A
	regionSet     string // SigV4a only
	presigned     bool
	scope         credentialScope
	signedHeaders []string
	signedRaw     string
	signature     []byte
	amzDate       string
	time          time.Time
	expires       time.Duration
	hasExpires    bool
	params        []queryParam
	token         string
	tokenInQuery  bool
}

// Verify checks the signature of r, whose body the caller has read into
// body. See the package documentation for the order of the checks; every
// error wraps one of the package's sentinel errors, except a failure of
// Lookup, which is wrapped as is.
func (v *Verifier) Verify(ctx context.Context, r *http.Request, body []byte) (Result, error) {
	if r == nil || r.URL == nil {
		return Result{}, fmt.Errorf("%w: no request", ErrMalformed)
	}
	if v.Lookup == nil && v.SigningKey == nil {
		return Result{}, errors.New("sigv4: the verifier has no credential lookup")
	}
	sr, err := v.parse(r)
	if err != nil {
		return Result{}, err
	}
	if err := v.checkScope(sr); err != nil {
		return Result{}, err
	}
	if err := v.checkTime(sr); err != nil {
		return Result{}, err
	}
	key, err := v.key(ctx, sr)
	if err != nil {
		return Result{}, err
	}
	if err := checkToken(sr, key.cred); err != nil {
		return Result{}, err
	}
	payloads, err := v.payloadHashes(r, sr, body)
	if err != nil {
		return Result{}, err
	}
	c, ok := matchSignature(r, sr, key, payloads)
	if !ok {
		return Result{}, fmt.Errorf("%w; check your secret access key and signing method", ErrSignatureMismatch)
	}
	region := sr.scope.region
	if sr.algorithm == algorithmV4A {
		region = sr.regionSet
	}
	return Result{
		Algorithm:      sr.algorithm,
		AccessKeyID:    sr.scope.accessKeyID,
		Region:         region,
		Service:        sr.scope.service,
		SignedHeaders:  sr.signedHeaders,
		Time:           sr.time,
		Presigned:      sr.presigned,
		SessionToken:   sr.token,
		PayloadHash:    c.payload,
		NormalizedPath: c.path.normalized,
		Principal:      key.principal,
	}, nil
}

// verifyKey is what a request is verified with: the credential (its
// secret empty when only a derived key is known) and, for SigV4, the
// derived signing key (nil: derive it from the secret).
type verifyKey struct {
	cred      Credential
	derived   []byte
	principal string
}

// key finds the key of the request's access key with SigningKey or Lookup.
func (v *Verifier) key(ctx context.Context, sr *signedRequest) (verifyKey, error) {
	unknown := func() error {
		return fmt.Errorf("%w: access key %q does not exist; check the access key id", ErrUnknownKey, truncate(sr.scope.accessKeyID))
	}
	if v.SigningKey == nil {
		cred, ok, err := v.Lookup(ctx, sr.scope.accessKeyID)
		if err != nil {
			return verifyKey{}, fmt.Errorf("sigv4: looking up the access key: %w", err)
		}
		if !ok {
			return verifyKey{}, unknown()
		}
		return verifyKey{cred: cred}, nil
	}
	s := sr.scope
	k, ok, err := v.SigningKey(ctx, Scope{AccessKeyID: s.accessKeyID, Date: s.date, Region: s.region, Service: s.service})
	if err != nil {
		return verifyKey{}, fmt.Errorf("sigv4: looking up the signing key: %w", err)
	}
	if !ok {
		return verifyKey{}, unknown()
	}
	if len(k.Key) != sha256.Size {
		return verifyKey{}, fmt.Errorf("sigv4: the signing key of access key %q is %d bytes long, want %d", truncate(s.accessKeyID), len(k.Key), sha256.Size)
	}
	return verifyKey{cred: Credential{AccessKeyID: s.accessKeyID, SessionToken: k.SessionToken}, derived: k.Key, principal: k.Principal}, nil
}

// parse finds the signature in the header or the query and parses it.
func (v *Verifier) parse(r *http.Request) (*signedRequest, error) {
	auth, inHeader, err := authorizationHeader(r)
	if err != nil {
		return nil, err
	}
	inQuery := hasQueryAuth(r.URL.RawQuery)
	switch {
	case !inHeader && !inQuery:
		return nil, fmt.Errorf("%w: the request has neither an AWS4-HMAC-SHA256 Authorization header nor presigned X-Amz-* query parameters; sign it with AWS Signature Version 4", ErrNotSigned)
	case inHeader && inQuery:
		return nil, fmt.Errorf("%w: the request is signed both in the Authorization header and in the query string; use only one", ErrMalformed)
	case inQuery && !v.AllowPresigned:
		return nil, fmt.Errorf("%w: presigned (query string) authentication is not accepted here; sign the Authorization header instead", ErrMalformed)
	}
	sr := &signedRequest{presigned: inQuery}
	sr.params, err = parseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("%w: the query string has an invalid percent-encoding", ErrMalformed)
	}

	var f authFields
	if inHeader {
		if f, err = parseAuthorization(auth); err != nil {
			return nil, err
		}
		d, ok, err := singleHeader(r, "X-Amz-Date")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: the X-Amz-Date header is missing; add it (yyyymmddThhmmssZ) and sign it", ErrMalformed)
		}
		sr.amzDate = d
		if sr.token, _, err = singleHeader(r, "X-Amz-Security-Token"); err != nil {
			return nil, err
		}
	} else {
		if f, err = v.parsePresigned(r, sr); err != nil {
			return nil, err
		}
	}
	sr.algorithm = f.algorithm
	v4a := f.algorithm == algorithmV4A
	if v4a && (!v.AllowSigV4A || v.SigningKey != nil) {
		return nil, fmt.Errorf("%w: SigV4a (%s) is not accepted here; sign with %s", ErrMalformed, algorithmV4A, algorithm)
	}
	if sr.scope, err = parseCredential(f.credential, v4a); err != nil {
		return nil, err
	}
	if sr.signedHeaders, err = parseSignedHeaders(f.signedHeaders); err != nil {
		return nil, err
	}
	sr.signedRaw = f.signedHeaders
	if !slices.Contains(sr.signedHeaders, "host") {
		return nil, fmt.Errorf("%w: the host header must be signed; add host to SignedHeaders", ErrMalformed)
	}
	if inHeader && !slices.Contains(sr.signedHeaders, "x-amz-date") {
		return nil, fmt.Errorf("%w: the x-amz-date header must be signed; add x-amz-date to SignedHeaders", ErrMalformed)
	}
	if v4a {
		if err := parseRegionSet(r, sr); err != nil {
			return nil, err
		}
	}
	if sr.signature, err = parseSignature(f.signature, v4a); err != nil {
		return nil, err
	}
	if sr.time, err = parseAmzDate(sr.amzDate); err != nil {
		return nil, err
	}
	return sr, nil
}

// parsePresigned reads the X-Amz-* query parameters into sr and returns the
// credential, signed headers and signature.
func (v *Verifier) parsePresigned(r *http.Request, sr *signedRequest) (authFields, error) {
	var f authFields
	get := func(name string, required bool) (string, bool, error) {
		val, ok, err := queryValue(sr.params, name)
		if err == nil && required && (!ok || val == "") {
			err = fmt.Errorf("%w: the presigned URL is missing the %s query parameter", ErrMalformed, name)
		}
		return val, ok, err
	}
	alg, _, err := get(qAlgorithm, true)
	if err != nil {
		return f, err
	}
	if alg != algorithm && alg != algorithmV4A {
		return f, fmt.Errorf("%w: unsupported %s %q; presign the URL with AWS Signature Version 4 (%s)", ErrMalformed, qAlgorithm, truncate(alg), algorithm)
	}
	f.algorithm = alg
	if f.credential, _, err = get(qCredential, true); err != nil {
		return f, err
	}
	if f.signedHeaders, _, err = get(qSignedHeaders, true); err != nil {
		return f, err
	}
	if f.signature, _, err = get(qSignature, true); err != nil {
		return f, err
	}
	if sr.amzDate, _, err = get(qDate, true); err != nil {
		return f, err
	}
	exp, ok, err := get(qExpires, false)
	if err != nil {
		return f, err
	}
	if ok {
		if sr.expires, err = parseExpires(exp); err != nil {
			return f, err
		}
		sr.hasExpires = true
	}
	if sr.token, sr.tokenInQuery, err = get(qSecurityToken, false); err != nil {
		return f, err
	}
	if !sr.tokenInQuery {
		// The token may travel in a (signed or unsigned) header instead.
		sr.token, _, err = singleHeader(r, "X-Amz-Security-Token")
	}
	return f, err
}

// parseRegionSet reads the SigV4a region set: the X-Amz-Region-Set header,
// which must be signed, or the query parameter of a presigned URL.
func parseRegionSet(r *http.Request, sr *signedRequest) error {
	var ok bool
	var err error
	if sr.presigned {
		sr.regionSet, ok, err = queryValue(sr.params, qRegionSet)
	} else {
		sr.regionSet, ok, err = singleHeader(r, qRegionSet)
		if ok && !slices.Contains(sr.signedHeaders, "x-amz-region-set") {
			return fmt.Errorf("%w: the x-amz-region-set header must be signed; add it to SignedHeaders", ErrMalformed)
		}
	}
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("%w: SigV4a requests must name their regions in X-Amz-Region-Set", ErrMalformed)
	case !validRegionSet(sr.regionSet):
		return fmt.Errorf("%w: X-Amz-Region-Set %q must be a comma-separated list of regions", ErrMalformed, truncate(sr.regionSet))
	}
	return nil
}

// checkScope checks the credential scope against X-Amz-Date and the
// verifier's region and services.
func (v *Verifier) checkScope(sr *signedRequest) error {
	s := sr.scope
	if s.date != sr.amzDate[:8] {
		return fmt.Errorf("%w: the credential date %s is not the date of X-Amz-Date %s; sign with the scope date of the request time", ErrScope, s.date, sr.amzDate)
	}
	if sr.algorithm == algorithmV4A {
		if v.Region != "" && !regionSetMatches(sr.regionSet, v.Region) {
			return fmt.Errorf("%w: X-Amz-Region-Set %q does not include region %q", ErrScope, truncate(sr.regionSet), v.Region)
		}
	} else if v.Region != "" && s.region != v.Region {
		return fmt.Errorf("%w: the credential should be scoped to region %q, not %q", ErrScope, v.Region, truncate(s.region))
	}
	if len(v.Services) > 0 && !slices.Contains(v.Services, s.service) {
		return fmt.Errorf("%w: the credential should be scoped to service %s, not %q", ErrScope, strings.Join(v.Services, " or "), truncate(s.service))
	}
	if s.terminator != terminator {
		return fmt.Errorf("%w: the credential scope must end in %q, not %q", ErrScope, terminator, truncate(s.terminator))
	}
	return nil
}

// checkTime checks X-Amz-Date against the clock and, for presigned
// requests with X-Amz-Expires, the expiry.
func (v *Verifier) checkTime(sr *signedRequest) error {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	t, n := sr.time, now().UTC()
	const layout = amzDateLayout
	if t.After(n.Add(skew)) {
		return fmt.Errorf("%w: X-Amz-Date %s is later than the server time %s plus %v; check your clock",
			ErrSkew, sr.amzDate, n.Format(layout), skew)
	}
	if sr.presigned && sr.hasExpires {
		if end := t.Add(sr.expires); n.After(end) {
			return fmt.Errorf("%w: the presigned URL expired at %s (X-Amz-Date %s plus X-Amz-Expires %d); the server time is %s",
				ErrExpired, end.Format(layout), sr.amzDate, int64(sr.expires/time.Second), n.Format(layout))
		}
		return nil
	}
	if t.Before(n.Add(-skew)) {
		return fmt.Errorf("%w: X-Amz-Date %s is earlier than the server time %s minus %v; sign requests just before sending them and check your clock",
			ErrSkew, sr.amzDate, n.Format(layout), skew)
	}
	return nil
}

// checkToken compares the request's session token with the credential's.
func checkToken(sr *signedRequest, cred Credential) error {
	switch {
	case cred.SessionToken == "" && sr.token != "":
		return fmt.Errorf("%w: a session token was sent with a long-term access key; remove X-Amz-Security-Token", ErrSessionToken)
	case cred.SessionToken != "" && sr.token == "":
		return fmt.Errorf("%w: the access key is temporary; send its session token in X-Amz-Security-Token", ErrSessionToken)
	case subtle.ConstantTimeCompare([]byte(cred.SessionToken), []byte(sr.token)) != 1:
		return fmt.Errorf("%w: the session token does not belong to the access key; use the token issued with it", ErrSessionToken)
	}
	return nil
}

// payloadHashes returns the payload hashes to try, in order.
func (v *Verifier) payloadHashes(r *http.Request, sr *signedRequest, body []byte) ([]string, error) {
	declared, ok, err := singleHeader(r, "X-Amz-Content-Sha256")
	if err != nil {
		return nil, err
	}
	if !ok && sr.presigned {
		if declared, ok, err = queryValue(sr.params, qContentSHA256); err != nil {
			return nil, err
		}
	}
	if v.RequireUnsignedPayload {
		switch {
		case ok && declared == unsignedPayload, !ok && sr.presigned:
			return []string{unsignedPayload}, nil
		case !ok:
			return nil, fmt.Errorf("%w: add the header x-amz-content-sha256: UNSIGNED-PAYLOAD and sign with that payload hash", ErrSignedPayload)
		}
		return nil, fmt.Errorf("%w: x-amz-content-sha256 is %q; this endpoint accepts only UNSIGNED-PAYLOAD", ErrSignedPayload, truncate(declared))
	}
	switch {
	case !ok && sr.presigned:
		return []string{hashBody(body), unsignedPayload}, nil
	case !ok:
		return []string{hashBody(body)}, nil
	case declared == unsignedPayload, strings.HasPrefix(declared, streamingPrefix):
		return []string{declared}, nil
	case isSHA256Hex(declared):
		if !strings.EqualFold(declared, hashBody(body)) {
			return nil, fmt.Errorf("%w: the x-amz-content-sha256 header is not the SHA-256 of the request body", ErrSignatureMismatch)
		}
		return []string{declared}, nil
	}
	return nil, fmt.Errorf("%w: x-amz-content-sha256 must be a hex SHA-256, UNSIGNED-PAYLOAD or STREAMING-..., got %q", ErrMalformed, truncate(declared))
}

// candidate is one way the client may have canonicalized the request.
type candidate struct {
	path    pathForm
	query   string
	payload string
}

// candidates lists the canonical forms to try, most likely first: every
// canonical path (see canonicalPaths) with the full query, then, for a
// presigned URL carrying X-Amz-Security-Token, the query without the token
// (clients that add the token after signing), each with every payload hash.
func candidates(r *http.Request, sr *signedRequest, payloads []string) []candidate {
	var queries []string
	if sr.presigned {
		queries = append(queries, canonicalQuery(sr.params, qSignature))
		if sr.tokenInQuery {
			queries = append(queries, canonicalQuery(sr.params, qSignature, qSecurityToken))
		}
	} else {
		queries = append(queries, canonicalQuery(sr.params))
	}
	paths := canonicalPaths(r.URL)
	out := make([]candidate, 0, len(paths)*len(queries)*len(payloads))
	for _, q := range queries {
		for _, p := range paths {
			for _, h := range payloads {
				out = append(out, candidate{p, q, h})
			}
		}
	}
	return out
}

func canonicalPartsOf(r *http.Request, sr *signedRequest) canonicalParts {
	m := r.Method
	if m == "" {
		m = http.MethodGet
	}
	return canonicalParts{method: m, headers: canonicalHeaders(r, sr.signedHeaders), signedHeaders: sr.signedRaw}
}

// matchSignature tries the candidates and reports the one whose signature
// equals the request's. HMAC signatures are compared in constant time. The
// most likely candidate (SDK path form, full query, first payload hash) is
// tried before the others are built.
func matchSignature(r *http.Request, sr *signedRequest, key verifyKey, payloads []string) (candidate, bool) {
	var check func(sts []byte) bool
	if sr.algorithm == algorithmV4A {
		check = v4aSignatureCheck(sr.scope.accessKeyID, key.cred.SecretAccessKey, sr.signature)
	} else {
		derived := key.derived
		if derived == nil {
			derived = signingKey(key.cred.SecretAccessKey, sr.scope.date, sr.scope.region, sr.scope.service)
		}
		mac := hmac.New(sha256.New, derived)
		var sum [sha256.Size]byte
		check = func(sts []byte) bool {
			mac.Reset()
			mac.Write(sts)
			return hmac.Equal(mac.Sum(sum[:0]), sr.signature)
		}
	}
	parts := canonicalPartsOf(r, sr)
	scope := sr.scope.String()
	var creq, sts []byte
	try := func(c candidate) bool {
		creq = parts.appendCanonicalRequest(creq[:0], c.path.uri, c.query, c.payload)
		sts = appendStringToSign(sts[:0], sr.algorithm, sr.amzDate, scope, creq)
		return check(sts)
	}
	skip := []string{qSignature}
	if !sr.presigned {
		skip = nil
	}
	first := candidate{pathForm{uri: uriEncode(requestPath(r.URL), true)}, canonicalQuery(sr.params, skip...), payloads[0]}
	if try(first) {
		return first, true
	}
	for _, c := range candidates(r, sr, payloads) {
		if c != first && try(c) {
			return c, true
		}
	}
	return candidate{}, false
}
