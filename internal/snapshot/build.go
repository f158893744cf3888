package snapshot

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/trellis-mesh/trellis/internal/api/cloudmap"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Sentinel errors of Build.
var (
	// ErrVPCNotFound: the VPC the snapshot is for is not declared.
	ErrVPCNotFound = errors.New("vpc not found")
	// ErrCertificate: the CertSource failed for some services. Build still
	// returns a snapshot, in which those services have no certificate.
	ErrCertificate = errors.New("service certificate unavailable")
)

// BuildOptions say which snapshot Build compiles.
type BuildOptions struct {
	// VPCID is the VPC whose gateways serve the snapshot. Required.
	VPCID string
	// Region is the region of every ARN (Snapshot.Region).
	Region string
	// Certs gives the certificates of services with an HTTPS listener. Nil
	// leaves every Certificate nil. It is called on every build, so it must
	// cache: a certificate that changes between builds makes every build
	// a new snapshot.
	Certs CertSource
	// Auth says how the snapshot's AuthMaterial is made (auth.go).
	Auth AuthOptions

	authCache *authCache // the broker's, across builds
}

// Build compiles the snapshot of opts.VPCID from the store, read at one
// revision (Snapshot.Version). The result is deterministic: every list is
// sorted, so two builds of the same content differ only in Version.
//
// A failing CertSource does not fail the build (fail per object): the
// snapshot is returned together with an error wrapping ErrCertificate, and
// the affected services have no certificate. Any other error returns no
// snapshot; an undeclared VPC is ErrVPCNotFound.
func Build(ctx context.Context, st store.Store, opts BuildOptions) (*Snapshot, error) {
	s, err := load(ctx, st)
	if err != nil {
		return nil, err
	}
	return s.build(ctx, opts)
}

// state is the part of the store a snapshot is compiled from, decoded and
// indexed. It is read with a single List of the whole key space, the one
// read the Store interface guarantees to be at one revision; keys that no
// snapshot uses are skipped without decoding.
type state struct {
	rev       int64
	vpcs      map[string]*model.VPC
	instances map[string]*model.Instance
	networks  map[string]*model.ServiceNetwork
	services  map[string]*model.Service
	listeners map[string][]*model.Listener // by service ID
	rules     map[string][]*model.Rule     // by listener ID
	groups    map[string]*model.TargetGroup
	targets   map[string][]*model.Target // by target group ID
	snsas     []*model.ServiceNetworkServiceAssociation
	snvas     []*model.ServiceNetworkVpcAssociation
	logs      map[string][]*model.AccessLogSubscription // by resource ID
	policies  map[string]*model.Policy                  // auth policies by resource ID
	// Identities (auth.go): every principal and access key, and the auth
	// material built from them, shared by the VPCs built from this state.
	principals []*model.Principal
	keys       []accessKey
	iamSum     hash.Hash // of the IAM records' keys and revisions
	auth       *AuthMaterial
	authMemo   [sha256.Size]byte
	// cloudmap holds the Cloud Map records until load has the zones of
	// its private DNS namespaces decoded, by VPC (dns); dnsSkipped are the
	// keys of records that did not decode.
	cloudmap   []store.KV
	dns        map[string][]cloudmap.DNSZone
	dnsSkipped []string
}

// Key layout read here (written by packages lattice and native):
//
//	/vpcs/<id>                         model.VPC
//	/instances/<id>                    model.Instance
//	/iam/principals/<acct>/<type>/<n>  model.Principal
//	/iam/keys/<id>                     model.AccessKey (its secret never leaves build)
//	/lattice/<account>/<kind>/<...>    Lattice resources, kind one of
//	                                   sn svc listener rule tg target snsa snva als authpolicy
//	/cloudmap/<account>/...            Cloud Map records (package cloudmap)
const (
	vpcsPrefix     = "/vpcs/"
	latticePrefix  = "/lattice/"
	iamPrefix      = "/iam/"
	cloudmapPrefix = "/cloudmap/"
)

// Prefixes of keys that are written often and that no snapshot depends on:
// node records (written on every ack), the drain index, and the
// certificates a CertSource issues and caches during builds.
var irrelevant = []string{"/nodes/", "/lattice-drain/", "/pki/issued/"}

// relevant reports whether a change of key may change a snapshot. It errs
// towards yes: a CertSource may read keys Build does not (imported
// certificates), and a needless rebuild costs only a build, since
// unchanged snapshots are not published.
func relevant(key string) bool {
	for _, p := range irrelevant {
		if strings.HasPrefix(key, p) {
			return false
		}
	}
	return true
}

func load(ctx context.Context, st store.Store) (*state, error) {
	res, err := st.List(ctx, "/", store.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("snapshot: reading the store: %w", err)
	}
	s := &state{
		rev: res.Revision, vpcs: map[string]*model.VPC{}, instances: map[string]*model.Instance{},
		networks: map[string]*model.ServiceNetwork{}, services: map[string]*model.Service{},
		listeners: map[string][]*model.Listener{}, rules: map[string][]*model.Rule{},
		groups: map[string]*model.TargetGroup{}, targets: map[string][]*model.Target{},
		logs: map[string][]*model.AccessLogSubscription{}, policies: map[string]*model.Policy{},
		iamSum: sha256.New(),
	}
	for _, kv := range res.Items {
		if err := s.add(kv); err != nil {
			return nil, fmt.Errorf("snapshot: decoding %s: %w", kv.Key, err)
		}
	}
	s.dns, s.dnsSkipped = cloudmap.PrivateDNS(s.cloudmap)
	s.cloudmap = nil
	return s, nil
}

func decode[T any](kv store.KV) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return nil, err
	}
	return v, nil
}

// add decodes one stored key into s if a snapshot uses it.
func (s *state) add(kv store.KV) error {
	switch {
	case strings.HasPrefix(kv.Key, vpcsPrefix):
		v, err := decode[model.VPC](kv)
		if err == nil {
			s.vpcs[v.ID] = v
		}
		return err
	case strings.HasPrefix(kv.Key, model.InstancesPrefix):
		v, err := decode[model.Instance](kv)
		if err == nil {
			s.instances[v.ID] = v
		}
		return err
	case strings.HasPrefix(kv.Key, iamPrefix):
		return s.addIAM(kv)
	case strings.HasPrefix(kv.Key, cloudmapPrefix):
		s.cloudmap = append(s.cloudmap, kv)
		return nil
	case !strings.HasPrefix(kv.Key, latticePrefix):
		return nil
	}
	// /lattice/<account>/<kind>/<rest>
	parts := strings.SplitN(strings.TrimPrefix(kv.Key, latticePrefix), "/", 3)
	if len(parts) != 3 {
		return nil
	}
	kind, rest := parts[1], parts[2]
	var err error
	switch kind {
	case "sn":
		var v *model.ServiceNetwork
		if v, err = decode[model.ServiceNetwork](kv); err == nil {
			s.networks[v.ID] = v
		}
	case "svc":
		var v *model.Service
		if v, err = decode[model.Service](kv); err == nil {
			s.services[v.ID] = v
		}
	case "listener":
		var v *model.Listener
		if v, err = decode[model.Listener](kv); err == nil {
			s.listeners[v.ServiceID] = append(s.listeners[v.ServiceID], v)
		}
	case "rule":
		var v *model.Rule
		if v, err = decode[model.Rule](kv); err == nil {
			s.rules[v.ListenerID] = append(s.rules[v.ListenerID], v)
		}
	case "tg":
		var v *model.TargetGroup
		if v, err = decode[model.TargetGroup](kv); err == nil {
			s.groups[v.ID] = v
		}
	case "target":
		var v *model.Target
		if v, err = decode[model.Target](kv); err == nil {
			s.targets[v.TargetGroupID] = append(s.targets[v.TargetGroupID], v)
		}
	case "snsa":
		var v *model.ServiceNetworkServiceAssociation
		if v, err = decode[model.ServiceNetworkServiceAssociation](kv); err == nil {
			s.snsas = append(s.snsas, v)
		}
	case "snva":
		var v *model.ServiceNetworkVpcAssociation
		if v, err = decode[model.ServiceNetworkVpcAssociation](kv); err == nil {
			s.snvas = append(s.snvas, v)
		}
	case "als":
		var v *model.AccessLogSubscription
		if v, err = decode[model.AccessLogSubscription](kv); err == nil {
			s.logs[v.ResourceID] = append(s.logs[v.ResourceID], v)
		}
	case "authpolicy":
		var v *model.Policy
		if v, err = decode[model.Policy](kv); err == nil {
			s.policies[rest] = v
		}
	}
	return err
}

// build compiles the snapshot of one VPC.
func (s *state) build(ctx context.Context, opts BuildOptions) (*Snapshot, error) {
	vpc, ok := s.vpcs[opts.VPCID]
	if !ok {
		return nil, fmt.Errorf("snapshot: %s: %w", opts.VPCID, ErrVPCNotFound)
	}
	snap := &Snapshot{
		Version: s.rev, Region: opts.Region,
		VPC:      VPC{ID: vpc.ID, ARN: vpc.ARN, Account: vpc.Account, CIDRs: slices.Clone(vpc.CIDRs)},
		Services: []Service{}, TargetGroups: []TargetGroup{},
		Auth: s.authMaterial(opts.Region, opts.Auth, opts.authCache),
	}
	if snap.VPC.CIDRs == nil {
		snap.VPC.CIDRs = []string{}
	}
	snap.DNS = s.dns[vpc.ID]

	// The networks associated with the VPC, and through them the services.
	nets := map[string]bool{}
	for _, a := range s.snvas {
		if a.VpcID == vpc.ID && s.networks[a.ServiceNetworkID] != nil {
			nets[a.ServiceNetworkID] = true
		}
	}
	svcNets := map[string][]Network{}
	for _, a := range s.snsas {
		if nets[a.ServiceNetworkID] && s.services[a.ServiceID] != nil {
			svcNets[a.ServiceID] = append(svcNets[a.ServiceID], s.network(s.networks[a.ServiceNetworkID]))
		}
	}

	used := map[string]bool{} // target groups the services forward to
	var certErrs []error
	for _, id := range sortedKeys(svcNets) {
		svc, err := s.service(ctx, s.services[id], svcNets[id], opts.Certs, used)
		if err != nil {
			certErrs = append(certErrs, err)
		}
		snap.Services = append(snap.Services, svc)
	}

	for _, id := range sortedKeys(s.groups) {
		tg := s.groups[id]
		checked := tg.Config != nil && tg.Config.VpcIdentifier == vpc.ID
		if used[id] || checked {
			snap.TargetGroups = append(snap.TargetGroups, s.targetGroup(tg, checked))
		}
	}
	return snap, errors.Join(certErrs...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// authPolicy is the resource's auth policy when it is in effect (auth type
// AWS_IAM; Lattice calls a policy under NONE "Inactive"), else "".
func (s *state) authPolicy(id, authType string) string {
	if p := s.policies[id]; p != nil && authType == model.AuthTypeAWSIAM {
		return p.Document
	}
	return ""
}

// accessLogs are the subscriptions of a service or network, sorted by ARN.
// A network's RESOURCE-type subscriptions are left out: they log resource
// configurations, which gateways do not serve.
func (s *state) accessLogs(id string) []AccessLog {
	var out []AccessLog
	for _, l := range s.logs[id] {
		if l.ServiceNetworkLogType == "RESOURCE" {
			continue
		}
		out = append(out, AccessLog{ARN: l.ARN, ResourceARN: l.ResourceARN, DestinationARN: l.DestinationARN})
	}
	slices.SortFunc(out, func(a, b AccessLog) int { return strings.Compare(a.ARN, b.ARN) })
	return out
}

func (s *state) network(sn *model.ServiceNetwork) Network {
	return Network{ID: sn.ID, ARN: sn.ARN, Name: sn.Name, Account: sn.Account, AuthType: sn.AuthType,
		AuthPolicy: s.authPolicy(sn.ID, sn.AuthType), AccessLogs: s.accessLogs(sn.ID)}
}

// service compiles one service and records the target groups it forwards
// to in used. The error is a certificate failure; the service is complete
// except for its certificate.
func (s *state) service(ctx context.Context, svc *model.Service, nets []Network, certs CertSource, used map[string]bool) (Service, error) {
	slices.SortFunc(nets, func(a, b Network) int { return strings.Compare(a.ID, b.ID) })
	out := Service{
		ID: svc.ID, ARN: svc.ARN, Name: svc.Name, Account: svc.Account, DNSName: svc.DNSEntry.DomainName,
		CustomDomain: svc.CustomDomainName, AuthType: svc.AuthType, AuthPolicy: s.authPolicy(svc.ID, svc.AuthType),
		Tags: svc.Tags, IdleTimeoutSeconds: svc.IdleTimeoutSeconds, Networks: nets,
		Listeners: []Listener{}, AccessLogs: s.accessLogs(svc.ID),
	}
	if out.IdleTimeoutSeconds == 0 {
		out.IdleTimeoutSeconds = model.DefaultIdleTimeout
	}
	https := false
	for _, l := range s.listeners[svc.ID] {
		out.Listeners = append(out.Listeners, s.listener(l, used))
		https = https || l.Protocol == model.ProtocolHTTPS
	}
	slices.SortFunc(out.Listeners, func(a, b Listener) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), strings.Compare(a.ID, b.ID))
	})
	if https && certs != nil {
		c, err := certs.ServiceCertificate(ctx, svc)
		if err != nil {
			return out, fmt.Errorf("snapshot: service %s: %w: %w", svc.ID, ErrCertificate, err)
		}
		out.Certificate = c
	}
	return out, nil
}

func (s *state) listener(l *model.Listener, used map[string]bool) Listener {
	out := Listener{ID: l.ID, ARN: l.ARN, Name: l.Name, Protocol: l.Protocol, Port: l.Port, Rules: []Rule{}}
	for _, r := range s.rules[l.ID] {
		rule := Rule{ID: r.ID, ARN: r.ARN, Priority: r.Priority, IsDefault: r.IsDefault, Action: r.Action}
		if r.Match != nil && !r.IsDefault {
			rule.Match = r.Match.HTTPMatch
		}
		if f := r.Action.Forward; f != nil {
			for _, w := range f.TargetGroups {
				used[w.TargetGroupIdentifier] = true
			}
		}
		out.Rules = append(out.Rules, rule)
	}
	// By priority, the default rule last.
	slices.SortFunc(out.Rules, func(a, b Rule) int {
		if a.IsDefault != b.IsDefault {
			if a.IsDefault {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), strings.Compare(a.ID, b.ID))
	})
	return out
}

func (s *state) targetGroup(tg *model.TargetGroup, checked bool) TargetGroup {
	out := TargetGroup{ID: tg.ID, ARN: tg.ARN, Name: tg.Name, Account: tg.Account, Type: tg.Type,
		Checked: checked, Targets: []Target{}}
	cfg := tg.Config.Materialize(tg.Type)
	if cfg != nil {
		out.Protocol, out.ProtocolVersion, out.VpcID = cfg.Protocol, cfg.ProtocolVersion, cfg.VpcIdentifier
		if cfg.Port != nil {
			out.Port = *cfg.Port
		}
		if hc := cfg.HealthCheck; hc != nil && (tg.Type == model.TargetGroupTypeIP || tg.Type == model.TargetGroupTypeInstance) {
			h := *hc
			if h.Port == nil {
				// 0 is "each target's own port", Lattice's default (§4.3);
				// set so that every member of the config is.
				zero := int32(0)
				h.Port = &zero
			}
			out.HealthCheck = &h
		}
	}
	for _, t := range s.targets[tg.ID] {
		if t.Status == model.TargetStatusDraining {
			continue
		}
		status, reason := t.EffectiveStatus(tg)
		out.Targets = append(out.Targets, Target{ID: t.ID, Port: t.Port, Address: s.address(tg, t), Status: status, Reason: reason})
	}
	slices.SortFunc(out.Targets, func(a, b Target) int {
		return cmp.Or(strings.Compare(a.ID, b.ID), cmp.Compare(a.Port, b.Port))
	})
	return out
}

// address is the host:port a gateway dials for t: the IP of an IP target,
// the registered address of an instance in the group's VPC, else "".
func (s *state) address(tg *model.TargetGroup, t *model.Target) string {
	port := strconv.Itoa(int(t.Port))
	switch tg.Type {
	case model.TargetGroupTypeIP:
		return net.JoinHostPort(t.ID, port)
	case model.TargetGroupTypeInstance:
		inst := s.instances[t.ID]
		if inst == nil || tg.Config == nil || inst.VpcID != tg.Config.VpcIdentifier {
			return ""
		}
		return net.JoinHostPort(inst.Address, port)
	}
	return ""
}
