package native_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/api/native"
	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/pki"
	"github.com/trellis-mesh/trellis/internal/store/bolt"
)

// FuzzClientCertificateRequests sends arbitrary principal types, names and
// bodies to CreateClientCertificate: a client error or a certificate,
// never a server error or a panic.
func FuzzClientCertificateRequests(f *testing.F) {
	do, _ := certFixture(f)
	f.Add("role", "orders", `{"ttlHours":1}`)
	f.Add("user", "a@b", `{}`)
	f.Add("role", "orders", `{"ttlHours":-5,"account":"999999999999"}`)
	f.Add("group", "..", `{"ttlHours":1e99}`)
	f.Add("role", "orders", `[]`)
	f.Fuzz(func(t *testing.T, typ, name, body string) {
		code, out := do("POST", "/principals/"+url.PathEscape(typ)+"/"+url.PathEscape(name)+"/certificates", body)
		if code >= 500 || code < 200 {
			t.Fatalf("%s/%s %q: %d %s", typ, name, body, code, out)
		}
	})
}

// certFixture is a native API with a CA, an account and the principals
// role/orders and user/a@b; do calls it as the account's admin.
func certFixture(tb testing.TB) (do func(method, path, body string) (int, string), ca *pki.CA) {
	tb.Helper()
	st, err := bolt.Open(filepath.Join(tb.TempDir(), "trellis.db"), bolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	ca, err = pki.LoadOrCreate(context.Background(), st, nil)
	if err != nil {
		tb.Fatal(err)
	}
	const acct = "111122223333"
	ctx := iam.WithCaller(context.Background(), iam.Caller{Account: acct, ARN: "arn:aws:iam::" + acct + ":user/admin", Admin: true})
	na := native.New(st, "us-east-1", nil, nil, native.WithClientCertificates(native.ClientCertOptions{CA: ca}))
	do = func(method, path, body string) (int, string) {
		rec := httptest.NewRecorder()
		na.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, method, native.Prefix+path, bytes.NewReader([]byte(body))))
		return rec.Code, rec.Body.String()
	}
	if code, out := do("POST", "/accounts", `{"name":"main","id":"`+acct+`"}`); code != 201 {
		tb.Fatalf("create account: %d %s", code, out)
	}
	for _, p := range []string{`{"name":"orders","type":"role"}`, `{"name":"a@b","type":"user"}`} {
		if code, out := do("POST", "/principals", p); code != 201 {
			tb.Fatalf("create principal: %d %s", code, out)
		}
	}
	return do, ca
}

// TestClientCertificateFromCSR: with a certificate signing request, the
// certificate is for the requester's key, which never travels; the
// request's own names are ignored, and a request that does not verify or
// carries an unsupported key is a validation error naming csrPem.
func TestClientCertificateFromCSR(t *testing.T) {
	do, _ := certFixture(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "admin"}, DNSNames: []string{"evil.example.com"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csrPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}))
	body, _ := json.Marshal(map[string]any{"csrPem": csrPEM, "ttlHours": 1})
	code, out := do("POST", "/principals/role/orders/certificates", string(body))
	if code != 201 {
		t.Fatalf("got %d %s", code, out)
	}
	var got native.ClientCertificateOut
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.PrivateKeyPEM != "" || strings.Contains(out, "privateKeyPem") {
		t.Fatalf("a private key came back: %s", out)
	}
	block, _ := pem.Decode([]byte(got.CertificatePEM))
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(leaf.PublicKey) || len(leaf.DNSNames) != 0 || leaf.Subject.CommonName != "orders" ||
		len(leaf.URIs) != 1 || leaf.URIs[0].String() != got.SPIFFEID {
		t.Fatalf("leaf: CN %q, DNS %v, URIs %v, same key %v", leaf.Subject.CommonName, leaf.DNSNames, leaf.URIs,
			key.PublicKey.Equal(leaf.PublicKey))
	}

	tampered := append([]byte(nil), csrDER...)
	tampered[len(tampered)-5] ^= 0xff // in the signature
	small, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p224DER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, small)
	for name, csr := range map[string]string{
		"garbage":       "not a PEM",
		"bad signature": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered})),
		"wrong type":    string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: csrDER})),
		"P-224 key":     string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: p224DER})),
	} {
		body, _ := json.Marshal(map[string]any{"csrPem": csr})
		code, out := do("POST", "/principals/role/orders/certificates", string(body))
		if code != 400 || !strings.Contains(out, `"fieldList":[{"name":"csrPem"`) {
			t.Errorf("%s: got %d %s, want a validation error naming csrPem", name, code, out)
		}
	}
}

// TestClientCertificateWithoutCA: a server that has no CA says so.
func TestClientCertificateWithoutCA(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "trellis.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := iam.WithCaller(context.Background(), iam.Caller{Account: "111122223333", Admin: true})
	rec := httptest.NewRecorder()
	native.New(st, "us-east-1", nil, nil).ServeHTTP(rec, httptest.NewRequestWithContext(ctx, "POST",
		native.Prefix+"/principals/role/orders/certificates", bytes.NewReader(nil)))
	if rec.Code != 500 || !bytes.Contains(rec.Body.Bytes(), []byte("not enabled on this server")) {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
}
