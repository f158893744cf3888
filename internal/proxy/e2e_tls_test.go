package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/snapshot"
)

// tlsClient sends every request to port, verifying the gateway's
// certificate against ca.
func tlsClient(t testing.TB, port int32, ca *testCA, h2 bool, maxVersion uint16) *http.Client {
	tr := &http.Transport{
		DialContext:       dialTo(port),
		TLSClientConfig:   &tls.Config{RootCAs: ca.pool, MaxVersion: maxVersion},
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// httpsSetup serves svc-a and svc-b over HTTPS on one port, each with its
// own certificate, plus a TLS_PASSTHROUGH service on the same port; its
// HTTP/1 connections take the fast path when fast is set.
type httpsSetup struct {
	port     int32
	ca       *testCA
	a, b     *backend
	passAddr string
	rec      *recorder
	e        *Engine
}

func newHTTPSSetup(t *testing.T, fast bool) *httpsSetup {
	s := &httpsSetup{port: freePort(t), ca: newTestCA(t), a: newBackend(t, "a"), b: newBackend(t, "b"), rec: &recorder{}}

	// The passthrough target terminates TLS itself with its own certificate.
	passCert := s.ca.tlsCert(t, "pass.example.com")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{passCert}})
	if err != nil {
		t.Fatal(err)
	}
	passSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "passthrough target, sni=%s", r.TLS.ServerName)
	})}
	go passSrv.Serve(ln)
	t.Cleanup(func() { passSrv.Close() })
	s.passAddr = ln.Addr().String()

	svcA := testService("svc-a", "svc-a.example.on.aws", listener("l-a", model.ProtocolHTTPS, s.port, defaultRule(fwd(wtg{"tg-a", 1}))))
	svcA.Certificate = s.ca.issue(t, "svc-a.example.on.aws")
	svcB := testService("svc-b", "svc-b.example.on.aws", listener("l-b", model.ProtocolHTTPS, s.port, defaultRule(fwd(wtg{"tg-b", 1}))))
	svcB.CustomDomain = "b.example.com"
	svcB.Certificate = s.ca.issue(t, "svc-b.example.on.aws", "b.example.com")
	svcP := testService("svc-p", "svc-p.example.on.aws", listener("l-p", model.ProtocolTLSPassthrough, s.port, defaultRule(fwd(wtg{"tg-p", 1}))))
	svcP.CustomDomain = "pass.example.com"
	s.e = newEngine(t, Config{Observer: s.rec})
	s.e.h1fast = fast
	mustApply(t, s.e, testSnapshot(1, []snapshot.Service{svcA, svcB, svcP},
		testTG("tg-a", model.ProtocolHTTP, "", s.a.addr()),
		testTG("tg-b", model.ProtocolHTTP, "", s.b.addr()),
		testTG("tg-p", model.ProtocolTCP, "", s.passAddr)))
	return s
}

func TestHTTPSBySNI(t *testing.T) { forEachPath(t, testHTTPSBySNI) }

func testHTTPSBySNI(t *testing.T, fast bool) {
	s := newHTTPSSetup(t, fast)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		c := tlsClient(t, s.port, s.ca, false, v)
		for _, tt := range []struct{ host, backend, certName string }{
			{"svc-a.example.on.aws", "a", "svc-a.example.on.aws"},
			{"b.example.com", "b", "svc-b.example.on.aws"},
		} {
			resp, body := get(t, c, fmt.Sprintf("https://%s:%d/x", tt.host, s.port))
			if resp.StatusCode != 200 || body != tt.backend {
				t.Fatalf("TLS %x %s: %d %q", v, tt.host, resp.StatusCode, body)
			}
			if got := resp.TLS.PeerCertificates[0].DNSNames[0]; got != tt.certName {
				t.Errorf("%s: certificate for %s", tt.host, got)
			}
			if resp.TLS.Version != v {
				t.Errorf("negotiated %x, want %x", resp.TLS.Version, v)
			}
		}
	}
	if got := s.a.last().Header.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("x-forwarded-proto %q", got)
	}
	recs := s.rec.all()
	if r := recs[0]; r.ListenerProtocol != "HTTPS" || r.SNI != "svc-a.example.on.aws" || r.TLSVersion != "TLSv1.2" || r.TLSCipher == "" {
		t.Errorf("record TLS fields: %q %q %q %q", r.ListenerProtocol, r.SNI, r.TLSVersion, r.TLSCipher)
	}
}

func TestHTTPSHostMustMatchSNI(t *testing.T) { forEachPath(t, testHTTPSHostMustMatchSNI) }

func testHTTPSHostMustMatchSNI(t *testing.T, fast bool) {
	s := newHTTPSSetup(t, fast)
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), &tls.Config{RootCAs: s.ca.pool, ServerName: "svc-a.example.on.aws"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: svc-b.example.on.aws\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("status %d, want 421", resp.StatusCode)
	}
	if s.b.count() != 0 {
		t.Fatal("request reached the other service")
	}
}

// TestHTTPSFramingGuard: HTTP/1 over TLS goes through the framing guard
// too.
func TestHTTPSFramingGuard(t *testing.T) { forEachPath(t, testHTTPSFramingGuard) }

func testHTTPSFramingGuard(t *testing.T, fast bool) {
	s := newHTTPSSetup(t, fast)
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), &tls.Config{RootCAs: s.ca.pool, ServerName: "svc-a.example.on.aws"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: svc-a.example.on.aws\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || s.a.count() != 0 {
		t.Fatalf("status %d, target reached %d times", resp.StatusCode, s.a.count())
	}
}

func TestHTTPSUnknownSNI(t *testing.T) {
	s := newHTTPSSetup(t, true)
	for _, name := range []string{"nobody.example.com", ""} {
		cfg := &tls.Config{RootCAs: s.ca.pool, ServerName: name, InsecureSkipVerify: name == ""}
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), cfg)
		if err == nil {
			conn.Close()
			t.Fatalf("handshake with server name %q succeeded", name)
		}
		if !strings.Contains(err.Error(), "handshake failure") {
			t.Errorf("server name %q: %v, want a handshake_failure alert", name, err)
		}
	}
}

func TestPlainTextToTLSPort(t *testing.T) {
	s := newHTTPSSetup(t, true)
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: svc-a.example.on.aws\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || s.a.count() != 0 {
		t.Fatalf("status %d, target reached %d times", resp.StatusCode, s.a.count())
	}
}

func TestHTTPSALPNh2(t *testing.T) {
	s := newHTTPSSetup(t, true)
	c := tlsClient(t, s.port, s.ca, true, 0)
	resp, body := get(t, c, fmt.Sprintf("https://svc-a.example.on.aws:%d/h2", s.port),
		"x-amzn-lattice-identity", "Principal=spoofed", "X-Amzn-Lattice-Target", "spoofed", "x-forwarded-for", "6.6.6.6")
	if resp.StatusCode != 200 || body != "a" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if resp.ProtoMajor != 2 {
		t.Fatalf("client spoke %s, want HTTP/2", resp.Proto)
	}
	if got := resp.Header.Get("X-Seen-Proto"); got != "HTTP/1.1" {
		t.Errorf("HTTP1 target saw %s, want the request downgraded to HTTP/1.1", got)
	}
	if te := s.a.last().TransferEncoding; len(te) != 0 {
		t.Errorf("body-less HTTP/2 GET sent with transfer encoding %q", te)
	}
	h := s.a.last().Header
	if got := h.Get("X-Forwarded-Port"); got != fmt.Sprint(s.port) {
		t.Errorf("x-forwarded-port %q", got)
	}
	if got := h.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("x-forwarded-for %q", got)
	}
	if got := h.Values("X-Amzn-Lattice-Identity"); len(got) != 0 {
		t.Errorf("client-sent identity reached the target over HTTP/2: %q", got)
	}
	if got := h.Values("X-Amzn-Lattice-Target"); len(got) != 1 || got[0] == "spoofed" {
		t.Errorf("x-amzn-lattice-target %q", got)
	}
	if got := h.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("x-forwarded-proto %q, want https", got)
	}
	recs := s.rec.all()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	if r := recs[0]; r.Proto != "HTTP/2.0" || r.ListenerProtocol != "HTTPS" || r.SNI != "svc-a.example.on.aws" ||
		r.TLSVersion != "TLSv1.3" || r.TLSCipher == "" {
		t.Errorf("record: proto %q listener %q sni %q TLS %q %q", r.Proto, r.ListenerProtocol, r.SNI, r.TLSVersion, r.TLSCipher)
	}
}

// TestHTTPSTarget forwards to HTTPS target groups, HTTP/1.1 and HTTP/2
// (ALPN h2), whose certificates nobody trusts: Lattice does not verify.
func TestHTTPSTarget(t *testing.T) {
	ca := newTestCA(t)
	port := freePort(t)
	b1 := &backend{name: "tls-h1"}
	b1.srv = newTLSBackend(t, http.HandlerFunc(b1.serve))
	b2 := &backend{name: "tls-h2"}
	b2.srv = httptest.NewUnstartedServer(http.HandlerFunc(b2.serve))
	b2.srv.EnableHTTP2 = true
	b2.srv.StartTLS()
	t.Cleanup(b2.srv.Close)
	rules := []snapshot.Rule{
		matchRule("r-h2", 1, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Prefix: ptr("/h2")}}}, fwd(wtg{"tg-h2", 1})),
		defaultRule(fwd(wtg{"tg-h1", 1})),
	}
	svc := testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTPS, port, rules...))
	svc.Certificate = ca.issue(t, "svc-1.example.on.aws")
	e := newEngine(t, Config{})
	mustApply(t, e, testSnapshot(1, []snapshot.Service{svc},
		testTG("tg-h1", model.ProtocolHTTPS, model.ProtocolVersionHTTP1, b1.addr()),
		testTG("tg-h2", model.ProtocolHTTPS, model.ProtocolVersionHTTP2, b2.addr())))
	c := tlsClient(t, port, ca, true, 0)
	for _, tt := range []struct{ path, body, proto string }{
		{"/", "tls-h1", "HTTP/1.1"},
		{"/h2", "tls-h2", "HTTP/2.0"},
	} {
		resp, body := get(t, c, fmt.Sprintf("https://svc-1.example.on.aws:%d%s", port, tt.path))
		if resp.StatusCode != 200 || body != tt.body {
			t.Fatalf("%s: %d %q", tt.path, resp.StatusCode, body)
		}
		if got := resp.Header.Get("X-Seen-Proto"); got != tt.proto {
			t.Errorf("%s: target saw %s, want %s", tt.path, got, tt.proto)
		}
	}
	if r := b1.last(); r.TLS == nil {
		t.Error("target was not reached over TLS")
	}
}

func TestTLSPassthrough(t *testing.T) {
	s := newHTTPSSetup(t, true)
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), &tls.Config{RootCAs: s.ca.pool, ServerName: "pass.example.com"})
	if err != nil {
		t.Fatalf("handshake through passthrough: %v", err)
	}
	if got := conn.ConnectionState().PeerCertificates[0].DNSNames[0]; got != "pass.example.com" {
		t.Fatalf("certificate of %s: the gateway terminated TLS", got)
	}
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: pass.example.com\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	conn.Close()
	if string(body) != "passthrough target, sni=pass.example.com" {
		t.Fatalf("body %q", body)
	}
	waitFor(t, "passthrough record", func() bool {
		for _, r := range s.rec.all() {
			if r.ListenerProtocol == "TLS_PASSTHROUGH" {
				return r.SNI == "pass.example.com" && r.TargetAddr == s.passAddr && r.BytesReceived > 0 && r.BytesSent > 0 && r.ServiceID == "svc-p"
			}
		}
		return false
	})
}

// TestProtocolMatrix checks Lattice's client protocol × group version rules
// against an HTTP/2 (h2c) target.
func TestProtocolMatrix(t *testing.T) {
	ca := newTestCA(t)
	port := freePort(t)
	h2addr := newH2CBackend(t)
	a := newBackend(t, "h1")
	rules := []snapshot.Rule{
		matchRule("r-h1", 1, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Prefix: ptr("/h1")}}}, fwd(wtg{"tg-h1", 1})),
		matchRule("r-grpc", 2, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Prefix: ptr("/grpc")}}}, fwd(wtg{"tg-grpc", 1})),
		defaultRule(fwd(wtg{"tg-h2", 1})),
	}
	svc := testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTPS, port, rules...))
	svc.Certificate = ca.issue(t, "svc-1.example.on.aws")
	e := newEngine(t, Config{})
	mustApply(t, e, testSnapshot(1, []snapshot.Service{svc},
		testTG("tg-h2", model.ProtocolHTTP, model.ProtocolVersionHTTP2, h2addr),
		testTG("tg-grpc", model.ProtocolHTTP, model.ProtocolVersionGRPC, h2addr),
		testTG("tg-h1", model.ProtocolHTTP, model.ProtocolVersionHTTP1, a.addr())))
	h1 := tlsClient(t, port, ca, false, 0)
	h2 := tlsClient(t, port, ca, true, 0)
	base := fmt.Sprintf("https://svc-1.example.on.aws:%d", port)
	for _, tt := range []struct {
		name   string
		c      *http.Client
		method string
		path   string
		ct     string
		status int
	}{
		{"HTTP/2 to HTTP2", h2, "GET", "/", "", 200},
		{"HTTP/1.1 to HTTP2", h1, "GET", "/", "", 502},
		{"HTTP/2 POST to GRPC", h2, "POST", "/grpc", "", 200},
		{"HTTP/2 GET to GRPC", h2, "GET", "/grpc", "", 502},
		{"HTTP/1.1 to GRPC", h1, "POST", "/grpc", "application/grpc", 502},
		{"gRPC to HTTP1", h2, "POST", "/h1", "application/grpc", 502},
		{"HTTP/1.1 to HTTP1", h1, "GET", "/h1", "", 200},
	} {
		req, _ := http.NewRequest(tt.method, base+tt.path, strings.NewReader("x"))
		if tt.ct != "" {
			req.Header.Set("Content-Type", tt.ct)
		}
		resp, err := tt.c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.status)
		}
		if tt.status == 200 && tt.path != "/h1" && resp.Header.Get("X-Seen-Proto") != "HTTP/2.0" {
			t.Errorf("%s: target saw %s, want HTTP/2.0", tt.name, resp.Header.Get("X-Seen-Proto"))
		}
	}
}

// newH2CBackend serves HTTP/2 with prior knowledge only.
func newH2CBackend(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &p, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Seen-Proto", r.Proto)
		io.WriteString(w, "h2")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
