package sigv4

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// vectorsDir finds shared/vectors/sigv4/<sub> in the working directory or
// one of its parents, and skips the test when there is none.
func vectorsDir(t testing.TB, sub string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if fi, err := os.Stat(filepath.Join(dir, "shared", "vectors")); err == nil && fi.IsDir() {
			p := filepath.Join(dir, "shared", "vectors", "sigv4", sub)
			if _, err := os.Stat(p); err != nil {
				t.Skipf("SigV4 test vectors not found at %s; skipping", p)
			}
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("SigV4 test vectors (shared/vectors/sigv4) not found above the working directory; skipping")
		}
		dir = parent
	}
}

type vectorContext struct {
	Credentials struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
		Token           string `json:"token"`
	} `json:"credentials"`
	ExpirationInSeconds int    `json:"expiration_in_seconds"`
	Normalize           bool   `json:"normalize"`
	Region              string `json:"region"`
	Service             string `json:"service"`
	SignBody            bool   `json:"sign_body"`
	Timestamp           string `json:"timestamp"`
}

type vectorCase struct {
	v4a     bool // SigV4a suite
	derived bool // verify with derived signing keys (Verifier.SigningKey)
	dir     string
	ctx     vectorContext
	now     time.Time
}

func loadCase(t *testing.T, dir string) *vectorCase {
	t.Helper()
	c := &vectorCase{dir: dir}
	if err := json.Unmarshal([]byte(c.file(t, "context.json")), &c.ctx); err != nil {
		t.Fatal(err)
	}
	now, err := time.Parse(time.RFC3339, c.ctx.Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	c.now = now
	return c
}

func (c *vectorCase) file(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// verifier returns a Verifier that knows the case's key, for its region and
// service, with the clock pinned to the case's timestamp.
func (c *vectorCase) verifier() *Verifier {
	cred := Credential{
		AccessKeyID:     c.ctx.Credentials.AccessKeyID,
		SecretAccessKey: c.ctx.Credentials.SecretAccessKey,
		SessionToken:    c.ctx.Credentials.Token,
	}
	v := &Verifier{
		Lookup:         staticLookup(cred),
		Region:         c.ctx.Region,
		Services:       []string{c.ctx.Service},
		Now:            func() time.Time { return c.now },
		AllowPresigned: true,
		AllowSigV4A:    c.v4a,
	}
	if c.derived {
		v.Lookup, v.SigningKey = nil, derivedLookup(cred)
	}
	return v
}

// derivedLookup is a SigningKeyLookup that holds the keys derived from
// creds for every scope, and names each key's principal "principal of
// <id>". It derives on demand so that verification with it must give
// exactly the outcome verification with the secrets gives, for any
// request.
func derivedLookup(creds ...Credential) SigningKeyLookup {
	return func(_ context.Context, s Scope) (SigningKey, bool, error) {
		for _, c := range creds {
			if c.AccessKeyID == s.AccessKeyID {
				return SigningKey{Key: DeriveSigningKey(c.SecretAccessKey, s.Date, s.Region, s.Service),
					SessionToken: c.SessionToken, Principal: "principal of " + c.AccessKeyID}, true, nil
			}
		}
		return SigningKey{}, false, nil
	}
}

func staticLookup(creds ...Credential) Lookup {
	return func(_ context.Context, id string) (Credential, bool, error) {
		for _, c := range creds {
			if c.AccessKeyID == id {
				return c, true, nil
			}
		}
		return Credential{}, false, nil
	}
}

// parseRawRequest reads a request in the suite's text form the way a server
// would receive it: bytes a client cannot put on the wire in a
// request-target (spaces, non-ASCII) are percent-encoded first.
func parseRawRequest(t testing.TB, text string) (*http.Request, []byte) {
	t.Helper()
	head, body, _ := strings.Cut(text, "\n\n")
	lines := strings.Split(head, "\n")
	first := lines[0]
	i, j := strings.IndexByte(first, ' '), strings.LastIndexByte(first, ' ')
	if i < 0 || j <= i {
		t.Fatalf("bad request line %q", first)
	}
	var b strings.Builder
	b.WriteString(first[:i] + " " + wireTarget(first[i+1:j]) + " " + first[j+1:] + "\r\n")
	for _, l := range lines[1:] {
		if l = strings.TrimSuffix(l, "\r"); l != "" {
			b.WriteString(l + "\r\n")
		}
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(b.String())))
	if err != nil {
		t.Fatalf("reading request: %v\n%s", err, b.String())
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r, data
}

func wireTarget(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// canonicalStrings renders every candidate canonical request and string to
// sign that Verify would try for r.
func canonicalStrings(t *testing.T, v *Verifier, r *http.Request, body []byte) (creqs, stss []string, normalized []bool) {
	t.Helper()
	sr, err := v.parse(r)
	if err != nil {
		t.Fatal(err)
	}
	payloads, err := v.payloadHashes(r, sr, body)
	if err != nil {
		t.Fatal(err)
	}
	parts := canonicalPartsOf(r, sr)
	for _, c := range candidates(r, sr, payloads) {
		creq := parts.appendCanonicalRequest(nil, c.path.uri, c.query, c.payload)
		creqs = append(creqs, string(creq))
		stss = append(stss, string(appendStringToSign(nil, sr.algorithm, sr.amzDate, sr.scope.String(), creq)))
		normalized = append(normalized, c.path.normalized)
	}
	return creqs, stss, normalized
}

func TestVectors(t *testing.T) { testVectorSuite(t, "v4", false) }

func TestVectorsV4A(t *testing.T) { testVectorSuite(t, "v4a", false) }

// TestVectorsDerivedKey runs the SigV4 suite, every mutation included,
// with derived signing keys instead of secrets: each request must get the
// outcome it gets with the secret.
func TestVectorsDerivedKey(t *testing.T) { testVectorSuite(t, "v4", true) }

// TestVectorsV4ADerivedKey: a verifier holding only derived keys cannot
// verify SigV4a, whose key derives from the secret itself.
func TestVectorsV4ADerivedKey(t *testing.T) { testVectorSuite(t, "v4a", true) }

func testVectorSuite(t *testing.T, suite string, derived bool) {
	root := vectorsDir(t, suite)
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		n++
		t.Run(e.Name(), func(t *testing.T) {
			c := loadCase(t, filepath.Join(root, e.Name()))
			if _, err := os.Stat(filepath.Join(c.dir, "header-signed-request.txt")); err != nil {
				t.Skip("the case has no signed requests (only context.json and request.txt); skipping")
			}
			c.v4a, c.derived = suite == "v4a", derived
			if c.v4a {
				checkV4AKey(t, c)
			}
			for _, form := range []string{"header", "query"} {
				t.Run(form, func(t *testing.T) {
					if c.v4a && c.derived {
						r, body := parseRawRequest(t, c.file(t, form+"-signed-request.txt"))
						if _, err := c.verifier().Verify(context.Background(), r, body); !errors.Is(err, ErrMalformed) {
							t.Fatalf("SigV4a with derived keys: %v, want ErrMalformed", err)
						}
						return
					}
					testVectorForm(t, c, form)
				})
			}
		})
	}
	if n == 0 {
		t.Fatalf("no cases in %s", root)
	}
}

func testVectorForm(t *testing.T, c *vectorCase, form string) {
	signed := c.file(t, form+"-signed-request.txt")
	v := c.verifier()
	r, body := parseRawRequest(t, signed)
	res, err := v.Verify(context.Background(), r, body)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.AccessKeyID != c.ctx.Credentials.AccessKeyID || res.Region != c.ctx.Region ||
		res.Service != c.ctx.Service || res.Presigned != (form == "query") || !res.Time.Equal(c.now) {
		t.Errorf("unexpected result %+v", res)
	}
	if want := "principal of " + res.AccessKeyID; c.derived != (res.Principal == want) {
		t.Errorf("result principal %q with derived keys %v", res.Principal, c.derived)
	}

	// The suite's canonical request and string to sign must be among the
	// forms tried, and the one that matches must follow the case's
	// normalization setting.
	wantCR := c.file(t, form+"-canonical-request.txt")
	wantSTS := c.file(t, form+"-string-to-sign.txt")
	creqs, stss, normalized := canonicalStrings(t, v, r, body)
	found := -1
	for i := range creqs {
		if creqs[i] == wantCR {
			found = i
			break
		}
	}
	if found < 0 {
		t.Fatalf("canonical request not among the %d candidates\nwant:\n%s\nfirst candidate:\n%s", len(creqs), wantCR, creqs[0])
	}
	if stss[found] != wantSTS {
		t.Errorf("string to sign:\n%s\nwant:\n%s", stss[found], wantSTS)
	}
	hasNormalized := false
	for _, n := range normalized {
		hasNormalized = hasNormalized || n
	}
	if want := c.ctx.Normalize && hasNormalized; normalized[found] != want || res.NormalizedPath != want {
		t.Errorf("matched normalized=%v (result %v), want %v for normalize=%v", normalized[found], res.NormalizedPath, want, c.ctx.Normalize)
	}
	sig := strings.TrimSpace(c.file(t, form+"-signature.txt"))
	if c.v4a {
		// ECDSA signatures are randomized: the file's signature is another
		// signature of the same string to sign.
		sb, err := hex.DecodeString(sig)
		if err != nil {
			t.Fatal(err)
		}
		if !v4aSignatureCheck(c.ctx.Credentials.AccessKeyID, c.ctx.Credentials.SecretAccessKey, sb)([]byte(wantSTS)) {
			t.Errorf("%s-signature.txt does not verify", form)
		}
	} else if !strings.Contains(signed, "Signature="+sig) {
		t.Errorf("signed request does not carry the signature %s", sig)
	}

	for _, m := range vectorMutations(t, c, form, signed) {
		t.Run(m.name, func(t *testing.T) {
			mv := c.verifier()
			if m.verifier != nil {
				m.verifier(mv)
			}
			text := signed
			if m.mutate != nil {
				text = m.mutate(text)
				if text == signed {
					t.Fatal("mutation changed nothing")
				}
			}
			r, body := parseRawRequest(t, text)
			_, err := mv.Verify(context.Background(), r, body)
			if !errors.Is(err, m.want) {
				t.Fatalf("got error %v, want %v", err, m.want)
			}
			if err != nil && strings.Contains(err.Error(), c.ctx.Credentials.SecretAccessKey) {
				t.Fatalf("error message contains the secret: %v", err)
			}
		})
	}
}

type mutation struct {
	name     string
	mutate   func(string) string
	verifier func(*Verifier)
	want     error
}

func replace(old, new string) func(string) string {
	return func(s string) string { return strings.Replace(s, old, new, 1) }
}

// replaceAny applies the first of the replacements whose old text occurs.
func replaceAny(pairs ...string) func(string) string {
	return func(s string) string {
		for i := 0; i+1 < len(pairs); i += 2 {
			if strings.Contains(s, pairs[i]) {
				return strings.Replace(s, pairs[i], pairs[i+1], 1)
			}
		}
		return s
	}
}

// mutateHeader appends "x" to the first line of header name.
func mutateHeader(name string) func(string) string {
	return func(s string) string {
		lines := strings.Split(s, "\n")
		for i, l := range lines[1:] {
			if l == "" {
				break
			}
			if k, _, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
				lines[i+1] = l + "x"
				break
			}
		}
		return strings.Join(lines, "\n")
	}
}

// mutateTarget rewrites the request-target of the request line.
func mutateTarget(f func(target string) string) func(string) string {
	return func(s string) string {
		first, rest, _ := strings.Cut(s, "\n")
		i, j := strings.IndexByte(first, ' '), strings.LastIndexByte(first, ' ')
		return first[:i+1] + f(first[i+1:j]) + first[j:] + "\n" + rest
	}
}

func vectorMutations(t *testing.T, c *vectorCase, form, signed string) []mutation {
	date := c.now.UTC().Format(amzDateLayout)
	sep, enc := ":", func(s string) string { return s }
	if form == "query" {
		sep = "="
		enc = func(s string) string { return strings.ReplaceAll(s, "/", "%2F") }
	}
	scope := func(s string) string { return enc("/" + s + "/") }
	shiftDate := func(d time.Duration) func(string) string {
		return replace("X-Amz-Date"+sep+date, "X-Amz-Date"+sep+c.now.Add(d).UTC().Format(amzDateLayout))
	}
	regionMutation := replace(scope(c.ctx.Region), scope("us-west-2"))
	if c.v4a {
		regionMutation = replace("X-Amz-Region-Set"+sep+c.ctx.Region, "X-Amz-Region-Set"+sep+"us-west-2")
	}
	ms := []mutation{
		{name: "host", mutate: mutateHeader("host"), want: ErrSignatureMismatch},
		{name: "path", mutate: mutateTarget(func(s string) string { return "/mutated" + s }), want: ErrSignatureMismatch},
		{name: "query-added", mutate: mutateTarget(func(s string) string {
			if strings.Contains(s, "?") {
				return s + "&Extra=1"
			}
			return s + "?Extra=1"
		}), want: ErrSignatureMismatch},
		{name: "date-second", mutate: shiftDate(time.Second), want: ErrSignatureMismatch},
		{name: "date-hour", mutate: shiftDate(time.Hour), want: ErrSkew},
		{name: "date-day", mutate: shiftDate(24 * time.Hour), want: ErrScope},
		{name: "region", mutate: regionMutation, want: ErrScope},
		{name: "region-any", mutate: regionMutation, verifier: func(v *Verifier) { v.Region = "" }, want: ErrSignatureMismatch},
		{name: "service", mutate: replace(scope(c.ctx.Service), scope("other")), want: ErrScope},
		{name: "service-any", mutate: replace(scope(c.ctx.Service), scope("other")),
			verifier: func(v *Verifier) { v.Services = nil }, want: ErrSignatureMismatch},
		{name: "terminator", mutate: replace("aws4_request", "aws5_request"), want: ErrScope},
		{name: "access-key", mutate: replace(c.ctx.Credentials.AccessKeyID+enc("/"), "AKIDUNKNOWN"+enc("/")), want: ErrUnknownKey},
		{name: "signature", mutate: func(s string) string {
			i := strings.Index(s, "Signature"+"=") + len("Signature=")
			d := byte('0')
			if s[i] == '0' {
				d = '1'
			}
			return s[:i] + string(d) + s[i+1:]
		}, want: ErrSignatureMismatch},
		{name: "clock-behind", verifier: func(v *Verifier) { v.Now = func() time.Time { return c.now.Add(-16 * time.Minute) } }, want: ErrSkew},
	}
	if form == "header" {
		ms = append(ms,
			mutation{name: "clock-ahead", verifier: func(v *Verifier) { v.Now = func() time.Time { return c.now.Add(16 * time.Minute) } }, want: ErrSkew},
			mutation{name: "no-authorization", mutate: func(s string) string {
				i := strings.Index(s, "\nAuthorization:")
				j := strings.Index(s[i+1:], "\n")
				return s[:i] + s[i+1+j:]
			}, want: ErrNotSigned},
			mutation{name: "require-unsigned-payload", verifier: func(v *Verifier) { v.RequireUnsignedPayload = true }, want: ErrSignedPayload},
		)
	}
	if c.v4a {
		ms = append(ms, mutation{name: "sigv4a-not-allowed", verifier: func(v *Verifier) { v.AllowSigV4A = false }, want: ErrMalformed})
	}
	if form == "query" {
		ms = append(ms,
			mutation{name: "clock-within-expiry", verifier: func(v *Verifier) { v.Now = func() time.Time { return c.now.Add(59 * time.Minute) } }, want: nil},
			mutation{name: "clock-expired", verifier: func(v *Verifier) { v.Now = func() time.Time { return c.now.Add(61 * time.Minute) } }, want: ErrExpired},
			mutation{name: "expires-changed", mutate: replace("X-Amz-Expires=3600", "X-Amz-Expires=3599"), want: ErrSignatureMismatch},
			mutation{name: "expires-too-long", mutate: replace("X-Amz-Expires=3600", "X-Amz-Expires=604801"), want: ErrExpired},
			mutation{name: "presigned-not-allowed", verifier: func(v *Verifier) { v.AllowPresigned = false }, want: ErrMalformed},
		)
	}
	// A signed header other than host and the date.
	sr, err := c.verifier().parse(func() *http.Request { r, _ := parseRawRequest(t, signed); return r }())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range sr.signedHeaders {
		switch h {
		case "host", "x-amz-date", "content-length", "x-amz-content-sha256", "x-amz-region-set":
			continue
		case "x-amz-security-token":
			ms = append(ms, mutation{name: "token-header", mutate: mutateHeader(h), want: ErrSessionToken})
		default:
			ms = append(ms, mutation{name: "header-" + h, mutate: mutateHeader(h), want: ErrSignatureMismatch})
		}
	}
	if c.ctx.Credentials.Token != "" {
		tok := enc(c.ctx.Credentials.Token)
		if form == "query" {
			tok = strings.NewReplacer("/", "%2F", "+", "%2B", "=", "%3D").Replace(c.ctx.Credentials.Token)
		}
		ms = append(ms, mutation{name: "token", mutate: replace("X-Amz-Security-Token"+sep+tok, "X-Amz-Security-Token"+sep+"x"+tok), want: ErrSessionToken})
		ms = append(ms, mutation{name: "token-removed", mutate: replace("X-Amz-Security-Token"+sep+tok, "X-Amz-Other"+sep+tok), want: ErrSessionToken})
	}
	// A query parameter value, other than the authentication parameters.
	for _, p := range sr.params {
		if !strings.HasPrefix(p.key, "X-Amz-") && p.value != "" {
			k := p.key
			ms = append(ms, mutation{name: "query-value", mutate: mutateTarget(func(s string) string {
				if !strings.Contains(s, k+"=") {
					k = uriEncode(k, false)
				}
				return strings.Replace(s, k+"=", k+"=x", 1)
			}), want: ErrSignatureMismatch})
			break
		}
	}
	if c.ctx.SignBody {
		ms = append(ms, mutation{name: "body", mutate: replace("\n\nParam1=value1", "\n\nParam1=value2"), want: ErrSignatureMismatch})
	}
	return ms
}

// checkV4AKey compares the SigV4a key derived from the case's credentials
// with the suite's public-key.json.
func checkV4AKey(t *testing.T, c *vectorCase) {
	var want struct{ X, Y string }
	if err := json.Unmarshal([]byte(c.file(t, "public-key.json")), &want); err != nil {
		t.Fatal(err)
	}
	priv, err := deriveV4AKey(c.ctx.Credentials.AccessKeyID, c.ctx.Credentials.SecretAccessKey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := priv.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != "04"+want.X+want.Y {
		t.Fatalf("derived public key %s, want 04%s%s", got, want.X, want.Y)
	}
}

// TestV4ARegionSet re-signs the suite's SigV4a vanilla request with region
// sets using wildcards.
func TestV4ARegionSet(t *testing.T) {
	c := loadCase(t, filepath.Join(vectorsDir(t, "v4a"), "get-vanilla"))
	c.v4a = true
	priv, err := deriveV4AKey(c.ctx.Credentials.AccessKeyID, c.ctx.Credentials.SecretAccessKey)
	if err != nil {
		t.Fatal(err)
	}
	signed := c.file(t, "header-signed-request.txt")
	for _, tc := range []struct {
		set, region string
		want        error
	}{
		{"us-east-1", "us-east-1", nil},
		{"*", "ap-south-1", nil},
		{"us-*", "us-east-1", nil},
		{"eu-west-1, us-*-1", "us-east-1", nil},
		{"us-*", "eu-west-1", ErrScope},
		{"us-east-2,us-west-1", "us-east-1", ErrScope},
		{"us-east-1", "", nil},
		{"us east 1", "us-east-1", ErrMalformed},
	} {
		t.Run(tc.set+"/"+tc.region, func(t *testing.T) {
			v := c.verifier()
			v.Region = tc.region
			r, body := parseRawRequest(t, strings.Replace(signed, "X-Amz-Region-Set:us-east-1", "X-Amz-Region-Set:"+tc.set, 1))
			if tc.want != ErrMalformed {
				_, stss, _ := canonicalStrings(t, v, r, body)
				digest := sha256.Sum256([]byte(stss[0]))
				sig, err := ecdsa.SignASN1(rand.Reader, priv, digest[:])
				if err != nil {
					t.Fatal(err)
				}
				auth := r.Header.Get("Authorization")
				i := strings.Index(auth, "Signature=") + len("Signature=")
				r.Header.Set("Authorization", auth[:i]+hex.EncodeToString(sig))
			}
			res, err := v.Verify(context.Background(), r, body)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err == nil && (res.Region != tc.set || res.Algorithm != algorithmV4A) {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true}, {"*", "us-east-1", true}, {"us-*", "us-east-1", true}, {"us-*", "eu-west-1", false},
		{"*-1", "us-east-1", true}, {"us-*-1", "us-east-1", true}, {"us-*-2", "us-east-1", false},
		{"us-east-1", "us-east-1", true}, {"us-east-1", "us-east-10", false}, {"**", "x", true},
	} {
		if got := globMatch(c.pattern, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v", c.pattern, c.s, got)
		}
	}
}
