package egress

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/testnet"
)

// newProxy returns a Proxy that is closed when the test ends.
func newProxy(t testing.TB, cfg Config) *Proxy {
	t.Helper()
	p := New(cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

// listen serves name on a free loopback port and returns its address.
func listen(t testing.TB, p *Proxy, name string, pol Policy) string {
	t.Helper()
	addr, err := p.Listen(name, "127.0.0.1:0", pol)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	return addr.String()
}

// backend is an httptest server that counts the requests it gets.
type backend struct {
	*httptest.Server
	hits atomic.Int64
}

func (b *backend) endpoint(id string) Endpoint {
	return Endpoint{ID: id, Addr: b.Listener.Addr().String()}
}

// newBackend starts an HTTP/1.1 and h2c server running h.
func newBackend(t testing.TB, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		h(w, r)
	}))
	b.Config.Protocols = new(http.Protocols)
	b.Config.Protocols.SetHTTP1(true)
	b.Config.Protocols.SetUnencryptedHTTP2(true)
	b.Start()
	t.Cleanup(b.Close)
	return b
}

// okBackend answers 200 with its name in the body and in x-backend.
func okBackend(t testing.TB, name string) *backend {
	return newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Backend", name)
		io.WriteString(w, name)
	})
}

// statusBackend answers status to everything.
func statusBackend(t testing.TB, status int) *backend {
	return newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(status)
		io.WriteString(w, "from backend")
	})
}

// deadAddr is a loopback address nobody listens on, which refuses
// connections until the test ends (testnet.FreeAddr holds it).
func deadAddr(t testing.TB) string {
	t.Helper()
	return testnet.FreeAddr(t)
}

// newClient is an HTTP/1.1 client of its own, closed with the test.
func newClient(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// newH2CClient speaks h2c with prior knowledge.
func newH2CClient(t testing.TB) *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// result is a finished response, body read.
type result struct {
	status int
	body   string
	header http.Header
}

func do(t testing.TB, c *http.Client, method, url, body string, hdr ...string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return result{status: resp.StatusCode, body: string(b), header: resp.Header}
}

func get(t testing.TB, c *http.Client, addr string) result {
	t.Helper()
	return do(t, c, http.MethodGet, "http://"+addr+"/", "")
}

// recorder keeps copies of the records it observes.
type recorder struct {
	mu   sync.Mutex
	recs []Record
}

func (r *recorder) Observe(rec *Record) {
	r.mu.Lock()
	r.recs = append(r.recs, rec.Clone())
	r.mu.Unlock()
}

// of returns the records of kind k.
func (r *recorder) of(k Kind) []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Record
	for _, rec := range r.recs {
		if rec.Kind == k {
			out = append(out, rec)
		}
	}
	return out
}

// waitRequests returns the request records once there are at least n:
// a record is written after the response, so a client may see the answer
// first.
func (r *recorder) waitRequests(t testing.TB, n int) []Record {
	t.Helper()
	var recs []Record
	waitFor(t, "request records", func() bool {
		recs = r.of(KindRequest)
		return len(recs) >= n
	})
	return recs
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// gate blocks handlers until opened.
type gate struct {
	ch      chan struct{}
	once    sync.Once
	waiting atomic.Int64
}

func newGate(t testing.TB) *gate {
	g := &gate{ch: make(chan struct{})}
	t.Cleanup(g.open) // never leave a handler blocked
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// wait blocks until the gate opens or ctx ends.
func (g *gate) wait(ctx context.Context) {
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	select {
	case <-g.ch:
	case <-ctx.Done():
	}
}

func httpPolicy() Policy { return Policy{Protocol: HTTP} }

// svcOf returns the proxy's service called name.
func svcOf(p *Proxy, name string) *service {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.services[name]
}

// newLoopbackListener listens on a free loopback port until the test ends.
func newLoopbackListener(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// idle counts the idle HTTP/1.1 connections to addr, of the fast path and
// of h1client.
func (up *upstream) idle(addr string) int {
	n := 0
	if up.h1 != nil {
		n += up.h1.Idle(addr)
	}
	if up.fast != nil {
		up.fast.mu.Lock()
		n += len(up.fast.conns[addr])
		up.fast.mu.Unlock()
	}
	return n
}
