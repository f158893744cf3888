package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trellis-mesh/trellis/internal/h1wire"
	"github.com/trellis-mesh/trellis/internal/h2server"
	"github.com/trellis-mesh/trellis/internal/rawio"
)

// portServer serves one port. Its accept loop classifies each connection
// with the table current at accept time:
//
//   - plain-text port: the connection goes (through the HTTP/1 framing
//     guard, h1wire.GuardConn) to the port's http.Server, which speaks
//     HTTP/1.1 and HTTP/2 with prior knowledge;
//   - TLS port: the ClientHello is read without consuming it and its server
//     name picks the listener. A TLS_PASSTHROUGH listener gets the raw
//     bytes spliced to a target; an HTTPS listener's certificate terminates
//     TLS (ALPN h2 or http/1.1) and the connection goes to the http.Server;
//     an unknown name gets a handshake_failure alert.
//
// Requests then look up the current table on every request, so a
// connection outlives configuration changes.
type portServer struct {
	e    *Engine
	port int32
	ln   net.Listener
	http *connListener
	srv  *http.Server
	h2   *h2server.Server // HTTP/2 connections when the engine's h2native

	wg sync.WaitGroup // accept loop, connection setup, fast-path and passthrough goroutines

	mu sync.Mutex
	l4 map[net.Conn]struct{} // TLS connections being classified, passthrough connections (both sides)
	h1 map[*h1conn]struct{}  // connections on the HTTP/1 fast path
	// draining is set when the port shuts down: fast-path connections stop
	// keeping alive.
	draining atomic.Bool
}

func newPortServer(e *Engine, port int32, ln net.Listener) *portServer {
	ps := &portServer{e: e, port: port, ln: ln, l4: make(map[net.Conn]struct{}), h1: make(map[*h1conn]struct{})}
	ps.http = newConnListener(ln.Addr())
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	protos.SetUnencryptedHTTP2(true)
	ps.srv = &http.Server{
		Handler:           ps,
		Protocols:         &protos,
		ReadHeaderTimeout: e.cfg.ReadHeaderTimeout,
		MaxHeaderBytes:    e.cfg.MaxHeaderBytes,
		ErrorLog:          e.errLog,
		ConnContext:       connContext,
	}
	if e.h2native {
		// A stalled request body is bounded by the idle timeout, the
		// service's own on the direct path (SetBodyIdle).
		ps.h2 = &h2server.Server{Handler: ps, MaxHeaderBytes: e.cfg.MaxHeaderBytes, Logger: e.log, ConnContext: connContext,
			BodyIdleTimeout: e.cfg.IdleTimeout}
	}
	return ps
}

func (ps *portServer) start() {
	go func() {
		// Serve returns when the connection listener closes (shutdown).
		_ = ps.srv.Serve(ps.http)
	}()
	ps.wg.Add(1)
	go ps.acceptLoop()
}

func (ps *portServer) acceptLoop() {
	defer ps.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		c, err := ps.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			ps.e.log.Warn("accept failed", "port", ps.port, "err", err)
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		pt := ps.e.table.Load().ports[ps.port]
		switch {
		case pt == nil:
			_ = c.Close()
		case !pt.tls && ps.e.h1fast:
			ps.wg.Add(1)
			go ps.serveH1(c)
		case !pt.tls:
			cc := newClientConn(ps.e, rawio.Wrap(c))
			ps.handoff(cc, h1wire.NewGuardConn(cc, ps.e.cfg.MaxHeaderBytes, ps.e.log))
		default:
			ps.wg.Add(1)
			go ps.serveTLS(c)
		}
	}
}

// handoff gives a ready connection to the port's http.Server.
func (ps *portServer) handoff(cc *clientConn, c net.Conn) {
	cc.startIdle()
	ps.pushHTTP(c)
}

// pushHTTP gives a connection whose idle timer runs to the http.Server.
func (ps *portServer) pushHTTP(c net.Conn) {
	if !ps.http.push(c) {
		_ = c.Close()
	}
}

// serveTLS reads the ClientHello of a connection to a TLS port and
// dispatches on its server name.
func (ps *portServer) serveTLS(c net.Conn) {
	defer ps.wg.Done()
	// Tracked until handed off, so that a drain can cut a slow handshake.
	ps.track(c)
	defer ps.untrack(c)
	cfg := &ps.e.cfg
	_ = c.SetDeadline(time.Now().Add(cfg.HandshakeTimeout))
	hello, sni, err := readClientHello(c)
	if err != nil {
		ps.e.log.Debug("no TLS ClientHello", "port", ps.port, "remote", c.RemoteAddr().String(), "err", err)
		if errors.Is(err, errNotTLS) {
			// Most likely plain HTTP sent to a TLS port: say so, as
			// net/http does.
			_, _ = io.WriteString(c, "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nClient sent an HTTP request to a TLS port.\n")
		}
		_ = c.Close()
		return
	}
	pt := ps.e.table.Load().ports[ps.port]
	var lr *listenerRoute
	if pt != nil && pt.tls {
		lr = pt.lookupSNI(sni)
	}
	if lr == nil {
		ps.e.log.Debug("unknown TLS server name", "port", ps.port, "sni", sni)
		writeAlert(c, alertHandshakeFailure)
		_ = c.Close()
		return
	}
	if lr.passthrough != nil {
		_ = c.SetDeadline(time.Time{})
		ps.passthrough(c, hello, lr, sni)
		return
	}
	cc := newClientConn(ps.e, rawio.Wrap(c))
	cc.prefix = hello
	tc := tls.Server(cc, lr.tlsConfig)
	if err := tc.Handshake(); err != nil {
		ps.e.log.Debug("TLS handshake failed", "port", ps.port, "sni", sni, "err", err)
		_ = c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	cc.tls = true
	cc.sni = st.ServerName
	cc.svcID = lr.svc.id
	cc.tlsVersion = tlsVersionName(st.Version)
	cc.tlsCipher = tls.CipherSuiteName(st.CipherSuite)
	if len(st.PeerCertificates) > 0 {
		cc.peerCert = st.PeerCertificates[0] // verified by the handshake (ClientCAs)
	}
	if st.NegotiatedProtocol == "h2" {
		if ps.h2 != nil {
			cc.startIdle()
			_ = ps.h2.ServeConn(context.Background(), tc)
			return
		}
		ps.handoff(cc, tc)
		return
	}
	if ps.e.h1fast && lr.h1fast {
		// The connection's host is the listener's (route answers 421
		// otherwise), so the fast path serves all its requests unless a
		// configuration change says otherwise.
		ps.untrack(c)
		ps.serveFast(cc, tc)
		return
	}
	ps.handoff(cc, h1wire.NewTLSGuardConn(tc, cfg.MaxHeaderBytes, ps.e.log))
}

// tlsVersionName spells a TLS version as access logs do (TLSv1.3).
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS10:
		return "TLSv1"
	}
	return ""
}

// shutdown stops accepting, lets in-flight requests and passthrough
// connections finish until ctx is done, then closes everything left.
func (ps *portServer) shutdown(ctx context.Context) error {
	_ = ps.ln.Close()
	ps.drainH1()
	if ps.h2 != nil {
		go func() { _ = ps.h2.Shutdown(ctx) }()
	}
	err := ps.srv.Shutdown(ctx)
	if err != nil {
		_ = ps.srv.Close()
	}
	done := make(chan struct{})
	go func() { ps.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		ps.mu.Lock()
		for c := range ps.l4 {
			_ = c.Close()
		}
		for h := range ps.h1 {
			_ = h.cc.Conn.Close()
		}
		ps.mu.Unlock()
		<-done
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

// track registers passthrough connections so a drain can cut them.
func (ps *portServer) track(cs ...net.Conn) {
	ps.mu.Lock()
	for _, c := range cs {
		ps.l4[c] = struct{}{}
	}
	ps.mu.Unlock()
}

func (ps *portServer) untrack(cs ...net.Conn) {
	ps.mu.Lock()
	for _, c := range cs {
		delete(ps.l4, c)
	}
	ps.mu.Unlock()
}

// connListener is the net.Listener an http.Server serves: connections the
// accept loop has classified are pushed into it.
type connListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	addr net.Addr
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{ch: make(chan net.Conn), done: make(chan struct{}), addr: addr}
}

func (l *connListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// clientConn is a client connection below TLS and the framing guard. It
// replays the ClientHello bytes read while classifying, carries what
// requests need to know about their connection, and enforces the idle
// timeout of the service last used on it: the connection is closed once
// no request has been in flight for that long.
type clientConn struct {
	net.Conn
	e      *Engine
	prefix []byte // ClientHello bytes still to be read by crypto/tls
	start  int64  // e.now() at accept

	// Set before the connection reaches the http.Server, read-only after.
	tls        bool
	sni        string
	svcID      string // the service the server name selected (HTTPS)
	tlsVersion string
	tlsCipher  string
	peerCert   *x509.Certificate // the verified client certificate, nil if none

	active   atomic.Int32 // requests in flight
	idleFrom atomic.Int64 // e.now() when the last request ended
	idle     atomic.Int64 // idle timeout in ns
	closed   atomic.Bool
	timer    *time.Timer
}

func newClientConn(e *Engine, c net.Conn) *clientConn {
	cc := &clientConn{Conn: c, e: e, start: e.now()}
	cc.idle.Store(int64(e.cfg.IdleTimeout))
	return cc
}

func (c *clientConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *clientConn) Close() error {
	c.closed.Store(true)
	if c.timer != nil {
		c.timer.Stop()
	}
	return c.Conn.Close()
}

// startIdle arms the idle timer when the connection starts serving.
func (c *clientConn) startIdle() {
	c.idleFrom.Store(c.e.now())
	t := time.AfterFunc(time.Hour, c.idleCheck)
	t.Stop()
	c.timer = t
	t.Reset(time.Duration(c.idle.Load()))
}

func (c *clientConn) idleCheck() {
	if c.closed.Load() {
		return
	}
	d := c.idle.Load()
	if c.active.Load() > 0 {
		c.timer.Reset(time.Duration(d))
		return
	}
	if since := c.e.now() - c.idleFrom.Load(); since < d {
		c.timer.Reset(time.Duration(d - since))
		return
	}
	// Closing the socket ends the http.Server's wait for the next
	// request (HTTP/1) or frame (HTTP/2).
	_ = c.Conn.Close()
}

// begin and end bracket a request on the connection; setIdle sets the idle
// timeout of the request's service.
func (c *clientConn) begin() { c.active.Add(1) }

func (c *clientConn) setIdle(d time.Duration) {
	if d > 0 && c.idle.Swap(int64(d)) != int64(d) && c.timer != nil {
		// Re-arm for the new duration (rare: a connection's first request,
		// or a request to another service).
		c.timer.Reset(d)
	}
}

func (c *clientConn) end() { c.endAt(c.e.now()) }

// endAt ends a request at now (Engine.now's clock).
func (c *clientConn) endAt(now int64) {
	c.idleFrom.Store(now)
	c.active.Add(-1)
}

// connKey is the context key of a request's *clientConn.
type connKey struct{}

// connContext gives every request its connection's *clientConn.
func connContext(ctx context.Context, c net.Conn) context.Context {
	for {
		switch v := c.(type) {
		case *clientConn:
			return context.WithValue(ctx, connKey{}, v)
		case *h1wire.TLSGuardConn:
			c = v.TLSConn()
		case *h1wire.GuardConn:
			c = v.Conn
		case *tls.Conn:
			c = v.NetConn()
		default:
			return ctx
		}
	}
}
