package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
)

// upstreamKey identifies an upstream across tables: a new snapshot that
// leaves a group's protocol and its service's idle timeout alone keeps the
// group's connection pool.
type upstreamKey struct {
	tgID, protocol, version string
	idle                    time.Duration
}

// upstream carries requests to the targets of one target group over
// pooled keep-alive connections (one pool per target address).
type upstream struct {
	rt *http.Transport
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
func newUpstream(cfg *Config, k upstreamKey) *upstream {
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	rht := cfg.ResponseHeaderTimeout
	if rht == 0 {
		rht = k.idle
	}
	tr := &http.Transport{
		DialContext:           d.DialContext,
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
	return &upstream{rt: tr}
}

// closeIdle closes the pooled idle connections; requests in flight keep
// theirs (and those are closed by the idle timeout once returned).
func (u *upstream) closeIdle() { u.rt.CloseIdleConnections() }

// classifyUpstreamError maps a RoundTrip failure to the generated answer:
// the client going away is no answer at all, a timeout (connecting, the TLS
// handshake or waiting for response headers) is 504, anything else 502.
func classifyUpstreamError(ctx context.Context, err error) *genError {
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
