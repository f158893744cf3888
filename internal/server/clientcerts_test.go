package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
	"github.com/trellis-mesh/trellis/internal/identity"
	"github.com/trellis-mesh/trellis/internal/server"
	"github.com/trellis-mesh/trellis/internal/sigv4"
	"github.com/trellis-mesh/trellis/internal/snapshot"
)

type clientCert struct {
	CertificatePem, PrivateKeyPem, CaPem, SpiffeId, Principal, NotAfter string
}

func parseLeaf(t *testing.T, certPEM string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		t.Fatalf("no PEM in %q", certPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// apiError is the error body of the native API.
type apiError struct {
	Message   string
	FieldList []struct{ Name string }
}

func TestClientCertificates(t *testing.T) {
	ts := startServer(t, t.TempDir(), lattice.Quotas{})
	admin := ts.adminKey()
	acct := ts.boot.Account
	call := func(k key, method, path string, in, out any) int {
		t.Helper()
		return nativeCallErr(t, ts, k, method, path, in, out)
	}
	call(admin, "POST", "/principals", map[string]any{"name": "orders", "type": "role", "tags": map[string]string{"team": "orders"}}, nil)
	call(admin, "POST", "/principals", map[string]any{"name": "a@b", "type": "user"}, nil)

	var cc clientCert
	if code := call(admin, "POST", "/principals/role/orders/certificates", map[string]any{}, &cc); code != 201 {
		t.Fatalf("create client certificate: %d %+v", code, cc)
	}
	wantID := "spiffe://trellis.local/account/" + acct + "/role/orders"
	if cc.SpiffeId != wantID || cc.Principal != "arn:aws:iam::"+acct+":role/orders" || cc.CaPem != string(ts.srv.CA().CertPEM()) {
		t.Errorf("answer %+v", cc)
	}
	if _, err := tls.X509KeyPair([]byte(cc.CertificatePem), []byte(cc.PrivateKeyPem)); err != nil {
		t.Errorf("certificate and key do not pair: %v", err)
	}
	leaf := parseLeaf(t, cc.CertificatePem)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(cc.CaPem))
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify with caPem: %v", err)
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != wantID || leaf.Subject.CommonName != "orders" || len(leaf.DNSNames) != 0 {
		t.Errorf("leaf URIs %v CN %q DNS %v", leaf.URIs, leaf.Subject.CommonName, leaf.DNSNames)
	}
	if life := time.Until(leaf.NotAfter); life < 23*time.Hour || life > 24*time.Hour {
		t.Errorf("default lifetime: until %v", leaf.NotAfter)
	}
	if cc.NotAfter != leaf.NotAfter.UTC().Format("2006-01-02T15:04:05.000Z") {
		t.Errorf("notAfter %s, leaf %v", cc.NotAfter, leaf.NotAfter)
	}
	if code := call(admin, "POST", "/principals/role/orders/certificates", map[string]any{"ttlHours": 2}, &cc); code != 201 {
		t.Fatalf("ttlHours 2: %d", code)
	}
	if life := time.Until(parseLeaf(t, cc.CertificatePem).NotAfter); life > 2*time.Hour || life < time.Hour {
		t.Errorf("ttlHours 2: lifetime %v", life)
	}

	// Validation names the field; missing principals are 404.
	for _, c := range []struct {
		path  string
		in    any
		code  int
		field string
	}{
		{"/principals/role/orders/certificates", map[string]any{"ttlHours": 0}, 400, "ttlHours"},
		{"/principals/role/orders/certificates", map[string]any{"ttlHours": 8761}, 400, "ttlHours"},
		{"/principals/group/orders/certificates", map[string]any{}, 400, "type"},
		{"/principals/user/a@b/certificates", map[string]any{}, 400, "name"},
		{"/principals/role/ghost/certificates", map[string]any{}, 404, ""},
		{"/principals/role/orders/certificates", map[string]any{"ttl": 1}, 400, ""},
		{"/principals/role/orders/certificates", map[string]any{"account": "999999999999"}, 404, ""},
	} {
		var e apiError
		if code := call(admin, "POST", c.path, c.in, &e); code != c.code {
			t.Errorf("%s %v: %d %+v, want %d", c.path, c.in, code, e, c.code)
		} else if c.field != "" && (len(e.FieldList) != 1 || e.FieldList[0].Name != c.field) {
			t.Errorf("%s %v: fields %+v, want %s", c.path, c.in, e.FieldList, c.field)
		}
	}

	// Another account's principal may not get certificates of this
	// account's principals, only of its own.
	call(admin, "POST", "/accounts", map[string]any{"name": "other", "id": "444455556666"}, nil)
	call(admin, "POST", "/principals", map[string]any{"name": "billing", "type": "role", "account": "444455556666"}, nil)
	var ak struct{ AccessKeyId, SecretAccessKey string }
	call(admin, "POST", "/accesskeys", map[string]any{"principal": "role/billing", "account": "444455556666"}, &ak)
	other := key{ak.AccessKeyId, ak.SecretAccessKey}
	if code := call(other, "POST", "/principals/role/orders/certificates", map[string]any{"account": acct}, nil); code != 403 {
		t.Errorf("another account's principal: %d, want 403", code)
	}
	if code := call(other, "POST", "/principals/role/orders/certificates", map[string]any{}, nil); code != 404 {
		t.Errorf("another account's principal, its own account: %d, want 404 (no orders there)", code)
	}
	if code := call(other, "POST", "/principals/role/billing/certificates", map[string]any{}, &cc); code != 201 ||
		cc.SpiffeId != "spiffe://trellis.local/account/444455556666/role/billing" {
		t.Errorf("own principal: %d %+v", code, cc)
	}
}

// TestSnapshotAuthenticatesCallers takes a gateway's view: from the
// snapshot stream it verifies a data-plane request the AWS SDK signed with
// a principal's key, and maps a client certificate issued through the API
// to the principal, holding no secret.
func TestSnapshotAuthenticatesCallers(t *testing.T) {
	ts := startNodeServer(t)
	admin := ts.adminKey()
	nativeCallErr(t, ts, admin, "POST", "/principals", map[string]any{"name": "orders", "type": "role",
		"tags": map[string]string{"team": "orders", "list": "a;b"}}, nil)
	var ak struct{ AccessKeyId, SecretAccessKey string }
	nativeCallErr(t, ts, admin, "POST", "/accesskeys", map[string]any{"principal": "role/orders"}, &ak)
	var cc clientCert
	nativeCallErr(t, ts, admin, "POST", "/principals/role/orders/certificates", map[string]any{}, &cc)

	s, code, body := openStream(t, ts, admin, "gw-auth", "vpc="+ts.boot.VPCID+"&version=0")
	if code != 200 {
		t.Fatalf("stream: %d %s", code, body)
	}
	snap := s.nextSnapshot()
	raw, _ := json.Marshal(snap)
	for _, secret := range []string{ak.SecretAccessKey, ts.secret} {
		if strings.Contains(string(raw), secret) {
			t.Fatal("the streamed snapshot contains a secret access key")
		}
	}
	if snap.Auth == nil || snap.Auth.ClientCAPEM != string(ts.srv.CA().CertPEM()) || snap.Auth.TrustDomain != "trellis.local" {
		t.Fatalf("auth material %+v", snap.Auth)
	}
	idx, err := snap.Auth.Compile(snap.Region)
	if err != nil {
		t.Fatal(err)
	}

	// SigV4, as the SDK signs for vpc-lattice-svcs.
	req, _ := http.NewRequest("GET", "https://orders.example/items?id=1", nil)
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: ak.AccessKeyId, SecretAccessKey: ak.SecretAccessKey},
		req, "UNSIGNED-PAYLOAD", "vpc-lattice-svcs", snap.Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	v := &sigv4.Verifier{SigningKey: idx.SigningKey, Region: snap.Region, Services: []string{snapshot.SigningService},
		AllowPresigned: true, RequireUnsignedPayload: true}
	res, err := v.Verify(context.Background(), req, nil)
	if err != nil {
		t.Fatalf("Verify with the snapshot's keys: %v", err)
	}
	p := idx.Principal(res.Principal)
	if p == nil || p.ARN != cc.Principal {
		t.Fatalf("principal %q: %+v", res.Principal, p)
	}
	if got := string(identity.AppendTags(nil, &p.Identity)); got != "principal="+p.ARN+`;principalorgid=;list=a\;b;team=orders` {
		t.Errorf("tags header %s", got)
	}

	// mTLS, with the certificate the API issued.
	leaf := parseLeaf(t, cc.CertificatePem)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: idx.ClientCAs(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("client certificate does not verify with the snapshot's CA: %v", err)
	}
	mp, ok := idx.PrincipalForCertificate(leaf)
	if !ok || mp.ARN != cc.Principal {
		t.Fatalf("PrincipalForCertificate: %+v %v", mp, ok)
	}
	id := mp.Identity
	id.X509 = identity.FromCertificate(leaf)
	if got, want := string(identity.AppendIdentity(nil, &id)), "Principal="+cc.Principal+
		"; PrincipalOrgID=; PrincipalOrgPaths=; SessionName=; Type=AWS_IAM; X509SAN/URI="+cc.SpiffeId+"; X509Subject/CN=orders"; got != want {
		t.Errorf("identity header\n got %s\nwant %s", got, want)
	}

	// Deleting the principal takes its key and certificates away.
	nativeCallErr(t, ts, admin, "DELETE", "/principals/role/orders", nil, nil)
	next := s.nextSnapshot()
	idx, err = next.Auth.Compile(next.Region)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := idx.PrincipalForCertificate(leaf); ok {
		t.Error("a deleted principal's certificate still maps to it")
	}
	v.SigningKey = idx.SigningKey
	if _, err := v.Verify(context.Background(), req, nil); err == nil {
		t.Error("a deleted principal's key still verifies")
	}
}

func TestTrustDomainIsFixedPerInstallation(t *testing.T) {
	dir := t.TempDir()
	ts := startServerWith(t, server.Config{DataDir: dir, TrustDomain: "mesh.example"})
	if ts.srv.TrustDomain() != "mesh.example" {
		t.Fatalf("TrustDomain %q", ts.srv.TrustDomain())
	}
	admin := ts.adminKey()
	nativeCallErr(t, ts, admin, "POST", "/principals", map[string]any{"name": "orders", "type": "role"}, nil)
	var cc clientCert
	if code := nativeCallErr(t, ts, admin, "POST", "/principals/role/orders/certificates", map[string]any{}, &cc); code != 201 ||
		cc.SpiffeId != "spiffe://mesh.example/account/"+ts.boot.Account+"/role/orders" {
		t.Fatalf("%d %+v", code, cc)
	}
	ts.stop()

	// Unset keeps the stored one; another one is refused.
	ts = startServerWith(t, server.Config{DataDir: dir})
	if ts.srv.TrustDomain() != "mesh.example" {
		t.Errorf("after a restart without --trust-domain: %q", ts.srv.TrustDomain())
	}
	ts.stop()
	for _, td := range []string{"other.example", "Bad Domain"} {
		srv, err := server.New(context.Background(), server.Config{DataDir: dir, APIAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", TrustDomain: td})
		if err == nil {
			_ = srv.Close()
			t.Errorf("trust domain %q accepted over the stored mesh.example", td)
		} else if !strings.Contains(err.Error(), "trust domain") {
			t.Errorf("trust domain %q: %v", td, err)
		}
	}
}
