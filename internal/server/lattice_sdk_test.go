package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice/types"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
)

func TestSDKServiceNetworkLifecycle(t *testing.T) {
	ts := startServer(t, t.TempDir(), lattice.Quotas{})
	c := ts.admin()
	ctx := context.Background()

	created := must[*vpclattice.CreateServiceNetworkOutput](t)(c.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{
		Name: aws.String("shop"), AuthType: types.AuthTypeAwsIam, Tags: map[string]string{"team": "shop"},
	}))
	id := aws.ToString(created.Id)
	if !strings.HasPrefix(id, "sn-") || len(id) != 20 {
		t.Errorf("id = %q, want sn- + 17 characters", id)
	}
	wantARN := fmt.Sprintf("arn:aws:vpc-lattice:us-east-1:%s:servicenetwork/%s", ts.boot.Account, id)
	if aws.ToString(created.Arn) != wantARN || created.AuthType != types.AuthTypeAwsIam {
		t.Errorf("create = %+v, want arn %s and AWS_IAM", created, wantARN)
	}

	// Get by ID and by ARN (the ARN is percent-encoded in the path by the SDK).
	for _, ident := range []string{id, wantARN} {
		got := must[*vpclattice.GetServiceNetworkOutput](t)(c.GetServiceNetwork(ctx, &vpclattice.GetServiceNetworkInput{ServiceNetworkIdentifier: aws.String(ident)}))
		if aws.ToString(got.Name) != "shop" || got.CreatedAt == nil || got.CreatedAt.IsZero() || aws.ToInt64(got.NumberOfAssociatedServices) != 0 {
			t.Errorf("get %s = %+v", ident, got)
		}
	}

	upd := must[*vpclattice.UpdateServiceNetworkOutput](t)(c.UpdateServiceNetwork(ctx, &vpclattice.UpdateServiceNetworkInput{
		ServiceNetworkIdentifier: aws.String(id), AuthType: types.AuthTypeNone}))
	if upd.AuthType != types.AuthTypeNone {
		t.Errorf("update authType = %s", upd.AuthType)
	}

	// Same name again: ConflictException.
	_, err := c.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{Name: aws.String("shop")})
	apiErr[*types.ConflictException](t, err)

	// Every invalid field is named in fieldList.
	_, err = c.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{Name: aws.String("Bad--Name"), AuthType: "MAYBE"})
	ve := apiErr[*types.ValidationException](t, err)
	names := map[string]bool{}
	for _, f := range ve.FieldList {
		names[aws.ToString(f.Name)] = true
	}
	if !names["name"] || !names["authType"] || ve.Reason != types.ValidationExceptionReasonFieldValidationFailed {
		t.Errorf("validation = %+v, want fields name and authType", ve)
	}

	// Not found, by ID and by a well-formed ARN.
	_, err = c.GetServiceNetwork(ctx, &vpclattice.GetServiceNetworkInput{ServiceNetworkIdentifier: aws.String("sn-0123456789abcdef0")})
	nf := apiErr[*types.ResourceNotFoundException](t, err)
	if aws.ToString(nf.ResourceType) != "SERVICE_NETWORK" || aws.ToString(nf.ResourceId) != "sn-0123456789abcdef0" {
		t.Errorf("not found = %+v", nf)
	}
	_, err = c.GetServiceNetwork(ctx, &vpclattice.GetServiceNetworkInput{ServiceNetworkIdentifier: aws.String("not-an-id")})
	apiErr[*types.ValidationException](t, err)

	must[*vpclattice.DeleteServiceNetworkOutput](t)(c.DeleteServiceNetwork(ctx, &vpclattice.DeleteServiceNetworkInput{ServiceNetworkIdentifier: aws.String(id)}))
	_, err = c.GetServiceNetwork(ctx, &vpclattice.GetServiceNetworkInput{ServiceNetworkIdentifier: aws.String(id)})
	apiErr[*types.ResourceNotFoundException](t, err)
	// The name is free again.
	must[*vpclattice.CreateServiceNetworkOutput](t)(c.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{Name: aws.String("shop")}))
}

func TestSDKPaginationAndIdempotency(t *testing.T) {
	ts := startServer(t, t.TempDir(), lattice.Quotas{})
	c := ts.admin()
	ctx := context.Background()
	want := map[string]bool{}
	for i := range 7 {
		out := must[*vpclattice.CreateServiceOutput](t)(c.CreateService(ctx, &vpclattice.CreateServiceInput{Name: aws.String(fmt.Sprintf("svc-name-%d", i)[4:] + "-x")}))
		want[aws.ToString(out.Id)] = true
	}
	p := vpclattice.NewListServicesPaginator(c, &vpclattice.ListServicesInput{MaxResults: aws.Int32(3)})
	pages, seen := 0, map[string]bool{}
	for p.HasMorePages() {
		page := must[*vpclattice.ListServicesOutput](t)(p.NextPage(ctx))
		pages++
		if len(page.Items) > 3 {
			t.Errorf("page of %d items, want at most 3", len(page.Items))
		}
		for _, it := range page.Items {
			if seen[aws.ToString(it.Id)] {
				t.Errorf("%s listed twice", aws.ToString(it.Id))
			}
			seen[aws.ToString(it.Id)] = true
		}
	}
	if pages != 3 || len(seen) != 7 {
		t.Errorf("pages=%d items=%d, want 3 pages with 7 items", pages, len(seen))
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("%s missing from the listing", id)
		}
	}
	_, err := c.ListServices(ctx, &vpclattice.ListServicesInput{MaxResults: aws.Int32(101)})
	apiErr[*types.ValidationException](t, err)
	_, err = c.ListServices(ctx, &vpclattice.ListServicesInput{NextToken: aws.String("garbage!")})
	apiErr[*types.ValidationException](t, err)

	// Same clientToken and parameters: the same service, no second one.
	in := &vpclattice.CreateServiceInput{Name: aws.String("billing"), ClientToken: aws.String("token-1")}
	a := must[*vpclattice.CreateServiceOutput](t)(c.CreateService(ctx, in))
	b := must[*vpclattice.CreateServiceOutput](t)(c.CreateService(ctx, in))
	if aws.ToString(a.Id) != aws.ToString(b.Id) {
		t.Errorf("retry with the same clientToken created %s and %s", aws.ToString(a.Id), aws.ToString(b.Id))
	}
	// Same token, different parameters: ConflictException.
	_, err = c.CreateService(ctx, &vpclattice.CreateServiceInput{Name: aws.String("billing2"), ClientToken: aws.String("token-1")})
	apiErr[*types.ConflictException](t, err)
	all := must[*vpclattice.ListServicesOutput](t)(c.ListServices(ctx, &vpclattice.ListServicesInput{}))
	if len(all.Items) != 8 {
		t.Errorf("%d services, want 8", len(all.Items))
	}

	// A token is bound to the parent in the path too: the same listener
	// body and token under another service is a different request.
	fixed := &types.RuleActionMemberFixedResponse{Value: types.FixedResponseAction{StatusCode: aws.Int32(404)}}
	lin := func(svc *string) *vpclattice.CreateListenerInput {
		return &vpclattice.CreateListenerInput{ServiceIdentifier: svc, Name: aws.String("http"), Protocol: types.ListenerProtocolHttp,
			DefaultAction: fixed, ClientToken: aws.String("listener-token")}
	}
	l1 := must[*vpclattice.CreateListenerOutput](t)(c.CreateListener(ctx, lin(a.Id)))
	l1again := must[*vpclattice.CreateListenerOutput](t)(c.CreateListener(ctx, lin(a.Id)))
	if aws.ToString(l1.Id) != aws.ToString(l1again.Id) {
		t.Errorf("listener retry created a second listener")
	}
	other := must[*vpclattice.CreateServiceOutput](t)(c.CreateService(ctx, &vpclattice.CreateServiceInput{Name: aws.String("shipping")}))
	_, err = c.CreateListener(ctx, lin(other.Id))
	apiErr[*types.ConflictException](t, err)
}

func TestSDKServiceListenersRulesTargets(t *testing.T) {
	ts := startServer(t, t.TempDir(), lattice.Quotas{})
	c := ts.admin()
	ctx := context.Background()

	svc := must[*vpclattice.CreateServiceOutput](t)(c.CreateService(ctx, &vpclattice.CreateServiceInput{Name: aws.String("orders")}))
	svcID := aws.ToString(svc.Id)
	dns := aws.ToString(svc.DnsEntry.DomainName)
	if !strings.HasPrefix(dns, "orders-"+strings.TrimPrefix(svcID, "svc-")+".") || !strings.HasSuffix(dns, ".vpc-lattice-svcs.us-east-1.on.aws") {
		t.Errorf("dnsEntry = %q", dns)
	}
	if svc.Status != types.ServiceStatusActive {
		t.Errorf("service = %+v", svc)
	}

	tg := must[*vpclattice.CreateTargetGroupOutput](t)(c.CreateTargetGroup(ctx, &vpclattice.CreateTargetGroupInput{
		Name: aws.String("orders-v1"), Type: types.TargetGroupTypeIp,
		Config: &types.TargetGroupConfig{Port: aws.Int32(8080), Protocol: types.TargetGroupProtocolHttp, VpcIdentifier: aws.String(ts.boot.VPCID)},
	}))
	tgID := aws.ToString(tg.Id)
	got := must[*vpclattice.GetTargetGroupOutput](t)(c.GetTargetGroup(ctx, &vpclattice.GetTargetGroupInput{TargetGroupIdentifier: tg.Arn}))
	hc := got.Config.HealthCheck
	if hc == nil || !aws.ToBool(hc.Enabled) || aws.ToInt32(hc.HealthCheckIntervalSeconds) != 30 || aws.ToInt32(hc.HealthCheckTimeoutSeconds) != 5 ||
		aws.ToInt32(hc.HealthyThresholdCount) != 5 || aws.ToInt32(hc.UnhealthyThresholdCount) != 2 || aws.ToString(hc.Path) != "/" ||
		got.Config.ProtocolVersion != types.TargetGroupProtocolVersionHttp1 || got.Config.IpAddressType != types.IpAddressTypeIpv4 {
		t.Errorf("health-check defaults not materialised: %+v %+v", got.Config, hc)
	}
	if m, ok := hc.Matcher.(*types.MatcherMemberHttpCode); !ok || m.Value != "200" {
		t.Errorf("matcher = %#v", hc.Matcher)
	}
	_, err := c.CreateTargetGroup(ctx, &vpclattice.CreateTargetGroupInput{Name: aws.String("bad-hc"), Type: types.TargetGroupTypeIp,
		Config: &types.TargetGroupConfig{Protocol: types.TargetGroupProtocolHttp, VpcIdentifier: aws.String(ts.boot.VPCID),
			HealthCheck: &types.HealthCheckConfig{HealthCheckIntervalSeconds: aws.Int32(2), Path: aws.String("no-slash")}}})
	ve := apiErr[*types.ValidationException](t, err)
	if len(ve.FieldList) != 2 {
		t.Errorf("want 2 field errors, got %+v", ve.FieldList)
	}

	tg2 := must[*vpclattice.CreateTargetGroupOutput](t)(c.CreateTargetGroup(ctx, &vpclattice.CreateTargetGroupInput{
		Name: aws.String("orders-v2"), Type: types.TargetGroupTypeIp,
		Config: &types.TargetGroupConfig{Port: aws.Int32(8080), Protocol: types.TargetGroupProtocolHttp, VpcIdentifier: aws.String(ts.boot.VPCID)},
	}))

	// Targets: INITIAL until a data plane reports; outside the VPC fails per target.
	reg := must[*vpclattice.RegisterTargetsOutput](t)(c.RegisterTargets(ctx, &vpclattice.RegisterTargetsInput{
		TargetGroupIdentifier: aws.String(tgID),
		Targets:               []types.Target{{Id: aws.String("10.0.0.10")}, {Id: aws.String("10.0.0.11"), Port: aws.Int32(9000)}, {Id: aws.String("192.168.1.1")}},
	}))
	if len(reg.Successful) != 2 || len(reg.Unsuccessful) != 1 || aws.ToString(reg.Unsuccessful[0].Id) != "192.168.1.1" {
		t.Errorf("register = %+v", reg)
	}
	lt := must[*vpclattice.ListTargetsOutput](t)(c.ListTargets(ctx, &vpclattice.ListTargetsInput{TargetGroupIdentifier: aws.String(tgID)}))
	if len(lt.Items) != 2 {
		t.Fatalf("targets = %+v", lt.Items)
	}
	for _, it := range lt.Items {
		if it.Status != types.TargetStatusInitial {
			t.Errorf("target %s status %s, want INITIAL", aws.ToString(it.Id), it.Status)
		}
		if aws.ToString(it.Id) == "10.0.0.10" && aws.ToInt32(it.Port) != 8080 {
			t.Errorf("target port %d, want the group's 8080", aws.ToInt32(it.Port))
		}
	}
	filtered := must[*vpclattice.ListTargetsOutput](t)(c.ListTargets(ctx, &vpclattice.ListTargetsInput{TargetGroupIdentifier: aws.String(tgID),
		Targets: []types.Target{{Id: aws.String("10.0.0.11")}}}))
	if len(filtered.Items) != 1 || aws.ToInt32(filtered.Items[0].Port) != 9000 {
		t.Errorf("filtered targets = %+v", filtered.Items)
	}

	// Listener with a weighted default action, referencing groups by ID and ARN.
	lis := must[*vpclattice.CreateListenerOutput](t)(c.CreateListener(ctx, &vpclattice.CreateListenerInput{
		ServiceIdentifier: aws.String(svcID), Name: aws.String("http"), Protocol: types.ListenerProtocolHttp,
		DefaultAction: &types.RuleActionMemberForward{Value: types.ForwardAction{TargetGroups: []types.WeightedTargetGroup{
			{TargetGroupIdentifier: aws.String(tgID), Weight: aws.Int32(80)}, {TargetGroupIdentifier: tg2.Arn, Weight: aws.Int32(20)}}}},
	}))
	if aws.ToInt32(lis.Port) != 80 || aws.ToString(lis.ServiceId) != svcID {
		t.Errorf("listener = %+v", lis)
	}
	fwd, ok := lis.DefaultAction.(*types.RuleActionMemberForward)
	if !ok || aws.ToString(fwd.Value.TargetGroups[1].TargetGroupIdentifier) != aws.ToString(tg2.Id) {
		t.Errorf("default action = %#v, want the second group stored by ID", lis.DefaultAction)
	}
	// Listener by nested ARN.
	must[*vpclattice.GetListenerOutput](t)(c.GetListener(ctx, &vpclattice.GetListenerInput{ServiceIdentifier: svc.Arn, ListenerIdentifier: lis.Arn}))
	// A second listener on the same port conflicts.
	_, err = c.CreateListener(ctx, &vpclattice.CreateListenerInput{ServiceIdentifier: aws.String(svcID), Name: aws.String("http2"),
		Protocol: types.ListenerProtocolHttp, DefaultAction: &types.RuleActionMemberFixedResponse{Value: types.FixedResponseAction{StatusCode: aws.Int32(404)}}})
	apiErr[*types.ConflictException](t, err)

	// Rules.
	lid := aws.ToString(lis.Id)
	mkRule := func(name string, prio int32, prefix string) *vpclattice.CreateRuleOutput {
		return must[*vpclattice.CreateRuleOutput](t)(c.CreateRule(ctx, &vpclattice.CreateRuleInput{
			ServiceIdentifier: aws.String(svcID), ListenerIdentifier: aws.String(lid), Name: aws.String(name), Priority: aws.Int32(prio),
			Match:  &types.RuleMatchMemberHttpMatch{Value: types.HttpMatch{PathMatch: &types.PathMatch{Match: &types.PathMatchTypeMemberPrefix{Value: prefix}}}},
			Action: &types.RuleActionMemberForward{Value: types.ForwardAction{TargetGroups: []types.WeightedTargetGroup{{TargetGroupIdentifier: tg2.Id}}}},
		}))
	}
	r1 := mkRule("api-v1", 10, "/v1")
	r2 := mkRule("api-v2", 20, "/v2")
	_, err = c.CreateRule(ctx, &vpclattice.CreateRuleInput{ServiceIdentifier: aws.String(svcID), ListenerIdentifier: aws.String(lid),
		Name: aws.String("dup-prio"), Priority: aws.Int32(10),
		Match:  &types.RuleMatchMemberHttpMatch{Value: types.HttpMatch{Method: aws.String("GET")}},
		Action: &types.RuleActionMemberFixedResponse{Value: types.FixedResponseAction{StatusCode: aws.Int32(404)}}})
	apiErr[*types.ConflictException](t, err)

	gr := must[*vpclattice.GetRuleOutput](t)(c.GetRule(ctx, &vpclattice.GetRuleInput{ServiceIdentifier: aws.String(svcID), ListenerIdentifier: aws.String(lid), RuleIdentifier: r1.Arn}))
	hm, ok := gr.Match.(*types.RuleMatchMemberHttpMatch)
	if !ok || hm.Value.HeaderMatches == nil || len(hm.Value.HeaderMatches) != 0 || aws.ToBool(gr.IsDefault) {
		t.Errorf("rule match = %#v (headerMatches must be an empty list)", gr.Match)
	}
	rules := must[*vpclattice.ListRulesOutput](t)(c.ListRules(ctx, &vpclattice.ListRulesInput{ServiceIdentifier: aws.String(svcID), ListenerIdentifier: aws.String(lid)}))
	defaults := 0
	var defaultRule string
	for _, r := range rules.Items {
		if aws.ToBool(r.IsDefault) {
			defaults++
			defaultRule = aws.ToString(r.Id)
		}
	}
	if len(rules.Items) != 3 || defaults != 1 {
		t.Errorf("rules = %+v, want two rules and the default", rules.Items)
	}
	_, err = c.DeleteRule(ctx, &vpclattice.DeleteRuleInput{ServiceIdentifier: aws.String(svcID), ListenerIdentifier: aws.String(lid), RuleIdentifier: aws.String(defaultRule)})
	apiErr[*types.ValidationException](t, err)

	// BatchUpdateRule swaps two priorities atomically and reports a missing rule.
	bu := must[*vpclattice.BatchUpdateRuleOutput](t)(c.BatchUpdateRule(ctx, &vpclattice.BatchUpdateRuleInput{
		ServiceIdentifier: aws.String(svcID), ListenerIdentifier: aws.String(lid),
		Rules: []types.RuleUpdate{
			{RuleIdentifier: r1.Id, Priority: aws.Int32(20)},
			{RuleIdentifier: r2.Id, Priority: aws.Int32(10)},
			{RuleIdentifier: aws.String("rule-0123456789abcdef0"), Priority: aws.Int32(30)},
		},
	}))
	if len(bu.Successful) != 2 || len(bu.Unsuccessful) != 1 || aws.ToString(bu.Unsuccessful[0].FailureCode) != "ResourceNotFoundException" {
		t.Errorf("batch = %+v", bu)
	}
	g1 := must[*vpclattice.GetRuleOutput](t)(c.GetRule(ctx, &vpclattice.GetRuleInput{ServiceIdentifier: aws.String(svcID), ListenerIdentifier: aws.String(lid), RuleIdentifier: r1.Id}))
	if aws.ToInt32(g1.Priority) != 20 {
		t.Errorf("rule 1 priority %d after swap, want 20", aws.ToInt32(g1.Priority))
	}
	// A batch that would leave two rules on one priority fails for that update only.
	bu = must[*vpclattice.BatchUpdateRuleOutput](t)(c.BatchUpdateRule(ctx, &vpclattice.BatchUpdateRuleInput{
		ServiceIdentifier: aws.String(svcID), ListenerIdentifier: aws.String(lid),
		Rules: []types.RuleUpdate{{RuleIdentifier: r1.Id, Priority: aws.Int32(10)}},
	}))
	if len(bu.Successful) != 0 || len(bu.Unsuccessful) != 1 || aws.ToString(bu.Unsuccessful[0].FailureCode) != "ConflictException" {
		t.Errorf("colliding batch = %+v", bu)
	}
	ur := must[*vpclattice.UpdateRuleOutput](t)(c.UpdateRule(ctx, &vpclattice.UpdateRuleInput{ServiceIdentifier: aws.String(svcID), ListenerIdentifier: aws.String(lid),
		RuleIdentifier: r1.Id, Action: &types.RuleActionMemberFixedResponse{Value: types.FixedResponseAction{StatusCode: aws.Int32(500)}}}))
	if _, ok := ur.Action.(*types.RuleActionMemberFixedResponse); !ok {
		t.Errorf("updated action = %#v", ur.Action)
	}

	// The target group is referenced: no delete; its service is reported.
	_, err = c.DeleteTargetGroup(ctx, &vpclattice.DeleteTargetGroupInput{TargetGroupIdentifier: tg2.Id})
	apiErr[*types.ConflictException](t, err)
	g2 := must[*vpclattice.GetTargetGroupOutput](t)(c.GetTargetGroup(ctx, &vpclattice.GetTargetGroupInput{TargetGroupIdentifier: tg2.Id}))
	if len(g2.ServiceArns) != 1 || g2.ServiceArns[0] != aws.ToString(svc.Arn) {
		t.Errorf("serviceArns = %v", g2.ServiceArns)
	}
	// A target group serves one service only.
	other := must[*vpclattice.CreateServiceOutput](t)(c.CreateService(ctx, &vpclattice.CreateServiceInput{Name: aws.String("other")}))
	_, err = c.CreateListener(ctx, &vpclattice.CreateListenerInput{ServiceIdentifier: other.Id, Name: aws.String("http"), Protocol: types.ListenerProtocolHttp,
		DefaultAction: &types.RuleActionMemberForward{Value: types.ForwardAction{TargetGroups: []types.WeightedTargetGroup{{TargetGroupIdentifier: tg2.Id}}}}})
	apiErr[*types.ConflictException](t, err)

	// Update the listener's default action away from tg2, delete the rules: tg2 is free.
	must[*vpclattice.UpdateListenerOutput](t)(c.UpdateListener(ctx, &vpclattice.UpdateListenerInput{ServiceIdentifier: aws.String(svcID), ListenerIdentifier: aws.String(lid),
		DefaultAction: &types.RuleActionMemberForward{Value: types.ForwardAction{TargetGroups: []types.WeightedTargetGroup{{TargetGroupIdentifier: aws.String(tgID)}}}}}))
	for _, r := range []*vpclattice.CreateRuleOutput{r1, r2} {
		must[*vpclattice.DeleteRuleOutput](t)(c.DeleteRule(ctx, &vpclattice.DeleteRuleInput{ServiceIdentifier: aws.String(svcID), ListenerIdentifier: aws.String(lid), RuleIdentifier: r.Id}))
	}
	must[*vpclattice.DeleteTargetGroupOutput](t)(c.DeleteTargetGroup(ctx, &vpclattice.DeleteTargetGroupInput{TargetGroupIdentifier: tg2.Id}))

	dereg := must[*vpclattice.DeregisterTargetsOutput](t)(c.DeregisterTargets(ctx, &vpclattice.DeregisterTargetsInput{TargetGroupIdentifier: aws.String(tgID),
		Targets: []types.Target{{Id: aws.String("10.0.0.10")}}}))
	if len(dereg.Successful) != 1 {
		t.Errorf("deregister = %+v", dereg)
	}
	ut := must[*vpclattice.UpdateTargetGroupOutput](t)(c.UpdateTargetGroup(ctx, &vpclattice.UpdateTargetGroupInput{TargetGroupIdentifier: aws.String(tgID),
		HealthCheck: &types.HealthCheckConfig{Path: aws.String("/healthz"), HealthyThresholdCount: aws.Int32(3)}}))
	if aws.ToString(ut.Config.HealthCheck.Path) != "/healthz" || aws.ToInt32(ut.Config.HealthCheck.HealthyThresholdCount) != 3 || aws.ToInt32(ut.Config.HealthCheck.UnhealthyThresholdCount) != 2 {
		t.Errorf("updated health check = %+v", ut.Config.HealthCheck)
	}

	// Deleting the service deletes its listeners and rules and frees the target group.
	must[*vpclattice.DeleteServiceOutput](t)(c.DeleteService(ctx, &vpclattice.DeleteServiceInput{ServiceIdentifier: aws.String(svcID)}))
	_, err = c.GetListener(ctx, &vpclattice.GetListenerInput{ServiceIdentifier: aws.String(svcID), ListenerIdentifier: aws.String(lid)})
	apiErr[*types.ResourceNotFoundException](t, err)
	must[*vpclattice.DeleteTargetGroupOutput](t)(c.DeleteTargetGroup(ctx, &vpclattice.DeleteTargetGroupInput{TargetGroupIdentifier: aws.String(tgID)}))
}
