package native

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/urlpath"
)

// This file is the explain call, POST /trellis/v1/policy/explain: it takes
// the description of one request to a service, resolves it against the
// store — the service, the service network the request comes through, the
// source VPC, the caller with its tags and identity-based policy, the auth
// types and auth policies — builds the policy.Request a gateway builds
// for it, and answers policy.Explain's explanation of Lattice's decision.
// The body may override any policy or auth type, so a user can try a
// policy before putting it.
//
// Flow: decode strictly → check (explain_input.go: every problem at once,
// policies compiled) → authorize the account → resolve in one consistent
// read → build the request → policy.Explain.
//
// Store keys read here, written by packages lattice and native:
//
//	/lattice/<account>/svc/<id>, sn/<id>     services and networks
//	/lattice/<account>/name/{svc,sn}/<name>  name index → ID
//	/lattice/<account>/snsa/<id>             service ↔ network
//	/lattice/<account>/snva/<id>             network ↔ VPC
//	/lattice/<account>/listener/<svc>/<id>   listeners (port and protocol)
//	/lattice/<account>/authpolicy/<id>       auth policies of svc and sn
//	/lattice-vpc/<vpc-id>                    the one network association of a VPC
//	/vpcs/<id>, /vpc-names/<account>/<name>  VPCs
//	/iam/principals/<account>/<type>/<name>  principals (tags, identity policy)

// ExplainOut is the answer of the explain call.
type ExplainOut struct {
	// Decision is "ALLOW" or "DENY".
	Decision string `json:"decision"`
	// DeniedBy is the layer that denied — "Network", "Service" or
	// "Identity" — as in the access log's authDeniedReason; "" when
	// allowed.
	DeniedBy string `json:"deniedBy"`
	// Message is the body of Lattice's 403 answer; "" when allowed.
	Message     string              `json:"message"`
	Explanation *policy.Explanation `json:"explanation"`
	// Text is Explanation in a few lines (policy.Explanation.String).
	Text string `json:"text"`
	// Request is the request context as evaluated, defaults filled in.
	Request ExplainedRequest `json:"request"`
	// Notes say what explain assumed or left out.
	Notes []string `json:"notes,omitempty"`
}

// ExplainedRequest is the evaluated request context.
type ExplainedRequest struct {
	Account string `json:"account"`
	// Principal is the caller's ARN or "anonymous".
	Principal     string            `json:"principal"`
	PrincipalType string            `json:"principalType"`
	PrincipalTags map[string]string `json:"principalTags,omitempty"`
	// IdentityPolicies name the identity-based policies evaluated: the
	// principal's stored policy ("role/NAME") or identityPolicies[i].
	IdentityPolicies []string `json:"identityPolicies"`
	Action           string   `json:"action"`
	Resource         string   `json:"resource"`
	Service          Layer    `json:"service"`
	// ServiceNetwork is absent when the service is in no network.
	ServiceNetwork *Layer `json:"serviceNetwork,omitempty"`
	// SourceVpc is absent when no VPC was named and the account has no
	// VPC "default" that reaches the service.
	SourceVpc       *SourceVPC          `json:"sourceVpc,omitempty"`
	Method          string              `json:"method"`
	Path            string              `json:"path"`
	Port            int                 `json:"port"`
	Protocol        string              `json:"protocol"`
	SecureTransport bool                `json:"secureTransport"`
	SourceIP        string              `json:"sourceIp,omitempty"`
	Time            string              `json:"time"`
	Headers         map[string]string   `json:"headers"`
	Query           map[string][]string `json:"query"`
}

// Layer is the service or service network of the request.
type Layer struct {
	ID       string `json:"id"`
	ARN      string `json:"arn"`
	Name     string `json:"name"`
	AuthType string `json:"authType"`
	// Policy says where the evaluated auth policy came from: "stored",
	// "override" (the body's networkPolicy/servicePolicy) or "none".
	Policy string `json:"policy"`
}

// SourceVPC is the VPC the request comes from.
type SourceVPC struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Account string `json:"account"`
}

func (a *API) explainPolicy(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var in explainIn
	if err := wire.Decode(r.Body, &in); err != nil {
		return 0, nil, err
	}
	args, err := in.check(a.now())
	if err != nil {
		return 0, nil, err
	}
	named := in.Account
	if arn, err := model.ParseARN(in.Service); named == "" && err == nil && model.IsAccountID(arn.Account) {
		named = arn.Account // a service ARN names its account
	}
	acct, err := actingAccount(c, named)
	if err != nil {
		return 0, nil, err
	}
	var out *ExplainOut
	_, err = store.Update(ctx, a.st, func(tx *store.Tx) error {
		sc, err := a.resolveScene(tx, c, acct, args)
		if err != nil {
			return err
		}
		out, err = sc.explain(args)
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, out, nil
}

// scene is the request description resolved against the store.
type scene struct {
	account   string
	svc       *model.Service
	sn        *model.ServiceNetwork // nil: the service is in no network
	vpc       *model.VPC            // nil: no source VPC
	principal *model.Principal      // nil: anonymous
	port      int
	protocol  string
	// The stored auth policies ("" when none).
	svcPolicy, snPolicy string
	notes               []string
}

func (s *scene) note(format string, args ...any) {
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

func latticeKey(account string, parts ...string) string {
	return "/lattice/" + account + "/" + strings.Join(parts, "/")
}

// resolveScene loads everything the description names, in acct.
func (a *API) resolveScene(tx *store.Tx, c iam.Caller, acct string, args *explainArgs) (*scene, error) {
	in := args.in
	s := &scene{account: acct}
	svcID, err := a.resolveLattice(tx, "service", in.Service, acct, model.PrefixService, "service", "svc", "SERVICE")
	if err != nil {
		return nil, err
	}
	if s.svc, err = mustLoad[model.Service](tx, latticeKey(acct, "svc", svcID), "SERVICE", in.Service); err != nil {
		return nil, err
	}
	if err := s.resolveNetwork(a, tx, args); err != nil {
		return nil, err
	}
	if err := s.resolveListener(tx, args); err != nil {
		return nil, err
	}
	if !args.anonymous {
		p, err := findPrincipal(tx, acct, in.Principal)
		if err != nil {
			return nil, err
		}
		if _, err := actingAccount(c, p.Account); err != nil {
			return nil, err
		}
		s.principal = p
	}
	if s.svcPolicy, err = storedPolicy(tx, acct, s.svc.ID); err != nil {
		return nil, err
	}
	if s.sn != nil {
		if s.snPolicy, err = storedPolicy(tx, acct, s.sn.ID); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func mustLoad[T any](tx *store.Tx, key, resType, ref string) (*T, error) {
	v, ok, err := store.GetJSON[T](tx, key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, wire.NotFound(resType, ref)
	}
	return v, nil
}

// resolveLattice turns an ID, ARN or name of a service or service network
// in account into its ID. An ARN of another account or region is not found.
func (a *API) resolveLattice(tx *store.Tx, field, ref, account, prefix, arnKind, nameKind, resType string) (string, error) {
	switch {
	case model.IsID(ref, prefix):
		return ref, nil
	case strings.HasPrefix(ref, "arn:"):
		arn, err := model.ParseARN(ref)
		kind, id, _ := strings.Cut(arn.Resource, "/")
		if err != nil || arn.Service != "vpc-lattice" || kind != arnKind || !model.IsID(id, prefix) {
			return "", wire.Invalid(field, "must be the ID (%s-…), ARN (arn:aws:vpc-lattice:…:%s/%s-…) or name of a %s, got %q",
				prefix, arnKind, prefix, strings.ToLower(strings.ReplaceAll(resType, "_", " ")), ref)
		}
		if arn.Partition != "aws" || arn.Account != account || arn.Region != a.region {
			return "", wire.NotFound(resType, ref)
		}
		return id, nil
	}
	kv, err := tx.Get(latticeKey(account, "name", nameKind, ref))
	if isNotFound(err) {
		return "", wire.NotFound(resType, ref)
	}
	if err != nil {
		return "", err
	}
	return string(kv.Value), nil
}

// resolveNetwork picks the source VPC and the service network of the
// request. A VPC has at most one network association, so a VPC that
// reaches the service decides the network. The rules:
//
//   - sourceVpc named: it must reach the service (through serviceNetwork,
//     when that is named too); else the request could not be made and
//     the call fails naming sourceVpc.
//   - sourceVpc not named: the account's VPC "default" is used when it
//     reaches the service (through serviceNetwork, when named); otherwise
//     the request has no source VPC (vpc-lattice-svcs:SourceVpc absent) and
//     a note says so.
//   - serviceNetwork named: the service must be associated with it.
//   - neither decides: the service's only network; a service in several
//     networks needs serviceNetwork (or a sourceVpc); a service in none is
//     explained without the network layer, with a note.
func (s *scene) resolveNetwork(a *API, tx *store.Tx, args *explainArgs) error {
	in := args.in
	nets, err := serviceNetworks(tx, s.account, s.svc.ID)
	if err != nil {
		return err
	}
	if in.ServiceNetwork != "" {
		id, err := a.resolveLattice(tx, "serviceNetwork", in.ServiceNetwork, s.account, model.PrefixServiceNetwork, "servicenetwork", "sn", "SERVICE_NETWORK")
		if err != nil {
			return err
		}
		if s.sn, err = mustLoad[model.ServiceNetwork](tx, latticeKey(s.account, "sn", id), "SERVICE_NETWORK", in.ServiceNetwork); err != nil {
			return err
		}
		if !slices.ContainsFunc(nets, func(n *model.ServiceNetwork) bool { return n.ID == id }) {
			return wire.Invalid("serviceNetwork", "service %s (%s) is not associated with service network %s (%s)", s.svc.Name, s.svc.ID, s.sn.Name, s.sn.ID)
		}
	}

	vpc, explicit, err := s.sourceVPC(tx, in.SourceVpc)
	if err != nil {
		return err
	}
	if vpc != nil {
		vpcNet, err := vpcNetwork(tx, s.account, vpc.ID)
		if err != nil {
			return err
		}
		var reached *model.ServiceNetwork
		for _, n := range nets {
			if n.ID == vpcNet && (s.sn == nil || s.sn.ID == vpcNet) {
				reached = n
			}
		}
		switch {
		case reached != nil:
			s.vpc, s.sn = vpc, reached
		case explicit:
			return wire.Invalid("sourceVpc", "%s: requests from it cannot reach service %s", s.vpcReach(tx, vpc, vpcNet), s.svc.Name)
		default:
			s.note("the account's VPC %q (%s) does not reach service %s%s, so the request has no source VPC (vpc-lattice-svcs:SourceVpc is absent); name one with sourceVpc",
				vpc.Name, vpc.ID, s.svc.Name, s.through())
		}
	}
	if s.sn != nil {
		return nil
	}
	switch len(nets) {
	case 0:
		for _, o := range []struct {
			field string
			given bool
		}{{"networkPolicy", in.NetworkPolicy != nil}, {"networkAuthType", in.NetworkAuthType != ""}} {
			if o.given {
				return wire.Invalid(o.field, "service %s is not associated with any service network, so there is no network layer to override", s.svc.Name)
			}
		}
		s.note("service %s is not associated with any service network, so no request can reach it; the network layer is not evaluated", s.svc.Name)
	case 1:
		s.sn = nets[0]
	default:
		names := make([]string, len(nets))
		for i, n := range nets {
			names[i] = n.Name
		}
		return wire.Invalid("serviceNetwork", "service %s is in %d service networks (%s): name the one the request comes through, or its sourceVpc",
			s.svc.Name, len(nets), strings.Join(names, ", "))
	}
	return nil
}

func (s *scene) through() string {
	if s.sn == nil {
		return ""
	}
	return " through service network " + s.sn.Name
}

// vpcReach says which network a VPC is associated with, for errors.
func (s *scene) vpcReach(tx *store.Tx, vpc *model.VPC, netID string) string {
	if netID == "" {
		return fmt.Sprintf("VPC %s (%s) is not associated with a service network", vpc.Name, vpc.ID)
	}
	name := netID
	if sn, ok, err := store.GetJSON[model.ServiceNetwork](tx, latticeKey(s.account, "sn", netID)); err == nil && ok {
		name = sn.Name + " (" + netID + ")"
	}
	if s.sn != nil && s.sn.ID != netID {
		return fmt.Sprintf("VPC %s (%s) is associated with service network %s, not %s", vpc.Name, vpc.ID, name, s.sn.Name)
	}
	return fmt.Sprintf("VPC %s (%s) is associated with service network %s, which service %s is not part of", vpc.Name, vpc.ID, name, s.svc.Name)
}

// sourceVPC resolves sourceVpc (an ID or a name in the account), or the
// account's VPC "default" when ref is empty (nil if there is none).
func (s *scene) sourceVPC(tx *store.Tx, ref string) (vpc *model.VPC, explicit bool, err error) {
	id := ref
	if ref == "" || !model.IsID(ref, model.PrefixVPC) {
		name := ref
		if name == "" {
			name = "default"
		}
		kv, err := tx.Get(vpcNameKey(s.account, name))
		switch {
		case isNotFound(err) && ref == "":
			return nil, false, nil
		case isNotFound(err):
			return nil, false, wire.NotFound("VPC", ref)
		case err != nil:
			return nil, false, err
		}
		id = string(kv.Value)
	}
	v, ok, err := store.GetJSON[model.VPC](tx, lattice.VPCKey(id))
	if err != nil {
		return nil, false, err
	}
	if !ok || v.Account != s.account {
		if ref == "" {
			return nil, false, nil
		}
		return nil, false, wire.NotFound("VPC", ref)
	}
	return v, ref != "", nil
}

// serviceNetworks are the networks the service is associated with, by ID.
func serviceNetworks(tx *store.Tx, account, svcID string) ([]*model.ServiceNetwork, error) {
	kvs, err := tx.List(latticeKey(account, "snsa") + "/")
	if err != nil {
		return nil, err
	}
	var out []*model.ServiceNetwork
	for _, kv := range kvs {
		var as model.ServiceNetworkServiceAssociation
		if err := json.Unmarshal(kv.Value, &as); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", kv.Key, err)
		}
		if as.ServiceID != svcID {
			continue
		}
		sn, ok, err := store.GetJSON[model.ServiceNetwork](tx, latticeKey(account, "sn", as.ServiceNetworkID))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, sn)
		}
	}
	slices.SortFunc(out, func(a, b *model.ServiceNetwork) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// vpcNetwork is the ID of the network the VPC is associated with, or "".
func vpcNetwork(tx *store.Tx, account, vpcID string) (string, error) {
	kv, err := tx.Get(lattice.VPCAssociationKey(vpcID))
	if isNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	as, ok, err := store.GetJSON[model.ServiceNetworkVpcAssociation](tx, latticeKey(account, "snva", string(kv.Value)))
	if err != nil || !ok {
		return "", err
	}
	return as.ServiceNetworkID, nil
}

// resolveListener settles the port and protocol: a named port must be a
// listener's (its protocol then follows); without a port the service's
// only HTTP or HTTPS listener (of the named protocol) decides.
func (s *scene) resolveListener(tx *store.Tx, args *explainArgs) error {
	ls, err := store.ListJSON[model.Listener](tx, latticeKey(s.account, "listener", s.svc.ID)+"/")
	if err != nil {
		return err
	}
	slices.SortFunc(ls, func(a, b *model.Listener) int { return int(a.Port) - int(b.Port) })
	fallback := func() string {
		switch {
		case args.protocol != "":
			return args.protocol
		case args.in.SecureTransport != nil && !*args.in.SecureTransport:
			return model.ProtocolHTTP
		}
		return model.ProtocolHTTPS
	}
	if args.port != 0 {
		s.port = args.port
		i := slices.IndexFunc(ls, func(l *model.Listener) bool { return int(l.Port) == args.port })
		if i < 0 {
			s.protocol = fallback()
			s.note("service %s has no listener on port %d, so a gateway would refuse the connection; explained as if it had an %s listener there", s.svc.Name, args.port, s.protocol)
			return nil
		}
		l := ls[i]
		switch {
		case args.protocol != "" && args.protocol != l.Protocol:
			return wire.Invalid("protocol", "the listener on port %d is %s, not %s", l.Port, l.Protocol, args.protocol)
		}
		s.protocol = l.Protocol
		return s.checkSecure(args)
	}
	var cands []*model.Listener
	for _, l := range ls {
		// A passthrough listener is chosen only when asked for: most
		// questions are about requests (Invoke).
		if l.Protocol != model.ProtocolTLSPassthrough || args.protocol == model.ProtocolTLSPassthrough {
			if args.protocol == "" || args.protocol == l.Protocol {
				cands = append(cands, l)
			}
		}
	}
	switch len(cands) {
	case 0:
		s.protocol = fallback()
		s.port = 443
		if s.protocol == model.ProtocolHTTP {
			s.port = 80
		}
		s.note("service %s has no %s listener; explained for port %d", s.svc.Name, s.protocol, s.port)
		return nil
	case 1:
		s.port, s.protocol = int(cands[0].Port), cands[0].Protocol
		return s.checkSecure(args)
	}
	ports := make([]string, len(cands))
	for i, l := range cands {
		ports[i] = strconv.Itoa(int(l.Port)) + " (" + l.Protocol + ")"
	}
	return wire.Invalid("port", "service %s has listeners on ports %s: name the port", s.svc.Name, strings.Join(ports, ", "))
}

// checkSecure rejects a secureTransport that contradicts the listener.
func (s *scene) checkSecure(args *explainArgs) error {
	if st := args.in.SecureTransport; st != nil && *st != (s.protocol != model.ProtocolHTTP) {
		return wire.Invalid("secureTransport", "is %t, but the listener on port %d is %s", *st, s.port, s.protocol)
	}
	return nil
}

// storedPolicy is the auth policy document of a service or network, or "".
func storedPolicy(tx *store.Tx, account, id string) (string, error) {
	p, ok, err := store.GetJSON[model.Policy](tx, latticeKey(account, "authpolicy", id))
	if err != nil || !ok {
		return "", err
	}
	return p.Document, nil
}

// explain builds the request a gateway builds and explains the decision.
func (s *scene) explain(args *explainArgs) (*ExplainOut, error) {
	in := args.in
	req := &policy.Request{
		Action:          policy.ActionInvoke,
		Resource:        policy.InvokeResource(s.svc.ARN, args.path),
		SourceIP:        args.sourceIP,
		Time:            args.when,
		SecureTransport: s.protocol != model.ProtocolHTTP,
		ResourceTags:    keyValues(s.svc.Tags),
		ServiceARN:      s.svc.ARN,
		Port:            s.port,
		Method:          args.method,
		Path:            args.path,
		Headers:         args.headers,
		Query:           args.query,
	}
	er := ExplainedRequest{
		Account: s.account, Principal: anonymous, PrincipalType: "Anonymous", IdentityPolicies: []string{},
		Action: req.Action, Resource: req.Resource,
		Method: req.Method, Path: req.Path, Port: req.Port, Protocol: s.protocol, SecureTransport: req.SecureTransport,
		Time: args.when.Format(time.RFC3339Nano), Headers: map[string]string{}, Query: map[string][]string{},
	}
	if args.sourceIP.IsValid() {
		er.SourceIP = args.sourceIP.String()
	}
	for _, h := range args.headers {
		er.Headers[h.Key] = h.Value
	}
	for _, q := range args.query {
		er.Query[q.Key] = append(er.Query[q.Key], q.Value)
	}
	connect := s.protocol == model.ProtocolTLSPassthrough
	if connect {
		// A passthrough connection is authorized once, for Connect on
		// the service, as an anonymous caller: the gateway sees no
		// request and no client certificate inside the tunnel.
		req.Action, req.Resource = policy.ActionConnect, s.svc.ARN
		req.Method, req.Path, req.Headers, req.Query = "", "", nil, nil
		er.Action, er.Resource, er.Method, er.Path = req.Action, req.Resource, "", ""
		er.Headers, er.Query = map[string]string{}, map[string][]string{}
		if s.principal != nil {
			s.note("a TLS_PASSTHROUGH listener sees no caller inside the tunnel: explained for an anonymous caller, not %s", s.principal.ARN)
			s.principal = nil
		}
	}
	if s.vpc != nil {
		req.SourceVPC, req.SourceVPCOwnerAccount = s.vpc.ID, s.vpc.Account
		er.SourceVpc = &SourceVPC{ID: s.vpc.ID, Name: s.vpc.Name, Account: s.vpc.Account}
	}

	ein := policy.ExplainInput{DecideInput: policy.DecideInput{Request: req}}
	var err error
	svcLayer := Layer{ID: s.svc.ID, ARN: s.svc.ARN, Name: s.svc.Name}
	ein.ServiceIAM, ein.ServicePolicy, ein.ServiceName, err = s.layer(&svcLayer, s.svc.AuthType, in.ServiceAuthType, s.svcPolicy, args.servicePolicy, "servicePolicy", "serviceAuthType")
	if err != nil {
		return nil, err
	}
	er.Service = svcLayer
	if s.sn != nil {
		req.ServiceNetworkARN = s.sn.ARN
		snLayer := Layer{ID: s.sn.ID, ARN: s.sn.ARN, Name: s.sn.Name}
		ein.NetworkIAM, ein.NetworkPolicy, ein.NetworkName, err = s.layer(&snLayer, s.sn.AuthType, in.NetworkAuthType, s.snPolicy, args.networkPolicy, "networkPolicy", "networkAuthType")
		if err != nil {
			return nil, err
		}
		er.ServiceNetwork = &snLayer
	}

	if p := s.principal; p != nil {
		pr, err := policy.PrincipalFromARN(p.ARN)
		if err != nil {
			return nil, fmt.Errorf("principal %s: %w", p.ARN, err)
		}
		pr.Tags = keyValues(p.Tags)
		req.Principal = pr
		er.Principal, er.PrincipalType, er.PrincipalTags = p.ARN, pr.Type, p.Tags
		switch {
		case args.identityGiven:
			ein.IdentityPolicies = args.identity
			for i := range args.identity {
				ein.IdentityNames = append(ein.IdentityNames, "identityPolicies["+strconv.Itoa(i)+"]")
			}
		case p.Policy != "":
			c, err := policy.CompileDocument([]byte(p.Policy), policy.IdentityPolicy)
			if err != nil {
				return nil, wire.Conflict("PRINCIPAL", p.ARN, "the stored identity-based policy of %s does not parse: %v", p.ARN, err)
			}
			ein.IdentityPolicies = []*policy.Compiled{c}
			ein.IdentityNames = []string{p.Type + "/" + p.Name}
		}
		er.IdentityPolicies = append(er.IdentityPolicies, ein.IdentityNames...)
	}

	if args.path != in.Path && in.Path != "" && !connect {
		s.note("the path %s is evaluated as %s, the normalised path a gateway matches, authorizes and forwards", in.Path, args.path)
	}
	e := policy.Explain(ein)
	if e.Allowed && !connect {
		// As the gateway does: every other reading a target may make of
		// the path (%2F as '/', ";" parameters dropped) must be allowed
		// too.
		for _, alt := range urlpath.Readings(args.path) {
			req.Resource, req.Path = policy.InvokeResource(s.svc.ARN, alt), alt
			if e2 := policy.Explain(ein); !e2.Allowed {
				s.note("a target may read the path as %s (an encoded slash or a backslash as a separator, or \";\" parameters dropped); a gateway requires that reading to be allowed too, and it is not", alt)
				e = e2
				break
			}
		}
	}
	out := &ExplainOut{Decision: "ALLOW", DeniedBy: e.DeniedBy, Message: e.Message, Explanation: e, Text: e.String(),
		Request: er, Notes: s.notes}
	if !e.Allowed {
		out.Decision = "DENY"
	}
	return out, nil
}

// layer settles the auth type and auth policy of the service or network:
// stored, or overridden by the body. It returns Decide's inputs and the
// policy's name in the explanation.
func (s *scene) layer(l *Layer, authType, authOverride, stored string, override *policyOverride, policyField, authField string) (bool, *policy.Compiled, string, error) {
	l.AuthType = authType
	if authOverride != "" {
		l.AuthType = authOverride
	}
	if l.AuthType == "" {
		l.AuthType = model.AuthTypeNone
	}
	name := l.Name
	var c *policy.Compiled
	switch {
	case override != nil:
		l.Policy, c, name = "override", override.compiled, policyField
		if c == nil {
			l.Policy = "none"
		}
	case stored != "":
		var err error
		if c, err = policy.CompileDocument([]byte(stored), policy.AuthPolicy); err != nil {
			return false, nil, "", wire.Conflict("AUTH_POLICY", l.ID, "the stored auth policy of %s does not parse: %v", l.ID, err)
		}
		l.Policy = "stored"
	default:
		l.Policy = "none"
	}
	iamAuth := l.AuthType == model.AuthTypeAWSIAM
	if !iamAuth && override != nil {
		s.note("%s is not evaluated: the authType of %s is NONE (set %s to AWS_IAM to try it)", policyField, l.Name, authField)
	}
	return iamAuth, c, name, nil
}

// keyValues turns tags into sorted key-value pairs.
func keyValues(m map[string]string) []policy.KeyValue {
	if len(m) == 0 {
		return nil
	}
	out := make([]policy.KeyValue, 0, len(m))
	for k, v := range m {
		out = append(out, policy.KeyValue{Key: k, Value: v})
	}
	slices.SortFunc(out, func(a, b policy.KeyValue) int { return strings.Compare(a.Key, b.Key) })
	return out
}
