package snapshot_test

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/identity"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/pki"
	"github.com/trellis-mesh/trellis/internal/sigv4"
	"github.com/trellis-mesh/trellis/internal/snapshot"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/bolt"
)

const otherAccount = "444455556666"

// noon is the tests' clock for signing-key dates.
var noon = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// key is an access key as CreateAccessKey shows it, the only time.
type key struct{ id, secret, principal string }

// identities creates, through the native API, the admin's account and
// another one, principals in both (tags, identity policy, an admin) and an
// access key for each principal.
func (e *env) identities() map[string]key {
	e.t.Helper()
	e.call("POST", "/trellis/v1/accounts", map[string]any{"name": "main", "id": account})
	e.call("POST", "/trellis/v1/accounts", map[string]any{"name": "other", "id": otherAccount})
	invoke := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"vpc-lattice-svcs:Invoke","Resource":"*"}]}`
	e.call("POST", "/trellis/v1/principals", map[string]any{"name": "orders", "type": "role",
		"tags": map[string]string{"team": "orders", "env": "a;b"}, "policy": invoke})
	e.call("POST", "/trellis/v1/principals", map[string]any{"name": "ci", "type": "user"})
	e.call("POST", "/trellis/v1/principals", map[string]any{"name": "billing", "type": "role", "account": otherAccount})
	keys := map[string]key{}
	for _, p := range []struct{ ref, acct string }{{"role/orders", ""}, {"user/ci", ""}, {"role/billing", otherAccount}} {
		out := e.call("POST", "/trellis/v1/accesskeys", map[string]any{"principal": p.ref, "account": p.acct})
		keys[p.ref] = key{out["AccessKeyId"].(string), out["SecretAccessKey"].(string), out["Principal"].(string)}
	}
	return keys
}

func (e *env) buildAuth(vpc string, opts snapshot.AuthOptions) *snapshot.Snapshot {
	e.t.Helper()
	snap, err := snapshot.Build(context.Background(), e.st, snapshot.BuildOptions{VPCID: vpc, Region: region, Auth: opts})
	if err != nil {
		e.t.Fatalf("Build: %v", err)
	}
	return snap
}

func at(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestBuildAuthMaterial(t *testing.T) {
	e := newEnv(t)
	client, backend := e.world()
	keys := e.identities()
	snap := e.buildAuth(client, snapshot.AuthOptions{ClientCAPEM: "CA PEM", Now: at(noon)})
	a := snap.Auth
	if a == nil || a.Service != "vpc-lattice-svcs" || a.TrustDomain != "trellis.local" || a.ClientCAPEM != "CA PEM" {
		t.Fatalf("auth material %+v", a)
	}

	// Three days of keys per access key, derived for the region and
	// vpc-lattice-svcs, sorted by key then date.
	if len(a.SigningKeys) != 3*len(keys) {
		t.Fatalf("%d signing keys, want %d", len(a.SigningKeys), 3*len(keys))
	}
	if !slices.IsSortedFunc(a.SigningKeys, func(x, y snapshot.SigningKey) int {
		return strings.Compare(x.AccessKeyID+x.Date, y.AccessKeyID+y.Date)
	}) {
		t.Error("signing keys are not sorted by access key and date")
	}
	for _, k := range keys {
		var dates []string
		for _, sk := range a.SigningKeys {
			if sk.AccessKeyID != k.id {
				continue
			}
			dates = append(dates, sk.Date)
			if want := hex.EncodeToString(sigv4.DeriveSigningKey(k.secret, sk.Date, region, "vpc-lattice-svcs")); sk.Key != want || sk.PrincipalARN != k.principal {
				t.Errorf("key %s %s: %s for %s, want %s for %s", k.id, sk.Date, sk.Key, sk.PrincipalARN, want, k.principal)
			}
		}
		if !slices.Equal(dates, []string{"20261125", "20261126", "20261127"}) {
			t.Errorf("key %s dates %v", k.id, dates)
		}
	}

	// Every principal of every account, sorted by ARN.
	var arns []string
	for _, p := range a.Principals {
		arns = append(arns, p.ARN)
	}
	want := []string{"arn:aws:iam::" + account + ":role/orders", "arn:aws:iam::" + account + ":user/ci", "arn:aws:iam::" + otherAccount + ":role/billing"}
	slices.Sort(want)
	if !slices.Equal(arns, want) {
		t.Errorf("principals %v, want %v", arns, want)
	}
	for _, p := range a.Principals {
		if p.Name == "orders" && (p.Type != "role" || p.Account != account || p.Tags["team"] != "orders" ||
			!strings.Contains(p.IdentityPolicy, "vpc-lattice-svcs:Invoke") || p.Admin) {
			t.Errorf("orders: %+v", p)
		}
	}

	// No secret anywhere, in any VPC's snapshot; one material for all.
	other := e.buildAuth(backend, snapshot.AuthOptions{ClientCAPEM: "CA PEM", Now: at(noon)})
	for _, s := range []*snapshot.Snapshot{snap, other} {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if strings.Contains(string(b), k.secret) {
				t.Fatalf("the snapshot of %s contains the secret of %s", s.VPC.ID, k.id)
			}
		}
	}
	if ja, _ := json.Marshal(snap.Auth); !jsonEqual(t, ja, other.Auth) {
		t.Error("two VPCs' snapshots have different auth material")
	}

	// The trust domain is configurable; a later day slides the window.
	later := e.buildAuth(client, snapshot.AuthOptions{TrustDomain: "mesh.example", Now: at(noon.Add(24 * time.Hour))})
	if later.Auth.TrustDomain != "mesh.example" || later.Auth.SigningKeys[0].Date != "20261126" || later.Auth.SigningKeys[2].Date != "20261128" {
		t.Errorf("a day later: %s, %s..%s", later.Auth.TrustDomain, later.Auth.SigningKeys[0].Date, later.Auth.SigningKeys[2].Date)
	}

	// Deleting a principal removes it and its keys.
	e.call("DELETE", "/trellis/v1/principals/user/ci", nil)
	after := e.buildAuth(client, snapshot.AuthOptions{Now: at(noon)})
	for _, sk := range after.Auth.SigningKeys {
		if sk.AccessKeyID == keys["user/ci"].id {
			t.Error("the deleted principal's key is still in the snapshot")
		}
	}
	if len(after.Auth.Principals) != 2 || after.Auth.ClientCAPEM != "" {
		t.Errorf("after deleting user/ci: %d principals, CA %q", len(after.Auth.Principals), after.Auth.ClientCAPEM)
	}
}

func jsonEqual(t *testing.T, a []byte, v any) bool {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(a) == string(b)
}

// signedRequest is a request to a Lattice service signed by the AWS SDK's
// v4 signer with UNSIGNED-PAYLOAD at when, in the header or (expires > 0)
// the presigned form.
func signedRequest(t *testing.T, creds aws.Credentials, when time.Time, expires time.Duration) *http.Request {
	t.Helper()
	const target = "https://orders-0123456789abcdef0.7d67968.vpc-lattice-svcs.us-east-1.on.aws/orders?id=7"
	r := httptest.NewRequest("POST", target, strings.NewReader(`{"qty":1}`))
	r.Header.Set("Content-Type", "application/json")
	signer, ctx := v4.NewSigner(), context.Background()
	if expires > 0 {
		q := r.URL.Query()
		q.Set("X-Amz-Expires", strconv.Itoa(int(expires/time.Second)))
		r.URL.RawQuery = q.Encode()
		uri, hdr, err := signer.PresignHTTP(ctx, creds, r, "UNSIGNED-PAYLOAD", "vpc-lattice-svcs", region, when)
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatal(err)
		}
		p := httptest.NewRequest("POST", u.String(), strings.NewReader(`{"qty":1}`))
		for k, v := range hdr {
			p.Header[k] = v
		}
		return p
	}
	r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	if err := signer.SignHTTP(ctx, creds, r, "UNSIGNED-PAYLOAD", "vpc-lattice-svcs", region, when); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestAuthIndexVerifiesSDKRequests verifies requests signed by the AWS
// SDK with the keys of a built snapshot, as a gateway does: no secret.
func TestAuthIndexVerifiesSDKRequests(t *testing.T) {
	e := newEnv(t)
	client, _ := e.world()
	keys := e.identities()
	snap := e.buildAuth(client, snapshot.AuthOptions{Now: at(noon)})
	idx, err := snap.Auth.Compile(snap.Region)
	if err != nil {
		t.Fatal(err)
	}
	orders := keys["role/orders"]
	creds := aws.Credentials{AccessKeyID: orders.id, SecretAccessKey: orders.secret}
	for _, c := range []struct {
		name    string
		creds   aws.Credentials
		signed  time.Time
		expires time.Duration
		now     time.Time
		want    error
	}{
		{name: "header", creds: creds, signed: noon, now: noon},
		{name: "presigned", creds: creds, signed: noon, expires: time.Hour, now: noon.Add(30 * time.Minute)},
		{name: "presigned-yesterday", creds: creds, signed: noon.Add(-20 * time.Hour), expires: 24 * time.Hour, now: noon},
		{name: "tomorrow-offline", creds: creds, signed: noon.Add(30 * time.Hour), now: noon.Add(30 * time.Hour)},
		{name: "presigned-three-days-old", creds: creds, signed: noon.Add(-72 * time.Hour), expires: 7 * 24 * time.Hour, now: noon, want: sigv4.ErrExpired},
		{name: "snapshot-two-days-old", creds: creds, signed: noon.Add(48 * time.Hour), now: noon.Add(48 * time.Hour), want: sigv4.ErrExpired},
		{name: "wrong-secret", creds: aws.Credentials{AccessKeyID: orders.id, SecretAccessKey: "not-it"}, signed: noon, now: noon, want: sigv4.ErrSignatureMismatch},
		{name: "unknown-key", creds: aws.Credentials{AccessKeyID: "AKIAUNKNOWN", SecretAccessKey: "x"}, signed: noon, now: noon, want: sigv4.ErrUnknownKey},
		{name: "session-token", creds: aws.Credentials{AccessKeyID: orders.id, SecretAccessKey: orders.secret, SessionToken: "tok"},
			signed: noon, now: noon, want: sigv4.ErrSessionToken},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := &sigv4.Verifier{SigningKey: idx.SigningKey, Region: region, Services: []string{snapshot.SigningService},
				Now: at(c.now), AllowPresigned: true, RequireUnsignedPayload: true}
			r := signedRequest(t, c.creds, c.signed, c.expires)
			body, _ := io.ReadAll(r.Body)
			res, err := v.Verify(context.Background(), r, body)
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify: %v, want %v", err, c.want)
			}
			if err != nil {
				return
			}
			p := idx.Principal(res.Principal)
			if p == nil || p.ARN != orders.principal {
				t.Fatalf("principal %q -> %+v", res.Principal, p)
			}
			var buf []byte
			buf = identity.AppendTags(buf, &p.Identity)
			if want := "principal=" + orders.principal + `;principalorgid=;env=a\;b;team=orders`; string(buf) != want {
				t.Errorf("tags header %s, want %s", buf, want)
			}
		})
	}
	// Another region's or service's scope is refused by the index too.
	if _, _, err := idx.SigningKey(context.Background(), sigv4.Scope{AccessKeyID: orders.id, Date: "20261126", Region: "eu-west-1", Service: snapshot.SigningService}); !errors.Is(err, sigv4.ErrScope) {
		t.Errorf("other region: %v", err)
	}
}

// TestAuthIndexCertificates maps client certificates issued by a real CA
// to principals.
func TestAuthIndexCertificates(t *testing.T) {
	e := newEnv(t)
	client, _ := e.world()
	e.identities()
	ca, err := pki.LoadOrCreate(context.Background(), e.st, nil)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := e.buildAuth(client, snapshot.AuthOptions{ClientCAPEM: string(ca.CertPEM())}).Auth.Compile(region)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(uris ...string) *x509.Certificate {
		t.Helper()
		certPEM, _, err := ca.IssueRequest(pki.Request{URIs: uris[:1], TTL: time.Hour, CommonName: "test"})
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(certPEM)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: idx.ClientCAs(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Fatalf("the index's CA pool does not verify the client certificate: %v", err)
		}
		for _, u := range uris[1:] {
			parsed, _ := url.Parse(u)
			cert.URIs = append(cert.URIs, parsed)
		}
		return cert
	}
	ordersID := "spiffe://trellis.local/account/" + account + "/role/orders"
	for _, c := range []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"principal", issue(ordersID), "arn:aws:iam::" + account + ":role/orders"},
		{"other-account", issue("spiffe://trellis.local/account/" + otherAccount + "/role/billing"), "arn:aws:iam::" + otherAccount + ":role/billing"},
		{"no-such-principal", issue("spiffe://trellis.local/account/" + account + "/role/ghost"), ""},
		{"other-trust-domain", issue("spiffe://mesh.example/account/" + account + "/role/orders"), ""},
		{"not-a-principal-id", issue("spiffe://trellis.local/ns/shop/sa/orders"), ""},
		{"two-uris", issue(ordersID, "spiffe://trellis.local/account/"+otherAccount+"/role/billing"), ""},
		{"nil", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, ok := idx.PrincipalForCertificate(c.cert)
			if ok != (c.want != "") || ok && p.ARN != c.want {
				t.Fatalf("PrincipalForCertificate: %+v %v, want %q", p, ok, c.want)
			}
			if ok {
				id := p.Identity
				id.X509 = identity.FromCertificate(c.cert)
				got := string(identity.AppendIdentity(nil, &id))
				if !strings.Contains(got, "Type=AWS_IAM; X509SAN/URI=spiffe://trellis.local/account/") || !strings.Contains(got, "X509Subject/CN=test") {
					t.Errorf("identity header %s", got)
				}
			}
		})
	}
}

func TestAuthCompileErrors(t *testing.T) {
	good := func() *snapshot.AuthMaterial {
		return &snapshot.AuthMaterial{Service: snapshot.SigningService,
			SigningKeys: []snapshot.SigningKey{{AccessKeyID: "AKIA1", Date: "20261126", Key: strings.Repeat("ab", 32), PrincipalARN: "arn:aws:iam::111122223333:role/a"}},
			Principals:  []snapshot.Principal{{ARN: "arn:aws:iam::111122223333:role/a", Account: "111122223333", Type: "role", Name: "a"}}}
	}
	if _, err := good().Compile(region); err != nil {
		t.Fatalf("good material: %v", err)
	}
	for _, c := range []struct {
		name, want string
		mutate     func(*snapshot.AuthMaterial)
	}{
		{"bad-hex", "auth.signingKeys[0].key", func(a *snapshot.AuthMaterial) { a.SigningKeys[0].Key = "zz" }},
		{"short-key", "auth.signingKeys[0].key", func(a *snapshot.AuthMaterial) { a.SigningKeys[0].Key = "abcd" }},
		{"unknown-principal", "auth.signingKeys[0].principalArn", func(a *snapshot.AuthMaterial) { a.Principals = nil }},
		{"bad-ca", "auth.clientCaPem", func(a *snapshot.AuthMaterial) { a.ClientCAPEM = "not PEM" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := good()
			c.mutate(a)
			if _, err := a.Compile(region); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Compile: %v, want an error naming %s", err, c.want)
			}
		})
	}
}

func BenchmarkAuthIndexSigningKey(b *testing.B) {
	a := &snapshot.AuthMaterial{Service: snapshot.SigningService}
	for i := range 1000 {
		arn := "arn:aws:iam::111122223333:role/r" + strconv.Itoa(i)
		a.Principals = append(a.Principals, snapshot.Principal{ARN: arn})
		for _, d := range []string{"20261125", "20261126", "20261127"} {
			a.SigningKeys = append(a.SigningKeys, snapshot.SigningKey{AccessKeyID: "AKIA" + strconv.Itoa(i), Date: d, Key: strings.Repeat("ab", 32), PrincipalARN: arn})
		}
	}
	idx, err := a.Compile(region)
	if err != nil {
		b.Fatal(err)
	}
	scope := sigv4.Scope{AccessKeyID: "AKIA500", Date: "20261126", Region: region, Service: snapshot.SigningService}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, _ := idx.SigningKey(ctx, scope); !ok {
			b.Fatal("not found")
		}
	}
}

// BenchmarkBuildWithIdentities measures a build of one VPC in an
// installation of 1000 principals with one access key each (3000 derived
// keys), and the size of the snapshot's JSON.
func BenchmarkBuildWithIdentities(b *testing.B) {
	st, err := bolt.Open(filepath.Join(b.TempDir(), "trellis.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var ops []store.Op
	put := func(k string, v any) {
		raw, err := json.Marshal(v)
		if err != nil {
			b.Fatal(err)
		}
		ops = append(ops, store.Put(k, raw))
	}
	put("/vpcs/vpc-00000000000000001", model.VPC{ID: "vpc-00000000000000001", Account: account})
	for i := range 1000 {
		name := "role-" + strconv.Itoa(i)
		arn := model.PrincipalARN(account, "role", name)
		put(iam.PrincipalKey(account, "role", name), model.Principal{Name: name, Type: "role", Account: account, ARN: arn,
			Tags: map[string]string{"team": "t" + strconv.Itoa(i%10)}})
		id, secret := model.NewAccessKey()
		put(iam.AccessKeyKey(id), model.AccessKey{ID: id, Secret: secret, Account: account, Principal: arn})
	}
	if _, err := st.Txn(context.Background(), nil, ops); err != nil {
		b.Fatal(err)
	}
	opts := snapshot.BuildOptions{VPCID: "vpc-00000000000000001", Region: region}
	b.ReportAllocs()
	var size int
	for b.Loop() {
		snap, err := snapshot.Build(context.Background(), st, opts)
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := json.Marshal(snap)
		size = len(raw)
	}
	b.ReportMetric(float64(size), "snapshot-bytes")
}
