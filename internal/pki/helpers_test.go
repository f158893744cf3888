package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/bolt"
)

// t0 is the tests' epoch.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "trellis.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// rsaKeys caches RSA keys across tests: generating one takes a while.
var rsaKeys = struct {
	sync.Mutex
	keys map[int]*rsa.PrivateKey
}{keys: map[int]*rsa.PrivateKey{}}

func rsaKey(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	rsaKeys.Lock()
	defer rsaKeys.Unlock()
	if k, ok := rsaKeys.keys[bits]; ok {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	rsaKeys.keys[bits] = k
	return k
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testCert is a certificate made outside the package's CA (an "external"
// one a user would import).
type testCert struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  string
}

type certOpts struct {
	cn        string
	dns       []string
	notBefore time.Time
	notAfter  time.Time
	isCA      bool
	key       crypto.Signer
	parent    *testCert // nil: self-signed
}

func makeCert(t testing.TB, o certOpts) *testCert {
	t.Helper()
	if o.key == nil {
		o.key = ecKey(t)
	}
	if o.notBefore.IsZero() {
		o.notBefore = t0.Add(-24 * time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = t0.Add(365 * 24 * time.Hour)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: o.cn}, DNSNames: o.dns,
		NotBefore: o.notBefore, NotAfter: o.notAfter, BasicConstraintsValid: true, IsCA: o.isCA,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if o.isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign
		tmpl.ExtKeyUsage = nil
	}
	parent, signer := tmpl, o.key
	if o.parent != nil {
		parent, signer = o.parent.cert, o.parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, o.key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{cert: c, key: o.key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

func pkcs8(t testing.TB, k crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// externalChain is root -> intermediate -> leaf (RSA-2048) for dns.
func externalChain(t testing.TB, dns ...string) (root, inter, leaf *testCert) {
	t.Helper()
	root = makeCert(t, certOpts{cn: "Example Root", isCA: true})
	inter = makeCert(t, certOpts{cn: "Example Intermediate", isCA: true, parent: root})
	leaf = makeCert(t, certOpts{cn: dns[0], dns: dns, key: rsaKey(t, 2048), parent: inter})
	return root, inter, leaf
}
