package proxy

import (
	"context"
	"net/netip"

	"github.com/trellis-mesh/trellis/internal/authz"
)

// authorize authenticates the caller of q and applies the auth policies
// of svc (which has AWS_IAM auth) to it, on the net/http path. It records
// the caller and any denial in the access-log record and, when the
// request may go on, the identity headers for the target. A denial is
// Lattice's 403 with its AccessDeniedException body.
func (ps *portServer) authorize(st *reqState, q *request, svc *service, cc *clientConn) *genError {
	ar := authz.Request{HTTP: q.r, Method: q.method, Path: q.path, Port: int(ps.port)}
	if cc != nil {
		ar.Secure, ar.PeerCertificate = cc.tls, cc.peerCert
	}
	if ap, err := netip.ParseAddrPort(q.r.RemoteAddr); err == nil {
		ar.SourceIP = ap.Addr().Unmap()
	}
	res := svc.authority.Authorize(q.r.Context(), svc.auth, &ar)
	st.rec.CallerPrincipal, st.rec.CallerX509 = res.Principal, res.X509
	if !res.Allowed {
		st.rec.AuthDeniedReason = res.DeniedReason
		return &genError{status: 403, reason: reasonAccessDenied, body: res.Body}
	}
	st.idHdr, st.tagsHdr = res.IdentityHeader, res.TagsHeader
	return nil
}

// reasonAccessDenied is the failureReason of a request auth denied
// (lattice.md §5.6).
const reasonAccessDenied = "ClientAccessDenied"

// authorizeConnect applies svc's auth policies to a TLS_PASSTHROUGH
// connection: action vpc-lattice-svcs:Connect, anonymous caller (the
// gateway sees no request and no client certificate in it). It reports
// whether the connection may go on.
func (ps *portServer) authorizeConnect(st *reqState, svc *service, remote string) bool {
	ar := authz.Request{Port: int(ps.port), Secure: true}
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		ar.SourceIP = ap.Addr().Unmap()
	}
	res := svc.authority.Authorize(context.Background(), svc.auth, &ar)
	if !res.Allowed {
		st.rec.AuthDeniedReason = res.DeniedReason
		st.rec.Generated, st.rec.FailureReason = true, reasonAccessDenied
	}
	return res.Allowed
}
