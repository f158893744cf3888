package pki

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

func pkcs1(t testing.TB, c *testCert) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(c.key.(*rsa.PrivateKey))}))
}

func TestImportValid(t *testing.T) {
	_, inter, leaf := externalChain(t, "parking.example.com", "*.shop.example.com")
	got, err := Import(ImportInput{Certificate: leaf.pem, PrivateKey: pkcs8(t, leaf.key), CertificateChain: inter.pem}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.DomainNames, ",") != "parking.example.com,*.shop.example.com" {
		t.Errorf("DomainNames = %v", got.DomainNames)
	}
	if got.KeyAlgorithm != "RSA_2048" || got.ChainPEM != inter.pem || got.CertPEM != leaf.pem {
		t.Errorf("KeyAlgorithm %s, chain kept %v, leaf kept %v", got.KeyAlgorithm, got.ChainPEM == inter.pem, got.CertPEM == leaf.pem)
	}
	if !got.NotAfter.Equal(leaf.cert.NotAfter) || got.Subject != "CN=parking.example.com" || got.Issuer != "CN=Example Intermediate" {
		t.Errorf("NotAfter %v Subject %q Issuer %q", got.NotAfter, got.Subject, got.Issuer)
	}
	// The key is stored in PKCS#8 whatever form it came in.
	if b, _ := pem.Decode([]byte(got.KeyPEM)); b == nil || b.Type != "PRIVATE KEY" {
		t.Errorf("stored key is not PKCS#8: %q", got.KeyPEM)
	}

	// A "full chain" file in certificate works the same, and a PKCS#1 key.
	full, err := Import(ImportInput{Certificate: leaf.pem + inter.pem, PrivateKey: pkcs1(t, leaf)}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if full.CertPEM != leaf.pem || full.ChainPEM != inter.pem {
		t.Errorf("full chain split wrongly: %q / %q", full.CertPEM, full.ChainPEM)
	}

	// An EC key in SEC 1 form after openssl's EC PARAMETERS block; a host
	// name CN stands in for missing SANs.
	ec := makeCert(t, certOpts{cn: "API.example.com"})
	der, err := x509.MarshalECPrivateKey(ec.key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	sec1 := "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" +
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	got, err = Import(ImportInput{Certificate: ec.pem, PrivateKey: sec1}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got.KeyAlgorithm != "EC_prime256v1" || strings.Join(got.DomainNames, ",") != "api.example.com" || got.ChainPEM != "" {
		t.Errorf("EC import: %s %v %q", got.KeyAlgorithm, got.DomainNames, got.ChainPEM)
	}
}

func TestImportRejects(t *testing.T) {
	root, inter, leaf := externalChain(t, "parking.example.com")
	key := pkcs8(t, leaf.key)
	other := makeCert(t, certOpts{cn: "other.example.com", dns: []string{"other.example.com"}})
	expired := makeCert(t, certOpts{cn: "old.example.com", dns: []string{"old.example.com"}, notAfter: t0.Add(-time.Hour)})
	noNames := makeCert(t, certOpts{cn: "not a host"})
	weak := makeCert(t, certOpts{cn: "weak.example.com", dns: []string{"weak.example.com"}, key: rsaKey(t, 1024)})
	encrypted := "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
	legacyEncrypted := "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00000000000000000000000000000000\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"

	for _, c := range []struct {
		name  string
		in    ImportInput
		field string
		want  string
	}{
		{"no certificate", ImportInput{PrivateKey: key}, "certificate", "is required"},
		{"no key", ImportInput{Certificate: leaf.pem}, "privateKey", "is required"},
		{"certificate not PEM", ImportInput{Certificate: "hello", PrivateKey: key}, "certificate", "is not PEM"},
		{"key as certificate", ImportInput{Certificate: key, PrivateKey: key}, "certificate", `is "PRIVATE KEY", want CERTIFICATE`},
		{"garbage DER", ImportInput{Certificate: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", PrivateKey: key}, "certificate", "does not parse"},
		{"trailing data", ImportInput{Certificate: leaf.pem + "junk", PrivateKey: key}, "certificate", "data after the last PEM block"},
		{"key not PEM", ImportInput{Certificate: leaf.pem, PrivateKey: "secret"}, "privateKey", "is not PEM"},
		{"encrypted key", ImportInput{Certificate: leaf.pem, PrivateKey: encrypted}, "privateKey", "is encrypted"},
		{"legacy encrypted key", ImportInput{Certificate: leaf.pem, PrivateKey: legacyEncrypted}, "privateKey", "is encrypted"},
		{"two keys", ImportInput{Certificate: leaf.pem, PrivateKey: key + key}, "privateKey", "more than one PEM block"},
		{"certificate as key", ImportInput{Certificate: leaf.pem, PrivateKey: leaf.pem}, "privateKey", `PEM block is "CERTIFICATE"`},
		{"key of another certificate", ImportInput{Certificate: leaf.pem, PrivateKey: pkcs8(t, other.key)}, "privateKey", "does not match"},
		{"expired", ImportInput{Certificate: expired.pem, PrivateKey: pkcs8(t, expired.key)}, "certificate", "expired at"},
		{"no DNS names", ImportInput{Certificate: noNames.pem, PrivateKey: pkcs8(t, noNames.key)}, "certificate", "has no DNS names"},
		{"weak RSA", ImportInput{Certificate: weak.pem, PrivateKey: pkcs8(t, weak.key)}, "certificate", "1024-bit RSA key"},
		{"chain out of order", ImportInput{Certificate: leaf.pem, PrivateKey: key, CertificateChain: root.pem + inter.pem}, "certificateChain", "did not sign"},
		{"chain of another issuer", ImportInput{Certificate: leaf.pem, PrivateKey: key, CertificateChain: other.pem}, "certificateChain", "did not sign"},
		{"chain not PEM", ImportInput{Certificate: leaf.pem, PrivateKey: key, CertificateChain: "x"}, "certificateChain", "is not PEM"},
		{"certificate too big", ImportInput{Certificate: strings.Repeat("a", MaxCertificateBytes+1), PrivateKey: key}, "certificate", "at most"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Import(c.in, t0)
			var ve *model.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Import = %v, want a ValidationError", err)
			}
			for _, f := range ve.Fields {
				if f.Name == c.field && strings.Contains(f.Message, c.want) {
					return
				}
			}
			t.Errorf("Import = %v, want field %s: ...%s...", err, c.field, c.want)
		})
	}
}

func TestCovers(t *testing.T) {
	for _, c := range []struct {
		names  []string
		domain string
		want   bool
	}{
		{[]string{"parking.example.com"}, "parking.example.com", true},
		{[]string{"Parking.Example.com"}, "parking.example.COM.", true},
		{[]string{"*.example.com"}, "parking.example.com", true},
		{[]string{"*.example.com"}, "example.com", false},
		{[]string{"*.example.com"}, "a.parking.example.com", false},
		{[]string{"*.example.com"}, "*.example.com", true},
		{[]string{"parking.example.com"}, "*.example.com", false},
		{[]string{"*.example.com"}, ".example.com", false},
		{[]string{"example.com", "*.shop.example.com"}, "cart.shop.example.com", true},
		{[]string{"other.example.com"}, "parking.example.com", false},
		{nil, "parking.example.com", false},
		{[]string{"*.example.com"}, "", false},
	} {
		if got := Covers(c.names, c.domain); got != c.want {
			t.Errorf("Covers(%v, %q) = %v, want %v", c.names, c.domain, got, c.want)
		}
	}
}

func TestCertificateARN(t *testing.T) {
	id := NewCertificateID()
	if !IsCertificateID(id) {
		t.Fatalf("NewCertificateID() = %q is not an ID", id)
	}
	arn := CertificateARN("us-east-1", "123456789012", id)
	if arn != "arn:aws:acm:us-east-1:123456789012:certificate/"+id {
		t.Errorf("ARN = %s", arn)
	}
	acct, got, err := ParseCertificateARN(arn)
	if err != nil || acct != "123456789012" || got != id {
		t.Errorf("ParseCertificateARN = %s %s %v", acct, got, err)
	}
	for _, bad := range []string{"", "arn:aws:acm:us-east-1:123456789012:certificate/nope",
		"arn:aws:iam::123456789012:certificate/" + id, "arn:aws:acm:us-east-1:12:certificate/" + id} {
		if _, _, err := ParseCertificateARN(bad); err == nil {
			t.Errorf("ParseCertificateARN(%q) accepted", bad)
		}
	}
}

func TestLookupImported(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	_, inter, leaf := externalChain(t, "parking.example.com")
	rec, err := Import(ImportInput{Certificate: leaf.pem, PrivateKey: pkcs8(t, leaf.key), CertificateChain: inter.pem}, t0)
	if err != nil {
		t.Fatal(err)
	}
	rec.ID, rec.Account = NewCertificateID(), "123456789012"
	rec.ARN = CertificateARN("us-east-1", rec.Account, rec.ID)
	raw, _ := json.Marshal(rec)
	if _, err := st.Txn(ctx, nil, []store.Op{store.Put(ImportedKey(rec.Account, rec.ID), raw)}); err != nil {
		t.Fatal(err)
	}
	got, err := LookupImported(ctx, st, rec.ARN)
	if err != nil || got.ARN != rec.ARN || got.KeyPEM != rec.KeyPEM {
		t.Fatalf("LookupImported = %+v, %v", got, err)
	}
	if _, err := LookupImported(ctx, st, CertificateARN("us-east-1", rec.Account, NewCertificateID())); !errors.Is(err, ErrCertificateNotFound) {
		t.Errorf("missing certificate: %v, want ErrCertificateNotFound", err)
	}
	if _, err := LookupImported(ctx, st, "arn:aws:acm:us-east-1:123456789012:certificate/x"); !errors.Is(err, ErrCertificateNotFound) {
		t.Errorf("malformed ARN: %v, want ErrCertificateNotFound", err)
	}
}

// FuzzImport: whatever a user uploads, Import answers without crashing,
// and what it accepts pairs and parses.
func FuzzImport(f *testing.F) {
	// EC keys only: key generation under fuzzing instrumentation is slow.
	root := makeCert(f, certOpts{cn: "Example Root", isCA: true})
	inter := makeCert(f, certOpts{cn: "Example Intermediate", isCA: true, parent: root})
	leaf := makeCert(f, certOpts{cn: "parking.example.com", dns: []string{"parking.example.com"}, parent: inter})
	key := pkcs8(f, leaf.key)
	f.Add(leaf.pem, key, inter.pem)
	f.Add(leaf.pem+inter.pem, key, "")
	f.Add("-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n", "-----BEGIN EC PARAMETERS-----\n-----END EC PARAMETERS-----\n", "")
	f.Add("", "", "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n")
	f.Fuzz(func(t *testing.T, cert, key, chain string) {
		got, err := Import(ImportInput{Certificate: cert, PrivateKey: key, CertificateChain: chain}, t0)
		if err != nil {
			var ve *model.ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) == 0 {
				t.Fatalf("Import error %v is not a ValidationError naming fields", err)
			}
			return
		}
		if _, err := parseCertPEM([]byte(got.CertPEM)); err != nil {
			t.Fatalf("accepted certificate does not reparse: %v", err)
		}
		if len(got.DomainNames) == 0 {
			t.Fatal("accepted a certificate without names")
		}
	})
}
