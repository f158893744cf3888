package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/snapshot"
	"github.com/trellis-mesh/trellis/internal/testnet"
)

const (
	testRegion  = "us-east-1"
	testAccount = "111122223333"
	testVPCARN  = "arn:aws:ec2:us-east-1:111122223333:vpc/vpc-0123456789abcdef0"
)

func ptr[T any](v T) *T { return &v }

func svcARN(id string) string {
	return "arn:aws:vpc-lattice:" + testRegion + ":" + testAccount + ":service/" + id
}

func tgARN(id string) string {
	return "arn:aws:vpc-lattice:" + testRegion + ":" + testAccount + ":targetgroup/" + id
}

const testNetworkARN = "arn:aws:vpc-lattice:us-east-1:111122223333:servicenetwork/sn-0123456789abcdef0"

func testSnapshot(version int64, svcs []snapshot.Service, tgs ...snapshot.TargetGroup) *snapshot.Snapshot {
	return &snapshot.Snapshot{
		Version:      version,
		Region:       testRegion,
		VPC:          snapshot.VPC{ID: "vpc-0123456789abcdef0", ARN: testVPCARN, Account: testAccount},
		Services:     svcs,
		TargetGroups: tgs,
	}
}

func testService(id, dns string, ls ...snapshot.Listener) snapshot.Service {
	return snapshot.Service{
		ID: id, ARN: svcARN(id), Name: id, Account: testAccount,
		DNSName:            dns,
		IdleTimeoutSeconds: 60,
		Networks:           []snapshot.Network{{ID: "sn-0123456789abcdef0", ARN: testNetworkARN, Name: "net"}},
		Listeners:          ls,
	}
}

func listener(id, protocol string, port int32, rules ...snapshot.Rule) snapshot.Listener {
	return snapshot.Listener{ID: id, ARN: "arn:listener/" + id, Name: id, Protocol: protocol, Port: port, Rules: rules}
}

type wtg struct {
	id     string
	weight int32
}

func fwd(groups ...wtg) model.RuleAction {
	var f model.ForwardAction
	for _, g := range groups {
		f.TargetGroups = append(f.TargetGroups, model.WeightedTargetGroup{TargetGroupIdentifier: g.id, Weight: ptr(g.weight)})
	}
	return model.RuleAction{Forward: &f}
}

func fixed(code int32) model.RuleAction {
	return model.RuleAction{FixedResponse: &model.FixedResponseAction{StatusCode: code}}
}

func defaultRule(a model.RuleAction) snapshot.Rule {
	return snapshot.Rule{ID: "rule-default", IsDefault: true, Action: a}
}

func matchRule(id string, prio int32, m *model.HTTPMatch, a model.RuleAction) snapshot.Rule {
	return snapshot.Rule{ID: id, ARN: "arn:rule/" + id, Priority: prio, Match: m, Action: a}
}

func testTG(id, protocol, version string, addrs ...string) snapshot.TargetGroup {
	tg := snapshot.TargetGroup{ID: id, ARN: tgARN(id), Name: id, Type: model.TargetGroupTypeIP, Protocol: protocol, ProtocolVersion: version}
	for i, a := range addrs {
		_, p, _ := net.SplitHostPort(a)
		port, _ := strconv.Atoi(p)
		tg.Targets = append(tg.Targets, snapshot.Target{ID: fmt.Sprintf("10.0.0.%d", i+1), Port: int32(port), Address: a, Status: "HEALTHY"})
	}
	return tg
}

// freePort returns a port nothing listens on right now and no earlier
// call returned.
func freePort(t testing.TB) int32 { return testnet.FreePort(t) }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// newEngine returns an engine closed when the test ends.
func newEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	e := New(cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Errorf("close engine: %v", err)
		}
	})
	return e
}

func mustApply(t testing.TB, e *Engine, s *snapshot.Snapshot) {
	t.Helper()
	if err := e.Apply(s); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

// backend is a real HTTP/1.1 target that echoes what it received.
type backend struct {
	name string
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
}

func newBackend(t testing.TB, name string) *backend {
	t.Helper()
	b := &backend{name: name}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

func httptestServer(t testing.TB, h http.Handler) *httptest.Server {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func newTLSBackend(t testing.TB, h http.Handler) *httptest.Server {
	s := httptest.NewTLSServer(h)
	t.Cleanup(s.Close)
	return s
}

func (b *backend) addr() string { return b.srv.Listener.Addr().String() }

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	c := r.Clone(context.Background())
	b.mu.Lock()
	b.reqs = append(b.reqs, c)
	b.mu.Unlock()
	w.Header().Set("X-Backend", b.name)
	w.Header().Set("X-Seen-Path", r.URL.RawPath)
	if r.URL.RawPath == "" {
		w.Header().Set("X-Seen-Path", r.URL.Path)
	}
	w.Header().Set("X-Seen-Proto", r.Proto)
	w.Header().Set("X-Seen-Body", strconv.FormatInt(n, 10))
	_, _ = io.WriteString(w, b.name)
}

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.reqs)
}

func (b *backend) last() *http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.reqs) == 0 {
		return nil
	}
	return b.reqs[len(b.reqs)-1]
}

// dialTo returns a dialer that sends every connection to port on 127.0.0.1,
// so that URLs can carry service names.
func dialTo(port int32) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, target)
	}
}

// httpClient sends every request to the engine's port.
func httpClient(t testing.TB, port int32) *http.Client {
	tr := &http.Transport{DialContext: dialTo(port), MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get sends GET url through c and returns status, X-Backend and body.
func get(t testing.TB, c *http.Client, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp, string(b)
}

// testCA issues certificates for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "trellis test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a PEM certificate and key for names.
func (ca *testCA) issue(t testing.TB, names ...string) *snapshot.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &snapshot.Certificate{
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})),
	}
}

func (ca *testCA) tlsCert(t testing.TB, names ...string) tls.Certificate {
	t.Helper()
	c := ca.issue(t, names...)
	cert, err := tls.X509KeyPair([]byte(c.CertPEM), []byte(c.KeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// forEachPath runs f on the HTTP/1 fast path and on the net/http path
// (engines built inside f set e.h1fast = fast before Apply).
func forEachPath(t *testing.T, f func(t *testing.T, fast bool)) {
	for _, fast := range []bool{true, false} {
		name := "nethttp"
		if fast {
			name = "fast"
		}
		t.Run(name, func(t *testing.T) { f(t, fast) })
	}
}
