package server_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice/types"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/pki"
)

// nativeDo is a SigV4-signed native API call that returns the status,
// the error type header and the raw body.
func nativeDo(t *testing.T, ts *testServer, keyID, secret, method, path string, in any) (int, string, []byte) {
	t.Helper()
	var body []byte
	if in != nil {
		body, _ = json.Marshal(in)
	}
	req, _ := http.NewRequest(method, ts.endpoint+"/trellis/v1"+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}, req,
		hex.EncodeToString(sum[:]), "trellis", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), raw
}

// extCert is a certificate from outside Trellis, as a user would import it.
type extCert struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  string
}

func (c *extCert) keyPEM(t *testing.T) string {
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func newExtCert(t *testing.T, cn string, dns []string, isCA bool, key crypto.Signer, parent *extCert, notAfter time.Time) *extCert {
	t.Helper()
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = k
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, BasicConstraintsValid: true, IsCA: isCA,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign}
	p, signer := tmpl, key
	if parent != nil {
		p, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &extCert{cert: c, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

func TestCertificatesImportUseDelete(t *testing.T) {
	ts := startServer(t, t.TempDir(), lattice.Quotas{})
	ctx := context.Background()
	do := func(method, path string, in any) (int, string, []byte) {
		return nativeDo(t, ts, ts.boot.AccessKeyID, ts.secret, method, path, in)
	}
	year := time.Now().Add(365 * 24 * time.Hour)
	root := newExtCert(t, "Example Root", nil, true, nil, nil, year)
	inter := newExtCert(t, "Example Intermediate", nil, true, nil, root, year)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	leaf := newExtCert(t, "*.example.com", []string{"*.example.com"}, false, rsaKey, inter, year)

	code, _, raw := do("POST", "/certificates", map[string]any{"certificate": leaf.pem, "privateKey": leaf.keyPEM(t),
		"certificateChain": inter.pem, "tags": map[string]string{"team": "shop"}})
	if code != 201 {
		t.Fatalf("import: %d %s", code, raw)
	}
	var imported struct {
		CertificateArn string   `json:"certificateArn"`
		ID             string   `json:"id"`
		DomainNames    []string `json:"domainNames"`
		NotAfter       string   `json:"notAfter"`
		KeyAlgorithm   string   `json:"keyAlgorithm"`
	}
	if err := json.Unmarshal(raw, &imported); err != nil {
		t.Fatal(err)
	}
	arnRE := regexp.MustCompile(`^arn:aws:acm:us-east-1:` + ts.boot.Account + `:certificate/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !arnRE.MatchString(imported.CertificateArn) || !strings.HasSuffix(imported.CertificateArn, imported.ID) {
		t.Errorf("certificateArn = %q, id = %q", imported.CertificateArn, imported.ID)
	}
	if strings.Join(imported.DomainNames, ",") != "*.example.com" || imported.KeyAlgorithm != "RSA_2048" ||
		imported.NotAfter != leaf.cert.NotAfter.UTC().Format("2006-01-02T15:04:05.000Z") {
		t.Errorf("import answer = %s", raw)
	}

	// Reads, by ID and by ARN, never show the private key.
	for _, path := range []string{"/certificates", "/certificates/" + imported.ID, "/certificates/" + url.PathEscape(imported.CertificateArn)} {
		code, _, raw := do("GET", path, nil)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, raw)
		}
		if bytes.Contains(raw, []byte("PRIVATE KEY")) || bytes.Contains(raw, []byte("keyPem")) {
			t.Errorf("GET %s shows the private key: %s", path, raw)
		}
	}
	_, _, raw = do("GET", "/certificates/"+imported.ID, nil)
	var one map[string]any
	_ = json.Unmarshal(raw, &one)
	if one["certificate"] != leaf.pem || one["certificateChain"] != inter.pem {
		t.Errorf("GET one lacks the certificate or chain: %s", raw)
	}

	// A service uses it for its custom domain; the issuer serves it.
	admin := ts.admin()
	svc := must[*vpclattice.CreateServiceOutput](t)(admin.CreateService(ctx, &vpclattice.CreateServiceInput{Name: aws.String("parking"),
		CustomDomainName: aws.String("parking.example.com"), CertificateArn: aws.String(imported.CertificateArn)}))
	ca, err := pki.LoadOrCreate(ctx, ts.srv.Store(), nil)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := pki.NewIssuer(pki.IssuerConfig{Store: ts.srv.Store(), CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	m := modelService(svc.Id, svc.Arn, ts.boot.Account, "parking.example.com", imported.CertificateArn, svc.DnsEntry)
	served, err := issuer.ServiceCertificate(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root.cert)
	if served.ARN != imported.CertificateArn || pki.Verify([]byte(served.CertPEM), roots, []string{"parking.example.com"}, time.Now()) != nil {
		t.Errorf("served imported certificate: ARN %s", served.ARN)
	}
	m.CustomDomainName = "a.parking.example.com"
	if _, err := issuer.ServiceCertificate(ctx, m); !errors.Is(err, pki.ErrNameMismatch) {
		t.Errorf("two labels under the wildcard: %v, want ErrNameMismatch", err)
	}

	// In use: listed as such, and not deletable.
	var list struct{ Items []map[string]any }
	_, _, raw = do("GET", "/certificates", nil)
	_ = json.Unmarshal(raw, &list)
	if len(list.Items) != 1 || !strings.Contains(string(raw), aws.ToString(svc.Arn)) {
		t.Errorf("list = %s", raw)
	}
	code, typ, raw := do("DELETE", "/certificates/"+imported.ID, nil)
	if code != 409 || typ != "ConflictException" || !strings.Contains(string(raw), aws.ToString(svc.Arn)) {
		t.Errorf("delete in use: %d %s %s", code, typ, raw)
	}
	must[*vpclattice.DeleteServiceOutput](t)(admin.DeleteService(ctx, &vpclattice.DeleteServiceInput{ServiceIdentifier: svc.Id}))
	if code, _, raw := do("DELETE", "/certificates/"+url.PathEscape(imported.CertificateArn), nil); code != 204 {
		t.Errorf("delete unused: %d %s", code, raw)
	}
	if code, typ, _ := do("GET", "/certificates/"+imported.ID, nil); code != 404 || typ != "ResourceNotFoundException" {
		t.Errorf("get deleted: %d %s", code, typ)
	}
	if _, err := issuer.ServiceCertificate(ctx, m); !errors.Is(err, pki.ErrCertificateNotFound) {
		t.Errorf("deleted certificate: %v, want ErrCertificateNotFound", err)
	}
}

func modelService(id, arn *string, account, custom, certARN string, dns *types.DnsEntry) *model.Service {
	return &model.Service{Meta: model.Meta{ID: aws.ToString(id), ARN: aws.ToString(arn), Account: account},
		CustomDomainName: custom, CertificateARN: certARN,
		DNSEntry: model.DNSEntry{DomainName: aws.ToString(dns.DomainName), HostedZoneID: aws.ToString(dns.HostedZoneId)}}
}

func TestCertificatesImportValidation(t *testing.T) {
	ts := startServer(t, t.TempDir(), lattice.Quotas{})
	year := time.Now().Add(365 * 24 * time.Hour)
	leaf := newExtCert(t, "api.example.com", []string{"api.example.com"}, false, nil, nil, year)
	other := newExtCert(t, "other.example.com", []string{"other.example.com"}, false, nil, nil, year)
	expired := newExtCert(t, "old.example.com", []string{"old.example.com"}, false, nil, nil, time.Now().Add(-time.Minute))
	for _, c := range []struct {
		name  string
		in    map[string]any
		field string
	}{
		{"certificate not PEM", map[string]any{"certificate": "nope", "privateKey": leaf.keyPEM(t)}, "certificate"},
		{"key missing", map[string]any{"certificate": leaf.pem}, "privateKey"},
		{"key of another certificate", map[string]any{"certificate": leaf.pem, "privateKey": other.keyPEM(t)}, "privateKey"},
		{"expired", map[string]any{"certificate": expired.pem, "privateKey": expired.keyPEM(t)}, "certificate"},
		{"chain that did not sign", map[string]any{"certificate": leaf.pem, "privateKey": leaf.keyPEM(t), "certificateChain": other.pem}, "certificateChain"},
		{"unknown member", map[string]any{"certificate": leaf.pem, "privateKey": leaf.keyPEM(t), "key": "x"}, "key"},
		{"reserved tag", map[string]any{"certificate": leaf.pem, "privateKey": leaf.keyPEM(t), "tags": map[string]string{"aws:x": "y"}}, "tags.aws:x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, typ, raw := nativeDo(t, ts, ts.boot.AccessKeyID, ts.secret, "POST", "/certificates", c.in)
			var body struct {
				FieldList []struct{ Name, Message string } `json:"fieldList"`
			}
			_ = json.Unmarshal(raw, &body)
			if code != 400 || typ != "ValidationException" || len(body.FieldList) == 0 || body.FieldList[0].Name != c.field {
				t.Errorf("import: %d %s %s, want a ValidationException naming %s", code, typ, raw, c.field)
			}
		})
	}
	if code, _, _ := nativeDo(t, ts, ts.boot.AccessKeyID, ts.secret, "GET", "/certificates/not-an-id", nil); code != 404 {
		t.Errorf("GET malformed id: %d, want 404", code)
	}
}

func TestCertificatesAreAccountScoped(t *testing.T) {
	ts := startServer(t, t.TempDir(), lattice.Quotas{})
	admin := func(method, path string, in any) (int, string, []byte) {
		return nativeDo(t, ts, ts.boot.AccessKeyID, ts.secret, method, path, in)
	}
	leaf := newExtCert(t, "api.example.com", []string{"api.example.com"}, false, nil, nil, time.Now().Add(time.Hour))
	_, _, raw := admin("POST", "/certificates", map[string]any{"certificate": leaf.pem, "privateKey": leaf.keyPEM(t)})
	var cert struct{ CertificateArn, ID string }
	_ = json.Unmarshal(raw, &cert)

	var acct struct{ ID string }
	_, _, raw = admin("POST", "/accounts", map[string]string{"name": "tenant"})
	_ = json.Unmarshal(raw, &acct)
	admin("POST", "/principals", map[string]any{"name": "dev", "type": "role", "account": acct.ID})
	var key struct{ AccessKeyId, SecretAccessKey string }
	_, _, raw = admin("POST", "/accesskeys", map[string]string{"principal": "role/dev", "account": acct.ID})
	_ = json.Unmarshal(raw, &key)
	tenant := func(method, path string) int {
		code, _, _ := nativeDo(t, ts, key.AccessKeyId, key.SecretAccessKey, method, path, nil)
		return code
	}
	for _, path := range []string{"/certificates/" + cert.ID, "/certificates/" + url.PathEscape(cert.CertificateArn)} {
		if code := tenant("GET", path); code != 404 {
			t.Errorf("tenant GET %s: %d, want 404", path, code)
		}
		if code := tenant("DELETE", path); code != 404 {
			t.Errorf("tenant DELETE %s: %d, want 404", path, code)
		}
	}
	code, _, raw := nativeDo(t, ts, key.AccessKeyId, key.SecretAccessKey, "GET", "/certificates", nil)
	if code != 200 || strings.Contains(string(raw), cert.ID) {
		t.Errorf("tenant list: %d %s", code, raw)
	}
	// The admin may import into and read from the tenant's account.
	code, _, raw = admin("POST", "/certificates", map[string]any{"certificate": leaf.pem, "privateKey": leaf.keyPEM(t), "account": acct.ID})
	if code != 201 || !strings.Contains(string(raw), ":"+acct.ID+":certificate/") {
		t.Errorf("admin import for tenant: %d %s", code, raw)
	}
}

func TestCAFileVerifiesIssuedCertificates(t *testing.T) {
	ts := startServer(t, t.TempDir(), lattice.Quotas{})
	ctx := context.Background()
	ca, err := pki.LoadOrCreate(ctx, ts.srv.Store(), nil)
	if err != nil {
		t.Fatal(err)
	}
	path, err := ca.WriteCAFile(ts.dataDir)
	if err != nil || path != filepath.Join(ts.dataDir, "ca.pem") {
		t.Fatalf("WriteCAFile = %s, %v", path, err)
	}
	svc := must[*vpclattice.CreateServiceOutput](t)(ts.admin().CreateService(ctx, &vpclattice.CreateServiceInput{Name: aws.String("orders")}))
	issuer, err := pki.NewIssuer(pki.IssuerConfig{Store: ts.srv.Store(), CA: ca, KeyType: pki.KeyECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	c, err := issuer.ServiceCertificate(ctx, modelService(svc.Id, svc.Arn, ts.boot.Account, "", "", svc.DnsEntry))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b) {
		t.Fatal("ca.pem holds no certificate")
	}
	if err := pki.Verify([]byte(c.CertPEM), roots, []string{aws.ToString(svc.DnsEntry.DomainName)}, time.Now()); err != nil {
		t.Errorf("issued certificate does not verify against ca.pem: %v", err)
	}
}
