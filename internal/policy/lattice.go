package policy

import "strconv"

// This file is Lattice's authorization decision for one request to a
// service, combining the service network's auth policy, the service's auth
// policy and the caller's identity-based policies (lattice.md §5.1, §5.2).

// Layer is a layer of Lattice's authorization. Its String form is the
// access log's authDeniedReason value.
type Layer uint8

const (
	LayerNone     Layer = iota // no layer denied
	LayerNetwork               // the service network's auth policy
	LayerService               // the service's auth policy
	LayerIdentity              // the caller's identity-based policies
)

// String returns "", "Network", "Service" or "Identity".
func (l Layer) String() string {
	switch l {
	case LayerNone:
		return ""
	case LayerNetwork:
		return "Network"
	case LayerService:
		return "Service"
	case LayerIdentity:
		return "Identity"
	}
	return "Layer(" + strconv.Itoa(int(l)) + ")"
}

// policyWord is how 403 messages name the layer's policy.
func (l Layer) policyWord() string {
	switch l {
	case LayerNetwork:
		return "network-based"
	case LayerService:
		return "service-based"
	}
	return "identity-based"
}

// DecideInput is everything Decide needs. The policies are compiled once
// per snapshot; Request is filled per request.
type DecideInput struct {
	// NetworkIAM is set when the request came through a service network
	// whose authType is AWS_IAM. With authType NONE (or no service
	// network) the network policy is not evaluated, even if one is
	// attached (it is then Inactive, §5.1).
	NetworkIAM bool
	// NetworkPolicy is the service network's auth policy (compiled as
	// AuthPolicy), or nil when none is attached: with NetworkIAM that
	// denies every request (§5.1).
	NetworkPolicy *Compiled
	// ServiceIAM and ServicePolicy are the same for the service.
	ServiceIAM    bool
	ServicePolicy *Compiled
	// IdentityPolicies are the identity-based policies of the caller
	// (compiled as IdentityPolicy). They are consulted only for
	// authenticated callers (Request.Principal not anonymous); pass nil
	// for anonymous callers. An authenticated caller with no policies is
	// denied at the Identity layer whenever a layer is AWS_IAM.
	IdentityPolicies []*Compiled
	// Request is the request context. Nil is treated as an empty,
	// anonymous request.
	Request *Request
}

// Decision is the outcome of Decide.
type Decision struct {
	// Allowed is the verdict.
	Allowed bool
	// DeniedBy is the layer that denied, LayerNone when allowed.
	DeniedBy Layer
	// Explicit is set when a Deny statement decided (rather than the
	// absence of an Allow).
	Explicit bool
	// Statement is the document index of the deciding Deny statement when
	// Explicit, else -1.
	Statement int
	// Policy is the index in IdentityPolicies of the policy holding that
	// statement when DeniedBy is LayerIdentity and Explicit, else -1.
	Policy int

	caller, action, resource string
}

// Decide makes Lattice's authorization decision (lattice.md §5.2): a
// request is allowed only if all of
//
//  1. the caller's identity-based policies allow the action on the
//     resource — for authenticated callers only; anonymous callers have
//     none;
//  2. the service network's auth policy has an applicable Allow, or its
//     authType is NONE;
//  3. the service's auth policy has an applicable Allow, or its authType
//     is NONE;
//
// and no applicable Deny exists in any evaluated policy.
//
// Identity AND auth policy, not IAM's same-account "either suffices":
// lattice.md §5.2 notes "unlike normal same-account IAM (resource OR
// identity), Lattice requires identity AND auth policy", and the Lattice
// user guide (auth-policies) says authorization needs an explicit allow in
// both the auth policy and the identity-based policy. Trellis applies this
// to same-account and cross-account callers alike.
//
// When both authTypes are NONE no policy is evaluated at all (the request
// is not authenticated, §5.1), so the identity layer is skipped too.
//
// The denying layer is reported in this order: an explicit Deny in the
// network, service, then identity layer; else a missing Allow in the
// network, service, then identity layer — the order in which §5.2 lists
// the layers for the service path and the 403 bodies name them.
//
// Decide does not allocate.
func Decide(in DecideInput) Decision {
	r := in.Request
	if r == nil {
		r = &Request{}
	}
	d := Decision{Statement: -1, Policy: -1,
		caller: r.Principal.Display(), action: r.Action, resource: r.Resource}
	if !in.NetworkIAM && !in.ServiceIAM {
		d.Allowed = true
		return d
	}

	net, netSt := NoMatch, -1
	if in.NetworkIAM {
		net, netSt = resourceSide(in.NetworkPolicy, r)
	}
	svc, svcSt := NoMatch, -1
	if in.ServiceIAM {
		svc, svcSt = resourceSide(in.ServicePolicy, r)
	}
	authenticated := !r.Principal.Anonymous()
	id, idSt, idPol := NoMatch, -1, -1
	if authenticated {
		id, idSt, idPol = identitySide(in.IdentityPolicies, r)
	}

	switch {
	case net == Denied:
		return d.deny(LayerNetwork, true, netSt, -1)
	case svc == Denied:
		return d.deny(LayerService, true, svcSt, -1)
	case id == Denied:
		return d.deny(LayerIdentity, true, idSt, idPol)
	case in.NetworkIAM && net != Allowed:
		return d.deny(LayerNetwork, false, -1, -1)
	case in.ServiceIAM && svc != Allowed:
		return d.deny(LayerService, false, -1, -1)
	case authenticated && id != Allowed:
		return d.deny(LayerIdentity, false, -1, -1)
	}
	d.Allowed = true
	return d
}

func (d Decision) deny(l Layer, explicit bool, stmt, pol int) Decision {
	d.Allowed, d.DeniedBy, d.Explicit, d.Statement, d.Policy = false, l, explicit, stmt, pol
	return d
}

// resourceSide evaluates an auth policy. A policy compiled as an identity
// policy has no principals to check and is ignored (so the layer denies)
// rather than granting every caller.
func resourceSide(c *Compiled, r *Request) (Outcome, int) {
	if c == nil || c.kind == IdentityPolicy {
		return NoMatch, -1
	}
	return c.Evaluate(r)
}

// identitySide evaluates the caller's identity-based policies together:
// Denied if any denies, else Allowed if any allows. Policies not compiled
// as IdentityPolicy are ignored.
func identitySide(ps []*Compiled, r *Request) (out Outcome, stmt, pol int) {
	out, stmt, pol = NoMatch, -1, -1
	for i, c := range ps {
		if c == nil || c.kind != IdentityPolicy {
			continue
		}
		switch o, s := c.Evaluate(r); o {
		case Denied:
			return Denied, s, i
		case Allowed:
			if out == NoMatch {
				out, stmt, pol = Allowed, s, i
			}
		}
	}
	return out, stmt, pol
}

// Reason returns the access log's authDeniedReason: "Network", "Service",
// "Identity", or "" when allowed.
func (d Decision) Reason() string { return d.DeniedBy.String() }

// Message returns the body of Lattice's 403 response (lattice.md §5.6),
// or "" when allowed:
//
//	AccessDeniedException: User: <principal ARN | anonymous> is not authorized to perform: vpc-lattice-svcs:Invoke on resource: <svcArn>/<path> because no service-based policy allows the vpc-lattice-svcs:Invoke action
//
// An explicit deny ends, as IAM's messages do, with
// "with an explicit deny in a service-based policy" (or "an
// identity-based policy").
func (d Decision) Message() string {
	if d.Allowed {
		return ""
	}
	return string(d.AppendMessage(make([]byte, 0, 160+len(d.caller)+2*len(d.action)+len(d.resource))))
}

// AppendMessage appends Message to b, for callers with a pooled buffer.
func (d Decision) AppendMessage(b []byte) []byte {
	if d.Allowed {
		return b
	}
	b = append(b, "AccessDeniedException: User: "...)
	b = append(b, d.caller...)
	b = append(b, " is not authorized to perform: "...)
	b = append(b, d.action...)
	b = append(b, " on resource: "...)
	b = append(b, d.resource...)
	if d.Explicit {
		if d.DeniedBy == LayerIdentity {
			b = append(b, " with an explicit deny in an "...)
		} else {
			b = append(b, " with an explicit deny in a "...)
		}
		b = append(b, d.DeniedBy.policyWord()...)
		return append(b, " policy"...)
	}
	b = append(b, " because no "...)
	b = append(b, d.DeniedBy.policyWord()...)
	b = append(b, " policy allows the "...)
	b = append(b, d.action...)
	return append(b, " action"...)
}
