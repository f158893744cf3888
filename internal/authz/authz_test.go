package authz

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/sigv4"
	"github.com/trellis-mesh/trellis/internal/snapshot"
	"github.com/trellis-mesh/trellis/internal/urlpath"
)

const (
	region  = "us-east-1"
	account = "111122223333"
	svcARN  = "arn:aws:vpc-lattice:us-east-1:111122223333:service/svc-0123456789abcdef0"
	snARN   = "arn:aws:vpc-lattice:us-east-1:111122223333:servicenetwork/sn-0123456789abcdef0"
)

// key is an access key of a test principal.
type key struct{ id, secret, arn string }

var (
	reader = key{"AKIAREADER0000000001", "reader-secret-reader-secret-000000000001", model.PrincipalARN(account, "role", "orders-reader")}
	other  = key{"AKIAOTHER00000000002", "other-secret-other-secret-0000000000002", model.PrincipalARN(account, "role", "other")}
)

// invokeAll is an identity policy that allows Invoke on everything.
const invokeAll = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"vpc-lattice-svcs:Invoke","Resource":"*"}]}`

// ordersPolicy allows the reader role GET /orders/* and nothing else.
var ordersPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + reader.arn + `"},` +
	`"Action":"vpc-lattice-svcs:Invoke","Resource":"` + svcARN + `/orders/*",` +
	`"Condition":{"StringEquals":{"vpc-lattice-svcs:RequestMethod":"GET"}}}]}`

// testAuthority builds an Authority for a snapshot holding the two keys,
// with its clock pinned at now.
func testAuthority(t testing.TB, now time.Time) *Authority {
	t.Helper()
	snap := &snapshot.Snapshot{Region: region, VPC: snapshot.VPC{ID: "vpc-0a", Account: account}}
	mat := &snapshot.AuthMaterial{Service: snapshot.SigningService, TrustDomain: iam.DefaultTrustDomain}
	for _, k := range []key{reader, other} {
		name := k.arn[strings.LastIndexByte(k.arn, '/')+1:]
		mat.Principals = append(mat.Principals, snapshot.Principal{ARN: k.arn, Account: account, Type: "role", Name: name,
			Tags: map[string]string{"team": name}, IdentityPolicy: invokeAll})
		for _, d := range []time.Time{now.AddDate(0, 0, -1), now, now.AddDate(0, 0, 1)} {
			date := d.UTC().Format("20060102")
			mat.SigningKeys = append(mat.SigningKeys, snapshot.SigningKey{AccessKeyID: k.id, Date: date, PrincipalARN: k.arn,
				Key: hex.EncodeToString(sigv4.DeriveSigningKey(k.secret, date, region, snapshot.SigningService))})
		}
	}
	snap.Auth = mat
	a, err := New(snap, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// iamService is a service with AWS_IAM and the given auth policy, in a
// network with authType NONE.
func iamService(t testing.TB, a *Authority, policy string) *Service {
	t.Helper()
	s := a.Service(&snapshot.Service{ID: "svc-0123456789abcdef0", ARN: svcARN, AuthType: model.AuthTypeAWSIAM, AuthPolicy: policy,
		Networks: []snapshot.Network{{ID: "sn-0123456789abcdef0", ARN: snARN, AuthType: model.AuthTypeNone}}}, nil)
	if s == nil {
		t.Fatal("Service returned nil for an AWS_IAM service")
	}
	return s
}

func newRequest(t testing.TB, method, target string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, "http://orders.example"+target, nil)
	r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	return r
}

func sign(t testing.TB, r *http.Request, k key, now time.Time) {
	t.Helper()
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: k.id, SecretAccessKey: k.secret},
		r, "UNSIGNED-PAYLOAD", "vpc-lattice-svcs", region, now)
	if err != nil {
		t.Fatal(err)
	}
}

func authorize(a *Authority, s *Service, r *http.Request, path string) Result {
	return a.Authorize(context.Background(), s, &Request{HTTP: r, Method: r.Method, Path: path, Port: 80,
		SourceIP: netip.MustParseAddr("10.0.0.9")})
}

func TestServiceWithoutIAMAuthenticatesNoOne(t *testing.T) {
	a := testAuthority(t, time.Now())
	s := a.Service(&snapshot.Service{ARN: svcARN, AuthType: model.AuthTypeNone, AuthPolicy: ordersPolicy,
		Networks: []snapshot.Network{{ARN: snARN, AuthType: model.AuthTypeNone, AuthPolicy: ordersPolicy}}}, nil)
	if s != nil {
		t.Fatalf("Service = %+v, want nil for NONE/NONE", s)
	}
}

func TestSignedRoleAllowedOthersDenied(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	a := testAuthority(t, now)
	s := iamService(t, a, ordersPolicy)

	r := newRequest(t, "GET", "/orders/42")
	sign(t, r, reader, now)
	res := authorize(a, s, r, "/orders/42")
	if !res.Allowed || res.Principal != reader.arn {
		t.Fatalf("reader: %+v, want allowed as %s", res, reader.arn)
	}
	wantID := "Principal=" + reader.arn + "; PrincipalOrgID=; PrincipalOrgPaths=; SessionName=; Type=AWS_IAM"
	if len(res.IdentityHeader) != 1 || res.IdentityHeader[0] != wantID {
		t.Errorf("identity header = %q, want %q", res.IdentityHeader, wantID)
	}
	if len(res.TagsHeader) != 1 || !strings.Contains(res.TagsHeader[0], "team=orders-reader") {
		t.Errorf("tags header = %q, want team=orders-reader in it", res.TagsHeader)
	}

	// The same role, another method: the policy's condition fails.
	r = newRequest(t, "DELETE", "/orders/42")
	sign(t, r, reader, now)
	if res := authorize(a, s, r, "/orders/42"); res.Allowed || res.DeniedReason != "Service" {
		t.Errorf("reader DELETE: %+v, want denied by Service", res)
	}

	r = newRequest(t, "GET", "/orders/42")
	sign(t, r, other, now)
	res = authorize(a, s, r, "/orders/42")
	want := "AccessDeniedException: User: " + other.arn + " is not authorized to perform: vpc-lattice-svcs:Invoke on resource: " +
		svcARN + "/orders/42 because no service-based policy allows the vpc-lattice-svcs:Invoke action\n"
	if res.Allowed || res.Body != want || res.DeniedReason != "Service" || res.Principal != other.arn {
		t.Errorf("other role: %+v\nwant body %q", res, want)
	}

	res = authorize(a, s, newRequest(t, "GET", "/orders/42"), "/orders/42")
	if res.Allowed || !strings.Contains(res.Body, "User: anonymous ") || res.Principal != "" {
		t.Errorf("unsigned: %+v, want anonymous denied", res)
	}
}

func TestPresignedRequest(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	a := testAuthority(t, now)
	s := iamService(t, a, ordersPolicy)
	r := newRequest(t, "GET", "/orders/7?X-Amz-Expires=300")
	r.Header.Del("X-Amz-Content-Sha256")
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: reader.id, SecretAccessKey: reader.secret},
		r, "UNSIGNED-PAYLOAD", "vpc-lattice-svcs", region, now)
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(u)
	pr := httptest.NewRequest("GET", pu.String(), nil)
	if res := authorize(a, s, pr, "/orders/7"); !res.Allowed {
		t.Fatalf("presigned: %+v, want allowed", res)
	}
}

// A request that carries a signature is authenticated or refused, never
// taken for anonymous, even where anonymous callers are allowed.
func TestBadSignatureIsNeverAnonymous(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	a := testAuthority(t, now)
	s := iamService(t, a, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Invoke","Resource":"*"}]}`)

	if res := authorize(a, s, newRequest(t, "GET", "/x"), "/x"); !res.Allowed {
		t.Fatalf("anonymous under Principal * : %+v, want allowed", res)
	}
	for name, mutate := range map[string]func(r *http.Request){
		"changed path":   func(r *http.Request) { r.URL.Path = "/y"; r.RequestURI = "/y" },
		"changed header": func(r *http.Request) { r.Header.Set("X-Amz-Date", now.Add(time.Second).Format("20060102T150405Z")) },
		"signed payload": func(r *http.Request) {
			r.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sha256.New().Sum(nil)))
		},
		"unknown key": func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), reader.id, "AKIAUNKNOWN000000000", 1))
		},
	} {
		r := newRequest(t, "GET", "/x")
		sign(t, r, reader, now)
		mutate(r)
		res := authorize(a, s, r, "/x")
		if res.Allowed || res.DeniedReason != DeniedAuthentication {
			t.Errorf("%s: %+v, want denied at authentication", name, res)
		}
		if !strings.Contains(res.Body, "Exception: ") {
			t.Errorf("%s: body %q names no exception", name, res.Body)
		}
	}

	// A signature of another service's scope is refused too.
	r := newRequest(t, "GET", "/x")
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: reader.id, SecretAccessKey: reader.secret},
		r, "UNSIGNED-PAYLOAD", "execute-api", region, now); err != nil {
		t.Fatal(err)
	}
	if res := authorize(a, s, r, "/x"); res.Allowed || res.DeniedReason != DeniedAuthentication {
		t.Errorf("execute-api scope: %+v, want denied at authentication", res)
	}

	// And one too far from the gateway's clock.
	r = newRequest(t, "GET", "/x")
	sign(t, r, reader, now.Add(-20*time.Minute))
	if res := authorize(a, s, r, "/x"); res.Allowed || !strings.Contains(res.Body, "InvalidSignatureException") {
		t.Errorf("20 minutes of skew: %+v, want InvalidSignatureException", res)
	}
}

func TestIdentityPolicyRequired(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	snap := &snapshot.Snapshot{Region: region, VPC: snapshot.VPC{ID: "vpc-0a", Account: account}}
	date := now.Format("20060102")
	snap.Auth = &snapshot.AuthMaterial{Service: snapshot.SigningService,
		Principals:  []snapshot.Principal{{ARN: reader.arn, Account: account, Type: "role", Name: "orders-reader"}},
		SigningKeys: []snapshot.SigningKey{{AccessKeyID: reader.id, Date: date, PrincipalARN: reader.arn, Key: hex.EncodeToString(sigv4.DeriveSigningKey(reader.secret, date, region, snapshot.SigningService))}}}
	a, err := New(snap, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	s := iamService(t, a, ordersPolicy)
	r := newRequest(t, "GET", "/orders/1")
	sign(t, r, reader, now)
	if res := authorize(a, s, r, "/orders/1"); res.Allowed || res.DeniedReason != "Identity" {
		t.Errorf("caller without identity policy: %+v, want denied by Identity", res)
	}
}

func TestNetworkLayer(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	a := testAuthority(t, now)
	deny := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Invoke","Resource":"*"},` +
		`{"Effect":"Deny","Principal":"*","Action":"vpc-lattice-svcs:Invoke","Resource":"*/admin/*"}]}`
	s := a.Service(&snapshot.Service{ARN: svcARN, AuthType: model.AuthTypeNone,
		Networks: []snapshot.Network{{ARN: snARN, AuthType: model.AuthTypeAWSIAM, AuthPolicy: deny}}}, nil)
	if s == nil {
		t.Fatal("network AWS_IAM: Service returned nil")
	}
	if res := authorize(a, s, newRequest(t, "GET", "/public"), "/public"); !res.Allowed {
		t.Errorf("/public: %+v, want allowed", res)
	}
	res := authorize(a, s, newRequest(t, "GET", "/admin/x"), "/admin/x")
	if res.Allowed || res.DeniedReason != "Network" || !strings.Contains(res.Body, "explicit deny in a network-based policy") {
		t.Errorf("/admin/x: %+v, want an explicit network deny", res)
	}
	// The target may decode %2F: the decoded path is denied too.
	if res := authorize(a, s, newRequest(t, "GET", "/admin%2Fx"), "/admin%2Fx"); res.Allowed {
		t.Errorf("/admin%%2Fx: %+v, want denied as /admin/x", res)
	}
	if res := authorize(a, s, newRequest(t, "GET", "/public%2F..%2Fadmin%2Fx"), "/public%2F..%2Fadmin%2Fx"); res.Allowed {
		t.Errorf("/public%%2F..%%2Fadmin%%2Fx: %+v, want denied", res)
	}
	// A target that drops ";" parameters (Tomcat) reads /public/..;/admin/x as /admin/x.
	if res := authorize(a, s, newRequest(t, "GET", "/public/..;/admin/x"), "/public/..;/admin/x"); res.Allowed {
		t.Errorf("/public/..;/admin/x: %+v, want denied", res)
	}
}

func TestClientCertificate(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	a := testAuthority(t, now)
	s := iamService(t, a, ordersPolicy)
	cert := func(uri string) *x509.Certificate {
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatal(err)
		}
		return &x509.Certificate{URIs: []*url.URL{u}}
	}
	req := func(c *x509.Certificate) Result {
		return a.Authorize(context.Background(), s, &Request{HTTP: newRequest(t, "GET", "/orders/1"), Method: "GET",
			Path: "/orders/1", Port: 443, Secure: true, PeerCertificate: c})
	}
	res := req(cert(iam.SPIFFEID(iam.DefaultTrustDomain, account, "role", "orders-reader")))
	if !res.Allowed || res.Principal != reader.arn {
		t.Fatalf("reader certificate: %+v, want allowed", res)
	}
	if !strings.Contains(res.IdentityHeader[0], "X509SAN/URI=spiffe://") {
		t.Errorf("identity header %q lacks the certificate's URI SAN", res.IdentityHeader[0])
	}
	for _, uri := range []string{
		iam.SPIFFEID(iam.DefaultTrustDomain, account, "role", "nobody"),
		iam.SPIFFEID("other.example", account, "role", "orders-reader"),
	} {
		if res := req(cert(uri)); res.Allowed || res.DeniedReason != DeniedAuthentication {
			t.Errorf("certificate %s: %+v, want denied at authentication", uri, res)
		}
	}
}

func TestConnect(t *testing.T) {
	a := testAuthority(t, time.Now())
	s := iamService(t, a, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Connect","Resource":"`+svcARN+`",`+
		`"Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/24"}}}]}`)
	if res := a.Authorize(context.Background(), s, &Request{Port: 443, SourceIP: netip.MustParseAddr("10.0.0.9")}); !res.Allowed {
		t.Errorf("Connect from 10.0.0.9: %+v, want allowed", res)
	}
	res := a.Authorize(context.Background(), s, &Request{Port: 443, SourceIP: netip.MustParseAddr("10.0.1.9")})
	if res.Allowed || !strings.Contains(res.Body, "vpc-lattice-svcs:Connect on resource: "+svcARN+" ") {
		t.Errorf("Connect from 10.0.1.9: %+v, want denied naming Connect", res)
	}
}

// FuzzAuthorize sends arbitrary request targets and Authorization headers
// to a service that denies /admin to everyone and allows the rest to
// anyone: Authorize must never panic, and no request whose normalised
// path, or any other reading of it (urlpath.Readings), is under /admin
// may be allowed.
func FuzzAuthorize(f *testing.F) {
	now := time.Now().UTC().Truncate(time.Second)
	for _, seed := range [][2]string{
		{"/public/x", ""},
		{"/admin%2Fx?a=b&c", ""},
		{"/x?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00", ""},
		{"/x", "AWS4-HMAC-SHA256 Credential=AKIAREADER0000000001/20260101/us-east-1/vpc-lattice-svcs/aws4_request, SignedHeaders=host, Signature=00"},
		{"/%2e%2e/admin", "AWS4-HMAC-SHA256"},
	} {
		f.Add(seed[0], seed[1])
	}
	a := testAuthority(f, now)
	s := iamService(f, a, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Invoke","Resource":"*"},`+
		`{"Effect":"Deny","Principal":"*","Action":"vpc-lattice-svcs:Invoke","Resource":["`+svcARN+`/admin","`+svcARN+`/admin/*"]}]}`)
	f.Fuzz(func(t *testing.T, target, authz string) {
		rawPath, rawQuery, _ := strings.Cut(target, "?")
		path, err := urlpath.Normalize(rawPath)
		if err != nil || path == "" || path[0] != '/' {
			return // the gateway answers 400
		}
		r := &http.Request{Method: "GET", Host: "orders.example", Header: http.Header{},
			URL: &url.URL{Path: path, RawPath: rawPath, RawQuery: rawQuery}, RequestURI: target}
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		res := authorize(a, s, r, path)
		for _, p := range append([]string{path}, urlpath.Readings(path)...) {
			if res.Allowed && (p == "/admin" || strings.HasPrefix(p, "/admin/")) {
				t.Fatalf("%q (Authorization %q) allowed although %s is denied", target, authz, p)
			}
		}
	})
}

// TestQuerySemicolons: a parameter hidden behind ';' is seen by a Deny
// condition, since some targets split queries on ';'.
func TestQuerySemicolons(t *testing.T) {
	a := testAuthority(t, time.Now())
	s := iamService(t, a, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Invoke","Resource":"*"},`+
		`{"Effect":"Deny","Principal":"*","Action":"vpc-lattice-svcs:Invoke","Resource":"*",`+
		`"Condition":{"ForAnyValue:StringEquals":{"vpc-lattice-svcs:RequestQueryString/admin":"true"}}}]}`)
	for target, allowed := range map[string]bool{
		"/x?a=1":                true,
		"/x?admin=true":         false,
		"/x?a=1;admin=true":     false,
		"/x?a=1&b=2;admin=true": false,
		"/x?a=%3Badmin%3Dtrue":  true, // an encoded ';' is data, not a separator
	} {
		if res := authorize(a, s, newRequest(t, "GET", target), "/x"); res.Allowed != allowed {
			t.Errorf("%s: allowed %t, want %t", target, res.Allowed, allowed)
		}
	}
}
