package proxy

import (
	"net/http"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/urlpath"
)

// headerReader is read access to a request's header fields by name: what
// rule header matches and the protocol check read, and what the auth step
// (SigV4, policies) will read. Both request paths implement it without
// allocating: httpHeader over net/http's map, *h1wire.Head over the fast
// path's parsed head. A string it returns may alias a connection buffer:
// it is valid until routing returns and must not be kept.
type headerReader interface {
	// Next returns the value of the first field line named name (in
	// canonical form, e.g. "Content-Type"; the comparison ignores case) at
	// or after position from, and the position to continue from; Next is
	// -1 when there is none. Start with from = 0.
	Next(name string, from int) (value string, after int)
}

// httpHeader reads a net/http header map, whose keys are canonical.
type httpHeader http.Header

func (h httpHeader) Next(name string, from int) (string, int) {
	if vv := h[name]; from < len(vv) {
		return vv[from], from + 1
	}
	return "", -1
}

// firstHeader is the first value of header name, "" when absent.
func firstHeader(h headerReader, name string) string {
	v, _ := h.Next(name, 0)
	return v
}

// routeVia names the three ways requests reach route.
type routeVia uint8

const (
	viaNetHTTP  routeVia = iota // ServeHTTP
	viaH1Fast                   // the HTTP/1 fast path (h1conn.go)
	viaH2Direct                 // HTTP/2 streams without body (h2direct.go)
)

// routed is where route sends a request: the table it used, the rule that
// matched and, for a forward rule, the target group and target picked.
type routed struct {
	t   *table
	pt  *portTable
	lr  *listenerRoute
	ru  *rule
	g   *groupRef
	tgt *target
}

// route takes a request from its host to a target, in the one order both
// request paths (ServeHTTP and the HTTP/1 fast path) share:
//
//  1. host → listener of the port; on HTTPS the host must belong to the
//     service the connection's server name chose (421 otherwise);
//  2. CONNECT refused, path normalised (rawPath: escaped, no query);
//  3. for a service with AWS_IAM auth (its own or its network's): the
//     caller authenticated and the policies applied to the normalised
//     path (auth.go); a denial is Lattice's 403;
//  4. rules tried in order; a fixed response ends here (ru.fixed != 0);
//  5. target group by weight, protocol matrix, target round robin.
//
// It fills the service, group and target fields of st.rec and sets
// q.path, and returns the generated answer when there is one. via is the
// request path asking: the fast paths get errHandOff, before anything is
// picked, for a service they do not serve. It allocates nothing for
// services without auth.
func (ps *portServer) route(st *reqState, q *request, rawPath string, cc *clientConn, via routeVia) (routed, *genError) {
	var rt routed
	rt.t = ps.e.table.Load()
	rt.pt = rt.t.ports[ps.port]
	isTLS := cc != nil && cc.tls
	if rt.pt == nil || rt.pt.tls != isTLS {
		return rt, errNoService
	}
	lr := rt.pt.lookupHost(q.host)
	if lr == nil {
		return rt, errNoService
	}
	if via == viaH1Fast && !lr.h1fast || via == viaH2Direct && !lr.h2direct {
		return rt, errHandOff
	}
	rt.lr = lr
	st.fillService(lr)
	rec := &st.rec
	if isTLS && lr.svc.id != cc.svcID {
		// HTTPS: the Host must belong to the service whose certificate
		// the connection negotiated (its SNI); a client reusing the
		// connection for another service is told to open a new one.
		return rt, errMisdirect
	}
	if cc != nil {
		cc.setIdle(lr.svc.idle)
	}
	if q.method == http.MethodConnect {
		return rt, errConnect // no tunnels: Lattice listeners carry requests only
	}
	path, err := urlpath.Normalize(rawPath)
	if err != nil {
		return rt, errBadPath
	}
	q.path = path
	if lr.svc.auth != nil {
		if q.r == nil {
			return rt, errHandOff
		}
		if ge := ps.authorize(st, q, lr.svc, cc); ge != nil {
			return rt, ge
		}
	}
	ru := lr.match(q)
	if ru == nil {
		return rt, errNoRule
	}
	rt.ru = ru
	if ru.fixed != 0 {
		return rt, nil
	}
	g := ru.fwd.pick()
	if g == nil {
		return rt, errNoTargets
	}
	rt.g = g
	rec.TargetGroupID, rec.TargetGroupARN = g.tg.id, g.tg.arn
	if ge := checkProtocol(g.tg, q); ge != nil {
		return rt, ge
	}
	tgt := g.tg.pick()
	if tgt == nil {
		return rt, errNoTargets
	}
	rt.tgt = tgt
	rec.TargetAddr = tgt.addr
	return rt, nil
}

// checkProtocol applies Lattice's matrix of client protocol against the
// target group's protocol version (reference §4.2).
func checkProtocol(tg *targetGroup, q *request) *genError {
	switch tg.version {
	case model.ProtocolVersionHTTP1:
		if isGRPCContentType(firstHeader(q.header, "Content-Type")) {
			return errProtocol
		}
	case model.ProtocolVersionHTTP2:
		if q.proto < 2 {
			return errProtocol
		}
	case model.ProtocolVersionGRPC:
		if q.proto < 2 || q.method != http.MethodPost {
			return errProtocol
		}
	}
	return nil
}

// isGRPCContentType reports whether ct is application/grpc or
// application/grpc+<codec> (grpc-web, which runs over HTTP/1.1, is not).
func isGRPCContentType(ct string) bool {
	const p = "application/grpc"
	if len(ct) < len(p) || !equalFoldLower(ct[:len(p)], p) {
		return false
	}
	return len(ct) == len(p) || ct[len(p)] == '+' || ct[len(p)] == ';'
}
