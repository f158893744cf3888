package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice/types"
	"github.com/aws/smithy-go"
)

// session is one client command's connection and the reference flags
// (--service, --listener, ...) it was given.
type session struct {
	ctx  context.Context
	c    *Client
	lat  *vpclattice.Client
	out  io.Writer
	refs refFlags
	// tgNames caches target group names for tables.
	tgNames map[string]string
}

// Shorter names of the SDK's list item types.
type (
	snSummary     = types.ServiceNetworkSummary
	svcSummary    = types.ServiceSummary
	lisSummary    = types.ListenerSummary
	ruleSummary   = types.RuleSummary
	tgSummary     = types.TargetGroupSummary
	targetSummary = types.TargetSummary
	snsaSummary   = types.ServiceNetworkServiceAssociationSummary
	snvaSummary   = types.ServiceNetworkVpcAssociationSummary
	alsSummary    = types.AccessLogSubscriptionSummary
)

// refFlags name the parent or filter resources of a kind.
type refFlags struct {
	service, listener, targetGroup, serviceNetwork, vpc, resource string
}

func (cf *clientFlags) session(ctx context.Context, out io.Writer, refs refFlags) (*session, error) {
	c, err := cf.connect(ctx)
	if err != nil {
		return nil, err
	}
	return &session{ctx: ctx, c: c, lat: c.Lattice, out: out, refs: refs}, nil
}

// pager is what every generated vpclattice paginator offers.
type pager[O any] interface {
	HasMorePages() bool
	NextPage(context.Context, ...func(*vpclattice.Options)) (*O, error)
}

// all reads every page of p and returns the items of each.
func all[O, T any](ctx context.Context, p pager[O], items func(*O) []T) ([]T, error) {
	var out []T
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, apiErr(err)
		}
		out = append(out, items(page)...)
	}
	return out, nil
}

// cleanError shows an API error as "<ErrorCode>: <message>" and still
// unwraps to the SDK error.
type cleanError struct {
	code, msg string
	err       error
}

func (e *cleanError) Error() string     { return e.code + ": " + e.msg }
func (e *cleanError) Unwrap() error     { return e.err }
func (e *cleanError) ErrorCode() string { return e.code }

// apiErr turns an SDK error into "<ErrorCode>: <message>".
func apiErr(err error) error {
	var ae smithy.APIError
	if err == nil || !errors.As(err, &ae) {
		return err
	}
	return &cleanError{code: ae.ErrorCode(), msg: ae.ErrorMessage(), err: err}
}

// notFoundError is a name the CLI looked up and did not find.
type notFoundError struct{ kind, name string }

func (e *notFoundError) Error() string     { return fmt.Sprintf("%s %q not found", e.kind, e.name) }
func (e *notFoundError) ErrorCode() string { return "ResourceNotFoundException" }

// isIdent reports whether ref is already an identifier the API accepts:
// PREFIX-<17 characters> or an ARN.
func isIdent(ref, prefix string) bool {
	if strings.HasPrefix(ref, "arn:") {
		return true
	}
	rest, ok := strings.CutPrefix(ref, prefix+"-")
	if !ok || len(rest) != 17 {
		return false
	}
	return strings.Trim(rest, "0123456789abcdefghijklmnopqrstuvwxyz") == ""
}

func (s *session) serviceNetworks() ([]types.ServiceNetworkSummary, error) {
	return all(s.ctx, vpclattice.NewListServiceNetworksPaginator(s.lat, &vpclattice.ListServiceNetworksInput{}),
		func(o *vpclattice.ListServiceNetworksOutput) []types.ServiceNetworkSummary { return o.Items })
}

func (s *session) services() ([]types.ServiceSummary, error) {
	return all(s.ctx, vpclattice.NewListServicesPaginator(s.lat, &vpclattice.ListServicesInput{}),
		func(o *vpclattice.ListServicesOutput) []types.ServiceSummary { return o.Items })
}

func (s *session) targetGroups() ([]types.TargetGroupSummary, error) {
	return all(s.ctx, vpclattice.NewListTargetGroupsPaginator(s.lat, &vpclattice.ListTargetGroupsInput{}),
		func(o *vpclattice.ListTargetGroupsOutput) []types.TargetGroupSummary { return o.Items })
}

func (s *session) listeners(svcID string) ([]types.ListenerSummary, error) {
	return all(s.ctx, vpclattice.NewListListenersPaginator(s.lat, &vpclattice.ListListenersInput{ServiceIdentifier: &svcID}),
		func(o *vpclattice.ListListenersOutput) []types.ListenerSummary { return o.Items })
}

func (s *session) rules(svcID, lisID string) ([]types.RuleSummary, error) {
	in := &vpclattice.ListRulesInput{ServiceIdentifier: &svcID, ListenerIdentifier: &lisID}
	return all(s.ctx, vpclattice.NewListRulesPaginator(s.lat, in),
		func(o *vpclattice.ListRulesOutput) []types.RuleSummary { return o.Items })
}

func (s *session) targets(tgID string) ([]types.TargetSummary, error) {
	return all(s.ctx, vpclattice.NewListTargetsPaginator(s.lat, &vpclattice.ListTargetsInput{TargetGroupIdentifier: &tgID}),
		func(o *vpclattice.ListTargetsOutput) []types.TargetSummary { return o.Items })
}

func (s *session) snsas(snID, svcID string) ([]types.ServiceNetworkServiceAssociationSummary, error) {
	in := &vpclattice.ListServiceNetworkServiceAssociationsInput{}
	if snID != "" {
		in.ServiceNetworkIdentifier = &snID
	}
	if svcID != "" {
		in.ServiceIdentifier = &svcID
	}
	return all(s.ctx, vpclattice.NewListServiceNetworkServiceAssociationsPaginator(s.lat, in),
		func(o *vpclattice.ListServiceNetworkServiceAssociationsOutput) []types.ServiceNetworkServiceAssociationSummary {
			return o.Items
		})
}

func (s *session) snvas(snID, vpcID string) ([]types.ServiceNetworkVpcAssociationSummary, error) {
	in := &vpclattice.ListServiceNetworkVpcAssociationsInput{}
	if snID != "" {
		in.ServiceNetworkIdentifier = &snID
	}
	if vpcID != "" {
		in.VpcIdentifier = &vpcID
	}
	return all(s.ctx, vpclattice.NewListServiceNetworkVpcAssociationsPaginator(s.lat, in),
		func(o *vpclattice.ListServiceNetworkVpcAssociationsOutput) []types.ServiceNetworkVpcAssociationSummary {
			return o.Items
		})
}

func (s *session) accessLogSubscriptions(resID string) ([]types.AccessLogSubscriptionSummary, error) {
	in := &vpclattice.ListAccessLogSubscriptionsInput{ResourceIdentifier: &resID}
	return all(s.ctx, vpclattice.NewListAccessLogSubscriptionsPaginator(s.lat, in),
		func(o *vpclattice.ListAccessLogSubscriptionsOutput) []types.AccessLogSubscriptionSummary {
			return o.Items
		})
}

// findByName returns the ID of the one item named name.
func findByName[T any](items []T, err error, kind, name string, nameOf, idOf func(T) *string) (string, error) {
	if err != nil {
		return "", err
	}
	for _, it := range items {
		if aws.ToString(nameOf(it)) == name {
			return aws.ToString(idOf(it)), nil
		}
	}
	return "", &notFoundError{kind: kind, name: name}
}

// serviceNetworkID resolves a service network name, ID or ARN to an identifier.
func (s *session) serviceNetworkID(ref string) (string, error) {
	if isIdent(ref, "sn") {
		return ref, nil
	}
	items, err := s.serviceNetworks()
	return findByName(items, err, "service network", ref,
		func(x types.ServiceNetworkSummary) *string { return x.Name }, func(x types.ServiceNetworkSummary) *string { return x.Id })
}

// serviceID resolves a service name, ID or ARN.
func (s *session) serviceID(ref string) (string, error) {
	if isIdent(ref, "svc") {
		return ref, nil
	}
	items, err := s.services()
	return findByName(items, err, "service", ref,
		func(x types.ServiceSummary) *string { return x.Name }, func(x types.ServiceSummary) *string { return x.Id })
}

// targetGroupID resolves a target group name, ID or ARN.
func (s *session) targetGroupID(ref string) (string, error) {
	if isIdent(ref, "tg") {
		return ref, nil
	}
	items, err := s.targetGroups()
	return findByName(items, err, "target group", ref,
		func(x types.TargetGroupSummary) *string { return x.Name }, func(x types.TargetGroupSummary) *string { return x.Id })
}

// listenerID resolves a listener name, ID or ARN within a service.
func (s *session) listenerID(svcID, ref string) (string, error) {
	if isIdent(ref, "listener") {
		return ref, nil
	}
	items, err := s.listeners(svcID)
	return findByName(items, err, "listener", ref,
		func(x types.ListenerSummary) *string { return x.Name }, func(x types.ListenerSummary) *string { return x.Id })
}

// ruleID resolves a rule name, ID or ARN within a listener.
func (s *session) ruleID(svcID, lisID, ref string) (string, error) {
	if isIdent(ref, "rule") {
		return ref, nil
	}
	items, err := s.rules(svcID, lisID)
	return findByName(items, err, "rule", ref,
		func(x types.RuleSummary) *string { return x.Name }, func(x types.RuleSummary) *string { return x.Id })
}

func (s *session) vpcs() ([]object, error) { return nativeList(s, "/vpcs") }

// vpcID resolves a VPC name or ID (Trellis's own VPCs) to its ID.
func (s *session) vpcID(ref string) (string, error) {
	items, err := s.vpcs()
	if err != nil {
		return "", err
	}
	for _, v := range items {
		if v["id"] == ref || v["name"] == ref {
			return fmt.Sprint(v["id"]), nil
		}
	}
	return "", &notFoundError{kind: "vpc", name: ref}
}

// arnPath is the resource part of an ARN split at "/".
func arnPath(arn string) []string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return nil
	}
	return strings.Split(parts[5], "/")
}

// serviceListener resolves a listener reference: NAME, ID or ARN with
// --service, SERVICE/LISTENER, or the listener's ARN alone.
func (s *session) serviceListener(ref string) (svcID, lisID string, err error) {
	svc := s.refs.service
	if svc == "" && !strings.HasPrefix(ref, "arn:") {
		var ok bool
		if svc, ref, ok = strings.Cut(ref, "/"); !ok {
			return "", "", errors.New("--service is required (or name the listener SERVICE/LISTENER)")
		}
	}
	return s.listenerOf(svc, ref)
}

// listenerOf resolves listener ref of service svc; a listener ARN names both.
func (s *session) listenerOf(svc, ref string) (svcID, lisID string, err error) {
	if strings.HasPrefix(ref, "arn:") {
		if p := arnPath(ref); len(p) == 4 && p[0] == "service" && p[2] == "listener" {
			return p[1], p[3], nil
		}
		return "", "", fmt.Errorf("%q is not a listener ARN", ref)
	}
	if svcID, err = s.serviceID(svc); err != nil {
		return "", "", err
	}
	lisID, err = s.listenerID(svcID, ref)
	return svcID, lisID, err
}

// serviceListenerRule resolves a rule reference: NAME, ID or ARN with
// --service and --listener, SERVICE/LISTENER/RULE, or the rule's ARN alone.
func (s *session) serviceListenerRule(ref string) (svcID, lisID, ruleID string, err error) {
	if strings.HasPrefix(ref, "arn:") {
		if p := arnPath(ref); len(p) == 6 && p[0] == "service" && p[2] == "listener" && p[4] == "rule" {
			return p[1], p[3], p[5], nil
		}
		return "", "", "", fmt.Errorf("%q is not a rule ARN", ref)
	}
	svc, lis := s.refs.service, s.refs.listener
	if svc == "" && lis == "" {
		parts := strings.Split(ref, "/")
		if len(parts) != 3 {
			return "", "", "", errors.New("--service and --listener are required (or name the rule SERVICE/LISTENER/RULE)")
		}
		svc, lis, ref = parts[0], parts[1], parts[2]
	} else if lis == "" || (svc == "" && !strings.HasPrefix(lis, "arn:")) {
		return "", "", "", errors.New("--service and --listener are required (or name the rule SERVICE/LISTENER/RULE)")
	}
	if svcID, lisID, err = s.listenerOf(svc, lis); err != nil {
		return "", "", "", err
	}
	ruleID, err = s.ruleID(svcID, lisID, ref)
	return svcID, lisID, ruleID, err
}

// policyResource resolves --resource: a service network or service by
// name, ID or ARN. "service-network/NAME" and "service/NAME" say which
// when a network and a service share a name.
func (s *session) policyResource(ref string) (string, error) {
	if ref == "" {
		return "", errors.New("--resource is required: the service network or service (name, ID or ARN)")
	}
	if isIdent(ref, "sn") || isIdent(ref, "svc") {
		return ref, nil
	}
	if k, name, ok := strings.Cut(ref, "/"); ok {
		switch k {
		case "service-network", "servicenetwork", "sn":
			return s.serviceNetworkID(name)
		case "service", "svc":
			return s.serviceID(name)
		}
	}
	snID, snErr := s.serviceNetworkID(ref)
	svcID, svcErr := s.serviceID(ref)
	switch {
	case snErr == nil && svcErr == nil:
		return "", fmt.Errorf("both a service network and a service are named %q; say service-network/%s or service/%s", ref, ref, ref)
	case snErr == nil:
		return snID, nil
	case svcErr == nil:
		return svcID, nil
	case !isNotFound(snErr):
		return "", snErr
	case !isNotFound(svcErr):
		return "", svcErr
	}
	return "", &notFoundError{kind: "service network or service", name: ref}
}

// pairRef splits "A/B", the name of an association (network/service or network/vpc).
func pairRef(ref, what string) (string, string, error) {
	a, b, ok := strings.Cut(ref, "/")
	if !ok || a == "" || b == "" || strings.HasPrefix(ref, "arn:") {
		return "", "", fmt.Errorf("%q: want an association ID, ARN or %s", ref, what)
	}
	return a, b, nil
}

// snsaID resolves an SNSA ID, ARN or NETWORK/SERVICE.
func (s *session) snsaID(ref string) (string, error) {
	if isIdent(ref, "snsa") {
		return ref, nil
	}
	sn, svc, err := pairRef(ref, "SERVICE-NETWORK/SERVICE")
	if err != nil {
		return "", err
	}
	snID, err := s.serviceNetworkID(sn)
	if err != nil {
		return "", err
	}
	svcID, err := s.serviceID(svc)
	if err != nil {
		return "", err
	}
	items, err := s.snsas(snID, svcID)
	if err != nil {
		return "", err
	}
	if len(items) == 0 {
		return "", &notFoundError{kind: "service network service association", name: ref}
	}
	return aws.ToString(items[0].Id), nil
}

// snvaID resolves an SNVA ID, ARN or NETWORK/VPC.
func (s *session) snvaID(ref string) (string, error) {
	if isIdent(ref, "snva") {
		return ref, nil
	}
	sn, vpc, err := pairRef(ref, "SERVICE-NETWORK/VPC")
	if err != nil {
		return "", err
	}
	snID, err := s.serviceNetworkID(sn)
	if err != nil {
		return "", err
	}
	vpcID, err := s.vpcID(vpc)
	if err != nil {
		return "", err
	}
	items, err := s.snvas(snID, vpcID)
	if err != nil {
		return "", err
	}
	if len(items) == 0 {
		return "", &notFoundError{kind: "service network VPC association", name: ref}
	}
	return aws.ToString(items[0].Id), nil
}
