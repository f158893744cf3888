package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net/url"
	"testing"
	"time"
)

// testCert signs a leaf for uri (and usage) with parent (self-signed CA
// when parent is nil).
func testCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, uri string, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
	}
	if uri != "" {
		u, _ := url.Parse(uri)
		tmpl.URIs = []*url.URL{u}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

// TestVerifyPeer: egress accepts a server of the same CA and trust domain
// only.
func TestVerifyPeer(t *testing.T) {
	ca, caKey := testCert(t, nil, nil, "", true)
	other, otherKey := testCert(t, nil, nil, "", true)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	id := &identity{}
	id.cur.Store(&issued{roots: roots, trustDomain: "trellis.local", peers: "spiffe://trellis.local/account/111122223333/"})
	state := func(c *x509.Certificate) tls.ConnectionState {
		return tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}}
	}

	good, _ := testCert(t, ca, caKey, "spiffe://trellis.local/account/111122223333/role/web", false)
	if err := id.verifyPeer(state(good), x509.ExtKeyUsageServerAuth); err != nil {
		t.Errorf("same CA and trust domain: %v", err)
	}
	for name, c := range map[string]*x509.Certificate{
		"other trust domain": func() *x509.Certificate {
			c, _ := testCert(t, ca, caKey, "spiffe://evil.example/account/111122223333/role/web", false)
			return c
		}(),
		"other account": func() *x509.Certificate {
			c, _ := testCert(t, ca, caKey, "spiffe://trellis.local/account/444455556666/role/web", false)
			return c
		}(),
		"no SPIFFE ID": func() *x509.Certificate { c, _ := testCert(t, ca, caKey, "", false); return c }(),
		"other CA": func() *x509.Certificate {
			c, _ := testCert(t, other, otherKey, "spiffe://trellis.local/account/111122223333/role/web", false)
			return c
		}(),
	} {
		if err := id.verifyPeer(state(c), x509.ExtKeyUsageServerAuth); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := id.verifyPeer(tls.ConnectionState{}, x509.ExtKeyUsageServerAuth); err == nil {
		t.Error("no certificate: accepted")
	}
	if err := (&identity{}).verifyPeer(state(good), x509.ExtKeyUsageServerAuth); err == nil {
		t.Error("before the agent has a certificate: accepted")
	}
}
