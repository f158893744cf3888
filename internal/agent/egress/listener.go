package egress

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trellis-mesh/trellis/internal/h2server"
	"github.com/trellis-mesh/trellis/internal/rawio"
)

// listener is one bound address of a service. Its accept loop takes every
// connection itself, records it, and looks at the service's policy of the
// moment: TCP connections are spliced (tcp.go), the others are served by
// the listener's HTTP/1 server (h1server.go), which passes a connection
// that opens with the HTTP/2 preface to the listener's HTTP/2 server. So a
// protocol change by SetPolicy applies to the next connection. A TLS
// listener's connections first go through a handshake on their own
// goroutine (tlslisten.go), and ALPN picks the server.
type listener struct {
	s   *service
	ln  *net.TCPListener
	tls *tls.Config      // the server side's configuration; nil for plain text
	h1  *h1Server        // HTTP/1 connections (h1server.go)
	h2  *h2server.Server // HTTP/2: h2c handed over by h1, and ALPN h2
}

func newListener(s *service, ln *net.TCPListener, idle time.Duration, srvTLS *tls.Config) *listener {
	l := &listener{s: s, ln: ln, tls: srvTLS}
	l.h1 = newH1Server(l, idle)
	l.h2 = &h2server.Server{Handler: s, IdleTimeout: idle, Logger: s.log}
	if srvTLS != nil {
		// The connection's PeerURI, for the requests' records.
		l.h2.ConnContext = peerContext
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
		cc := &clientConn{Conn: rawio.New(c), s: s, start: start}
		s.p.serveWG.Add(1)
		go func() {
			defer s.p.serveWG.Done()
			l.h1.serve(cc, nil)
		}()
	}
}

// serveH2 serves a plain-text connection that opened with the HTTP/2
// preface, the bytes already read from it (in br) replayed first, until
// it ends; the HTTP/2 server closes it.
func (l *listener) serveH2(cc *clientConn, br *bufio.Reader) {
	rc := &replayConn{clientConn: cc}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		rc.prefix = bytes.Clone(b)
	}
	_ = l.h2.ServeConn(context.Background(), rc)
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

// shutdown drains the listener's connections, HTTP/1 and HTTP/2, until
// ctx ends; then it cuts them and returns an error.
func (l *listener) shutdown(ctx context.Context) error {
	var wg sync.WaitGroup
	var errH1, errH2 error
	wg.Go(func() { errH1 = l.h1.shutdown(ctx) })
	wg.Go(func() { errH2 = l.h2.Shutdown(ctx) })
	wg.Wait()
	return errors.Join(errH1, errH2)
}

// stopAccepting closes the TCP listener; the accept loop ends.
func (l *listener) stopAccepting() { l.ln.Close() }

// Addr is the bound address.
func (l *listener) Addr() net.Addr { return l.ln.Addr() }

// clientConn is an HTTP client connection: it counts its bytes and
// records its end once. On a TLS listener it is underneath the *tls.Conn,
// so it counts bytes on the wire.
type clientConn struct {
	*rawio.Conn // the *net.TCPConn, read and written with raw system calls
	s           *service
	start       time.Time
	// peerURI and failure are set by the TLS handshake (tlslisten.go)
	// before the connection is served or closed.
	peerURI string
	failure Failure
	in      atomic.Int64
	out     atomic.Int64
	closed  atomic.Bool
}

func (c *clientConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.Add(int64(n))
	return n, err
}

func (c *clientConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out.Add(int64(n))
	return n, err
}

func (c *clientConn) Close() error {
	err := c.Conn.Close()
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
