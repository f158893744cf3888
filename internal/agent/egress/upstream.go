package egress

import (
	"context"
	"net"
	"net/http"
)

// upstream is the HTTP transport toward a service's endpoints: one pool
// per endpoint address, HTTP/1.1 or HTTP/2 (h2c with prior knowledge in
// plain text, h2 by ALPN over TLS). It is immutable; a policy change that
// needs another transport replaces it whole.
type upstream struct {
	tr  *http.Transport
	pol *policy // the policy it was built for
}

// maxIdlePerEndpoint bounds the idle HTTP/1.1 connections kept per
// endpoint when the breaker sets no MaxConnections. Go's default of 2
// would close and reopen connections under any concurrency.
const maxIdlePerEndpoint = 256

func newUpstream(s *service, pol *policy) *upstream {
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
		return s.dial(ctx, addr, pol, refuse, true)
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
	return &upstream{tr: tr, pol: pol}
}
