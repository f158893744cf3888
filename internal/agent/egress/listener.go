package egress

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// listener is one bound address of a service. Its accept loop takes every
// connection itself, records it, and looks at the service's policy of the
// moment: TCP connections are spliced (tcp.go), the others are handed to
// the listener's http.Server through the listener's net.Listener side
// (Accept), which is all that http.Server sees. So a protocol change by
// SetPolicy applies to the next connection. A TLS listener's connections
// first go through a handshake on their own goroutine (tlslisten.go).
type listener struct {
	s    *service
	ln   *net.TCPListener
	tls  *tls.Config   // the server side's configuration; nil for plain text
	srv  *http.Server  // TLS connections, and h2c handed over by h1
	h1   *h1Server     // plain-text HTTP/1 connections (h1server.go)
	ch   chan net.Conn // accept loop → http.Server
	done chan struct{} // closed by Close (http.Server's Shutdown)
	once sync.Once
}

func newListener(s *service, ln *net.TCPListener, idle time.Duration, srvTLS *tls.Config) *listener {
	l := &listener{s: s, ln: ln, tls: srvTLS, ch: make(chan net.Conn), done: make(chan struct{})}
	l.h1 = newH1Server(l, idle)
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	l.srv = &http.Server{
		Handler:     s,
		IdleTimeout: idle,
		Protocols:   protos,
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if srvTLS != nil {
		// HTTP/2 by ALPN: the server dispatches on the *tls.Conn's
		// negotiated protocol, which is why that connection reaches it
		// unwrapped (clientConn is underneath).
		protos.SetHTTP2(true)
		l.srv.ConnContext = peerContext
	} else {
		protos.SetUnencryptedHTTP2(true) // h2c with prior knowledge: gRPC and HTTP/2 clients
	}
	return l
}

// acceptLoop runs until the TCP listener is closed.
func (l *listener) acceptLoop() {
	s := l.s
	var delay time.Duration
	for {
		c, err := l.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as
			// http.Server does, rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "addr", l.ln.Addr().String(), "err", err, "retryIn", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		start := time.Now()
		s.conns.Add(1)
		s.observeConn(KindConnOpen, c.RemoteAddr().String(), start)
		pol := s.pol.Load()
		if l.tls != nil {
			l.serveTLS(c, pol, start)
			continue
		}
		if pol.Protocol == TCP {
			t := newTCPStream(s, c, nil, start)
			s.p.addTCP(t)
			s.p.serveWG.Add(1)
			go func() {
				defer s.p.serveWG.Done()
				t.serve(pol)
			}()
			continue
		}
		cc := &clientConn{TCPConn: c, s: s, start: start}
		s.p.serveWG.Add(1)
		go func() {
			defer s.p.serveWG.Done()
			l.h1.serve(cc, nil)
		}()
	}
}

// handOff gives a connection to the listener's http.Server, the bytes
// already read from it (in br) replayed first; false when the server has
// closed (the caller closes the connection).
func (l *listener) handOff(cc *clientConn, br *bufio.Reader) bool {
	rc := &replayConn{clientConn: cc}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		rc.prefix = bytes.Clone(b)
	}
	select {
	case l.ch <- rc:
		return true
	case <-l.done:
		return false
	}
}

// replayConn is a client connection whose first bytes were read already.
type replayConn struct {
	*clientConn
	prefix []byte
}

func (c *replayConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.clientConn.Read(b)
}

// shutdown drains the listener's connections, HTTP/1 and those of the
// http.Server, until ctx ends; then it cuts them and returns an error.
func (l *listener) shutdown(ctx context.Context) error {
	var wg sync.WaitGroup
	var errH1, errSrv error
	wg.Go(func() { errH1 = l.h1.shutdown(ctx) })
	wg.Go(func() {
		if errSrv = l.srv.Shutdown(ctx); errSrv != nil {
			_ = l.srv.Close()
		}
	})
	wg.Wait()
	return errors.Join(errH1, errSrv)
}

// stopAccepting closes the TCP listener; the accept loop ends.
func (l *listener) stopAccepting() { l.ln.Close() }

// Accept implements net.Listener for the http.Server.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener: http.Server calls it on Shutdown and
// Close. The TCP listener is Proxy.Close's business (stopAccepting).
func (l *listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener.
func (l *listener) Addr() net.Addr { return l.ln.Addr() }

// clientConn is an HTTP client connection: it counts its bytes and
// records its end once. On a TLS listener it is underneath the *tls.Conn,
// so it counts bytes on the wire.
type clientConn struct {
	*net.TCPConn
	s     *service
	start time.Time
	// peerURI and failure are set by the TLS handshake (tlslisten.go)
	// before the connection is handed to the http.Server or closed.
	peerURI string
	failure Failure
	in      atomic.Int64
	out     atomic.Int64
	closed  atomic.Bool
}

func (c *clientConn) Read(b []byte) (int, error) {
	n, err := c.TCPConn.Read(b)
	c.in.Add(int64(n))
	return n, err
}

func (c *clientConn) Write(b []byte) (int, error) {
	n, err := c.TCPConn.Write(b)
	c.out.Add(int64(n))
	return n, err
}

func (c *clientConn) Close() error {
	err := c.TCPConn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.s.conns.Add(-1)
		if obs := c.s.p.obs; obs != nil {
			rec := Record{
				Kind: KindConnClose, Service: c.s.name, Protocol: c.s.pol.Load().Protocol,
				Client: c.RemoteAddr().String(), PeerURI: c.peerURI, Start: c.start,
				Duration: time.Since(c.start), GRPCStatus: -1, BytesIn: c.in.Load(), BytesOut: c.out.Load(),
				Failure: c.failure,
			}
			obs.Observe(&rec)
		}
	}
	return err
}

// observeConn records a connection event without endpoint.
func (s *service) observeConn(kind Kind, client string, start time.Time) {
	obs := s.p.obs
	if obs == nil {
		return
	}
	rec := Record{Kind: kind, Service: s.name, Protocol: s.pol.Load().Protocol, Client: client,
		Start: start, GRPCStatus: -1}
	obs.Observe(&rec)
}
