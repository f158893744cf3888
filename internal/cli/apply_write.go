package cli

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice/types"

	"github.com/trellis-mesh/trellis/internal/model"
)

// sync creates or updates r's resource and returns its output lines.
func (a *applier) sync(r *resource, o *observed) ([]string, error) {
	var st string
	var err error
	switch d := r.doc.(type) {
	case *snDoc:
		st, err = a.syncServiceNetwork(r, d, o)
	case *serviceDoc:
		st, err = a.syncService(r, d, o)
	case *tgDoc:
		st, err = a.syncTargetGroup(r, d, o)
	case *listenerDoc:
		return a.syncListener(r, d, o)
	case *snsaDoc:
		st, err = a.syncSNSA(r, d, o)
	case *snvaDoc:
		st, err = a.syncSNVA(r, d, o)
	case *authPolicyDoc:
		st, err = a.syncAuthPolicy(d, o)
	case *alsDoc:
		st, err = a.syncAccessLogs(r, d, o)
	}
	if err != nil {
		return nil, err
	}
	return []string{r.label + " " + st}, nil
}

func (a *applier) syncServiceNetwork(r *resource, d *snDoc, o *observed) (string, error) {
	auth := types.AuthType(or(d.AuthType, "NONE"))
	if !o.exists {
		out, err := a.s.lat.CreateServiceNetwork(a.s.ctx, &vpclattice.CreateServiceNetworkInput{
			Name: &d.Name, AuthType: auth, Tags: d.Tags, ClientToken: a.token(r.label)})
		if err != nil {
			return "", apiErr(err)
		}
		a.sns[d.Name] = aws.ToString(out.Id)
		return "created", nil
	}
	changed := false
	if field(o.get, "authType") != string(auth) {
		if _, err := a.s.lat.UpdateServiceNetwork(a.s.ctx, &vpclattice.UpdateServiceNetworkInput{
			ServiceNetworkIdentifier: &o.id, AuthType: auth}); err != nil {
			return "", apiErr(err)
		}
		changed = true
	}
	tagged, err := a.syncTags(o.arn, d.Tags, o.tags)
	return status(changed || tagged), err
}

func (a *applier) syncService(r *resource, d *serviceDoc, o *observed) (string, error) {
	auth := types.AuthType(or(d.AuthType, "NONE"))
	if !o.exists {
		in := &vpclattice.CreateServiceInput{Name: &d.Name, AuthType: auth, Tags: d.Tags, ClientToken: a.token(r.label)}
		if d.CustomDomainName != "" {
			in.CustomDomainName = &d.CustomDomainName
		}
		if d.CertificateArn != "" {
			in.CertificateArn = &d.CertificateArn
		}
		out, err := a.s.lat.CreateService(a.s.ctx, in)
		if err != nil {
			return "", apiErr(err)
		}
		a.svcs[d.Name] = aws.ToString(out.Id)
		return "created", nil
	}
	in := &vpclattice.UpdateServiceInput{ServiceIdentifier: &o.id}
	changed := false
	if field(o.get, "authType") != string(auth) {
		in.AuthType, changed = auth, true
	}
	if field(o.get, "certificateArn") != d.CertificateArn {
		in.CertificateArn, changed = &d.CertificateArn, true
	}
	if changed {
		if _, err := a.s.lat.UpdateService(a.s.ctx, in); err != nil {
			return "", apiErr(err)
		}
	}
	tagged, err := a.syncTags(o.arn, d.Tags, o.tags)
	return status(changed || tagged), err
}

func (a *applier) syncTargetGroup(r *resource, d *tgDoc, o *observed) (string, error) {
	if !o.exists {
		cfg, err := a.tgConfig(d)
		if err != nil {
			return "", err
		}
		out, err := a.s.lat.CreateTargetGroup(a.s.ctx, &vpclattice.CreateTargetGroupInput{
			Name: &d.Name, Type: types.TargetGroupType(d.Type), Config: cfg, Tags: d.Tags, ClientToken: a.token(r.label)})
		if err != nil {
			return "", apiErr(err)
		}
		id := aws.ToString(out.Id)
		a.tgs[d.Name] = id
		_, err = a.syncTargets(id, d, field(wireObject(out), "config", "port"), nil)
		return "created", err
	}
	changed := false
	config, _ := o.get["config"].(map[string]any)
	if d.Type != "LAMBDA" && d.Type != "ALB" && !same(desiredHealthCheck(d), config["healthCheck"]) {
		hc := sdkHealthCheck(d)
		if hc == nil {
			hc = &types.HealthCheckConfig{} // back to every default
		}
		if _, err := a.s.lat.UpdateTargetGroup(a.s.ctx, &vpclattice.UpdateTargetGroupInput{
			TargetGroupIdentifier: &o.id, HealthCheck: hc}); err != nil {
			return "", apiErr(err)
		}
		changed = true
	}
	moved, err := a.syncTargets(o.id, d, field(o.get, "config", "port"), o.targets)
	if err != nil {
		return "", err
	}
	tagged, err := a.syncTags(o.arn, d.Tags, o.tags)
	return status(changed || moved || tagged), err
}

// syncTargets registers the declared targets that are missing and
// deregisters the ones not declared (nothing when targets is absent).
func (a *applier) syncTargets(tgID string, d *tgDoc, tgPort string, have []targetSummary) (bool, error) {
	if d.Targets == nil {
		return false, nil
	}
	// A draining target is on its way out: apply treats it as absent, so
	// it is not deregistered again, and declaring it registers it back.
	have = slices.DeleteFunc(slices.Clone(have), func(t targetSummary) bool { return t.Status == types.TargetStatusDraining })
	key := func(id, port string) string {
		if d.Type == "LAMBDA" {
			return id
		}
		return id + ":" + port
	}
	want := map[string]bool{}
	var add []types.Target
	haveKeys := map[string]bool{}
	for _, t := range have {
		haveKeys[key(aws.ToString(t.Id), strconv.Itoa(int(aws.ToInt32(t.Port))))] = true
	}
	for _, t := range d.Targets {
		port := tgPort
		if t.Port != nil {
			port = strconv.Itoa(int(*t.Port))
		}
		k := key(t.ID, port)
		want[k] = true
		if !haveKeys[k] {
			add = append(add, types.Target{Id: aws.String(t.ID), Port: t.Port})
		}
	}
	var remove []types.Target
	for _, t := range have {
		if !want[key(aws.ToString(t.Id), strconv.Itoa(int(aws.ToInt32(t.Port))))] {
			remove = append(remove, types.Target{Id: t.Id, Port: t.Port})
		}
	}
	for chunk := range slices.Chunk(remove, 100) {
		out, err := a.s.lat.DeregisterTargets(a.s.ctx, &vpclattice.DeregisterTargetsInput{TargetGroupIdentifier: &tgID, Targets: chunk})
		if err != nil {
			return false, apiErr(err)
		}
		if err := targetFailures(out.Unsuccessful); err != nil {
			return false, fmt.Errorf("deregistering targets: %w", err)
		}
	}
	for chunk := range slices.Chunk(add, 100) {
		out, err := a.s.lat.RegisterTargets(a.s.ctx, &vpclattice.RegisterTargetsInput{TargetGroupIdentifier: &tgID, Targets: chunk})
		if err != nil {
			return false, apiErr(err)
		}
		if err := targetFailures(out.Unsuccessful); err != nil {
			return false, fmt.Errorf("registering targets: %w", err)
		}
	}
	return len(add)+len(remove) > 0, nil
}

func (a *applier) syncListener(r *resource, d *listenerDoc, o *observed) ([]string, error) {
	svcID, err := a.must("service", d.Service)
	if err != nil {
		return nil, err
	}
	action, err := a.action(d.DefaultAction)
	if err != nil {
		return nil, err
	}
	st := "created"
	lisID := o.id
	if !o.exists {
		out, err := a.s.lat.CreateListener(a.s.ctx, &vpclattice.CreateListenerInput{ServiceIdentifier: &svcID, Name: &d.Name,
			Protocol: types.ListenerProtocol(d.Protocol), Port: d.Port, DefaultAction: action, Tags: d.Tags, ClientToken: a.token(r.label)})
		if err != nil {
			return nil, apiErr(err)
		}
		lisID = aws.ToString(out.Id)
	} else {
		changed := false
		if !same(wireView(action), o.get["defaultAction"]) {
			if _, err := a.s.lat.UpdateListener(a.s.ctx, &vpclattice.UpdateListenerInput{
				ServiceIdentifier: &svcID, ListenerIdentifier: &lisID, DefaultAction: action}); err != nil {
				return nil, apiErr(err)
			}
			changed = true
		}
		tagged, err := a.syncTags(o.arn, d.Tags, o.tags)
		if err != nil {
			return nil, err
		}
		st = status(changed || tagged)
	}
	lines := []string{r.label + " " + st}
	if d.Rules == nil {
		return lines, nil
	}
	ruleLines, err := a.syncRules(r, d, svcID, lisID, o)
	return append(lines, ruleLines...), err
}

// syncRules makes the listener's rules exactly the declared ones, by name:
// it deletes the others first, then updates (in batches, so priorities
// can swap), then creates.
func (a *applier) syncRules(r *resource, d *listenerDoc, svcID, lisID string, o *observed) ([]string, error) {
	prefix := "rule/" + d.Service + "/" + d.Name + "/"
	ctx, lat := a.s.ctx, a.s.lat
	declared := map[string]bool{}
	for _, rd := range d.Rules {
		declared[rd.Name] = true
	}
	var extra []string
	for name := range o.rules {
		if !declared[name] {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		id := field(o.rules[name], "id")
		if _, err := lat.DeleteRule(ctx, &vpclattice.DeleteRuleInput{ServiceIdentifier: &svcID, ListenerIdentifier: &lisID, RuleIdentifier: &id}); err != nil {
			return nil, fmt.Errorf("deleting rule %s: %w", name, apiErr(err))
		}
	}
	states := make([]string, len(d.Rules))
	var updates []types.RuleUpdate
	var creates []*vpclattice.CreateRuleInput
	for i, rd := range d.Rules {
		action, err := a.action(rd.Action)
		if err != nil {
			return nil, err
		}
		want := types.RuleUpdate{Match: sdkMatch(rd.Match), Priority: rd.Priority, Action: action}
		have, ok := o.rules[rd.Name]
		if !ok {
			states[i] = "created"
			creates = append(creates, &vpclattice.CreateRuleInput{ServiceIdentifier: &svcID, ListenerIdentifier: &lisID,
				Name: aws.String(rd.Name), Priority: rd.Priority, Match: want.Match, Action: action, Tags: rd.Tags,
				ClientToken: a.token(prefix + rd.Name)})
			continue
		}
		changed := false
		if !same(wireView(want), object{"match": have["match"], "priority": have["priority"], "action": have["action"]}) {
			want.RuleIdentifier = aws.String(field(have, "id"))
			updates = append(updates, want)
			changed = true
		}
		tagged, err := a.syncTags(field(have, "arn"), rd.Tags, o.ruleTags[rd.Name])
		if err != nil {
			return nil, err
		}
		states[i] = status(changed || tagged)
	}
	for chunk := range slices.Chunk(updates, 10) {
		out, err := lat.BatchUpdateRule(ctx, &vpclattice.BatchUpdateRuleInput{ServiceIdentifier: &svcID, ListenerIdentifier: &lisID, Rules: chunk})
		if err != nil {
			return nil, fmt.Errorf("updating rules: %w", apiErr(err))
		}
		if len(out.Unsuccessful) > 0 {
			f := out.Unsuccessful[0]
			return nil, fmt.Errorf("updating rule %s: %s: %s", aws.ToString(f.RuleIdentifier), aws.ToString(f.FailureCode), aws.ToString(f.FailureMessage))
		}
	}
	for _, in := range creates {
		if _, err := lat.CreateRule(ctx, in); err != nil {
			return nil, fmt.Errorf("creating rule %s: %w", aws.ToString(in.Name), apiErr(err))
		}
	}
	lines := make([]string, 0, len(d.Rules)+len(extra))
	for i, rd := range d.Rules {
		lines = append(lines, prefix+rd.Name+" "+states[i])
	}
	for _, name := range extra {
		lines = append(lines, prefix+name+" deleted")
	}
	return lines, nil
}

func (a *applier) syncSNSA(r *resource, d *snsaDoc, o *observed) (string, error) {
	if o.exists {
		tagged, err := a.syncTags(o.arn, d.Tags, o.tags)
		return status(tagged), err
	}
	snID, err := a.must("service-network", d.ServiceNetwork)
	if err != nil {
		return "", err
	}
	svcID, err := a.must("service", d.Service)
	if err != nil {
		return "", err
	}
	_, err = a.s.lat.CreateServiceNetworkServiceAssociation(a.s.ctx, &vpclattice.CreateServiceNetworkServiceAssociationInput{
		ServiceNetworkIdentifier: &snID, ServiceIdentifier: &svcID, Tags: d.Tags, ClientToken: a.token(r.label)})
	return "created", apiErr(err)
}

func (a *applier) syncSNVA(r *resource, d *snvaDoc, o *observed) (string, error) {
	if !o.exists {
		snID, err := a.must("service-network", d.ServiceNetwork)
		if err != nil {
			return "", err
		}
		vpcID, err := a.must("vpc", d.VPC)
		if err != nil {
			return "", err
		}
		_, err = a.s.lat.CreateServiceNetworkVpcAssociation(a.s.ctx, &vpclattice.CreateServiceNetworkVpcAssociationInput{
			ServiceNetworkIdentifier: &snID, VpcIdentifier: &vpcID, SecurityGroupIds: d.SecurityGroupIDs, Tags: d.Tags,
			ClientToken: a.token(r.label)})
		return "created", apiErr(err)
	}
	changed := false
	if d.SecurityGroupIDs != nil {
		want := slices.Sorted(slices.Values(d.SecurityGroupIDs))
		have := strings.Split(field(o.get, "securityGroupIds"), ",")
		if field(o.get, "securityGroupIds") == "" {
			have = nil
		}
		sort.Strings(have)
		if !slices.Equal(want, have) {
			if _, err := a.s.lat.UpdateServiceNetworkVpcAssociation(a.s.ctx, &vpclattice.UpdateServiceNetworkVpcAssociationInput{
				ServiceNetworkVpcAssociationIdentifier: &o.id, SecurityGroupIds: d.SecurityGroupIDs}); err != nil {
				return "", apiErr(err)
			}
			changed = true
		}
	}
	tagged, err := a.syncTags(o.arn, d.Tags, o.tags)
	return status(changed || tagged), err
}

func (a *applier) syncAuthPolicy(d *authPolicyDoc, o *observed) (string, error) {
	want, err := policyValue(d.Policy)
	if err != nil {
		return "", err
	}
	if o.exists && same(want, o.policy) {
		return "unchanged", nil
	}
	id := a.ownerID(d.ServiceNetwork, d.Service)
	b, err := json.Marshal(want)
	if err != nil {
		return "", fmt.Errorf("encoding policy: %w", err)
	}
	if _, err := a.s.lat.PutAuthPolicy(a.s.ctx, &vpclattice.PutAuthPolicyInput{ResourceIdentifier: &id, Policy: aws.String(string(b))}); err != nil {
		return "", apiErr(err)
	}
	if o.exists {
		return "updated", nil
	}
	return "created", nil
}

func (a *applier) syncAccessLogs(r *resource, d *alsDoc, o *observed) (string, error) {
	if !o.exists {
		id := a.ownerID(d.ServiceNetwork, d.Service)
		_, err := a.s.lat.CreateAccessLogSubscription(a.s.ctx, &vpclattice.CreateAccessLogSubscriptionInput{
			ResourceIdentifier: &id, DestinationArn: &d.DestinationArn, ServiceNetworkLogType: types.ServiceNetworkLogType(d.ServiceNetworkLogType),
			Tags: d.Tags, ClientToken: a.token(r.label)})
		return "created", apiErr(err)
	}
	changed := false
	if field(o.get, "destinationArn") != d.DestinationArn {
		if _, err := a.s.lat.UpdateAccessLogSubscription(a.s.ctx, &vpclattice.UpdateAccessLogSubscriptionInput{
			AccessLogSubscriptionIdentifier: &o.id, DestinationArn: &d.DestinationArn}); err != nil {
			return "", apiErr(err)
		}
		changed = true
	}
	tagged, err := a.syncTags(o.arn, d.Tags, o.tags)
	return status(changed || tagged), err
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// action builds the SDK action of a document, target groups by ID.
func (a *applier) action(d *actionDoc) (types.RuleAction, error) {
	if d.FixedResponse != nil {
		code := d.FixedResponse.StatusCode
		return &types.RuleActionMemberFixedResponse{Value: types.FixedResponseAction{StatusCode: &code}}, nil
	}
	tgs := make([]types.WeightedTargetGroup, len(d.Forward.TargetGroups))
	for i, w := range d.Forward.TargetGroups {
		id, err := a.must("target-group", w.TargetGroup)
		if err != nil {
			return nil, err
		}
		tgs[i] = types.WeightedTargetGroup{TargetGroupIdentifier: aws.String(id), Weight: w.Weight}
	}
	return &types.RuleActionMemberForward{Value: types.ForwardAction{TargetGroups: tgs}}, nil
}

func sdkMatch(d *matchDoc) types.RuleMatch {
	h := d.HTTPMatch
	var out types.HttpMatch
	if h.Method != "" {
		out.Method = aws.String(h.Method)
	}
	if pm := h.PathMatch; pm != nil {
		var m types.PathMatchType = &types.PathMatchTypeMemberPrefix{Value: aws.ToString(pm.Match.Prefix)}
		if pm.Match.Exact != nil {
			m = &types.PathMatchTypeMemberExact{Value: *pm.Match.Exact}
		}
		out.PathMatch = &types.PathMatch{Match: m, CaseSensitive: pm.CaseSensitive}
	}
	for _, hm := range h.HeaderMatches {
		var m types.HeaderMatchType
		switch {
		case hm.Match.Exact != nil:
			m = &types.HeaderMatchTypeMemberExact{Value: *hm.Match.Exact}
		case hm.Match.Prefix != nil:
			m = &types.HeaderMatchTypeMemberPrefix{Value: *hm.Match.Prefix}
		default:
			m = &types.HeaderMatchTypeMemberContains{Value: aws.ToString(hm.Match.Contains)}
		}
		out.HeaderMatches = append(out.HeaderMatches, types.HeaderMatch{Name: aws.String(hm.Name), Match: m, CaseSensitive: hm.CaseSensitive})
	}
	return &types.RuleMatchMemberHttpMatch{Value: out}
}

func (a *applier) tgConfig(d *tgDoc) (*types.TargetGroupConfig, error) {
	c := d.Config
	if c == nil {
		return nil, nil
	}
	out := &types.TargetGroupConfig{Port: c.Port, Protocol: types.TargetGroupProtocol(c.Protocol),
		ProtocolVersion: types.TargetGroupProtocolVersion(c.ProtocolVersion), IpAddressType: types.IpAddressType(c.IPAddressType),
		LambdaEventStructureVersion: types.LambdaEventStructureVersion(c.LambdaEventStructureVersion), HealthCheck: sdkHealthCheck(d)}
	if c.VPC != "" {
		id, err := a.must("vpc", c.VPC)
		if err != nil {
			return nil, err
		}
		out.VpcIdentifier = &id
	}
	return out, nil
}

func sdkHealthCheck(d *tgDoc) *types.HealthCheckConfig {
	if d.Config == nil || d.Config.HealthCheck == nil {
		return nil
	}
	h := d.Config.HealthCheck
	out := &types.HealthCheckConfig{Enabled: h.Enabled, Protocol: types.TargetGroupProtocol(h.Protocol),
		ProtocolVersion: types.HealthCheckProtocolVersion(h.ProtocolVersion), Port: h.Port, Path: h.Path,
		HealthCheckIntervalSeconds: h.HealthCheckIntervalSeconds, HealthCheckTimeoutSeconds: h.HealthCheckTimeoutSeconds,
		HealthyThresholdCount: h.HealthyThresholdCount, UnhealthyThresholdCount: h.UnhealthyThresholdCount}
	if h.Matcher != nil && h.Matcher.HTTPCode != nil {
		out.Matcher = &types.MatcherMemberHttpCode{Value: *h.Matcher.HTTPCode}
	}
	return out
}

// desiredHealthCheck is the declared health check with Lattice's
// defaults filled in by the same code the server uses, in the wire shape
// GetTargetGroup answers, so fields the document leaves out cause no
// difference.
func desiredHealthCheck(d *tgDoc) any {
	cfg := model.TargetGroupConfig{Protocol: d.Config.Protocol, ProtocolVersion: d.Config.ProtocolVersion, HealthCheck: d.Config.HealthCheck}
	hc := cfg.Materialize(d.Type).HealthCheck
	return wireView(sdkHealthCheck(&tgDoc{Config: &tgConfigDoc{HealthCheck: hc}}))
}

// tgImmutableDiffs lists the fields of a target group that differ from
// the document but cannot be updated ("config.port 8080 to 9001").
func tgImmutableDiffs(d *tgDoc, vpcID string, get object) []string {
	c := d.Config
	if c == nil {
		c = &tgConfigDoc{}
	}
	port := ""
	switch {
	case c.Port != nil:
		port = strconv.Itoa(int(*c.Port))
	case c.Protocol == "HTTPS":
		port = "443"
	case c.Protocol == "HTTP":
		port = "80"
	}
	version := c.ProtocolVersion
	if version == "" && d.Type != "LAMBDA" && c.Protocol != "TCP" {
		version = "HTTP1"
	}
	ipType := c.IPAddressType
	if ipType == "" && d.Type == "IP" {
		ipType = "IPV4"
	}
	lambda := c.LambdaEventStructureVersion
	if lambda == "" && d.Type == "LAMBDA" {
		lambda = "V1"
	}
	checks := []struct{ name, want, have string }{
		{"type", d.Type, field(get, "type")},
		{"config.protocol", c.Protocol, field(get, "config", "protocol")},
		{"config.port", port, field(get, "config", "port")},
		{"config.protocolVersion", version, field(get, "config", "protocolVersion")},
		{"config.ipAddressType", ipType, field(get, "config", "ipAddressType")},
		{"config.vpc", vpcID, field(get, "config", "vpcIdentifier")},
		{"config.lambdaEventStructureVersion", lambda, field(get, "config", "lambdaEventStructureVersion")},
	}
	var diffs []string
	for _, ch := range checks {
		if ch.want != ch.have {
			diffs = append(diffs, fmt.Sprintf("%s (%s to %s)", ch.name, orDash(ch.have), orDash(ch.want)))
		}
	}
	return diffs
}

func orDash(s string) string { return or(s, "-") }
