package proxy

import (
	"crypto/tls"
	"sync/atomic"
	"time"

	"github.com/trellis-mesh/trellis/internal/authz"
	"github.com/trellis-mesh/trellis/internal/h1wire"
	"github.com/trellis-mesh/trellis/internal/proxy/health"
)

// table is one compiled snapshot. It is immutable once Apply publishes it
// (the atomic counters of weighted and round-robin picks aside), so any
// number of requests read it without locks; a request keeps the table it
// started with until it ends, even when Apply publishes a newer one.
type table struct {
	version int64
	gen     uint64 // the compilation that built it (h1Pool marks)
	ports   map[int32]*portTable
	// portList is the sorted list of ports with at least one listener.
	portList []int32

	// Header values set toward targets, built once per table and shared by
	// every request (never mutated: the outbound header map points at
	// them).
	networkHdr []string // x-amzn-lattice-network
	protoHTTP  []string // x-forwarded-proto
	protoHTTPS []string
	teTrailers []string // TE: trailers, kept for gRPC
	emptyUA    []string // stops net/http adding its own User-Agent
}

// portTable is everything served on one port.
type portTable struct {
	port int32
	// tls: the port terminates or passes through TLS (HTTPS and
	// TLS_PASSTHROUGH listeners); otherwise it is plain-text HTTP.
	tls bool
	// hosts maps a lower-case host name without trailing dot (DNSName and
	// CustomDomain of each service) to the HTTP or HTTPS listener.
	hosts map[string]*listenerRoute
	// sni maps a lower-case server name to an HTTPS listener (DNSName and
	// CustomDomain) or a TLS_PASSTHROUGH listener (CustomDomain).
	sni map[string]*listenerRoute
	// noSNI answers a ClientHello without server name: the port's only
	// HTTPS listener, nil when there are several.
	noSNI    *listenerRoute
	sawHTTPS bool     // compile time: an HTTPS listener was placed
	portHdr  []string // x-forwarded-port
}

// service is the part of a snapshot service that requests need.
type service struct {
	id, arn, name string
	// networkARN is the first of the service's networks (by ID): what
	// x-amzn-lattice-target and the access log name.
	networkARN string
	// idle is IdleTimeoutSeconds: client connections and pooled target
	// connections of the service close after this long without a request.
	idle time.Duration
	// accessLogs are the destination ARNs of the service's and its
	// networks' subscriptions.
	accessLogs []string
	// auth is the service's auth configuration, nil when neither it nor
	// its network has authType AWS_IAM; authority is the snapshot's
	// (auth.go).
	auth      *authz.Service
	authority *authz.Authority
}

// listenerRoute is one listener of one service.
type listenerRoute struct {
	svc      *service
	id, arn  string
	protocol string // HTTP, HTTPS, TLS_PASSTHROUGH
	rules    []rule // evaluation order, default rule last
	// tlsConfig presents the service's certificate (HTTPS).
	tlsConfig *tls.Config
	// passthrough is the default rule's forward action (TLS_PASSTHROUGH).
	passthrough *forward
	// h1fast says the HTTP/1 fast path (h1conn.go) serves the listener's
	// requests: the service does not authenticate callers (SigV4 is
	// verified on the net/http path) and no rule forwards to an HTTPS
	// target group, whose TLS upstreams only the net/http path has.
	h1fast bool
	// h2direct says the HTTP/2 direct path (h2direct.go) serves the
	// listener's requests (those it takes): h1fast, and every forward rule
	// leads to HTTP1 target groups over HTTP (the fast path's pools).
	h2direct bool
}

// rule is a compiled listener rule. A rule that failed to compile is left
// out of its listener, so it never matches.
type rule struct {
	id      string
	method  string // "" matches any method
	path    stringMatcher
	headers []headerMatcher
	// fixed is the fixed response's status code, 0 for a forward action.
	fixed int
	fwd   *forward
}

// forward spreads requests over weighted target groups.
type forward struct {
	// groups are those with weight > 0.
	groups []groupRef
	// sched is a smooth weighted round-robin schedule of indices into
	// groups, one period long (sum of weights divided by their GCD); the
	// n-th request goes to groups[sched[n % len(sched)]]. Deterministic,
	// lock-free (one atomic add) and smooth: weights 2:1 give A B A, not
	// A A B.
	sched []uint8
	next  atomic.Uint64
}

// groupRef is a target group as one service's rule sees it.
type groupRef struct {
	tg *targetGroup
	// targetHdr is x-amzn-lattice-target for this service and group.
	targetHdr []string
}

// targetGroup is a compiled target group.
type targetGroup struct {
	id, arn  string
	protocol string // HTTP, HTTPS, TCP
	version  string // HTTP1, HTTP2, GRPC; "" for TCP
	scheme   string // http or https
	// targets are those with an address; targets without one get no
	// traffic and are left out.
	targets []target
	rr      atomic.Uint64
	// up carries requests to the group's targets (nil for TCP groups).
	up *upstream
}

type target struct {
	addr string // host:port to dial
	// state is the live health; nil means always routable.
	state *health.State
	// pool holds the fast path's idle connections to addr (HTTP1 groups
	// over HTTP only).
	pool *h1Pool
}

// route finds the listener for the request's host and its first matching
// rule. It allocates nothing.
func (pt *portTable) route(q *request) (*listenerRoute, *rule) {
	lr := pt.lookupHost(q.host)
	if lr == nil {
		return nil, nil
	}
	return lr, lr.match(q)
}

// lookupHost finds the listener serving host (a Host header or :authority):
// the port is stripped, letters are folded, and one trailing dot is
// ignored.
func (pt *portTable) lookupHost(host string) *listenerRoute {
	var buf [maxHostLen]byte
	n := canonicalHost(host, buf[:])
	if n == 0 {
		return nil
	}
	return pt.hosts[string(buf[:n])]
}

// lookupSNI finds the listener for a ClientHello's server name.
func (pt *portTable) lookupSNI(name string) *listenerRoute {
	if name == "" {
		return pt.noSNI
	}
	var buf [maxHostLen]byte
	n := canonicalName(name, buf[:])
	if n == 0 {
		return nil
	}
	return pt.sni[string(buf[:n])]
}

// match returns the first rule that matches, nil when none does (a listener
// whose default rule failed to compile).
func (lr *listenerRoute) match(q *request) *rule {
	for i := range lr.rules {
		if lr.rules[i].matches(q) {
			return &lr.rules[i]
		}
	}
	return nil
}

// pick chooses a target group by weight; nil when no group has a weight.
func (f *forward) pick() *groupRef {
	switch len(f.groups) {
	case 0:
		return nil
	case 1:
		return &f.groups[0]
	}
	n := f.next.Add(1) - 1
	return &f.groups[f.sched[n%uint64(len(f.sched))]]
}

// pick chooses the next routable target round robin. When no target is
// routable it fails open over all of them, as Lattice does; nil when the
// group has no target with an address.
func (g *targetGroup) pick() *target {
	n := uint64(len(g.targets))
	if n == 0 {
		return nil
	}
	start := g.rr.Add(1) - 1
	for i := uint64(0); i < n; i++ {
		t := &g.targets[(start+i)%n]
		if t.state == nil || t.state.Routable() {
			return t
		}
	}
	return &g.targets[start%n]
}

// maxHostLen bounds a DNS name (253) with room to spare.
const maxHostLen = 256

// canonicalHost writes the lower-case host name of a Host value (port and
// one trailing dot removed) into buf and returns its length, 0 when empty
// or too long. An IPv6 literal keeps its brackets.
func canonicalHost(host string, buf []byte) int {
	if len(host) > 0 && host[0] == '[' {
		for i := 1; i < len(host); i++ {
			if host[i] == ']' {
				host = host[:i+1]
				break
			}
		}
	} else {
		colon := -1
		for i := len(host) - 1; i >= 0; i-- {
			if host[i] == ':' {
				if colon >= 0 {
					colon = -1 // a bare IPv6 address: no port
					break
				}
				colon = i
			}
		}
		if colon >= 0 {
			host = host[:colon]
		}
	}
	return canonicalName(host, buf)
}

// canonicalName writes the lower-case name without one trailing dot into
// buf and returns its length, 0 when empty or too long.
func canonicalName(name string, buf []byte) int {
	if n := len(name); n > 0 && name[n-1] == '.' {
		name = name[:n-1]
	}
	if len(name) == 0 || len(name) > len(buf) {
		return 0
	}
	for i := 0; i < len(name); i++ {
		buf[i] = h1wire.LowerASCII(name[i])
	}
	return len(name)
}
