package egress

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/trellis-mesh/trellis/internal/h1client"
)

// upstream is the HTTP transport toward a service's endpoints: one pool
// per endpoint address, HTTP/1.1 or HTTP/2 (h2c with prior knowledge in
// plain text, h2 by ALPN over TLS). It is immutable; a policy change that
// needs another transport replaces it whole.
type upstream struct {
	tr *http.Transport
	h1 *h1client.Transport // HTTP/1.1 requests with no or small bodies; nil for HTTP/2
	// fast holds the fast path's connections (fast.go); nil unless the
	// policy lets requests take it.
	fast *fastPool
	pol  *policy // the policy it was built for
	// open counts the connections dialed for it and not closed yet, in
	// use or idle; retired is set once a policy change replaced it
	// (retire).
	open    atomic.Int64
	retired atomic.Pointer[retiredUpstream]
}

// roundTrip sends r through the transport that suits it: HTTP/1.1
// requests with no or a small body are written and answered on the
// calling goroutine (h1client), the others go through http.Transport,
// which reads an early answer while a long body is still being written.
func (up *upstream) roundTrip(r *http.Request) (*http.Response, error) {
	if up.h1 != nil && h1client.Fits(r) {
		return up.h1.RoundTrip(r)
	}
	return up.tr.RoundTrip(r)
}

// closeIdle closes the idle connections of both transports.
func (up *upstream) closeIdle() {
	up.tr.CloseIdleConnections()
	if up.h1 != nil {
		up.h1.CloseIdleConnections()
	}
	if up.fast != nil {
		up.fast.closeIdle()
	}
}

// maxIdlePerEndpoint bounds the idle HTTP/1.1 connections kept per
// endpoint when the breaker sets no MaxConnections. Go's default of 2
// would close and reopen connections under any concurrency; so did 256
// under 640 concurrent requests (h2load -c64 -m10 into the client agent),
// where dialing and closing took 12 % of the server agent's CPU. Idle
// connections close after the policy's idle timeout all the same.
const maxIdlePerEndpoint = 1024

func newUpstream(s *service, pol *policy) *upstream {
	up := &upstream{pol: pol}
	tr := &http.Transport{
		// Proxy is nil: the environment's HTTP_PROXY must not apply.
		// Bodies are relayed as they are: no transparent gzip.
		DisableCompression:  true,
		MaxIdleConnsPerHost: maxIdlePerEndpoint,
		IdleConnTimeout:     pol.IdleTimeout,
		Protocols:           new(http.Protocols),
	}
	if max := pol.Breaker.MaxConnections; max > 0 {
		tr.MaxIdleConns = max
		tr.MaxIdleConnsPerHost = min(max, maxIdlePerEndpoint)
	}
	// refuse: past MaxConnections an HTTP/2 dial fails; an HTTP/1.1 one
	// is already bounded by the slot gate.
	refuse := pol.h2
	dial := func(ctx context.Context, _, addr string) (net.Conn, error) {
		// The transport's own policy: policies that share a transport
		// agree on TLS and MaxConnections (sameTransport).
		return s.dial(ctx, addr, pol, refuse, up)
	}
	switch {
	case pol.tls != nil:
		tr.DialTLSContext = dial
		if pol.h2 {
			tr.Protocols.SetHTTP2(true)
		} else {
			tr.Protocols.SetHTTP1(true)
		}
	case pol.h2:
		tr.DialContext = dial
		tr.Protocols.SetUnencryptedHTTP2(true)
	default:
		tr.DialContext = dial
		tr.Protocols.SetHTTP1(true)
	}
	up.tr = tr
	if !pol.h2 {
		maxIdle := maxIdlePerEndpoint
		if max := pol.Breaker.MaxConnections; max > 0 {
			maxIdle = min(max, maxIdlePerEndpoint)
		}
		up.h1 = h1client.New(h1client.Config{
			Dial: func(ctx context.Context, addr string) (net.Conn, error) {
				return s.dial(ctx, addr, pol, false, up)
			},
			IdleTimeout:    pol.IdleTimeout,
			MaxIdlePerAddr: maxIdle,
		})
		if pol.fast { // fast implies HTTP1, so !h2
			up.fast = newFastPool(pol.IdleTimeout, maxIdle)
		}
	}
	return up
}

// refusalConn is an HTTP/1.1 connection to a TLS endpoint. In TLS 1.3 an
// endpoint that refuses this proxy's client certificate says so with an
// alert after the handshake, which the transport's reader meets while its
// writer may still be sending the request; the writer then fails on the
// connection the reader closed, and the transport reports the writer's
// error, losing the refusal. refusalConn keeps the refusal and returns it,
// as a connect error, from the read that meets it and from any write that
// fails after it, so that the attempt is a connect failure (refusedByTLS).
type refusalConn struct {
	net.Conn // *tls.Conn
	addr     string
	refused  atomic.Pointer[connectError]
}

// Unwrap lets connprobe reach the socket.
func (c *refusalConn) Unwrap() net.Conn { return c.Conn }

func (c *refusalConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && refusedByTLS(err) {
		ce := &connectError{addr: c.addr, err: err}
		c.refused.Store(ce)
		return n, ce
	}
	return n, err
}

func (c *refusalConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil {
		if ce := c.refused.Load(); ce != nil {
			return n, ce
		}
	}
	return n, err
}
