package egress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/trellis-mesh/trellis/internal/rawio"
)

// Server-side TLS. A TLS listener's accept loop records each connection
// and picks its protocol as a plain listener does, then hands it to a
// goroutine of its own for the handshake, so that a slow or silent client
// never holds up the next one. The handshake has TLSHandshakeTimeout as
// its deadline, cleared once it is done. After it, an HTTP connection
// that negotiated HTTP/1.1 (or no ALPN protocol) is served by the
// listener's own HTTP/1 server (h1server.go), one that negotiated h2 goes
// to the listener's HTTP/2 server as the *tls.Conn itself, and a TCP
// connection is copied to its endpoint (tcp.go; the handshake runs on the
// stream's goroutine there). A failed handshake closes the connection (after
// refusalLinger): it is counted, logged at Debug and recorded with
// FailureTLSHandshake, and no endpoint is tried.

// TLSHandshakeTimeout bounds the TLS handshake of a client of a ListenTLS
// listener, from its accept: a client that has not finished by then is
// closed. It matches Go's http.Transport TLSHandshakeTimeout: ample for a
// handshake across a region, short enough that silent clients do not pile
// up.
const TLSHandshakeTimeout = 10 * time.Second

// refusalLinger bounds how long a connection whose handshake failed stays
// half-closed, its input discarded, before it is closed. A TLS 1.3 client
// finishes its handshake before the server has checked its certificate
// and writes its request at once; closing with those bytes unread would
// send a reset, which can reach the client before the alert that says
// why. net/http waits as long before closing for the same reason.
const refusalLinger = 500 * time.Millisecond

// ListenTLS is Listen with every accepted connection served as a TLS server
// connection with cfg, which the caller owns: it is cloned once, here, and
// its GetCertificate and GetConfigForClient, if set, are called for every
// handshake, so certificates (and, through GetConfigForClient, client CAs)
// can rotate without a restart. For mutual TLS between agents set
// ClientAuth to tls.RequireAndVerifyClientCert and ClientCAs; Record.PeerURI
// then names the calling agent.
//
// HTTP-family services speak HTTP/1.1 or HTTP/2 to the client, as ALPN
// decides (gRPC clients ask for h2). NextProtos defaults to "h2" then
// "http/1.1"; a cfg that sets it must not name other protocols while the
// service is in the HTTP family, and a config that GetConfigForClient
// returns without NextProtos gets the listener's (on a copy made per
// handshake). TCP services copy the connection's plaintext to the
// endpoint, with half-closes passed on as close_notify alerts.
//
// Each connection's handshake runs on its own goroutine within
// TLSHandshakeTimeout; a failed one closes the connection before any
// endpoint is tried, adds to Stats.TLSHandshakeFailures and is recorded
// with FailureTLSHandshake. Close cuts handshakes in progress.
//
// It returns an error wrapping ErrInvalidTLSConfig when cfg is nil or
// has no certificate at all (no Certificates, GetCertificate or
// GetConfigForClient), and otherwise what Listen returns.
func (p *Proxy) ListenTLS(name, addr string, pol Policy, cfg *tls.Config) (net.Addr, error) {
	if cfg == nil {
		return nil, fmt.Errorf("egress: listen for %q: %w: nil config", name, ErrInvalidTLSConfig)
	}
	if len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil {
		return nil, fmt.Errorf("egress: listen for %q: %w: no Certificates, GetCertificate or GetConfigForClient",
			name, ErrInvalidTLSConfig)
	}
	return p.listen(name, addr, pol, serverConfig(cfg))
}

// serverConfig clones cfg for a listener and gives it, and the configs its
// GetConfigForClient returns, the default ALPN protocols when they have
// none.
func serverConfig(cfg *tls.Config) *tls.Config {
	c := cfg.Clone()
	if len(c.NextProtos) == 0 {
		c.NextProtos = []string{"h2", "http/1.1"}
	}
	if get := c.GetConfigForClient; get != nil {
		protos := c.NextProtos // never modified: shared by the copies
		c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			rc, err := get(hello)
			if rc != nil && len(rc.NextProtos) == 0 {
				rc = rc.Clone()
				rc.NextProtos = protos
			}
			return rc, err
		}
	}
	return c
}

// serveTLS serves a connection of a TLS listener, accepted and recorded,
// by pol's protocol; it returns at once.
func (l *listener) serveTLS(c *net.TCPConn, pol *policy, start time.Time) {
	s := l.s
	p := s.p
	if pol.Protocol == TCP {
		t := newTCPStream(s, c, tls.Server(c, l.tls), start)
		p.addTCP(t)
		p.serveWG.Add(1)
		go func() {
			defer p.serveWG.Done()
			t.serve(pol)
		}()
		return
	}
	// failure is set now: Close cuts a handshake by closing cc (from
	// crypto/tls's goroutine), which records it.
	cc := &clientConn{Conn: rawio.New(c), s: s, start: start, failure: FailureTLSHandshake}
	// Counted with the accept loops: Close waits for the handshakes (which
	// it cuts) before it shuts the servers down, so no connection
	// reaches a server after that.
	p.acceptWG.Add(1)
	go func() {
		defer p.acceptWG.Done()
		tc := tls.Server(cc, l.tls)
		peer, ok := s.handshake(tc, c)
		if !ok {
			cc.Close()
			return
		}
		cc.peerURI, cc.failure = peer, FailureNone
		if tc.ConnectionState().NegotiatedProtocol != "h2" {
			// HTTP/1.1: the listener's own server (h1server.go). Close
			// waits for this goroutine before it drains that server.
			p.serveWG.Add(1)
			go func() {
				defer p.serveWG.Done()
				l.h1.serve(cc, tc)
			}()
			return
		}
		// HTTP/2. Close waits for this goroutine before it drains the
		// HTTP/2 server, which refuses connections once it has begun.
		p.serveWG.Add(1)
		go func() {
			defer p.serveWG.Done()
			_ = l.h2.ServeConn(context.Background(), tc)
		}()
	}()
}

// handshake runs tc's server handshake over raw within the handshake
// timeout, or until Close starts. It returns the client's PeerURI and
// whether the handshake succeeded. A failure is counted and logged, and
// the connection half-closed and drained for up to refusalLinger unless
// the client was silent or Close cut it; the caller then closes it.
func (s *service) handshake(tc *tls.Conn, raw *net.TCPConn) (peer string, ok bool) {
	p := s.p
	raw.SetDeadline(time.Now().Add(p.hsTimeout))
	err := tc.HandshakeContext(p.hsCtx)
	if err == nil {
		err = raw.SetDeadline(time.Time{})
	}
	if err != nil {
		closing := p.hsCtx.Err() != nil
		if !closing {
			s.tlsFailures.Add(1)
		}
		s.log.Debug("tls handshake failed", "addr", raw.LocalAddr().String(),
			"client", raw.RemoteAddr().String(), "err", err)
		if !closing && !errors.Is(err, os.ErrDeadlineExceeded) {
			raw.CloseWrite()
			raw.SetReadDeadline(time.Now().Add(refusalLinger))
			io.Copy(io.Discard, raw)
		}
		return "", false
	}
	cs := tc.ConnectionState()
	return peerURI(&cs), true
}

// peerURI is the first URI SAN of the client's leaf certificate when
// crypto/tls verified it; "" otherwise. An unverified certificate's names
// are the client's claim, not an identity.
func peerURI(cs *tls.ConnectionState) string {
	if len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return ""
	}
	if uris := cs.PeerCertificates[0].URIs; len(uris) > 0 {
		return uris[0].String()
	}
	return ""
}

// peerURIKey is the request context key of a TLS connection's PeerURI.
type peerURIKey struct{}

// peerContext is the HTTP/2 server's ConnContext on TLS listeners: it puts
// the connection's PeerURI, computed once by the handshake, in the
// context of its requests.
func peerContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		if cc, ok := tc.NetConn().(*clientConn); ok && cc.peerURI != "" {
			return context.WithValue(ctx, peerURIKey{}, cc.peerURI)
		}
	}
	return ctx
}

// requestPeerURI is the PeerURI of a request's connection.
func requestPeerURI(ctx context.Context) string {
	uri, _ := ctx.Value(peerURIKey{}).(string)
	return uri
}
