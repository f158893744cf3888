package egress

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// agentURI is the calling agent's identity in its client certificate.
const agentURI = "spiffe://trellis.test/ns/shop/agent/checkout"

// ingressTLS is Proxy B's server configuration: mutual TLS with ca.
func ingressTLS(t testing.TB, ca *testCA) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{ca.issue(t, "orders.internal")},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: ca.pool,
	}
}

// agentTLS is a client configuration trusting ca, with certs as client
// certificates.
func agentTLS(ca *testCA, certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: ca.pool, Certificates: certs}
}

// listenTLS serves name with TLS on a free loopback port.
func listenTLS(t testing.TB, p *Proxy, name string, pol Policy, cfg *tls.Config) string {
	t.Helper()
	addr, err := p.ListenTLS(name, "127.0.0.1:0", pol, cfg)
	if err != nil {
		t.Fatalf("ListenTLS: %v", err)
	}
	return addr.String()
}

// agents is the path agent to agent: the application calls Proxy A's
// plain listener, A calls Proxy B's ListenTLS listener with its client
// certificate, and B calls the backend.
type agents struct {
	a, b         *Proxy
	recA, recB   *recorder
	aAddr, bAddr string
}

func newAgents(t testing.TB, pol Policy, backend string, client, server *tls.Config) *agents {
	t.Helper()
	x := &agents{recA: &recorder{}, recB: &recorder{}}
	x.b = newProxy(t, Config{Observer: x.recB})
	x.b.SetEndpoints("orders", []Endpoint{{ID: "backend", Addr: backend}})
	x.bAddr = listenTLS(t, x.b, "orders", pol, server)
	x.a = newProxy(t, Config{Observer: x.recA})
	x.a.SetEndpoints("orders", []Endpoint{{ID: "agent-b", Addr: x.bAddr}})
	pol.TLS = client
	x.aAddr = listen(t, x.a, "orders", pol)
	return x
}

// connClose waits for the first KindConnClose record of rec.
func connClose(t testing.TB, rec *recorder) Record {
	t.Helper()
	var got Record
	waitFor(t, "a connection close record", func() bool {
		recs := rec.of(KindConnClose)
		if len(recs) > 0 {
			got = recs[0]
		}
		return len(recs) > 0
	})
	return got
}

// TestListenTLSAgentToAgent: Proxy A reaches Proxy B's ingress with its
// client certificate; B serves HTTP/1.1 or HTTP/2 as ALPN decides and
// records the calling agent.
func TestListenTLSAgentToAgent(t *testing.T) {
	ca := newTestCA(t)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-Proto"))
	})
	client := agentTLS(ca, ca.issue(t, "checkout", agentURI))
	for _, tc := range []struct {
		proto Protocol
		want  string // the Proto of B's request
	}{
		{HTTP, "HTTP/1.1"},
		{HTTP2, "HTTP/2.0"},
	} {
		t.Run(tc.proto.String(), func(t *testing.T) {
			x := newAgents(t, Policy{Protocol: tc.proto}, b.Listener.Addr().String(), client, ingressTLS(t, ca))
			if r := get(t, newClient(t), x.aAddr); r.status != 200 || r.body != "http" {
				t.Fatalf("got %d %q", r.status, r.body)
			}
			r := x.recB.waitRequests(t, 1)[0]
			if r.Proto != tc.want || r.PeerURI != agentURI || r.Status != 200 || r.Endpoint != "backend" {
				t.Fatalf("B's record %+v", r)
			}
			if r := x.recA.waitRequests(t, 1)[0]; r.PeerURI != "" || r.Endpoint != "agent-b" {
				t.Fatalf("A's record %+v", r)
			}
			x.a.Close(context.Background()) // closes A's connection to B
			if c := connClose(t, x.recB); c.PeerURI != agentURI || c.Failure != FailureNone || c.BytesIn == 0 {
				t.Fatalf("B's connection record %+v", c)
			}
			if st, _ := x.b.Stats("orders"); st.TLSHandshakeFailures != 0 || st.Requests != 1 {
				t.Fatalf("B's stats %+v", st)
			}
		})
	}

	t.Run("direct https client", func(t *testing.T) {
		rec := &recorder{}
		p := newProxy(t, Config{Observer: rec})
		p.SetEndpoints("orders", []Endpoint{b.endpoint("")})
		addr := listenTLS(t, p, "orders", httpPolicy(), ingressTLS(t, ca))
		for i, h2 := range []bool{false, true} {
			tr := &http.Transport{TLSClientConfig: client.Clone(), Protocols: new(http.Protocols)}
			tr.Protocols.SetHTTP1(!h2)
			tr.Protocols.SetHTTP2(h2)
			t.Cleanup(tr.CloseIdleConnections)
			r := do(t, &http.Client{Transport: tr, Timeout: 20 * time.Second}, "GET", "https://"+addr+"/", "")
			if r.status != 200 || r.body != "https" {
				t.Fatalf("h2 %v: got %d %q, want the endpoint told https", h2, r.status, r.body)
			}
			if got, want := rec.waitRequests(t, i+1)[i].Proto, map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]; got != want {
				t.Fatalf("proto %q, want %q", got, want)
			}
		}
	})
}

// TestListenTLSGRPC: gRPC's own client reaches a gRPC service behind
// Proxy B through Proxy A, and directly with gRPC's TLS credentials (which
// insist on ALPN h2).
func TestListenTLSGRPC(t *testing.T) {
	ca := newTestCA(t)
	ln := newLoopbackListener(t)
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("trellis.Test", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)

	client := agentTLS(ca, ca.issue(t, "checkout", agentURI))
	x := newAgents(t, Policy{Protocol: GRPC}, ln.Addr().String(), client, ingressTLS(t, ca))
	direct := client.Clone()
	direct.ServerName = "orders.internal"
	for _, tc := range []struct {
		name, addr string
		creds      credentials.TransportCredentials
	}{
		{"through agent A", x.aAddr, insecure.NewCredentials()},
		{"direct", x.bAddr, credentials.NewTLS(direct)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := grpc.NewClient("passthrough:///"+tc.addr, grpc.WithTransportCredentials(tc.creds))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "trellis.Test"})
			if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("Check: %v, %v", resp, err)
			}
		})
	}
	for _, r := range x.recB.waitRequests(t, 2) {
		if !r.IsGRPC() || r.GRPCStatus != 0 || r.Proto != "HTTP/2.0" || r.PeerURI != agentURI {
			t.Fatalf("B's record %+v", r)
		}
	}
}

// TestListenTLSTCP: a TCP service behind Proxy B, reached through Proxy A
// with mutual TLS: echo, a large echo, and a half-close passed on both ways.
func TestListenTLSTCP(t *testing.T) {
	ca := newTestCA(t)
	echo := newEchoServer(t)
	x := newAgents(t, Policy{Protocol: TCP, IdleTimeout: time.Hour}, echo,
		agentTLS(ca, ca.issue(t, "checkout", agentURI)), ingressTLS(t, ca))
	c, err := net.Dial("tcp", x.aAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "hello")
	big := strings.Repeat("0123456789", 100_000)
	go io.WriteString(c, big)
	buf := make([]byte, len(big))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != big {
		t.Fatalf("1 MB echo: %v", err)
	}
	// The half-close crosses A (close_notify to B), B (a TCP half-close
	// to the echo server) and back: the echo server still answers.
	c.(*net.TCPConn).CloseWrite()
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != "bye" {
		t.Fatalf("after half-close got %q, %v", rest, err)
	}
	r := connClose(t, x.recB)
	if want := int64(5 + len(big)); r.BytesIn != want || r.BytesOut != want+3 || r.PeerURI != agentURI ||
		r.Endpoint != "backend" || r.Failure != FailureNone || r.Protocol != TCP {
		t.Fatalf("B's record %+v", r)
	}
	if st, _ := x.b.Stats("orders"); st.ActiveConnections != 0 || st.Requests != 1 {
		t.Fatalf("B's stats %+v", st)
	}
}

// TestListenTLSTCPIdle: a silent TCP stream over TLS closes after the idle
// timeout, as a plain one does.
func TestListenTLSTCPIdle(t *testing.T) {
	const idle = 400 * time.Millisecond
	ca := newTestCA(t)
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("db", []Endpoint{{Addr: newEchoServer(t)}})
	addr := listenTLS(t, p, "db", Policy{Protocol: TCP, IdleTimeout: idle}, ingressTLS(t, ca))
	c, err := tls.Dial("tcp", addr, agentTLS(ca, ca.issue(t, "checkout", agentURI)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "x")
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %v, want the stream closed", err)
	}
	if d := time.Since(start); d < idle {
		t.Fatalf("closed after %v, before the idle timeout", d)
	}
	if r := connClose(t, rec); r.Failure != FailureIdle || !r.TimedOut || r.PeerURI != agentURI || r.BytesIn != 1 {
		t.Fatalf("record %+v", r)
	}
	if st, _ := p.Stats("db"); st.ActiveConnections != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestListenTLSRefused: clients without a certificate, or with one from
// another CA, never reach the backend; through Proxy A the application
// gets a 503 for a connect failure, which A retries on another endpoint.
func TestListenTLSRefused(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	b := okBackend(t, "backend")
	tls12 := ingressTLS(t, ca)
	tls12.MaxVersion = tls.VersionTLS12 // the client's handshake fails, not its first read
	for _, tc := range []struct {
		name   string
		proto  Protocol
		client *tls.Config
		server *tls.Config
	}{
		{"no certificate", HTTP, agentTLS(ca), ingressTLS(t, ca)},
		{"no certificate, http2", HTTP2, agentTLS(ca), ingressTLS(t, ca)},
		// other's name is ca's, so the client sends its certificate.
		{"other CA", HTTP, agentTLS(ca, other.issue(t, "checkout", agentURI)), ingressTLS(t, ca)},
		{"other CA, http2", HTTP2, agentTLS(ca, other.issue(t, "checkout", agentURI)), ingressTLS(t, ca)},
		{"other CA, TLS 1.2", HTTP, agentTLS(ca, other.issue(t, "checkout", agentURI)), tls12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newAgents(t, Policy{Protocol: tc.proto}, b.Listener.Addr().String(), tc.client, tc.server)
			r := do(t, newClient(t), "POST", "http://"+x.aAddr+"/", "order")
			if r.status != 503 || !strings.Contains(r.body, "connection failure") {
				t.Fatalf("got %d %q", r.status, r.body)
			}
			if r := x.recA.waitRequests(t, 1)[0]; r.Failure != FailureConnect || !r.Generated {
				t.Fatalf("A's record %+v", r)
			}
			if c := connClose(t, x.recB); c.Failure != FailureTLSHandshake || c.Endpoint != "" || c.PeerURI != "" {
				t.Fatalf("B's record %+v", c)
			}
			waitFor(t, "the failure count", func() bool {
				st, _ := x.b.Stats("orders")
				return st.TLSHandshakeFailures == 1
			})
			if st, _ := x.b.Stats("orders"); st.Requests != 0 || st.ActiveConnections != 0 || len(x.recB.of(KindRequest)) != 0 {
				t.Fatalf("B's stats %+v", st)
			}
		})
	}
	if n := b.hits.Load(); n != 0 {
		t.Fatalf("the backend got %d requests", n)
	}

	t.Run("retried on another endpoint", func(t *testing.T) {
		good := okBackend(t, "good")
		pb := newProxy(t, Config{})
		pb.SetEndpoints("orders", []Endpoint{good.endpoint("")})
		refusing := ingressTLS(t, ca)
		refusing.ClientCAs = other.pool
		refusingAddr := listenTLS(t, pb, "orders", httpPolicy(), refusing)
		acceptingAddr := listenTLS(t, pb, "orders", httpPolicy(), ingressTLS(t, ca))
		rec := &recorder{}
		pa := newProxy(t, Config{Observer: rec})
		pa.SetEndpoints("orders", []Endpoint{{ID: "refusing", Addr: refusingAddr}, {ID: "accepting", Addr: acceptingAddr}})
		pol := Policy{Protocol: HTTP, Retry: RetryPolicy{NumRetries: 1, On: RetryConnectFailure},
			TLS: agentTLS(ca, ca.issue(t, "checkout", agentURI))}
		addr := listen(t, pa, "orders", pol)
		c := newClient(t)
		calls := 0
		for ; ; calls++ {
			if st, _ := pb.Stats("orders"); st.TLSHandshakeFailures > 0 {
				break
			}
			if calls == 200 {
				t.Fatal("the refusing endpoint was never picked")
			}
			// A POST: retried only because the refusal is a connect failure.
			if r := do(t, c, "POST", "http://"+addr+"/", "order"); r.status != 200 || r.body != "good" {
				t.Fatalf("got %d %q", r.status, r.body)
			}
		}
		var retried bool
		for _, r := range rec.waitRequests(t, calls) {
			retried = retried || (r.Retries == 1 && r.Endpoint == "accepting")
		}
		if !retried {
			t.Fatal("no record of a retry from the refusing endpoint to the accepting one")
		}
	})

	t.Run("tcp", func(t *testing.T) {
		backend := newLoopbackListener(t)
		var accepted atomic.Int64
		go func() {
			for {
				c, err := backend.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				c.Close()
			}
		}()
		rec := &recorder{}
		p := newProxy(t, Config{Observer: rec})
		p.SetEndpoints("db", []Endpoint{{Addr: backend.Addr().String()}})
		addr := listenTLS(t, p, "db", Policy{Protocol: TCP}, ingressTLS(t, ca))
		c, err := tls.Dial("tcp", addr, agentTLS(ca))
		if err != nil {
			t.Fatal(err) // TLS 1.3: the client's handshake ends before the server's verdict
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || !strings.Contains(err.Error(), "certificate required") {
			t.Fatalf("read %v, want the server's alert", err)
		}
		c.Close()
		if r := connClose(t, rec); r.Failure != FailureTLSHandshake || r.Endpoint != "" {
			t.Fatalf("record %+v", r)
		}
		if st, _ := p.Stats("db"); st.TLSHandshakeFailures != 1 || st.Requests != 0 || accepted.Load() != 0 {
			t.Fatalf("stats %+v, backend accepted %d", st, accepted.Load())
		}
	})
}

// TestListenTLSRotation: the certificate GetCertificate returns changes,
// and new connections get the new one without a restart; a config
// returned by GetConfigForClient gets the default ALPN protocols.
func TestListenTLSRotation(t *testing.T) {
	ca := newTestCA(t)
	b := okBackend(t, "b")
	var current atomic.Pointer[tls.Certificate]
	first := ca.issue(t, "orders-v1")
	current.Store(&first)
	getCert := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return current.Load(), nil }
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"GetCertificate", &tls.Config{GetCertificate: getCert}},
		{"GetConfigForClient", &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return &tls.Config{Certificates: []tls.Certificate{*current.Load()}}, nil
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			current.Store(&first)
			p := newProxy(t, Config{})
			p.SetEndpoints("orders", []Endpoint{b.endpoint("")})
			addr := listenTLS(t, p, "orders", httpPolicy(), tc.cfg)
			leaf := func() string {
				t.Helper()
				cfg := agentTLS(ca)
				cfg.NextProtos = []string{"h2", "http/1.1"}
				c, err := tls.Dial("tcp", addr, cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				cs := c.ConnectionState()
				if cs.NegotiatedProtocol != "h2" {
					t.Fatalf("ALPN %q, want h2", cs.NegotiatedProtocol)
				}
				return cs.PeerCertificates[0].Subject.CommonName
			}
			if got := leaf(); got != "orders-v1" {
				t.Fatalf("first leaf %q", got)
			}
			second := ca.issue(t, "orders-v2")
			current.Store(&second)
			if got := leaf(); got != "orders-v2" {
				t.Fatalf("leaf after rotation %q, want orders-v2", got)
			}
		})
	}
}

// TestListenTLSUnverifiedPeer: a certificate that crypto/tls did not
// verify names nobody.
func TestListenTLSUnverifiedPeer(t *testing.T) {
	ca := newTestCA(t)
	b := okBackend(t, "b")
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("orders", []Endpoint{b.endpoint("")})
	srv := ingressTLS(t, ca)
	srv.ClientAuth = tls.RequireAnyClientCert
	addr := listenTLS(t, p, "orders", httpPolicy(), srv)
	tr := &http.Transport{TLSClientConfig: agentTLS(ca, newTestCA(t).issue(t, "mallory", agentURI))}
	t.Cleanup(tr.CloseIdleConnections)
	if r := do(t, &http.Client{Transport: tr}, "GET", "https://"+addr+"/", ""); r.status != 200 {
		t.Fatalf("got %d", r.status)
	}
	if r := rec.waitRequests(t, 1)[0]; r.PeerURI != "" {
		t.Fatalf("PeerURI %q from an unverified certificate", r.PeerURI)
	}
}

// TestListenTLSSilentClient: a client that never sends its ClientHello
// holds up nobody, and is cut at the handshake deadline.
func TestListenTLSSilentClient(t *testing.T) {
	const hsTimeout = time.Second
	ca := newTestCA(t)
	b := okBackend(t, "b")
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.hsTimeout = hsTimeout
	p.SetEndpoints("orders", []Endpoint{b.endpoint("")})
	addr := listenTLS(t, p, "orders", httpPolicy(), ingressTLS(t, ca))

	start := time.Now()
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	waitFor(t, "the silent connection's accept", func() bool { return len(rec.of(KindConnOpen)) == 1 })

	tr := &http.Transport{TLSClientConfig: agentTLS(ca, ca.issue(t, "checkout", agentURI))}
	t.Cleanup(tr.CloseIdleConnections)
	if r := do(t, &http.Client{Transport: tr}, "GET", "https://"+addr+"/", ""); r.status != 200 {
		t.Fatalf("second client: %d", r.status)
	}
	// The silent connection is still open: it was not in the way.
	silent.SetReadDeadline(time.Now().Add(time.Millisecond))
	if _, err := silent.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("silent connection: read %v, want it still open", err)
	}
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("silent connection: read %v, want EOF at the deadline", err)
	}
	if d := time.Since(start); d < hsTimeout {
		t.Fatalf("cut after %v, before the handshake timeout", d)
	}
	waitFor(t, "the failure's record", func() bool {
		recs := rec.of(KindConnClose)
		return len(recs) == 1 && recs[0].Failure == FailureTLSHandshake
	})
	if st, _ := p.Stats("orders"); st.TLSHandshakeFailures != 1 || st.ActiveConnections != 1 {
		t.Fatalf("stats %+v (the second client's connection is idle)", st)
	}
}

// TestListenTLSClose: Close lets a request in flight over TLS finish,
// and cuts a handshake in progress at once.
func TestListenTLSClose(t *testing.T) {
	ca := newTestCA(t)
	g := newGate(t)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		g.wait(r.Context())
		io.WriteString(w, "finished")
	})
	rec := &recorder{}
	p := New(Config{Observer: rec})
	p.SetEndpoints("orders", []Endpoint{b.endpoint("")})
	addr := listenTLS(t, p, "orders", httpPolicy(), ingressTLS(t, ca))
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	waitFor(t, "the silent connection's accept", func() bool { return len(rec.of(KindConnOpen)) == 1 })

	tr := &http.Transport{TLSClientConfig: agentTLS(ca, ca.issue(t, "checkout", agentURI))}
	t.Cleanup(tr.CloseIdleConnections)
	inflight := make(chan result, 1)
	go func() { inflight <- do(t, &http.Client{Transport: tr}, "GET", "https://"+addr+"/", "") }()
	waitFor(t, "the request", func() bool { return g.waiting.Load() == 1 })

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		closed <- p.Close(ctx)
	}()
	silent.SetReadDeadline(time.Now().Add(TLSHandshakeTimeout / 2))
	if _, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("handshake in progress: read %v, want EOF from Close", err)
	}
	g.open()
	if r := <-inflight; r.status != 200 || r.body != "finished" {
		t.Fatalf("in-flight request: %d %q", r.status, r.body)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if st, _ := p.Stats("orders"); st.TLSHandshakeFailures != 0 {
		t.Fatalf("a handshake cut by Close counted as a failure: %+v", st)
	}
	waitFor(t, "the cut handshake's record", func() bool {
		for _, r := range rec.of(KindConnClose) {
			if r.Failure == FailureTLSHandshake {
				return true
			}
		}
		return false
	})
}

// TestListenTLSProtocolSwitch: SetPolicy decides how the next TLS
// connection is served.
func TestListenTLSProtocolSwitch(t *testing.T) {
	ca := newTestCA(t)
	echo := newEchoServer(t)
	web := okBackend(t, "web")
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{web.endpoint("")})
	addr := listenTLS(t, p, "svc", httpPolicy(), ingressTLS(t, ca))
	client := agentTLS(ca, ca.issue(t, "checkout", agentURI))
	tr := &http.Transport{TLSClientConfig: client}
	t.Cleanup(tr.CloseIdleConnections)
	if r := do(t, &http.Client{Transport: tr}, "GET", "https://"+addr+"/", ""); r.body != "web" {
		t.Fatalf("HTTP: %q", r.body)
	}
	if err := p.SetPolicy("svc", Policy{Protocol: TCP}); err != nil {
		t.Fatal(err)
	}
	p.SetEndpoints("svc", []Endpoint{{Addr: echo}})
	c, err := tls.Dial("tcp", addr, client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "GET / HTTP/1.1\r\n\r\n") // just bytes now
}

func TestListenTLSErrors(t *testing.T) {
	p := newProxy(t, Config{})
	for _, cfg := range []*tls.Config{nil, {ClientAuth: tls.RequireAndVerifyClientCert}} {
		if _, err := p.ListenTLS("svc", "127.0.0.1:0", httpPolicy(), cfg); !errors.Is(err, ErrInvalidTLSConfig) {
			t.Fatalf("ListenTLS(%v): %v", cfg, err)
		}
	}
	ca := newTestCA(t)
	if _, err := p.ListenTLS("svc", "127.0.0.1:0", Policy{Protocol: 9}, ingressTLS(t, ca)); !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("invalid policy: %v", err)
	}
}

// TestListenTLSNoGoroutineLeak: TLS listeners, served and refused, leave
// no goroutine behind after Close.
func TestListenTLSNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		ca := newTestCA(t)
		web := okBackend(t, "web")
		echo := newEchoServer(t)
		p := New(Config{})
		p.SetEndpoints("web", []Endpoint{web.endpoint("")})
		p.SetEndpoints("db", []Endpoint{{Addr: echo}})
		webAddr := listenTLS(t, p, "web", Policy{Protocol: HTTP2}, ingressTLS(t, ca))
		dbAddr := listenTLS(t, p, "db", Policy{Protocol: TCP, IdleTimeout: time.Second}, ingressTLS(t, ca))
		client := agentTLS(ca, ca.issue(t, "checkout", agentURI))
		tr := &http.Transport{TLSClientConfig: client, ForceAttemptHTTP2: true}
		for _, cfg := range []*tls.Config{client, agentTLS(ca)} {
			tr.TLSClientConfig = cfg
			if resp, err := (&http.Client{Transport: tr}).Get("https://" + webAddr + "/"); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		conn, err := tls.Dial("tcp", dbAddr, client)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, conn, "x")
		conn.Close()
		silent, err := net.Dial("tcp", webAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		tr.CloseIdleConnections()
		web.Close()
	}()
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before+1 })
}
