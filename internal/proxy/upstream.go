package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/internal/h1client"
	"github.com/trellis-mesh/trellis/internal/h1wire"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/rawio"
)

// upstreamKey identifies an upstream across tables: a new snapshot that
// leaves a group's protocol and its service's idle timeout alone keeps the
// group's connection pool.
type upstreamKey struct {
	tgID, protocol, version string
	idle                    time.Duration
}

// upstream carries requests to the targets of one target group over
// pooled keep-alive connections (one pool per target address): rt for the
// net/http path, and for HTTP1 groups over HTTP also the fast path's own
// pools (h1pool.go).
type upstream struct {
	rt *http.Transport
	// h1 carries the net/http path's HTTP/1.1 requests with no or a small
	// body to HTTP1 groups over HTTP on the handler's goroutine (HTTP/2
	// and protected services' clients); nil for other groups.
	h1 *h1client.Transport

	dialer  net.Dialer
	rht     time.Duration // response header timeout
	idle    time.Duration // pooled connections close after this long idle
	maxIdle int
	now     func() int64

	mu    sync.Mutex
	pools map[string]*h1Pool // by target address
}

// newUpstream builds the transport for a group:
//
//   - HTTP1: HTTP/1.1 (an HTTP/2 client request is sent as HTTP/1.1);
//   - HTTP2 and GRPC over HTTPS: HTTP/2 negotiated by ALPN "h2";
//   - HTTP2 and GRPC over HTTP: HTTP/2 with prior knowledge (h2c).
//
// HTTPS targets' certificates are not verified, as in Lattice (reference
// §4.2). Pooled connections close after the service's idle timeout; a
// target that sends no response headers for ResponseHeaderTimeout (default:
// the idle timeout) is answered 504.
func newUpstream(cfg *Config, k upstreamKey, now func() int64) *upstream {
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	// Target connections read and write with raw system calls (rawio).
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return rawio.Wrap(c), nil
	}
	rht := cfg.ResponseHeaderTimeout
	if rht == 0 {
		rht = k.idle
	}
	tr := &http.Transport{
		DialContext:           dial,
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerTarget,
		IdleConnTimeout:       k.idle,
		ResponseHeaderTimeout: rht,
		TLSHandshakeTimeout:   cfg.DialTimeout,
		DisableCompression:    true,
		TLSClientConfig: &tls.Config{
			// Lattice does not validate target certificates.
			InsecureSkipVerify: true, //nolint:gosec // by design, see above
			MinVersion:         tls.VersionTLS12,
			CipherSuites:       latticeCipherSuites,
		},
	}
	var p http.Protocols
	switch {
	case k.version == model.ProtocolVersionHTTP1 || k.version == "":
		p.SetHTTP1(true)
	case k.protocol == model.ProtocolHTTPS:
		p.SetHTTP2(true)
	default:
		p.SetUnencryptedHTTP2(true)
	}
	tr.Protocols = &p
	var h1 *h1client.Transport
	if (k.version == model.ProtocolVersionHTTP1 || k.version == "") && k.protocol == model.ProtocolHTTP {
		h1 = h1client.New(h1client.Config{
			Dial: func(ctx context.Context, addr string) (net.Conn, error) {
				return dial(ctx, "tcp", addr)
			},
			IdleTimeout:           k.idle,
			MaxIdlePerAddr:        cfg.MaxIdleConnsPerTarget,
			ResponseHeaderTimeout: rht,
		})
	}
	return &upstream{
		rt:      tr,
		h1:      h1,
		dialer:  net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second},
		rht:     rht,
		idle:    k.idle,
		maxIdle: cfg.MaxIdleConnsPerTarget,
		now:     now,
		pools:   make(map[string]*h1Pool),
	}
}

// closeIdle closes the pooled idle connections; requests in flight keep
// theirs (and those are closed once returned).
func (u *upstream) closeIdle() {
	u.rt.CloseIdleConnections()
	if u.h1 != nil {
		u.h1.CloseIdleConnections()
	}
	u.mu.Lock()
	pools := u.pools
	u.pools = make(map[string]*h1Pool)
	u.mu.Unlock()
	for _, p := range pools {
		p.close()
	}
}

// roundTrip sends a request of the net/http path through the transport
// that suits it: h1 for requests it takes, http.Transport for the others
// (bodies of unknown or large size, HTTP/2 and HTTPS groups).
func (u *upstream) roundTrip(r *http.Request) (*http.Response, error) {
	if u.h1 != nil && h1client.Fits(r) {
		return u.h1.RoundTrip(r)
	}
	return u.rt.RoundTrip(r)
}

// pool returns the fast path's pool for a target address, marking it used
// by compilation gen.
func (u *upstream) pool(addr string, gen uint64) *h1Pool {
	u.mu.Lock()
	defer u.mu.Unlock()
	p := u.pools[addr]
	if p == nil {
		p = &h1Pool{addr: addr, up: u}
		u.pools[addr] = p
	}
	p.gen = gen
	return p
}

// prune closes the pools of addresses compilation gen no longer uses
// (targets that left the group).
func (u *upstream) prune(gen uint64) {
	u.mu.Lock()
	var gone []*h1Pool
	for addr, p := range u.pools {
		if p.gen != gen {
			gone = append(gone, p)
			delete(u.pools, addr)
		}
	}
	u.mu.Unlock()
	for _, p := range gone {
		p.close()
	}
}

// classifyUpstreamError maps a RoundTrip failure to the generated answer:
// a request body the framing guard rejected is 400, the client going away
// is no answer at all, a timeout (connecting, the TLS
// handshake or waiting for response headers) is 504, anything else 502.
func classifyUpstreamError(ctx context.Context, err error) *genError {
	var bad *h1wire.FramingError
	if errors.As(err, &bad) {
		return errBadBody // the framing guard failed the request body's read
	}
	if ctx.Err() != nil {
		return errClientGone
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errTargetTimeout
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errTargetTimeout
	}
	return errTargetConnect
}
