package pki

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/store"
)

func TestLoadOrCreateIsCreateIfAbsent(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	clk := &clock{now: t0}

	// Servers racing on one store end up with one CA.
	const n = 4
	cas := make([]*CA, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ca, err := LoadOrCreate(ctx, st, clk.Now)
			if err != nil {
				t.Error(err)
				return
			}
			cas[i] = ca
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, ca := range cas[1:] {
		if ca.Fingerprint() != cas[0].Fingerprint() {
			t.Fatalf("racing LoadOrCreate made two CAs: %s and %s", cas[0].Fingerprint(), ca.Fingerprint())
		}
	}
	again, err := LoadOrCreate(ctx, st, clk.Now)
	if err != nil || again.Fingerprint() != cas[0].Fingerprint() || string(again.CertPEM()) != string(cas[0].CertPEM()) {
		t.Fatalf("reload: %v, fingerprint %s want %s", err, again.Fingerprint(), cas[0].Fingerprint())
	}

	c := again.Certificate()
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("root is not a CA limited to leaves: IsCA=%v MaxPathLen=%d usage=%b", c.IsCA, c.MaxPathLen, c.KeyUsage)
	}
	if _, ok := c.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("root key is %T, want ECDSA", c.PublicKey)
	}
	if c.NotAfter.Sub(t0) != CALifetime {
		t.Errorf("root notAfter %v, want now+%v", c.NotAfter, CALifetime)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("root is not self-signed: %v", err)
	}
}

func TestLoadOrCreateRejectsCorruptCA(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	if _, err := st.Txn(ctx, nil, []store.Op{store.Put(CAKey, []byte(`{"certPem":"nope","keyPem":"nope"}`))}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(ctx, st, nil); err == nil {
		t.Fatal("a corrupt stored CA was accepted")
	}
}

func TestWriteCAFile(t *testing.T) {
	ca, err := LoadOrCreate(context.Background(), openStore(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path, err := ca.WriteCAFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, "ca.pem") {
		t.Errorf("path = %s", path)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != string(ca.CertPEM()) {
		t.Fatalf("ca.pem = %q, %v", b, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("ca.pem mode %v, want 0644", fi.Mode().Perm())
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Error("ca.pem does not load into a cert pool")
	}
}

func TestIssueServerAndClientCertificates(t *testing.T) {
	clk := &clock{now: t0}
	ca, err := LoadOrCreate(context.Background(), openStore(t), clk.Now)
	if err != nil {
		t.Fatal(err)
	}

	certPEM, keyPEM, err := ca.Issue([]string{"orders.example.com", "*.orders.example.com"}, nil, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("certificate and key do not pair: %v", err)
	}
	leaf := pair.Leaf
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("Issue made a %T key, want ECDSA P-256", leaf.PublicKey)
	}
	if leaf.IsCA || leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("leaf IsCA=%v KeyUsage=%b", leaf.IsCA, leaf.KeyUsage)
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("server certificate ExtKeyUsage = %v, want serverAuth only", leaf.ExtKeyUsage)
	}
	if got := leaf.NotAfter.Sub(t0); got != 24*time.Hour {
		t.Errorf("lifetime %v, want 24h", got)
	}
	if err := Verify(certPEM, ca.Pool(), []string{"orders.example.com", "api.orders.example.com"}, t0); err != nil {
		t.Errorf("server certificate does not verify: %v", err)
	}
	if err := Verify(certPEM, ca.Pool(), []string{"other.example.com"}, t0); err == nil {
		t.Error("server certificate verified for a name it does not carry")
	}
	if err := Verify(certPEM, ca.Pool(), []string{"orders.example.com"}, t0.Add(25*time.Hour)); err == nil {
		t.Error("server certificate verified after it expired")
	}

	// A client identity: SPIFFE URI SAN, usable for client auth.
	certPEM, _, err = ca.Issue(nil, []string{"spiffe://trellis.local/ns/shop/sa/orders"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err = parseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://trellis.local/ns/shop/sa/orders" || len(leaf.DNSNames) != 0 {
		t.Errorf("URIs = %v, DNSNames = %v", leaf.URIs, leaf.DNSNames)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify for clientAuth: %v", err)
	}
	if leaf.Subject.CommonName != "" {
		t.Errorf("URI-only certificate has CN %q", leaf.Subject.CommonName)
	}
	// With a common name.
	certPEM, _, err = ca.IssueRequest(Request{URIs: []string{"spiffe://trellis.local/account/111122223333/role/orders"}, TTL: time.Hour, CommonName: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	if leaf, err = parseCertPEM(certPEM); err != nil || leaf.Subject.CommonName != "orders" {
		t.Errorf("CN %q, %v; want orders", leaf.Subject.CommonName, err)
	}

	// RSA on request, with the key usage plain-RSA key exchange needs.
	certPEM, keyPEM, err = ca.IssueRequest(Request{DNSNames: []string{"a.example.com"}, TTL: time.Hour, Key: KeyRSA2048})
	if err != nil {
		t.Fatal(err)
	}
	if pair, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	if k, ok := pair.Leaf.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 ||
		pair.Leaf.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
		t.Errorf("RSA leaf: %T usage %b", pair.Leaf.PublicKey, pair.Leaf.KeyUsage)
	}
}

func TestIssueNeverOutlivesTheCA(t *testing.T) {
	clk := &clock{now: t0}
	ca, err := LoadOrCreate(context.Background(), openStore(t), clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(CALifetime - time.Hour)
	certPEM, _, err := ca.Issue([]string{"a.example.com"}, nil, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := parseCertPEM(certPEM)
	if !leaf.NotAfter.Equal(ca.Certificate().NotAfter) {
		t.Errorf("leaf notAfter %v, CA notAfter %v", leaf.NotAfter, ca.Certificate().NotAfter)
	}
}

func TestIssueRejects(t *testing.T) {
	ca, err := LoadOrCreate(context.Background(), openStore(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		r    Request
	}{
		{"no names", Request{TTL: time.Hour}},
		{"zero ttl", Request{DNSNames: []string{"a.example.com"}}},
		{"ttl too long", Request{DNSNames: []string{"a.example.com"}, TTL: MaxLeafTTL + time.Hour}},
		{"empty label", Request{DNSNames: []string{"a..example.com"}, TTL: time.Hour}},
		{"underscore", Request{DNSNames: []string{"a_b.example.com"}, TTL: time.Hour}},
		{"hyphen edge", Request{DNSNames: []string{"-a.example.com"}, TTL: time.Hour}},
		{"inner wildcard", Request{DNSNames: []string{"a.*.example.com"}, TTL: time.Hour}},
		{"wildcard of a TLD", Request{DNSNames: []string{"*.com"}, TTL: time.Hour}},
		{"http URI", Request{URIs: []string{"https://example.com/x"}, TTL: time.Hour}},
		{"SPIFFE without path", Request{URIs: []string{"spiffe://trellis.local"}, TTL: time.Hour}},
		{"SPIFFE upper-case domain", Request{URIs: []string{"spiffe://Trellis.local/x"}, TTL: time.Hour}},
		{"SPIFFE dot segment", Request{URIs: []string{"spiffe://trellis.local/a/../b"}, TTL: time.Hour}},
		{"SPIFFE query", Request{URIs: []string{"spiffe://trellis.local/a?b=c"}, TTL: time.Hour}},
		{"SPIFFE port", Request{URIs: []string{"spiffe://trellis.local:8443/a"}, TTL: time.Hour}},
		{"two SPIFFE IDs", Request{URIs: []string{"spiffe://t.local/a", "spiffe://t.local/b"}, TTL: time.Hour}},
		{"unknown key type", Request{DNSNames: []string{"a.example.com"}, TTL: time.Hour, Key: 9}},
		{"common name too long", Request{URIs: []string{"spiffe://t.local/a"}, TTL: time.Hour, CommonName: strings.Repeat("a", 65)}},
		{"common name control", Request{URIs: []string{"spiffe://t.local/a"}, TTL: time.Hour, CommonName: "a\nb"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := ca.IssueRequest(c.r); !errors.Is(err, ErrInvalidRequest) {
				t.Errorf("IssueRequest(%+v) = %v, want ErrInvalidRequest", c.r, err)
			}
		})
	}
}

// TestIssueForPublicKey: a request with PublicKey certifies that key and
// returns no private key; unsupported keys are refused.
func TestIssueForPublicKey(t *testing.T) {
	ca, err := LoadOrCreate(context.Background(), openStore(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id := "spiffe://trellis.local/account/111111111111/role/web"
	certPEM, keyPEM, err := ca.IssueRequest(Request{URIs: []string{id}, TTL: time.Hour, PublicKey: key.Public()})
	if err != nil || keyPEM != nil {
		t.Fatalf("IssueRequest: %v, key %q", err, keyPEM)
	}
	block, _ := pem.Decode(certPEM)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(leaf.PublicKey) || len(leaf.URIs) != 1 || leaf.URIs[0].String() != id {
		t.Fatalf("leaf: key %v, URIs %v", leaf.PublicKey, leaf.URIs)
	}
	if _, err := tls.X509KeyPair(certPEM, mustKeyPEM(t, key)); err != nil {
		t.Fatalf("the certificate does not pair with the requester's key: %v", err)
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	_, edPub, _ := ed25519.GenerateKey(rand.Reader)
	for name, k := range map[string]any{"P-224": p224.Public(), "RSA-1024": small.Public(), "Ed25519": edPub} {
		if _, _, err := ca.IssueRequest(Request{URIs: []string{id}, TTL: time.Hour, PublicKey: k}); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: got %v, want ErrInvalidRequest", name, err)
		}
	}
}

func mustKeyPEM(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
