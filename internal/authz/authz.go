// Package authz decides, at a gateway, whether a request may reach a
// service. It authenticates the caller — a SigV4 signature for
// vpc-lattice-svcs, a client certificate issued by Trellis's CA, or no
// one — and applies Lattice's rules (policy.Decide) over the service
// network's auth policy, the service's auth policy and the caller's
// identity-based policies.
//
// An Authority is built once per snapshot and is then immutable: any
// number of requests use it at once without locks. Everything that does
// not depend on the request — signing keys, principals, compiled policies,
// identity header values — is prepared when it is built.
package authz

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/trellis-mesh/trellis/internal/identity"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/sigv4"
	"github.com/trellis-mesh/trellis/internal/snapshot"
)

// Options say how New builds an Authority.
type Options struct {
	// Now is the clock of signature checks and of aws:CurrentTime;
	// time.Now when nil.
	Now func() time.Time
	// MaxSkew is how far a signature's X-Amz-Date may be from Now;
	// sigv4.DefaultMaxSkew when zero.
	MaxSkew time.Duration
	// Log receives the problems New works around (a principal whose
	// identity policy does not compile). Nil discards them.
	Log *slog.Logger
}

// Authority authenticates and authorizes the requests of one snapshot.
type Authority struct {
	index    *snapshot.AuthIndex
	verifier sigv4.Verifier
	now      func() time.Time
	callers  map[string]*Caller // by principal ARN
	// sourceVPC and sourceVPCOwner are vpc-lattice-svcs:SourceVpc and
	// SourceVpcOwnerAccount: every request a gateway serves comes from
	// its own VPC.
	sourceVPC, sourceVPCOwner string
}

// Caller is an authenticated principal, ready for decisions: its policy
// context, its compiled identity-based policies and the identity headers
// targets receive.
type Caller struct {
	// ARN is the principal's ARN.
	ARN       string
	principal policy.Principal
	identity  []*policy.Compiled
	who       identity.Caller
	// idHdr and tagsHdr are the header values for a signed request,
	// built once and shared (callers must not modify them).
	idHdr, tagsHdr []string
}

// New prepares the auth material of snap. A malformed signing key or
// client CA fails it (the node then keeps its previous snapshot); a
// principal whose identity policy does not compile is kept without one,
// so it is denied at the identity layer, and logged.
func New(snap *snapshot.Snapshot, opts Options) (*Authority, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mat := snap.Auth
	if mat == nil {
		mat = &snapshot.AuthMaterial{Service: snapshot.SigningService}
	}
	idx, err := mat.Compile(snap.Region)
	if err != nil {
		return nil, fmt.Errorf("authz: %w", err)
	}
	a := &Authority{
		index: idx,
		now:   now,
		verifier: sigv4.Verifier{
			SigningKey:             idx.SigningKey,
			Region:                 snap.Region,
			Services:               []string{snapshot.SigningService},
			MaxSkew:                opts.MaxSkew,
			Now:                    now,
			AllowPresigned:         true,
			RequireUnsignedPayload: true,
		},
		callers:        make(map[string]*Caller, len(mat.Principals)),
		sourceVPC:      snap.VPC.ID,
		sourceVPCOwner: snap.VPC.Account,
	}
	for i := range mat.Principals {
		p := idx.Principal(mat.Principals[i].ARN)
		if p == nil {
			continue
		}
		c, err := newCaller(p)
		if err != nil {
			log.Warn("principal left without identity policy: every request it signs is denied", "principal", p.ARN, "err", err)
		}
		a.callers[p.ARN] = c
	}
	return a, nil
}

func newCaller(p *snapshot.AuthPrincipal) (*Caller, error) {
	c := &Caller{ARN: p.ARN, who: p.Identity}
	pr, perr := policy.PrincipalFromARN(p.ARN)
	if perr != nil {
		// Not an IAM-shaped ARN: keep the ARN so that Principal
		// statements naming it still match, and deny at the identity
		// layer.
		pr = policy.Principal{ARN: p.ARN, Account: p.Account}
	}
	for k, v := range p.Tags {
		pr.Tags = append(pr.Tags, policy.KeyValue{Key: k, Value: v})
	}
	slices.SortFunc(pr.Tags, func(a, b policy.KeyValue) int { return strings.Compare(a.Key, b.Key) })
	c.principal = pr
	c.idHdr = []string{string(identity.AppendIdentity(nil, &c.who))}
	c.tagsHdr = []string{string(identity.AppendTags(nil, &c.who))}
	if perr != nil {
		return c, perr
	}
	if p.IdentityPolicy == "" {
		return c, nil
	}
	ip, err := policy.CompileDocument([]byte(p.IdentityPolicy), policy.IdentityPolicy)
	if err != nil {
		return c, err
	}
	c.identity = []*policy.Compiled{ip}
	return c, nil
}

// Service is the auth configuration of one service as the gateway's VPC
// reaches it: through one service network (a VPC has one service network
// association).
type Service struct {
	arn, networkARN              string
	networkIAM, serviceIAM       bool
	networkPolicy, servicePolicy *policy.Compiled
	tags                         []policy.KeyValue
}

// Service prepares the auth of ss. It returns nil when neither the
// service nor its network has authType AWS_IAM: such a service
// authenticates no one and evaluates no policy (lattice.md §5.1). An auth
// policy that does not compile (the server validated it, so only a
// foreign or broken server sends one) is treated as absent, which under
// AWS_IAM denies every request: the gateway fails closed.
func (a *Authority) Service(ss *snapshot.Service, log *slog.Logger) *Service {
	s := &Service{arn: ss.ARN, serviceIAM: ss.AuthType == model.AuthTypeAWSIAM}
	if s.serviceIAM {
		s.servicePolicy = compileAuth(ss.AuthPolicy, "service", ss.ID, log)
	}
	if len(ss.Networks) > 0 {
		n := &ss.Networks[0]
		s.networkARN = n.ARN
		s.networkIAM = n.AuthType == model.AuthTypeAWSIAM
		if s.networkIAM {
			s.networkPolicy = compileAuth(n.AuthPolicy, "service network", n.ID, log)
		}
	}
	if !s.serviceIAM && !s.networkIAM {
		return nil
	}
	for k, v := range ss.Tags {
		s.tags = append(s.tags, policy.KeyValue{Key: k, Value: v})
	}
	slices.SortFunc(s.tags, func(a, b policy.KeyValue) int { return strings.Compare(a.Key, b.Key) })
	return s
}

func compileAuth(doc, kind, id string, log *slog.Logger) *policy.Compiled {
	if doc == "" {
		return nil
	}
	c, err := policy.CompileDocument([]byte(doc), policy.AuthPolicy)
	if err != nil {
		if log != nil {
			log.Warn("auth policy does not compile: every request is denied", kind, id, "err", err)
		}
		return nil
	}
	return c
}

// HasClientCA reports whether client certificates can be verified (the
// snapshot carries Trellis's CA).
func (a *Authority) HasClientCA() bool { return a.index.ClientCAs() != nil }

// Index is the compiled auth material (client CA pool, trust domain).
func (a *Authority) Index() *snapshot.AuthIndex { return a.index }
