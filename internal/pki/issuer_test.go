package pki

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

const acct = "123456789012"

func testService(id, custom string) *model.Service {
	return &model.Service{Meta: model.Meta{ID: id, Account: acct}, Name: "orders", CustomDomainName: custom,
		DNSEntry: model.DNSEntry{DomainName: "orders-" + id[4:] + ".1a2b3c4.vpc-lattice-svcs.us-east-1.on.aws"}}
}

type issuerEnv struct {
	st  store.Store
	ca  *CA
	clk *clock
	is  *Issuer
}

func newIssuerEnv(t *testing.T, keyType KeyType) *issuerEnv {
	t.Helper()
	e := &issuerEnv{st: openStore(t), clk: &clock{now: t0}}
	var err error
	if e.ca, err = LoadOrCreate(context.Background(), e.st, e.clk.Now); err != nil {
		t.Fatal(err)
	}
	e.is = e.issuer(t, keyType)
	return e
}

func (e *issuerEnv) issuer(t *testing.T, keyType KeyType) *Issuer {
	t.Helper()
	is, err := NewIssuer(IssuerConfig{Store: e.st, CA: e.ca, Now: e.clk.Now, KeyType: keyType})
	if err != nil {
		t.Fatal(err)
	}
	return is
}

func TestIssuerIssuesForGeneratedAndCustomNames(t *testing.T) {
	e := newIssuerEnv(t, 0) // the default: RSA-2048
	ctx := context.Background()
	svc := testService("svc-0123456789abcdef0", "Orders.Example.com")
	c, err := e.is.ServiceCertificate(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	if c.ARN != "" {
		t.Errorf("issued certificate has ARN %q", c.ARN)
	}
	names := []string{svc.DNSEntry.DomainName, "orders.example.com"}
	if err := Verify([]byte(c.CertPEM), e.ca.Pool(), names, t0); err != nil {
		t.Fatalf("issued chain does not verify against the CA: %v", err)
	}
	pair, err := tls.X509KeyPair([]byte(c.CertPEM), []byte(c.KeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := pair.Leaf.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 {
		t.Errorf("default key is %T, want RSA-2048", pair.Leaf.PublicKey)
	}
	if got := pair.Leaf.NotAfter.Sub(t0); got != DefaultLifetime {
		t.Errorf("lifetime %v, want %v", got, DefaultLifetime)
	}
	if c.NotAfter != t0.Add(DefaultLifetime).Format(time.RFC3339) {
		t.Errorf("NotAfter = %s", c.NotAfter)
	}
	if want := t0.Add(DefaultLifetime * 2 / 3); !e.is.NextRenewal().Equal(want) {
		t.Errorf("NextRenewal = %v, want %v", e.is.NextRenewal(), want)
	}
}

func TestIssuerReusesThenRenews(t *testing.T) {
	e := newIssuerEnv(t, KeyECDSAP256)
	ctx := context.Background()
	svc := testService("svc-0123456789abcdef0", "")
	first, err := e.is.ServiceCertificate(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}

	// Reused: by the same issuer, and by another one (another server, or
	// a restart) through the store.
	e.clk.Advance(DefaultLifetime / 2)
	for name, is := range map[string]*Issuer{"same issuer": e.is, "new issuer": e.issuer(t, KeyECDSAP256)} {
		again, err := is.ServiceCertificate(ctx, svc)
		if err != nil {
			t.Fatal(err)
		}
		if again.CertPEM != first.CertPEM || again.KeyPEM != first.KeyPEM {
			t.Errorf("%s: certificate reissued at half its lifetime", name)
		}
	}

	// Renewed once less than a third of the lifetime remains.
	e.clk.Advance(DefaultLifetime/6 + time.Minute)
	renewed, err := e.is.ServiceCertificate(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.CertPEM == first.CertPEM {
		t.Fatal("certificate not renewed with less than a third of its lifetime left")
	}
	if err := Verify([]byte(renewed.CertPEM), e.ca.Pool(), []string{svc.DNSEntry.DomainName}, e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	// The renewal is what the store (and so every server) now hands out.
	fromStore, err := e.issuer(t, KeyECDSAP256).ServiceCertificate(ctx, svc)
	if err != nil || fromStore.CertPEM != renewed.CertPEM {
		t.Errorf("another issuer after renewal: %v, same cert %v", err, fromStore != nil && fromStore.CertPEM == renewed.CertPEM)
	}
}

func TestIssuerReissuesWhenNamesChange(t *testing.T) {
	e := newIssuerEnv(t, KeyECDSAP256)
	ctx := context.Background()
	svc := testService("svc-0123456789abcdef0", "")
	first, err := e.is.ServiceCertificate(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	svc.CustomDomainName = "orders.example.com"
	second, err := e.is.ServiceCertificate(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	if second.CertPEM == first.CertPEM {
		t.Fatal("names changed but the certificate was reused")
	}
	if err := Verify([]byte(second.CertPEM), e.ca.Pool(), []string{"orders.example.com"}, t0); err != nil {
		t.Error(err)
	}
}

func TestIssuerSharesOneIssuance(t *testing.T) {
	e := newIssuerEnv(t, KeyECDSAP256)
	ctx := context.Background()
	svc := testService("svc-0123456789abcdef0", "")
	var wg sync.WaitGroup
	certs := make([]string, 8)
	for i := range certs {
		wg.Go(func() {
			c, err := e.is.ServiceCertificate(ctx, svc)
			if err != nil {
				t.Error(err)
				return
			}
			certs[i] = c.CertPEM
		})
	}
	wg.Wait()
	for _, c := range certs[1:] {
		if c != certs[0] {
			t.Fatal("concurrent calls for one service got different certificates")
		}
	}
}

func TestIssuerImported(t *testing.T) {
	e := newIssuerEnv(t, KeyECDSAP256)
	ctx := context.Background()
	_, inter, leaf := externalChain(t, "*.example.com")
	rec, err := Import(ImportInput{Certificate: leaf.pem, PrivateKey: pkcs8(t, leaf.key), CertificateChain: inter.pem}, t0)
	if err != nil {
		t.Fatal(err)
	}
	rec.ID, rec.Account = NewCertificateID(), acct
	rec.ARN = CertificateARN("us-east-1", acct, rec.ID)
	raw, _ := json.Marshal(rec)
	if _, err := e.st.Txn(ctx, nil, []store.Op{store.Put(ImportedKey(acct, rec.ID), raw)}); err != nil {
		t.Fatal(err)
	}

	svc := testService("svc-0123456789abcdef0", "parking.example.com")
	svc.CertificateARN = rec.ARN
	c, err := e.is.ServiceCertificate(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	if c.ARN != rec.ARN || c.CertPEM != leaf.pem+inter.pem || c.KeyPEM != rec.KeyPEM {
		t.Errorf("imported certificate: ARN %s, chain served %v", c.ARN, c.CertPEM == leaf.pem+inter.pem)
	}
	if _, err := tls.X509KeyPair([]byte(c.CertPEM), []byte(c.KeyPEM)); err != nil {
		t.Errorf("imported pair: %v", err)
	}

	for _, tc := range []struct {
		name   string
		mutate func(s *model.Service)
		want   error
	}{
		{"two levels under the wildcard", func(s *model.Service) { s.CustomDomainName = "a.parking.example.com" }, ErrNameMismatch},
		{"the apex", func(s *model.Service) { s.CustomDomainName = "example.com" }, ErrNameMismatch},
		{"missing", func(s *model.Service) { s.CertificateARN = CertificateARN("us-east-1", acct, NewCertificateID()) }, ErrCertificateNotFound},
		{"another account's service", func(s *model.Service) { s.Account = "210987654321" }, ErrCertificateNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := *svc
			tc.mutate(&s)
			if _, err := e.is.ServiceCertificate(ctx, &s); !errors.Is(err, tc.want) {
				t.Errorf("ServiceCertificate = %v, want %v", err, tc.want)
			}
		})
	}
	e.clk.Advance(2 * 365 * 24 * time.Hour)
	if _, err := e.is.ServiceCertificate(ctx, svc); !errors.Is(err, ErrExpired) {
		t.Errorf("after notAfter: %v, want ErrExpired", err)
	}
}

func TestIssuerPrune(t *testing.T) {
	e := newIssuerEnv(t, KeyECDSAP256)
	ctx := context.Background()
	live, gone := testService("svc-0000000000000000a", ""), testService("svc-0000000000000000b", "")
	raw, _ := json.Marshal(live)
	if _, err := e.st.Txn(ctx, nil, []store.Op{store.Put("/lattice/"+acct+"/svc/"+live.ID, raw)}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*model.Service{live, gone} {
		if _, err := e.is.ServiceCertificate(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	n, err := e.is.Prune(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1", n, err)
	}
	res, err := e.st.List(ctx, IssuedPrefix, store.ListOptions{})
	if err != nil || len(res.Items) != 1 || res.Items[0].Key != IssuedPrefix+live.ID {
		t.Errorf("after Prune: %v %v", res.Items, err)
	}
}

func TestNewIssuerChecksConfig(t *testing.T) {
	e := newIssuerEnv(t, KeyECDSAP256)
	for _, cfg := range []IssuerConfig{{CA: e.ca}, {Store: e.st}, {Store: e.st, CA: e.ca, Lifetime: MaxLeafTTL + 1}} {
		if _, err := NewIssuer(cfg); err == nil {
			t.Errorf("NewIssuer(%+v) accepted", cfg)
		}
	}
	if _, err := e.is.ServiceCertificate(context.Background(), &model.Service{Meta: model.Meta{ID: "svc-x"}}); err == nil {
		t.Error("a service without a DNS name got a certificate")
	}
}
