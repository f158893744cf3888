package proxy

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/sigv4"
	"github.com/trellis-mesh/trellis/internal/snapshot"
)

// authKey is an access key of a test principal.
type authKey struct{ id, secret, name string }

func (k authKey) arn() string { return model.PrincipalARN(testAccount, "role", k.name) }

var (
	readerKey = authKey{"AKIAREADER0000000001", "reader-secret-0000000000000000000000001", "orders-reader"}
	otherKey  = authKey{"AKIAOTHER00000000002", "other-secret-00000000000000000000000002", "other"}
)

// testAuth is auth material for readerKey and otherKey, both allowed
// Invoke by their identity policies, with ca (if any) as the client CA.
func testAuth(t testing.TB, ca *testCA) *snapshot.AuthMaterial {
	t.Helper()
	mat := &snapshot.AuthMaterial{Service: snapshot.SigningService, TrustDomain: iam.DefaultTrustDomain}
	now := time.Now().UTC()
	for _, k := range []authKey{readerKey, otherKey} {
		mat.Principals = append(mat.Principals, snapshot.Principal{ARN: k.arn(), Account: testAccount, Type: "role", Name: k.name,
			Tags:           map[string]string{"team": k.name},
			IdentityPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"vpc-lattice-svcs:Invoke","Resource":"*"}]}`})
		for _, d := range []time.Time{now.AddDate(0, 0, -1), now, now.AddDate(0, 0, 1)} {
			date := d.Format("20060102")
			mat.SigningKeys = append(mat.SigningKeys, snapshot.SigningKey{AccessKeyID: k.id, Date: date, PrincipalARN: k.arn(),
				Key: hex.EncodeToString(sigv4.DeriveSigningKey(k.secret, date, testRegion, snapshot.SigningService))})
		}
	}
	if ca != nil {
		mat.ClientCAPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))
	}
	return mat
}

// ordersAuthPolicy lets the reader role GET /orders/*, anyone GET
// /public/*, and denies /admin to everyone.
func ordersAuthPolicy(svcID string) string {
	arn := svcARN(svcID)
	return `{"Version":"2012-10-17","Statement":[` +
		`{"Effect":"Allow","Principal":{"AWS":"` + readerKey.arn() + `"},"Action":"vpc-lattice-svcs:Invoke","Resource":"` + arn + `/orders/*"},` +
		`{"Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Invoke","Resource":"` + arn + `/public/*"},` +
		`{"Effect":"Deny","Principal":"*","Action":"vpc-lattice-svcs:Invoke","Resource":["` + arn + `/admin","` + arn + `/admin/*"]}]}`
}

type authSetup struct {
	port int32
	b    *backend
	rec  *recorder
}

// newAuthSetup serves svc-iam (AWS_IAM, ordersAuthPolicy) and svc-open
// (NONE) on one plain-text port.
func newAuthSetup(t *testing.T, fast bool) *authSetup {
	s := &authSetup{port: freePort(t), b: newBackend(t, "b"), rec: &recorder{}}
	iamSvc := testService("svc-iam", "iam.example.on.aws", listener("l-iam", model.ProtocolHTTP, s.port, defaultRule(fwd(wtg{"tg-b", 1}))))
	iamSvc.AuthType, iamSvc.AuthPolicy = model.AuthTypeAWSIAM, ordersAuthPolicy("svc-iam")
	open := testService("svc-open", "open.example.on.aws", listener("l-open", model.ProtocolHTTP, s.port, defaultRule(fwd(wtg{"tg-b", 1}))))
	e := newEngine(t, Config{Observer: s.rec})
	e.h1fast = fast
	snap := testSnapshot(1, []snapshot.Service{iamSvc, open}, testTG("tg-b", model.ProtocolHTTP, "", s.b.addr()))
	snap.Auth = testAuth(t, nil)
	mustApply(t, e, snap)
	return s
}

// signedGet sends GET through c, SigV4-signed by k when k is not nil.
func signedGet(t *testing.T, c *http.Client, rawURL string, k *authKey, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	if k != nil {
		req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: k.id, SecretAccessKey: k.secret},
			req, "UNSIGNED-PAYLOAD", snapshot.SigningService, testRegion, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestAuthSigV4(t *testing.T) { forEachPath(t, testAuthSigV4) }

func testAuthSigV4(t *testing.T, fast bool) {
	s := newAuthSetup(t, fast)
	c := httpClient(t, s.port)

	// The reader role, signed: through, with its identity, whatever
	// identity the client claimed.
	resp, body := signedGet(t, c, "http://iam.example.on.aws/orders/1", &readerKey,
		"X-Amzn-Lattice-Identity", "Principal=arn:aws:iam::999999999999:role/admin", "X-Amzn-Lattice-Identity-Tags", "team=admins",
		"X_amzn_lattice_identity", "Principal=forged")
	if resp.StatusCode != 200 || body != "b" {
		t.Fatalf("signed reader: %d %q, want 200 from the target", resp.StatusCode, body)
	}
	got := s.b.last()
	wantID := "Principal=" + readerKey.arn() + "; PrincipalOrgID=; PrincipalOrgPaths=; SessionName=; Type=AWS_IAM"
	if v := got.Header.Values("X-Amzn-Lattice-Identity"); len(v) != 1 || v[0] != wantID {
		t.Errorf("target saw x-amzn-lattice-identity %q, want only %q", v, wantID)
	}
	if v := got.Header.Values("X_amzn_lattice_identity"); len(v) != 0 {
		t.Errorf("the target saw an underscore twin of the identity header: %q", v)
	}
	if v := got.Header.Values("X-Amzn-Lattice-Identity-Tags"); len(v) != 1 || !strings.Contains(v[0], "team=orders-reader") || strings.Contains(v[0], "admins") {
		t.Errorf("target saw x-amzn-lattice-identity-tags %q, want the reader's tags only", v)
	}

	seen := s.b.count()
	for _, tc := range []struct {
		name, path string
		key        *authKey
		want       string
	}{
		{"unsigned", "/orders/1", nil, "AccessDeniedException: User: anonymous is not authorized to perform: vpc-lattice-svcs:Invoke on resource: " +
			svcARN("svc-iam") + "/orders/1 because no service-based policy allows the vpc-lattice-svcs:Invoke action\n"},
		{"other role", "/orders/1", &otherKey, "AccessDeniedException: User: " + otherKey.arn() + " is not authorized"},
		{"reader, denied path", "/admin/x", &readerKey, "with an explicit deny in a service-based policy"},
	} {
		resp, body := signedGet(t, c, "http://iam.example.on.aws"+tc.path, tc.key)
		if resp.StatusCode != 403 || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %q, want 403 with %q", tc.name, resp.StatusCode, body, tc.want)
		}
	}
	if n := s.b.count(); n != seen {
		t.Errorf("denied requests reached the target: %d new requests", n-seen)
	}

	// Anonymous callers get what Principal "*" allows, and an anonymous
	// identity header.
	if resp, _ := signedGet(t, c, "http://iam.example.on.aws/public/x", nil, "X-Amzn-Lattice-Identity", "Principal=forged"); resp.StatusCode != 200 {
		t.Fatalf("anonymous /public/x: %d, want 200", resp.StatusCode)
	}
	if v := s.b.last().Header.Values("X-Amzn-Lattice-Identity"); len(v) != 1 || v[0] != "Type=ANONYMOUS" {
		t.Errorf("anonymous caller: target saw identity %q, want Type=ANONYMOUS", v)
	}

	// A service without auth sends no identity, and drops a forged one.
	if resp, _ := signedGet(t, c, "http://open.example.on.aws/x", nil, "X-Amzn-Lattice-Identity", "Principal=forged"); resp.StatusCode != 200 {
		t.Fatalf("open service: %d", resp.StatusCode)
	}
	if v := s.b.last().Header.Values("X-Amzn-Lattice-Identity"); len(v) != 0 {
		t.Errorf("open service: target saw identity %q, want none", v)
	}

	// The access log names the caller and the denying layer.
	var denied, allowed bool
	for _, r := range s.rec.all() {
		if r.Status == 403 && r.CallerPrincipal == otherKey.arn() && r.AuthDeniedReason == "Service" && r.FailureReason == "ClientAccessDenied" {
			denied = true
		}
		if r.Status == 200 && r.CallerPrincipal == readerKey.arn() && r.AuthDeniedReason == "" {
			allowed = true
		}
	}
	if !denied || !allowed {
		t.Errorf("access-log records: denied other role logged %t, allowed reader logged %t; records %+v", denied, allowed, s.rec.all())
	}
}

// rawTarget sends one HTTP/1.1 request with the request target exactly as
// given (no client-side cleaning) and returns the status and body.
func rawTarget(t *testing.T, port int32, host, target string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, host)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAuthPathTricks: no spelling of a denied path gets past the policy,
// because policies see the path the target receives (and, for encoded
// slashes, also the path a decoding target would see).
func TestAuthPathTricks(t *testing.T) { forEachPath(t, testAuthPathTricks) }

func testAuthPathTricks(t *testing.T, fast bool) {
	s := newAuthSetup(t, fast)
	if code, _ := rawTarget(t, s.port, "iam.example.on.aws", "/public/ok"); code != 200 {
		t.Fatalf("/public/ok: %d, want 200", code)
	}
	seen := s.b.count()
	for _, target := range []string{
		"/admin/x",
		"/admin",
		"//admin/x",
		"/public//..//admin/x",
		"/./admin/x",
		"/public/../admin/x",
		"/public/%2e%2e/admin/x",
		"/public/%2E%2E/admin/x",
		"/public/%2e./admin/x",
		"/%61dmin/x",
		"/%61%64%6D%69%6E/x",
		"/admin%2Fx",
		"/admin%2fx",
		"/public%2F..%2Fadmin%2Fx",
		"/public/..%2Fadmin",
		"/admin%5Cx",
		"/public/x/../../admin/x",
		`/public\..\admin\x`,
		"/public/..;/admin/x",
		"/public;v=1/..;/admin;x/y",
		"/public/x?/../../admin/x",
	} {
		code, body := rawTarget(t, s.port, "iam.example.on.aws", target)
		if target == "/public/x?/../../admin/x" {
			// The query is not the path: this is /public/x.
			if code != 200 {
				t.Errorf("%s: %d %q, want 200 (path /public/x)", target, code, body)
			}
			seen++
			continue
		}
		if code != 403 {
			t.Errorf("%s: %d %q, want 403", target, code, body)
		}
	}
	if n := s.b.count(); n != seen {
		t.Errorf("%d path tricks reached the target", n-seen)
	}
}

// issueClient issues a client certificate for uri from ca.
func (ca *testCA) issueClient(t *testing.T, uri string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		URIs:         []*url.URL{u},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestAuthClientCertificate(t *testing.T) {
	ca := newTestCA(t)
	b := newBackend(t, "b")
	port := freePort(t)
	svc := testService("svc-iam", "iam.example.on.aws", listener("l-iam", model.ProtocolHTTPS, port, defaultRule(fwd(wtg{"tg-b", 1}))))
	svc.AuthType, svc.AuthPolicy = model.AuthTypeAWSIAM, ordersAuthPolicy("svc-iam")
	svc.Certificate = ca.issue(t, "iam.example.on.aws")
	rec := &recorder{}
	e := newEngine(t, Config{Observer: rec})
	snap := testSnapshot(1, []snapshot.Service{svc}, testTG("tg-b", model.ProtocolHTTP, "", b.addr()))
	snap.Auth = testAuth(t, ca)
	mustApply(t, e, snap)

	client := func(certs ...tls.Certificate) *http.Client {
		tr := &http.Transport{DialContext: dialTo(port), ForceAttemptHTTP2: true,
			TLSClientConfig: &tls.Config{RootCAs: ca.pool, Certificates: certs}}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	readerURI := iam.SPIFFEID(iam.DefaultTrustDomain, testAccount, "role", readerKey.name)

	resp, body := get(t, client(ca.issueClient(t, readerURI)), "https://iam.example.on.aws/orders/1")
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("reader certificate: %d %s %q, want 200 over HTTP/2", resp.StatusCode, resp.Proto, body)
	}
	var logged bool
	for _, r := range rec.all() {
		if r.CallerX509 != nil && r.CallerX509.SANURI == readerURI && r.CallerPrincipal == readerKey.arn() {
			logged = true
		}
	}
	if !logged {
		t.Errorf("no access-log record names the reader's certificate: %+v", rec.all())
	}
	id := b.last().Header.Get("X-Amzn-Lattice-Identity")
	if !strings.HasPrefix(id, "Principal="+readerKey.arn()+";") || !strings.Contains(id, "X509SAN/URI="+readerURI) {
		t.Errorf("identity %q, want the reader with its certificate's URI", id)
	}

	// A certificate of Trellis's CA naming no principal: refused, not
	// taken for anonymous (which may GET /public).
	resp, body = get(t, client(ca.issueClient(t, iam.SPIFFEID(iam.DefaultTrustDomain, testAccount, "role", "ghost"))), "https://iam.example.on.aws/public/x")
	if resp.StatusCode != 403 || !strings.Contains(body, "names no principal") {
		t.Errorf("unknown principal's certificate: %d %q, want 403", resp.StatusCode, body)
	}
	// No certificate: anonymous.
	if resp, _ := get(t, client(), "https://iam.example.on.aws/public/x"); resp.StatusCode != 200 {
		t.Errorf("no certificate, /public/x: %d, want 200", resp.StatusCode)
	}
	if resp, _ := get(t, client(), "https://iam.example.on.aws/orders/1"); resp.StatusCode != 403 {
		t.Errorf("no certificate, /orders/1: %d, want 403", resp.StatusCode)
	}
	// A certificate of another CA fails the handshake.
	other := newTestCA(t)
	req, _ := http.NewRequest("GET", "https://iam.example.on.aws/public/x", nil)
	if resp, err := client(other.issueClient(t, readerURI)).Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("certificate of another CA: %d, want a failed handshake", resp.StatusCode)
	}
}

func TestAuthPassthroughConnect(t *testing.T) {
	s := newHTTPSSetup(t, true)
	allow := func(cidr string) {
		svcA := testService("svc-a", "svc-a.example.on.aws", listener("l-a", model.ProtocolHTTPS, s.port, defaultRule(fwd(wtg{"tg-a", 1}))))
		svcA.Certificate = s.ca.issue(t, "svc-a.example.on.aws")
		svcP := testService("svc-p", "svc-p.example.on.aws", listener("l-p", model.ProtocolTLSPassthrough, s.port, defaultRule(fwd(wtg{"tg-p", 1}))))
		svcP.CustomDomain = "pass.example.com"
		svcP.AuthType = model.AuthTypeAWSIAM
		svcP.AuthPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Connect",` +
			`"Resource":"` + svcARN("svc-p") + `","Condition":{"IpAddress":{"aws:SourceIp":"` + cidr + `"}}}]}`
		snap := testSnapshot(2, []snapshot.Service{svcA, svcP},
			testTG("tg-a", model.ProtocolHTTP, "", s.a.addr()), testTG("tg-p", model.ProtocolTCP, "", s.passAddr))
		snap.Version = time.Now().UnixNano()
		mustApply(t, s.e, snap)
	}
	dial := func() error {
		c, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(s.port))), &tls.Config{ServerName: "pass.example.com", RootCAs: s.ca.pool})
		if err == nil {
			c.Close()
		}
		return err
	}
	allow("10.0.0.0/8")
	if err := dial(); err == nil {
		t.Error("Connect from 127.0.0.1 with only 10.0.0.0/8 allowed: handshake succeeded, want refused")
	}
	allow("127.0.0.0/8")
	if err := dial(); err != nil {
		t.Errorf("Connect from 127.0.0.1 allowed: %v", err)
	}
}
