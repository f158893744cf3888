package sigv4

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// longTermKey and tempKey are the test principals' keys.
func longTermKey() Credential {
	return Credential{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
}

func tempKey() Credential {
	return Credential{AccessKeyID: "ASIAIOSFODNN7EXAMPLE", SecretAccessKey: "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
		SessionToken: "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+tokenEXAMPLE=="}
}

const arnPath = "/tags/arn%3Aaws%3Avpc-lattice%3Aus-east-1%3A111122223333%3Aservice%2Fsvc-0123456789abcdef0"

func awsCreds(c Credential) aws.Credentials {
	return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
}

type outcome struct {
	res Result
	err error
}

// verifyServer is an HTTP server whose handler verifies every request with
// v and reports the outcome.
type verifyServer struct {
	*httptest.Server
	outcomes chan outcome
}

func newVerifyServer(t *testing.T, v *Verifier) *verifyServer {
	s := &verifyServer{outcomes: make(chan outcome, 1)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		res, err := v.Verify(r.Context(), r, body)
		s.outcomes <- outcome{res, err}
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(s.Close)
	return s
}

// do sends req and returns the server's verdict.
func (s *verifyServer) do(t *testing.T, req *http.Request) outcome {
	t.Helper()
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	select {
	case o := <-s.outcomes:
		return o
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not run")
	}
	return outcome{}
}

func controlPlaneVerifier(now func() time.Time) *Verifier {
	return &Verifier{
		Lookup:         staticLookup(longTermKey(), tempKey()),
		Region:         "us-east-1",
		Services:       []string{"vpc-lattice", "sts", "trellis"},
		Now:            now,
		AllowPresigned: true,
	}
}

type liveCase struct {
	name     string
	method   string
	path     string // escaped path and query
	body     string
	header   map[string]string
	cred     Credential
	service  string
	region   string
	at       time.Duration // signing time relative to now
	unsigned bool          // sign with UNSIGNED-PAYLOAD
	presign  string        // X-Amz-Expires for a presigned URL ("-" for none); "" signs the header
	tamper   func(*http.Request)
	verifier func(*Verifier)
	want     error
	// check, if set, inspects the outcome further.
	check func(*testing.T, outcome)
	// derived verifies with keys derived from the secrets
	// (Verifier.SigningKey) instead of the secrets.
	derived bool
}

func (c liveCase) run(t *testing.T) outcome {
	now := time.Now().UTC()
	v := controlPlaneVerifier(func() time.Time { return now })
	if c.derived {
		v.Lookup, v.SigningKey = nil, derivedLookup(longTermKey(), tempKey())
	}
	if c.verifier != nil {
		c.verifier(v)
	}
	srv := newVerifyServer(t, v)
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, srv.URL+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, val := range c.header {
		req.Header.Set(k, val)
	}
	service, region, cred := c.service, c.region, c.cred
	if service == "" {
		service = "vpc-lattice"
	}
	if region == "" {
		region = "us-east-1"
	}
	if cred.AccessKeyID == "" {
		cred = longTermKey()
	}
	payloadHash := hashBody([]byte(c.body))
	if c.unsigned {
		payloadHash = unsignedPayload
	}
	signer := v4.NewSigner()
	ctx := context.Background()
	when := now.Add(c.at)
	if c.presign != "" {
		if c.presign != "-" {
			q := req.URL.Query()
			q.Set("X-Amz-Expires", c.presign)
			req.URL.RawQuery = q.Encode()
		}
		uri, hdr, err := signer.PresignHTTP(ctx, awsCreds(cred), req, payloadHash, service, region, when)
		if err != nil {
			t.Fatal(err)
		}
		preq, err := http.NewRequest(c.method, uri, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range hdr {
			if k != "Host" {
				preq.Header[k] = vs
			}
		}
		req = preq
	} else if err := signer.SignHTTP(ctx, awsCreds(cred), req, payloadHash, service, region, when); err != nil {
		t.Fatal(err)
	}
	if c.tamper != nil {
		c.tamper(req)
	}
	o := srv.do(t, req)
	if !errors.Is(o.err, c.want) {
		t.Fatalf("Verify: got %v, want %v", o.err, c.want)
	}
	if o.err == nil {
		if o.res.AccessKeyID != cred.AccessKeyID || o.res.Service != service || o.res.Region != region ||
			o.res.Presigned != (c.presign != "") || o.res.SessionToken != cred.SessionToken || o.res.NormalizedPath {
			t.Errorf("unexpected result %+v", o.res)
		}
		if !o.res.Time.Equal(when.Truncate(time.Second)) {
			t.Errorf("result time %v, want %v", o.res.Time, when)
		}
		if want := "principal of " + cred.AccessKeyID; c.derived != (o.res.Principal == want) {
			t.Errorf("result principal %q with derived keys %v", o.res.Principal, c.derived)
		}
	}
	if c.check != nil {
		c.check(t, o)
	}
	return o
}

func TestLiveSDK(t *testing.T) {
	for _, c := range liveSDKCases() {
		t.Run(c.name, func(t *testing.T) { c.run(t) })
	}
}

// TestLiveDerivedKey sends every request of TestLiveSDK and
// TestLiveDataPlane, signed by the SDK's v4 signer, to a verifier that
// holds derived signing keys instead of secrets: each must get the outcome
// it gets with the secret.
func TestLiveDerivedKey(t *testing.T) {
	for _, c := range liveSDKCases() {
		c.derived = true
		t.Run("control-plane/"+c.name, func(t *testing.T) { c.run(t) })
	}
	for _, c := range dataPlaneCases() {
		c.derived = true
		t.Run("data-plane/"+c.name, func(t *testing.T) { c.run(t) })
	}
}

func liveSDKCases() []liveCase {
	return []liveCase{
		{name: "get", method: "GET", path: "/services?maxResults=10"},
		{name: "post-json", method: "POST", path: "/services", body: `{"name":"svc","authType":"AWS_IAM"}`,
			header: map[string]string{"Content-Type": "application/json"}},
		{name: "put-empty-body", method: "PUT", path: "/services/svc-0123456789abcdef0/policy"},
		{name: "arn-path", method: "GET", path: arnPath},
		{name: "arn-path-post", method: "POST", path: arnPath, body: `{"tags":{"env":"prod"}}`},
		{name: "arn-path-repeated-query", method: "DELETE", path: arnPath + "?tagKeys=env&tagKeys=team&tagKeys=a%2Fb&tagKeys=a-b"},
		{name: "odd-query", method: "GET", path: "/services?b=2&a=1&a=0&sp=a+b&plus=a%2Bb&empty=&flag&u=%E2%9C%93&r=%7E%21%2A"},
		{name: "encoded-path", method: "GET", path: "/services/my%20svc%E2%9C%93/a%2Fb/~x!y"},
		{name: "dot-path", method: "GET", path: "/services/./a/../b"},
		{name: "session-token", method: "POST", path: "/services", body: `{}`, cred: tempKey()},
		{name: "sts-form", method: "POST", path: "/", service: "sts", body: "Action=GetCallerIdentity&Version=2011-06-15",
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}},
		{name: "extra-signed-headers", method: "GET", path: "/services",
			header: map[string]string{"X-Amz-Target": "Trellis.List", "X-Custom": "  a   b  ", "Accept": "application/json"}},
		{name: "unsigned-payload-header", method: "POST", path: "/services", body: "{}", unsigned: true,
			header: map[string]string{"X-Amz-Content-Sha256": unsignedPayload}},
		{name: "presigned", method: "GET", path: "/services?maxResults=5", presign: "300"},
		{name: "presigned-no-expires", method: "GET", path: "/services", presign: "-"},
		{name: "presigned-arn", method: "GET", path: arnPath + "?tagKeys=b&tagKeys=a", presign: "60"},
		{name: "presigned-session-token", method: "GET", path: "/services", presign: "300", cred: tempKey()},
		{name: "presigned-unsigned-payload", method: "PUT", path: "/services/x", body: "data", presign: "300", unsigned: true},
		{name: "presigned-body", method: "PUT", path: "/services/x", body: "data", presign: "300"},
		{name: "skew-within", method: "GET", path: "/services", at: -10 * time.Minute},
		{name: "any-region", method: "GET", path: "/services", region: "eu-west-1", verifier: func(v *Verifier) { v.Region = "" }},

		{name: "wrong-secret", method: "GET", path: "/services", cred: Credential{AccessKeyID: longTermKey().AccessKeyID, SecretAccessKey: "not-the-secret"}, want: ErrSignatureMismatch},
		{name: "wrong-secret-presigned", method: "GET", path: "/services", presign: "60",
			cred: Credential{AccessKeyID: longTermKey().AccessKeyID, SecretAccessKey: "not-the-secret"}, want: ErrSignatureMismatch},
		{name: "wrong-region", method: "GET", path: "/services", region: "us-west-2", want: ErrScope},
		{name: "wrong-service", method: "GET", path: "/services", service: "s3", want: ErrScope},
		{name: "expired-time", method: "GET", path: "/services", at: -20 * time.Minute, want: ErrSkew},
		{name: "future-time", method: "GET", path: "/services", at: 20 * time.Minute, want: ErrSkew},
		{name: "presigned-expired", method: "GET", path: "/services", presign: "60", at: -10 * time.Minute, want: ErrExpired},
		{name: "presigned-too-long", method: "GET", path: "/services", presign: "604801", want: ErrExpired},
		{name: "presigned-not-allowed", method: "GET", path: "/services", presign: "60",
			verifier: func(v *Verifier) { v.AllowPresigned = false }, want: ErrMalformed},
		{name: "unknown-key", method: "GET", path: "/services", cred: Credential{AccessKeyID: "AKIAUNKNOWN000000000", SecretAccessKey: "x"}, want: ErrUnknownKey},
		{name: "temp-key-without-token", method: "GET", path: "/services",
			cred: Credential{AccessKeyID: tempKey().AccessKeyID, SecretAccessKey: tempKey().SecretAccessKey}, want: ErrSessionToken},
		{name: "temp-key-wrong-token", method: "GET", path: "/services",
			cred: Credential{AccessKeyID: tempKey().AccessKeyID, SecretAccessKey: tempKey().SecretAccessKey, SessionToken: "other"}, want: ErrSessionToken},
		{name: "long-term-key-with-token", method: "GET", path: "/services",
			cred: Credential{AccessKeyID: longTermKey().AccessKeyID, SecretAccessKey: longTermKey().SecretAccessKey, SessionToken: "tok"}, want: ErrSessionToken},
		{name: "tampered-body", method: "POST", path: "/services", body: `{"name":"aaa"}`,
			tamper: func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader(`{"name":"bbb"}`)) }, want: ErrSignatureMismatch},
		{name: "tampered-declared-hash", method: "POST", path: "/services", body: `{"name":"aaa"}`,
			header: map[string]string{"X-Amz-Content-Sha256": hashBody([]byte(`{"name":"aaa"}`))},
			tamper: func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader(`{"name":"bbb"}`)) }, want: ErrSignatureMismatch},
		{name: "tampered-path", method: "GET", path: arnPath,
			tamper: func(r *http.Request) { r.URL.RawPath = strings.Replace(r.URL.RawPath, "svc-0", "svc-1", 1) }, want: ErrSignatureMismatch},
		{name: "tampered-query", method: "GET", path: "/services?maxResults=10",
			tamper: func(r *http.Request) { r.URL.RawQuery = "maxResults=11" }, want: ErrSignatureMismatch},
		{name: "tampered-presigned-query", method: "GET", path: "/services?maxResults=10", presign: "60",
			tamper: func(r *http.Request) {
				r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "maxResults=10", "maxResults=11", 1)
			}, want: ErrSignatureMismatch},
		{name: "tampered-signed-header", method: "GET", path: "/services", header: map[string]string{"X-Amz-Target": "a"},
			tamper: func(r *http.Request) { r.Header.Set("X-Amz-Target", "b") }, want: ErrSignatureMismatch},
		{name: "method-changed", method: "GET", path: "/services",
			tamper: func(r *http.Request) { r.Method = "DELETE" }, want: ErrSignatureMismatch},
	}
}

func TestLiveDataPlane(t *testing.T) {
	for _, c := range dataPlaneCases() {
		t.Run(c.name, func(t *testing.T) { c.run(t) })
	}
}

// dataPlaneCases are requests to a Lattice service: signing name
// vpc-lattice-svcs, UNSIGNED-PAYLOAD required.
func dataPlaneCases() []liveCase {
	dataPlane := func(v *Verifier) {
		v.Services = []string{"vpc-lattice-svcs"}
		v.RequireUnsignedPayload = true
	}
	unsignedHeader := map[string]string{"X-Amz-Content-Sha256": unsignedPayload}
	cases := []liveCase{
		{name: "get", method: "GET", path: "/orders?id=1", service: "vpc-lattice-svcs", unsigned: true, header: unsignedHeader},
		{name: "post", method: "POST", path: "/orders", body: `{"id":1}`, service: "vpc-lattice-svcs", unsigned: true, header: unsignedHeader},
		{name: "session-token", method: "POST", path: "/orders", body: `x`, service: "vpc-lattice-svcs", unsigned: true, header: unsignedHeader, cred: tempKey()},
		{name: "presigned", method: "GET", path: "/orders", service: "vpc-lattice-svcs", unsigned: true, presign: "300"},
		{name: "presigned-with-header", method: "GET", path: "/orders", service: "vpc-lattice-svcs", unsigned: true, presign: "300", header: unsignedHeader},
		{name: "body-changed-still-ok", method: "POST", path: "/orders", body: `aaa`, service: "vpc-lattice-svcs", unsigned: true, header: unsignedHeader,
			tamper: func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader(`bbb`)) }},

		{name: "signed-payload", method: "POST", path: "/orders", body: `{"id":1}`, service: "vpc-lattice-svcs", want: ErrSignedPayload},
		{name: "signed-payload-header", method: "POST", path: "/orders", body: `{}`, service: "vpc-lattice-svcs",
			header: map[string]string{"X-Amz-Content-Sha256": hashBody([]byte(`{}`))}, want: ErrSignedPayload},
		{name: "control-plane-service", method: "GET", path: "/orders", unsigned: true, header: unsignedHeader, want: ErrScope},
		{name: "presigned-signed-payload", method: "GET", path: "/orders", service: "vpc-lattice-svcs", presign: "300", want: ErrSignatureMismatch},
	}
	for i := range cases {
		cases[i].verifier = dataPlane
		cases[i].check = func(t *testing.T, o outcome) {
			if o.err == nil && o.res.PayloadHash != unsignedPayload {
				t.Errorf("payload hash %q", o.res.PayloadHash)
			}
		}
	}
	return cases
}

// TestDirect verifies a request signed and verified in process, without a
// network round trip (Host and Content-Length are then where a client puts
// them, not where the server does).
func TestDirect(t *testing.T) {
	now := time.Now()
	body := []byte(`{"name":"svc"}`)
	req := httptest.NewRequest("POST", "https://vpc-lattice.us-east-1.amazonaws.com"+arnPath+"?a=1&a=0", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if err := v4.NewSigner().SignHTTP(context.Background(), awsCreds(longTermKey()), req, hashBody(body), "vpc-lattice", "us-east-1", now); err != nil {
		t.Fatal(err)
	}
	if !IsSigned(req) {
		t.Fatal("IsSigned = false")
	}
	v := controlPlaneVerifier(func() time.Time { return now })
	res, err := v.Verify(context.Background(), req, body)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.SignedHeaders, ";"); got != "content-length;content-type;host;x-amz-date" {
		t.Errorf("signed headers %s", got)
	}
	if res.PayloadHash != hashBody(body) {
		t.Errorf("payload hash %s", res.PayloadHash)
	}
}

func TestIsSigned(t *testing.T) {
	for _, c := range []struct {
		auth, query string
		want        bool
	}{
		{"", "", false},
		{"Bearer abc", "", false},
		{"AWS4-HMAC-SHA256 Credential=a/b/c/d/e", "", true},
		{"", "X-Amz-Algorithm=AWS4-HMAC-SHA256", true},
		{"", "a=1&X-Amz-Signature=00", true},
		{"", "X%2DAmz-Signature=00", true},
		{"", "x-amz-signature=00&%zz", false},
	} {
		r := httptest.NewRequest("GET", "/?"+c.query, nil)
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		if got := IsSigned(r); got != c.want {
			t.Errorf("IsSigned(%q, %q) = %v", c.auth, c.query, got)
		}
	}
	if IsSigned(nil) {
		t.Error("IsSigned(nil)")
	}
}

func TestErrorsDoNotLeak(t *testing.T) {
	now := time.Now()
	req := httptest.NewRequest("GET", "https://example.com/services", nil)
	if err := v4.NewSigner().SignHTTP(context.Background(), awsCreds(longTermKey()), req, hashBody(nil), "vpc-lattice", "us-east-1", now); err != nil {
		t.Fatal(err)
	}
	v := controlPlaneVerifier(func() time.Time { return now })
	v.Lookup = staticLookup(Credential{AccessKeyID: longTermKey().AccessKeyID, SecretAccessKey: "other-secret"})
	_, err := v.Verify(context.Background(), req, nil)
	if !errors.Is(err, ErrSignatureMismatch) {
		t.Fatalf("got %v", err)
	}
	// The signature the server expects (made with the stored secret).
	good := httptest.NewRequest("GET", "https://example.com/services", nil)
	v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: longTermKey().AccessKeyID, SecretAccessKey: "other-secret"}, good, hashBody(nil), "vpc-lattice", "us-east-1", now)
	_, expected, _ := strings.Cut(good.Header.Get("Authorization"), "Signature=")
	if msg := err.Error(); strings.Contains(msg, "other-secret") || strings.Contains(msg, expected) {
		t.Fatalf("error leaks the secret or expected signature: %s", msg)
	}
	if msg := err.Error(); msg != strings.ToLower(msg[:1])+msg[1:] {
		t.Errorf("error not lower case: %s", msg)
	}

	v.Lookup = func(context.Context, string) (Credential, bool, error) {
		return Credential{}, false, errors.New("store down")
	}
	if _, err := v.Verify(context.Background(), req, nil); err == nil || errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "store down") {
		t.Errorf("lookup failure: %v", err)
	}
}
