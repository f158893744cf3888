package authz

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/trellis-mesh/trellis/internal/identity"
	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/sigv4"
	"github.com/trellis-mesh/trellis/internal/urlpath"
)

// Request is what the gateway knows of one request to a service.
type Request struct {
	// HTTP is the request: its signature, headers and query. Nil for a
	// TLS_PASSTHROUGH connection, which is authorized for
	// vpc-lattice-svcs:Connect as an anonymous caller (the gateway sees
	// no request in it).
	HTTP *http.Request
	// Method is the request method.
	Method string
	// Path is the normalised path (urlpath.Normalize): the path the
	// rules match and the target receives, so that no spelling of a path
	// reaches what a policy denies. The path must also be allowed in
	// every other reading a target may make of it (urlpath.Readings).
	Path string
	// Port is the listener port.
	Port int
	// Secure is set when the request came over TLS.
	Secure bool
	// SourceIP is the client's address.
	SourceIP netip.Addr
	// PeerCertificate is the client certificate the TLS handshake
	// verified against Trellis's CA; nil when the client sent none.
	PeerCertificate *x509.Certificate
}

// Result is the outcome of Authorize.
type Result struct {
	// Allowed is the verdict.
	Allowed bool
	// Body is the 403 body of a denial: Lattice's AccessDeniedException
	// line when a policy denied, an InvalidSignatureException or
	// UnrecognizedClientException line when the credentials did not
	// verify. It ends in a newline.
	Body string
	// DeniedReason is the access log's authDeniedReason: Network,
	// Service or Identity when a policy denied, Authentication when the
	// signature or certificate did not verify; "" when allowed.
	DeniedReason string
	// Principal is the caller's ARN, "" for an anonymous caller (and for
	// a caller whose credentials did not verify).
	Principal string
	// X509 is the client certificate of a caller authenticated by one
	// (nil otherwise), for the access log.
	X509 *identity.X509
	// IdentityHeader and TagsHeader are the values of
	// x-amzn-lattice-identity and x-amzn-lattice-identity-tags toward the
	// target; TagsHeader is nil for an anonymous caller. They may be
	// shared: never modify them.
	IdentityHeader, TagsHeader []string
}

// The identity header of anonymous callers, shared.
var anonymousHeader = []string{string(identity.AppendIdentity(nil, nil))}

// DeniedAuthentication is Result.DeniedReason for credentials that did
// not verify.
const DeniedAuthentication = "Authentication"

// Authorize authenticates the caller of r and decides whether it may
// invoke (or, without HTTP, connect to) svc, which must be non-nil
// (Service returns nil for services without AWS_IAM). A request carrying a
// signature that does not verify, or a client certificate that names no
// principal, is denied: it is never downgraded to anonymous. A signature
// takes precedence over a client certificate on the same connection.
func (a *Authority) Authorize(ctx context.Context, svc *Service, r *Request) Result {
	var (
		caller *Caller
		x509ID *identity.X509
	)
	switch {
	case r.HTTP != nil && sigv4.IsSigned(r.HTTP):
		res, err := a.verifier.Verify(ctx, r.HTTP, nil)
		if err != nil {
			return authnDenied(err)
		}
		if caller = a.callers[res.Principal]; caller == nil {
			return authnDenied(sigv4.ErrUnknownKey)
		}
	case r.PeerCertificate != nil:
		p, ok := a.index.PrincipalForCertificate(r.PeerCertificate)
		if ok {
			caller = a.callers[p.ARN]
		}
		if caller == nil {
			return Result{DeniedReason: DeniedAuthentication,
				Body: "AccessDeniedException: the client certificate names no principal of this installation (a SPIFFE ID spiffe://" +
					a.index.TrustDomain() + "/account/ACCOUNT/user|role/NAME is required)\n"}
		}
		x509ID = identity.FromCertificate(r.PeerCertificate)
	}

	req := policy.Request{
		Action:                policy.ActionInvoke,
		SourceIP:              r.SourceIP,
		Time:                  a.now(),
		SecureTransport:       r.Secure,
		ResourceTags:          svc.tags,
		ServiceARN:            svc.arn,
		ServiceNetworkARN:     svc.networkARN,
		SourceVPC:             a.sourceVPC,
		SourceVPCOwnerAccount: a.sourceVPCOwner,
		Port:                  r.Port,
	}
	if r.HTTP == nil {
		req.Action, req.Resource = policy.ActionConnect, svc.arn
	} else {
		req.Resource = policy.InvokeResource(svc.arn, r.Path)
		req.Method, req.Path = r.Method, r.Path
		req.Headers = headerValues(r.HTTP.Header)
		req.Query = queryValues(r.HTTP.URL)
	}
	in := policy.DecideInput{
		NetworkIAM: svc.networkIAM, NetworkPolicy: svc.networkPolicy,
		ServiceIAM: svc.serviceIAM, ServicePolicy: svc.servicePolicy,
		Request: &req,
	}
	if caller != nil {
		req.Principal = caller.principal
		in.IdentityPolicies = caller.identity
	}
	d := policy.Decide(in)
	if d.Allowed && r.HTTP != nil {
		// The target may read the path otherwise (%2F as '/', ";"
		// parameters dropped): the decision must hold for every reading.
		for _, alt := range urlpath.Readings(r.Path) {
			req.Resource, req.Path = policy.InvokeResource(svc.arn, alt), alt
			if d = policy.Decide(in); !d.Allowed {
				break
			}
		}
	}
	if !d.Allowed {
		res := Result{DeniedReason: d.Reason(), Body: d.Message() + "\n", X509: x509ID}
		if caller != nil {
			res.Principal = caller.ARN
		}
		return res
	}
	res := Result{Allowed: true, IdentityHeader: anonymousHeader}
	if caller != nil {
		res.Principal = caller.ARN
		res.IdentityHeader, res.TagsHeader = caller.idHdr, caller.tagsHdr
		res.X509 = x509ID
		if x509ID != nil {
			who := caller.who
			who.X509 = x509ID
			res.IdentityHeader = []string{string(identity.AppendIdentity(nil, &who))}
		}
	}
	return res
}

// authnDenied is the answer to credentials that did not verify, in the
// words of the AWS error the SDKs know for each case.
func authnDenied(err error) Result {
	code := "InvalidSignatureException"
	if errors.Is(err, sigv4.ErrUnknownKey) || errors.Is(err, sigv4.ErrSessionToken) {
		code = "UnrecognizedClientException"
	}
	return Result{DeniedReason: DeniedAuthentication, Body: code + ": " + err.Error() + "\n"}
}

// headerValues are the request's header fields as
// vpc-lattice-svcs:RequestHeader/<name> sees them: one entry per name,
// repeated fields joined with ", ".
func headerValues(h http.Header) []policy.KeyValue {
	out := make([]policy.KeyValue, 0, len(h))
	for k, vv := range h {
		switch len(vv) {
		case 0:
		case 1:
			out = append(out, policy.KeyValue{Key: k, Value: vv[0]})
		default:
			out = append(out, policy.KeyValue{Key: k, Value: strings.Join(vv, ", ")})
		}
	}
	return out
}

// queryValues are the query parameters as
// vpc-lattice-svcs:RequestQueryString/<key> sees them, one entry per
// occurrence. A key or value that does not decode is kept as sent, so
// that a malformed escape can never hide a parameter from a Deny
// condition by making it vanish. A parameter holding ';' is also read
// split there, as some servers split queries on ';' too: "a=1;admin=true"
// gives a="1;admin=true", a="1" and admin="true", so a condition sees
// every parameter any target may read.
func queryValues(u *url.URL) []policy.KeyValue {
	if u == nil || u.RawQuery == "" {
		return nil
	}
	var out []policy.KeyValue
	for q := u.RawQuery; q != ""; {
		var part string
		part, q, _ = strings.Cut(q, "&")
		if part == "" {
			continue
		}
		out = appendParam(out, part)
		if strings.IndexByte(part, ';') >= 0 {
			for rest := part; rest != ""; {
				var p string
				p, rest, _ = strings.Cut(rest, ";")
				if p != "" {
					out = appendParam(out, p)
				}
			}
		}
	}
	return out
}

func appendParam(out []policy.KeyValue, kv string) []policy.KeyValue {
	k, v, _ := strings.Cut(kv, "=")
	if dk, err := url.QueryUnescape(k); err == nil {
		k = dk
	}
	if dv, err := url.QueryUnescape(v); err == nil {
		v = dv
	}
	return append(out, policy.KeyValue{Key: k, Value: v})
}
