package server_test

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sd "github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"
)

func TestCloudMapInstances(t *testing.T) {
	e := newCMEnv(t)
	c, ctx := e.c, e.ctx
	acct := e.ts.boot.Account
	nsID := e.httpNamespace("shop")
	svc := e.service(nsID, "payments", nil)
	svcID := aws.ToString(svc.Id)

	attrs := map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "8080", "stage": "prod", "note": "a b\tc"}
	out := must[*sd.RegisterInstanceOutput](t)(c.RegisterInstance(ctx, &sd.RegisterInstanceInput{ServiceId: svc.Id,
		InstanceId: aws.String("i-1"), CreatorRequestId: aws.String("reg-1"), Attributes: attrs}))
	targets := e.operation(out.OperationId, types.OperationTypeRegisterInstance)
	if targets["NAMESPACE"] != nsID || targets["SERVICE"] != svcID || targets["INSTANCE"] != "i-1" {
		t.Errorf("targets = %v", targets)
	}
	// The same request again is the same operation; another one with that
	// request ID is a DuplicateRequest.
	again := must[*sd.RegisterInstanceOutput](t)(c.RegisterInstance(ctx, &sd.RegisterInstanceInput{ServiceId: svc.Id,
		InstanceId: aws.String("i-1"), CreatorRequestId: aws.String("reg-1"), Attributes: attrs}))
	if aws.ToString(again.OperationId) != aws.ToString(out.OperationId) {
		t.Errorf("retry = operation %s, want %s", aws.ToString(again.OperationId), aws.ToString(out.OperationId))
	}
	_, err := c.RegisterInstance(ctx, &sd.RegisterInstanceInput{ServiceId: svc.Id, InstanceId: aws.String("i-2"),
		CreatorRequestId: aws.String("reg-1"), Attributes: attrs})
	apiErr[*types.DuplicateRequest](t, err)

	inst := must[*sd.GetInstanceOutput](t)(c.GetInstance(ctx, &sd.GetInstanceInput{ServiceId: svc.Arn, InstanceId: aws.String("i-1")}))
	if aws.ToString(inst.ResourceOwner) != acct || aws.ToString(inst.Instance.Id) != "i-1" || !maps.Equal(inst.Instance.Attributes, attrs) ||
		aws.ToString(inst.Instance.CreatorRequestId) != "reg-1" || aws.ToString(inst.Instance.CreatedByAccount) != acct {
		t.Errorf("instance = %+v %+v", inst, inst.Instance)
	}
	_, err = c.GetInstance(ctx, &sd.GetInstanceInput{ServiceId: svc.Id, InstanceId: aws.String("i-9")})
	apiErr[*types.InstanceNotFound](t, err)
	_, err = c.GetInstance(ctx, &sd.GetInstanceInput{ServiceId: aws.String("srv-aaaaaaaaaaaaaaaa"), InstanceId: aws.String("i-1")})
	apiErr[*types.ServiceNotFound](t, err)
	_, err = c.RegisterInstance(ctx, &sd.RegisterInstanceInput{ServiceId: aws.String("srv-aaaaaaaaaaaaaaaa"), InstanceId: aws.String("i-1"), Attributes: attrs})
	apiErr[*types.ServiceNotFound](t, err)

	// Attribute rules.
	custom := map[string]string{}
	for i := range 31 {
		custom["k"+strconv.Itoa(i)] = "v"
	}
	for name, a := range map[string]map[string]string{
		"IPv4 not an address":  {"AWS_INSTANCE_IPV4": "10.0.0.300"},
		"IPv4 is IPv6":         {"AWS_INSTANCE_IPV4": "::1"},
		"IPv6 is IPv4":         {"AWS_INSTANCE_IPV6": "10.0.0.1"},
		"port 0":               {"AWS_INSTANCE_PORT": "0"},
		"port 65536":           {"AWS_INSTANCE_PORT": "65536"},
		"port 080":             {"AWS_INSTANCE_PORT": "080"},
		"port text":            {"AWS_INSTANCE_PORT": "http"},
		"31 custom attributes": custom,
		"key too long":         {strings.Repeat("k", 256): "v"},
		"key with a space":     {"a b": "v"},
		"value too long":       {"k": strings.Repeat("v", 1025)},
		"value leading space":  {"k": " v"},
		"value newline":        {"k": "a\nb"},
		"5000 characters":      {"a": strings.Repeat("v", 1000), "b": strings.Repeat("v", 1000), "c": strings.Repeat("v", 1000), "d": strings.Repeat("v", 1000), "e": strings.Repeat("v", 1000)},
		"init health":          {"AWS_INIT_HEALTH_STATUS": "MAYBE"},
		"EC2 instance":         {"AWS_EC2_INSTANCE_ID": "i-0123456789abcdef0"},
		"alias on HTTP":        {"AWS_ALIAS_DNS_NAME": "lb.example.com"},
		"empty":                {},
	} {
		_, err := c.RegisterInstance(ctx, &sd.RegisterInstanceInput{ServiceId: svc.Id, InstanceId: aws.String("bad"), Attributes: a})
		if !errorsAs(err, new(*types.InvalidInput)) {
			t.Errorf("%s: err = %v, want InvalidInput", name, err)
		}
	}
	for name, id := range map[string]string{"space": "i 1", "too long": strings.Repeat("i", 65), "hash": "i#1"} {
		_, err := c.RegisterInstance(ctx, &sd.RegisterInstanceInput{ServiceId: svc.Id, InstanceId: aws.String(id), Attributes: attrs})
		if !errorsAs(err, new(*types.InvalidInput)) {
			t.Errorf("instance ID %s: err = %v, want InvalidInput", name, err)
		}
	}
	// Exactly 30 custom attributes, an empty value and an ID with every
	// allowed punctuation are fine.
	delete(custom, "k30")
	custom["empty"] = ""
	delete(custom, "k29")
	e.register(svcID, "a_b/c:d.e@f-g", custom)

	// ListInstances in pages.
	for i := 2; i <= 5; i++ {
		e.register(svcID, "i-"+strconv.Itoa(i), map[string]string{"AWS_INSTANCE_IPV4": "10.0.0." + strconv.Itoa(i)})
	}
	var ids []string
	p := sd.NewListInstancesPaginator(c, &sd.ListInstancesInput{ServiceId: svc.Id, MaxResults: aws.Int32(2)})
	for p.HasMorePages() {
		page := must[*sd.ListInstancesOutput](t)(p.NextPage(ctx))
		if len(page.Instances) > 2 || aws.ToString(page.ResourceOwner) != acct {
			t.Fatalf("page = %+v", page)
		}
		for _, in := range page.Instances {
			ids = append(ids, aws.ToString(in.Id))
			if aws.ToString(in.CreatedByAccount) != acct || len(in.Attributes) == 0 {
				t.Errorf("summary = %+v", in)
			}
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"a_b/c:d.e@f-g", "i-1", "i-2", "i-3", "i-4", "i-5"}) {
		t.Errorf("instances = %v", ids)
	}
	if n := aws.ToInt32(must[*sd.GetServiceOutput](t)(c.GetService(ctx, &sd.GetServiceInput{Id: svc.Id})).Service.InstanceCount); n != 6 {
		t.Errorf("InstanceCount = %d, want 6", n)
	}

	// Re-registering replaces the attributes.
	e.register(svcID, "i-1", map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.11"})
	inst = must[*sd.GetInstanceOutput](t)(c.GetInstance(ctx, &sd.GetInstanceInput{ServiceId: svc.Id, InstanceId: aws.String("i-1")}))
	if len(inst.Instance.Attributes) != 1 || inst.Instance.Attributes["AWS_INSTANCE_IPV4"] != "10.0.0.11" {
		t.Errorf("attributes after re-registration = %v", inst.Instance.Attributes)
	}

	// Deregistration.
	dereg := must[*sd.DeregisterInstanceOutput](t)(c.DeregisterInstance(ctx, &sd.DeregisterInstanceInput{ServiceId: svc.Id, InstanceId: aws.String("i-5")}))
	if tg := e.operation(dereg.OperationId, types.OperationTypeDeregisterInstance); tg["INSTANCE"] != "i-5" {
		t.Errorf("deregister targets = %v", tg)
	}
	_, err = c.DeregisterInstance(ctx, &sd.DeregisterInstanceInput{ServiceId: svc.Id, InstanceId: aws.String("i-5")})
	apiErr[*types.InstanceNotFound](t, err)
	if n := aws.ToInt32(must[*sd.GetServiceOutput](t)(c.GetService(ctx, &sd.GetServiceInput{Id: svc.Id})).Service.InstanceCount); n != 5 {
		t.Errorf("InstanceCount after deregistration = %d, want 5", n)
	}
}

// TestCloudMapDNSInstanceRules: a DNS service's records decide which
// address attributes an instance needs.
func TestCloudMapDNSInstanceRules(t *testing.T) {
	e := newCMEnv(t)
	c, ctx := e.c, e.ctx
	priv := must[*sd.CreatePrivateDnsNamespaceOutput](t)(c.CreatePrivateDnsNamespace(ctx, &sd.CreatePrivateDnsNamespaceInput{Name: aws.String("corp.internal"), Vpc: aws.String(e.ts.boot.VPCID)}))
	privID := e.operation(priv.OperationId, types.OperationTypeCreateNamespace)["NAMESPACE"]
	withRecords := func(name string, policy types.RoutingPolicy, typs ...types.RecordType) string {
		return aws.ToString(e.service(privID, name, func(in *sd.CreateServiceInput) {
			in.DnsConfig = dnsRecords(typs...)
			in.DnsConfig.RoutingPolicy = policy
		}).Id)
	}
	a := withRecords("a", "", "A")
	aaaa := withRecords("aaaa", "", "AAAA")
	srv := withRecords("srv", "", "SRV")
	cname := withRecords("cname", types.RoutingPolicyWeighted, "CNAME")
	weighted := withRecords("weighted", types.RoutingPolicyWeighted, "A")
	for _, tc := range []struct {
		svc   string
		attrs map[string]string
		ok    bool
	}{
		{a, map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1"}, true},
		{a, map[string]string{"AWS_INSTANCE_IPV6": "2001:db8::1"}, false},
		{aaaa, map[string]string{"AWS_INSTANCE_IPV6": "2001:db8::1"}, true},
		{aaaa, map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1"}, false},
		{srv, map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "443"}, true},
		{srv, map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1"}, false},
		{cname, map[string]string{"AWS_INSTANCE_CNAME": "api.example.com"}, true},
		{cname, map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1"}, false},
		{weighted, map[string]string{"AWS_ALIAS_DNS_NAME": "lb.example.com"}, true},
		{weighted, map[string]string{"AWS_ALIAS_DNS_NAME": "lb.example.com", "AWS_INSTANCE_IPV4": "10.0.0.1"}, false},
		{a, map[string]string{"AWS_ALIAS_DNS_NAME": "lb.example.com"}, false}, // MULTIVALUE
	} {
		_, err := c.RegisterInstance(ctx, &sd.RegisterInstanceInput{ServiceId: aws.String(tc.svc), InstanceId: aws.String("x"), Attributes: tc.attrs})
		if tc.ok && err != nil || !tc.ok && !errorsAs(err, new(*types.InvalidInput)) {
			t.Errorf("service %s, %v: err = %v, want ok=%v", tc.svc, tc.attrs, err, tc.ok)
		}
	}
}

func TestCloudMapDiscover(t *testing.T) {
	e := newCMEnv(t)
	c, ctx := e.c, e.ctx
	nsID := e.httpNamespace("shop")
	svcID := aws.ToString(e.service(nsID, "payments", nil).Id)
	discover := func(in *sd.DiscoverInstancesInput) ([]string, *sd.DiscoverInstancesOutput) {
		t.Helper()
		if in.NamespaceName == nil {
			in.NamespaceName = aws.String("shop")
		}
		if in.ServiceName == nil {
			in.ServiceName = aws.String("payments")
		}
		out := must[*sd.DiscoverInstancesOutput](t)(c.DiscoverInstances(ctx, in))
		var ids []string
		for _, i := range out.Instances {
			ids = append(ids, aws.ToString(i.InstanceId))
		}
		slices.Sort(ids)
		return ids, out
	}
	revision := func() int64 {
		t.Helper()
		return aws.ToInt64(must[*sd.DiscoverInstancesRevisionOutput](t)(c.DiscoverInstancesRevision(ctx, &sd.DiscoverInstancesRevisionInput{
			NamespaceName: aws.String("shop"), ServiceName: aws.String("payments")})).InstancesRevision)
	}

	ids, out := discover(&sd.DiscoverInstancesInput{})
	rev0 := revision()
	if len(ids) != 0 || aws.ToInt64(out.InstancesRevision) != rev0 || rev0 <= 0 {
		t.Errorf("empty service: %v, revision %d / %d", ids, aws.ToInt64(out.InstancesRevision), rev0)
	}
	for i, stage := range []string{"prod", "prod", "prod", "beta", "beta"} {
		az := "a"
		if i%2 == 1 {
			az = "b"
		}
		e.register(svcID, "i-"+strconv.Itoa(i), map[string]string{"AWS_INSTANCE_IPV4": "10.0.0." + strconv.Itoa(i+1), "AWS_INSTANCE_PORT": "80", "stage": stage, "az": az})
	}
	rev1 := revision()
	if rev1 <= rev0 {
		t.Errorf("revision did not grow with registrations: %d then %d", rev0, rev1)
	}
	ids, out = discover(&sd.DiscoverInstancesInput{})
	if len(ids) != 5 || aws.ToInt64(out.InstancesRevision) != rev1 {
		t.Errorf("all = %v, revision %d want %d", ids, aws.ToInt64(out.InstancesRevision), rev1)
	}
	first := out.Instances[0]
	if aws.ToString(first.NamespaceName) != "shop" || aws.ToString(first.ServiceName) != "payments" ||
		first.HealthStatus != types.HealthStatusUnknown || first.Attributes["AWS_INSTANCE_PORT"] != "80" {
		t.Errorf("summary = %+v", first)
	}
	// A service without health checks ignores the health filter.
	if ids, _ := discover(&sd.DiscoverInstancesInput{HealthStatus: types.HealthStatusFilterUnhealthy}); len(ids) != 5 {
		t.Errorf("UNHEALTHY on a service without health checks = %v, want all", ids)
	}
	for name, tc := range map[string]struct {
		query, optional map[string]string
		want            []string
	}{
		"query":                       {map[string]string{"stage": "prod"}, nil, []string{"i-0", "i-1", "i-2"}},
		"query AND":                   {map[string]string{"stage": "prod", "az": "b"}, nil, []string{"i-1"}},
		"query no match":              {map[string]string{"stage": "dev"}, nil, nil},
		"optional narrows":            {map[string]string{"stage": "prod"}, map[string]string{"az": "a"}, []string{"i-0", "i-2"}},
		"optional without a match":    {map[string]string{"stage": "beta"}, map[string]string{"az": "c"}, []string{"i-3", "i-4"}},
		"optional alone":              {nil, map[string]string{"stage": "beta"}, []string{"i-3", "i-4"}},
		"reserved attribute in query": {map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.3"}, nil, []string{"i-2"}},
	} {
		if got, _ := discover(&sd.DiscoverInstancesInput{QueryParameters: tc.query, OptionalParameters: tc.optional}); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
	if ids, _ := discover(&sd.DiscoverInstancesInput{MaxResults: aws.Int32(2)}); len(ids) != 2 {
		t.Errorf("MaxResults 2 = %v", ids)
	}
	// The order is random: 5 instances in one order 40 times running is
	// a 1 in 120^39 chance.
	orders := map[string]bool{}
	for range 40 {
		_, out := discover(&sd.DiscoverInstancesInput{})
		var order []string
		for _, i := range out.Instances {
			order = append(order, aws.ToString(i.InstanceId))
		}
		orders[strings.Join(order, ",")] = true
	}
	if len(orders) < 2 {
		t.Errorf("DiscoverInstances always answers in the order %v", orders)
	}

	// Errors.
	_, err := c.DiscoverInstances(ctx, &sd.DiscoverInstancesInput{NamespaceName: aws.String("nope"), ServiceName: aws.String("payments")})
	apiErr[*types.NamespaceNotFound](t, err)
	_, err = c.DiscoverInstances(ctx, &sd.DiscoverInstancesInput{NamespaceName: aws.String("shop"), ServiceName: aws.String("nope")})
	apiErr[*types.ServiceNotFound](t, err)
	_, err = c.DiscoverInstancesRevision(ctx, &sd.DiscoverInstancesRevisionInput{NamespaceName: aws.String("shop"), ServiceName: aws.String("nope")})
	apiErr[*types.ServiceNotFound](t, err)
	for name, in := range map[string]*sd.DiscoverInstancesInput{
		"MaxResults 0":    {MaxResults: aws.Int32(0)},
		"MaxResults 1001": {MaxResults: aws.Int32(1001)},
		"health filter":   {HealthStatus: "SICK"},
		"query key":       {QueryParameters: map[string]string{"a b": "c"}},
		"service name":    {ServiceName: aws.String("a..b")},
		"owner account":   {OwnerAccount: aws.String("12")},
	} {
		in.NamespaceName, in.ServiceName = aws.String("shop"), cmp(in.ServiceName, "payments")
		_, err := c.DiscoverInstances(ctx, in)
		if !errorsAs(err, new(*types.InvalidInput)) {
			t.Errorf("%s: err = %v, want InvalidInput", name, err)
		}
	}
	// MaxResults up to 1000 is allowed here, unlike the List operations.
	discover(&sd.DiscoverInstancesInput{MaxResults: aws.Int32(1000)})

	// Deregistration moves the revision on.
	must[*sd.DeregisterInstanceOutput](t)(c.DeregisterInstance(ctx, &sd.DeregisterInstanceInput{ServiceId: aws.String(svcID), InstanceId: aws.String("i-4")}))
	if rev2 := revision(); rev2 <= rev1 {
		t.Errorf("revision after deregistration = %d, before %d", rev2, rev1)
	}
}

func cmp(p *string, def string) *string {
	if p == nil {
		return aws.String(def)
	}
	return p
}

func TestCloudMapCustomHealth(t *testing.T) {
	e := newCMEnv(t)
	c, ctx := e.c, e.ctx
	nsID := e.httpNamespace("shop")
	svcID := aws.ToString(e.service(nsID, "payments", func(in *sd.CreateServiceInput) {
		in.HealthCheckCustomConfig = &types.HealthCheckCustomConfig{FailureThreshold: aws.Int32(3)}
	}).Id)
	plain := aws.ToString(e.service(nsID, "plain", nil).Id)
	r53 := aws.ToString(e.service(nsID, "probed", func(in *sd.CreateServiceInput) {
		in.HealthCheckConfig = &types.HealthCheckConfig{Type: types.HealthCheckTypeTcp}
	}).Id)

	e.register(svcID, "up", map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1"})
	e.register(svcID, "down", map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.2", "AWS_INIT_HEALTH_STATUS": "UNHEALTHY"})
	e.register(plain, "p", map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.3"})
	_, err := c.RegisterInstance(ctx, &sd.RegisterInstanceInput{ServiceId: aws.String(r53), InstanceId: aws.String("x"), Attributes: map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.4"}})
	apiErr[*types.InvalidInput](t, err) // a Route 53 check needs the port
	e.register(r53, "r", map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.4", "AWS_INSTANCE_PORT": "5432"})

	discover := func(svc string, filter types.HealthStatusFilter) map[string]types.HealthStatus {
		t.Helper()
		out := must[*sd.DiscoverInstancesOutput](t)(c.DiscoverInstances(ctx, &sd.DiscoverInstancesInput{
			NamespaceName: aws.String("shop"), ServiceName: aws.String(svc), HealthStatus: filter}))
		got := map[string]types.HealthStatus{}
		for _, i := range out.Instances {
			got[aws.ToString(i.InstanceId)] = i.HealthStatus
		}
		return got
	}
	health := func(svc string, ids ...string) map[string]types.HealthStatus {
		t.Helper()
		in := &sd.GetInstancesHealthStatusInput{ServiceId: aws.String(svc)}
		if ids != nil {
			in.Instances = ids
		}
		return must[*sd.GetInstancesHealthStatusOutput](t)(c.GetInstancesHealthStatus(ctx, in)).Status
	}
	H, U := types.HealthStatusHealthy, types.HealthStatusUnhealthy
	for name, tc := range map[string]struct {
		filter types.HealthStatusFilter
		want   map[string]types.HealthStatus
	}{
		"default is HEALTHY":  {"", map[string]types.HealthStatus{"up": H}},
		"HEALTHY":             {types.HealthStatusFilterHealthy, map[string]types.HealthStatus{"up": H}},
		"UNHEALTHY":           {types.HealthStatusFilterUnhealthy, map[string]types.HealthStatus{"down": U}},
		"ALL":                 {types.HealthStatusFilterAll, map[string]types.HealthStatus{"up": H, "down": U}},
		"HEALTHY_OR_ELSE_ALL": {types.HealthStatusFilterHealthyOrElseAll, map[string]types.HealthStatus{"up": H}},
	} {
		if got := discover("payments", tc.filter); !maps.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
	if got := health(svcID); !maps.Equal(got, map[string]types.HealthStatus{"up": H, "down": U}) {
		t.Errorf("GetInstancesHealthStatus = %v", got)
	}
	if got := health(plain); !maps.Equal(got, map[string]types.HealthStatus{"p": types.HealthStatusUnknown}) {
		t.Errorf("health without checks = %v", got)
	}
	if got := discover("probed", ""); !maps.Equal(got, map[string]types.HealthStatus{"r": H}) {
		t.Errorf("Route 53–checked service = %v", got)
	}

	// Reports change the status at once, not the revision.
	rev := must[*sd.DiscoverInstancesRevisionOutput](t)(c.DiscoverInstancesRevision(ctx, &sd.DiscoverInstancesRevisionInput{NamespaceName: aws.String("shop"), ServiceName: aws.String("payments")})).InstancesRevision
	must[*sd.UpdateInstanceCustomHealthStatusOutput](t)(c.UpdateInstanceCustomHealthStatus(ctx, &sd.UpdateInstanceCustomHealthStatusInput{
		ServiceId: aws.String(svcID), InstanceId: aws.String("up"), Status: types.CustomHealthStatusUnhealthy}))
	if got := discover("payments", types.HealthStatusFilterHealthyOrElseAll); !maps.Equal(got, map[string]types.HealthStatus{"up": U, "down": U}) {
		t.Errorf("fail open with none healthy = %v", got)
	}
	if got := discover("payments", ""); len(got) != 0 {
		t.Errorf("HEALTHY with none healthy = %v", got)
	}
	out := must[*sd.DiscoverInstancesOutput](t)(c.DiscoverInstances(ctx, &sd.DiscoverInstancesInput{NamespaceName: aws.String("shop"), ServiceName: aws.String("payments")}))
	if aws.ToInt64(out.InstancesRevision) != aws.ToInt64(rev) {
		t.Errorf("revision moved with a health report: %d → %d", aws.ToInt64(rev), aws.ToInt64(out.InstancesRevision))
	}
	must[*sd.UpdateInstanceCustomHealthStatusOutput](t)(c.UpdateInstanceCustomHealthStatus(ctx, &sd.UpdateInstanceCustomHealthStatusInput{
		ServiceId: aws.String(svcID), InstanceId: aws.String("down"), Status: types.CustomHealthStatusHealthy}))
	if got := health(svcID, "down"); !maps.Equal(got, map[string]types.HealthStatus{"down": H}) {
		t.Errorf("health of down after a HEALTHY report = %v", got)
	}
	// Re-registering keeps the reported status.
	e.register(svcID, "down", map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.2", "AWS_INIT_HEALTH_STATUS": "UNHEALTHY"})
	if got := health(svcID, "down"); got["down"] != H {
		t.Errorf("health after re-registration = %v", got)
	}

	_, err = c.UpdateInstanceCustomHealthStatus(ctx, &sd.UpdateInstanceCustomHealthStatusInput{ServiceId: aws.String(plain), InstanceId: aws.String("p"), Status: types.CustomHealthStatusHealthy})
	apiErr[*types.CustomHealthNotFound](t, err)
	_, err = c.UpdateInstanceCustomHealthStatus(ctx, &sd.UpdateInstanceCustomHealthStatusInput{ServiceId: aws.String(svcID), InstanceId: aws.String("nope"), Status: types.CustomHealthStatusHealthy})
	apiErr[*types.InstanceNotFound](t, err)
	_, err = c.UpdateInstanceCustomHealthStatus(ctx, &sd.UpdateInstanceCustomHealthStatusInput{ServiceId: aws.String(svcID), InstanceId: aws.String("up"), Status: "SICK"})
	apiErr[*types.InvalidInput](t, err)
	_, err = c.GetInstancesHealthStatus(ctx, &sd.GetInstancesHealthStatusInput{ServiceId: aws.String(svcID), Instances: []string{"up", "nope"}})
	apiErr[*types.InstanceNotFound](t, err)

	// GetInstancesHealthStatus in pages.
	for i := range 5 {
		e.register(plain, "q"+strconv.Itoa(i), map[string]string{"AWS_INSTANCE_IPV4": "10.0.1." + strconv.Itoa(i)})
	}
	seen := map[string]types.HealthStatus{}
	p := sd.NewGetInstancesHealthStatusPaginator(c, &sd.GetInstancesHealthStatusInput{ServiceId: aws.String(plain), MaxResults: aws.Int32(2)})
	for p.HasMorePages() {
		page := must[*sd.GetInstancesHealthStatusOutput](t)(p.NextPage(ctx))
		if len(page.Status) > 2 {
			t.Fatalf("page of %d", len(page.Status))
		}
		maps.Copy(seen, page.Status)
	}
	if len(seen) != 6 {
		t.Errorf("paged health = %v", seen)
	}
}
