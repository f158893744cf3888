package server_test

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sd "github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
)

// disableHostPrefix is the client option docs/cloudmap.md gives Go SDK
// users: it keeps DiscoverInstances and DiscoverInstancesRevision on the
// configured endpoint instead of "data-" + its host.
func disableHostPrefix(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("DisableEndpointHostPrefix",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			return next.HandleInitialize(smithyhttp.DisableEndpointHostPrefix(ctx, true), in)
		}), middleware.Before)
}

// cloudMap returns a servicediscovery client signing with the given key.
func (ts *testServer) cloudMap(keyID, secret string, optFns ...func(*sd.Options)) *sd.Client {
	return sd.New(sd.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(ts.endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		HTTPClient:       &http.Client{Timeout: 10 * time.Second},
		RetryMaxAttempts: 1,
		APIOptions:       []func(*middleware.Stack) error{disableHostPrefix},
	}, optFns...)
}

func (ts *testServer) cloudMapAdmin() *sd.Client { return ts.cloudMap(ts.boot.AccessKeyID, ts.secret) }

// cmEnv is a server with a Cloud Map client and helpers that fail the test
// on errors.
type cmEnv struct {
	t   *testing.T
	ts  *testServer
	c   *sd.Client
	ctx context.Context
}

func newCMEnv(t *testing.T) *cmEnv {
	t.Helper()
	ts := startServer(t, t.TempDir(), lattice.Quotas{})
	return &cmEnv{t: t, ts: ts, c: ts.cloudMapAdmin(), ctx: context.Background()}
}

// operation asserts that opID is a finished operation of type typ and
// returns its targets.
func (e *cmEnv) operation(opID *string, typ types.OperationType) map[string]string {
	e.t.Helper()
	op := must[*sd.GetOperationOutput](e.t)(e.c.GetOperation(e.ctx, &sd.GetOperationInput{OperationId: opID})).Operation
	if op.Status != types.OperationStatusSuccess || op.Type != typ || aws.ToString(op.Id) != aws.ToString(opID) {
		e.t.Fatalf("operation %s = %s %s, want SUCCESS %s", aws.ToString(opID), op.Status, op.Type, typ)
	}
	if op.CreateDate == nil || time.Since(*op.CreateDate) > time.Minute || op.UpdateDate == nil {
		e.t.Errorf("operation dates = %v %v", op.CreateDate, op.UpdateDate)
	}
	return op.Targets
}

// httpNamespace creates an HTTP namespace and returns its ID.
func (e *cmEnv) httpNamespace(name string) string {
	e.t.Helper()
	out := must[*sd.CreateHttpNamespaceOutput](e.t)(e.c.CreateHttpNamespace(e.ctx, &sd.CreateHttpNamespaceInput{Name: aws.String(name)}))
	return e.operation(out.OperationId, types.OperationTypeCreateNamespace)["NAMESPACE"]
}

func (e *cmEnv) service(nsID, name string, mod func(*sd.CreateServiceInput)) *types.Service {
	e.t.Helper()
	in := &sd.CreateServiceInput{Name: aws.String(name), NamespaceId: aws.String(nsID)}
	if mod != nil {
		mod(in)
	}
	return must[*sd.CreateServiceOutput](e.t)(e.c.CreateService(e.ctx, in)).Service
}

func (e *cmEnv) register(svcID, instID string, attrs map[string]string) {
	e.t.Helper()
	out := must[*sd.RegisterInstanceOutput](e.t)(e.c.RegisterInstance(e.ctx, &sd.RegisterInstanceInput{
		ServiceId: aws.String(svcID), InstanceId: aws.String(instID), Attributes: attrs}))
	targets := e.operation(out.OperationId, types.OperationTypeRegisterInstance)
	if targets["SERVICE"] != svcID || targets["INSTANCE"] != instID {
		e.t.Errorf("register targets = %v", targets)
	}
}

func TestCloudMapNamespaces(t *testing.T) {
	e := newCMEnv(t)
	c, ctx := e.c, e.ctx
	acct := e.ts.boot.Account

	created := must[*sd.CreateHttpNamespaceOutput](t)(c.CreateHttpNamespace(ctx, &sd.CreateHttpNamespaceInput{
		Name: aws.String("shop"), Description: aws.String("the shop"), CreatorRequestId: aws.String("req-1"),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("orders")}}}))
	nsID := e.operation(created.OperationId, types.OperationTypeCreateNamespace)["NAMESPACE"]
	if !strings.HasPrefix(nsID, "ns-") || len(nsID) != 19 {
		t.Fatalf("namespace ID = %q, want ns-<16 characters>", nsID)
	}
	ns := must[*sd.GetNamespaceOutput](t)(c.GetNamespace(ctx, &sd.GetNamespaceInput{Id: aws.String(nsID)})).Namespace
	wantARN := "arn:aws:servicediscovery:us-east-1:" + acct + ":namespace/" + nsID
	if aws.ToString(ns.Arn) != wantARN || aws.ToString(ns.Name) != "shop" || ns.Type != types.NamespaceTypeHttp ||
		aws.ToString(ns.Description) != "the shop" || aws.ToString(ns.CreatorRequestId) != "req-1" ||
		aws.ToString(ns.ResourceOwner) != acct || aws.ToInt32(ns.ServiceCount) != 0 ||
		aws.ToString(ns.Properties.HttpProperties.HttpName) != "shop" || ns.Properties.DnsProperties == nil {
		t.Errorf("namespace = %+v %+v", ns, ns.Properties)
	}
	if ns.CreateDate == nil || time.Since(*ns.CreateDate) > time.Minute {
		t.Errorf("CreateDate = %v", ns.CreateDate)
	}
	// By ARN too.
	must[*sd.GetNamespaceOutput](t)(c.GetNamespace(ctx, &sd.GetNamespaceInput{Id: aws.String(wantARN)}))

	// A retry with the same CreatorRequestId answers the same operation; a
	// different request with that ID is a DuplicateRequest; the same name
	// with another ID already exists.
	again := must[*sd.CreateHttpNamespaceOutput](t)(c.CreateHttpNamespace(ctx, &sd.CreateHttpNamespaceInput{
		Name: aws.String("shop"), Description: aws.String("the shop"), CreatorRequestId: aws.String("req-1"),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("orders")}}}))
	if aws.ToString(again.OperationId) != aws.ToString(created.OperationId) {
		t.Errorf("retry answered operation %s, want %s", aws.ToString(again.OperationId), aws.ToString(created.OperationId))
	}
	_, err := c.CreateHttpNamespace(ctx, &sd.CreateHttpNamespaceInput{Name: aws.String("other"), CreatorRequestId: aws.String("req-1")})
	dup := apiErr[*types.DuplicateRequest](t, err)
	if aws.ToString(dup.DuplicateOperationId) != aws.ToString(created.OperationId) {
		t.Errorf("DuplicateOperationId = %q", aws.ToString(dup.DuplicateOperationId))
	}
	_, err = c.CreateHttpNamespace(ctx, &sd.CreateHttpNamespaceInput{Name: aws.String("shop")})
	exists := apiErr[*types.NamespaceAlreadyExists](t, err)
	if aws.ToString(exists.NamespaceId) != nsID || aws.ToString(exists.CreatorRequestId) != "req-1" {
		t.Errorf("NamespaceAlreadyExists = %+v", exists)
	}

	// Private DNS: the VPC must be the caller's; the name may repeat in
	// another namespace type, and then HttpName gets a suffix.
	_, err = c.CreatePrivateDnsNamespace(ctx, &sd.CreatePrivateDnsNamespaceInput{Name: aws.String("shop"), Vpc: aws.String("vpc-0123456789abcdef0")})
	apiErr[*types.InvalidInput](t, err)
	priv := must[*sd.CreatePrivateDnsNamespaceOutput](t)(c.CreatePrivateDnsNamespace(ctx, &sd.CreatePrivateDnsNamespaceInput{
		Name: aws.String("shop"), Vpc: aws.String(e.ts.boot.VPCID),
		Properties: &types.PrivateDnsNamespaceProperties{DnsProperties: &types.PrivateDnsPropertiesMutable{SOA: &types.SOA{TTL: aws.Int64(60)}}}}))
	privID := e.operation(priv.OperationId, types.OperationTypeCreateNamespace)["NAMESPACE"]
	pns := must[*sd.GetNamespaceOutput](t)(c.GetNamespace(ctx, &sd.GetNamespaceInput{Id: aws.String(privID)})).Namespace
	httpName := aws.ToString(pns.Properties.HttpProperties.HttpName)
	if pns.Type != types.NamespaceTypeDnsPrivate || !strings.HasPrefix(httpName, "shop-") || len(httpName) != len("shop-")+16 ||
		!strings.HasPrefix(aws.ToString(pns.Properties.DnsProperties.HostedZoneId), "Z") ||
		aws.ToInt64(pns.Properties.DnsProperties.SOA.TTL) != 60 {
		t.Errorf("private namespace = %+v, HttpName %q, DNS %+v", pns, httpName, pns.Properties.DnsProperties)
	}
	_, err = c.CreatePrivateDnsNamespace(ctx, &sd.CreatePrivateDnsNamespaceInput{Name: aws.String("SHOP"), Vpc: aws.String(e.ts.boot.VPCID)})
	apiErr[*types.NamespaceAlreadyExists](t, err)

	// Public DNS names must be domain names.
	_, err = c.CreatePublicDnsNamespace(ctx, &sd.CreatePublicDnsNamespaceInput{Name: aws.String("not_a domain")})
	apiErr[*types.InvalidInput](t, err)
	pub := must[*sd.CreatePublicDnsNamespaceOutput](t)(c.CreatePublicDnsNamespace(ctx, &sd.CreatePublicDnsNamespaceInput{Name: aws.String("example.com")}))
	pubID := e.operation(pub.OperationId, types.OperationTypeCreateNamespace)["NAMESPACE"]

	// Invalid inputs, each an InvalidInput.
	for name, in := range map[string]*sd.CreateHttpNamespaceInput{
		"space in name":    {Name: aws.String("my shop")},
		"name too long":    {Name: aws.String(strings.Repeat("a", 1025))},
		"description":      {Name: aws.String("d"), Description: aws.String(strings.Repeat("x", 1025))},
		"reserved tag":     {Name: aws.String("t"), Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("v")}}},
		"request ID > 64":  {Name: aws.String("r"), CreatorRequestId: aws.String(strings.Repeat("r", 65))},
		"duplicate tagkey": {Name: aws.String("u"), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("1")}, {Key: aws.String("k"), Value: aws.String("2")}}},
	} {
		_, err := c.CreateHttpNamespace(ctx, in)
		if !errorsAs(err, new(*types.InvalidInput)) {
			t.Errorf("%s: err = %v, want InvalidInput", name, err)
		}
	}

	// Updates.
	up := must[*sd.UpdateHttpNamespaceOutput](t)(c.UpdateHttpNamespace(ctx, &sd.UpdateHttpNamespaceInput{
		Id: aws.String(nsID), Namespace: &types.HttpNamespaceChange{Description: aws.String("new")}}))
	e.operation(up.OperationId, types.OperationTypeUpdateNamespace)
	if d := must[*sd.GetNamespaceOutput](t)(c.GetNamespace(ctx, &sd.GetNamespaceInput{Id: aws.String(nsID)})).Namespace.Description; aws.ToString(d) != "new" {
		t.Errorf("description after update = %q", aws.ToString(d))
	}
	_, err = c.UpdateHttpNamespace(ctx, &sd.UpdateHttpNamespaceInput{Id: aws.String(privID), Namespace: &types.HttpNamespaceChange{Description: aws.String("x")}})
	apiErr[*types.InvalidInput](t, err)
	must[*sd.UpdatePrivateDnsNamespaceOutput](t)(c.UpdatePrivateDnsNamespace(ctx, &sd.UpdatePrivateDnsNamespaceInput{Id: aws.String(privID),
		Namespace: &types.PrivateDnsNamespaceChange{Properties: &types.PrivateDnsNamespacePropertiesChange{
			DnsProperties: &types.PrivateDnsPropertiesMutableChange{SOA: &types.SOAChange{TTL: aws.Int64(300)}}}}}))
	pns = must[*sd.GetNamespaceOutput](t)(c.GetNamespace(ctx, &sd.GetNamespaceInput{Id: aws.String(privID)})).Namespace
	if aws.ToInt64(pns.Properties.DnsProperties.SOA.TTL) != 300 {
		t.Errorf("SOA TTL after update = %d", aws.ToInt64(pns.Properties.DnsProperties.SOA.TTL))
	}
	must[*sd.UpdatePublicDnsNamespaceOutput](t)(c.UpdatePublicDnsNamespace(ctx, &sd.UpdatePublicDnsNamespaceInput{Id: aws.String(pubID),
		Namespace: &types.PublicDnsNamespaceChange{Description: aws.String("public")}}))
	_, err = c.UpdateHttpNamespace(ctx, &sd.UpdateHttpNamespaceInput{Id: aws.String("ns-aaaaaaaaaaaaaaaa"), Namespace: &types.HttpNamespaceChange{Description: aws.String("x")}})
	apiErr[*types.NamespaceNotFound](t, err)

	// Deletion: refused while services remain.
	svc := e.service(nsID, "payments", nil)
	_, err = c.DeleteNamespace(ctx, &sd.DeleteNamespaceInput{Id: aws.String(nsID)})
	apiErr[*types.ResourceInUse](t, err)
	must[*sd.DeleteServiceOutput](t)(c.DeleteService(ctx, &sd.DeleteServiceInput{Id: svc.Id}))
	del := must[*sd.DeleteNamespaceOutput](t)(c.DeleteNamespace(ctx, &sd.DeleteNamespaceInput{Id: aws.String(nsID)}))
	e.operation(del.OperationId, types.OperationTypeDeleteNamespace)
	_, err = c.GetNamespace(ctx, &sd.GetNamespaceInput{Id: aws.String(nsID)})
	apiErr[*types.NamespaceNotFound](t, err)
	_, err = c.DeleteNamespace(ctx, &sd.DeleteNamespaceInput{Id: aws.String(nsID)})
	apiErr[*types.NamespaceNotFound](t, err)
	// The name is free again.
	e.httpNamespace("shop")
}

func TestCloudMapListNamespaces(t *testing.T) {
	e := newCMEnv(t)
	c, ctx := e.c, e.ctx
	for _, n := range []string{"alpha", "alps", "beta", "gamma", "delta"} {
		e.httpNamespace(n)
	}
	must[*sd.CreatePrivateDnsNamespaceOutput](t)(c.CreatePrivateDnsNamespace(ctx, &sd.CreatePrivateDnsNamespaceInput{Name: aws.String("corp.internal"), Vpc: aws.String(e.ts.boot.VPCID)}))

	list := func(max int32, filters ...types.NamespaceFilter) []string {
		t.Helper()
		var names []string
		p := sd.NewListNamespacesPaginator(c, &sd.ListNamespacesInput{MaxResults: aws.Int32(max), Filters: filters})
		pages := 0
		for p.HasMorePages() {
			out := must[*sd.ListNamespacesOutput](t)(p.NextPage(ctx))
			if len(out.Namespaces) > int(max) {
				t.Fatalf("page of %d, max %d", len(out.Namespaces), max)
			}
			for _, ns := range out.Namespaces {
				names = append(names, aws.ToString(ns.Name))
				if ns.CreateDate == nil || ns.Arn == nil || ns.Properties == nil {
					t.Errorf("summary = %+v", ns)
				}
			}
			pages++
		}
		slices.Sort(names)
		return names
	}
	if got := list(2); len(got) != 6 {
		t.Errorf("all namespaces in pages of 2 = %v", got)
	}
	for name, tc := range map[string]struct {
		f    types.NamespaceFilter
		want []string
	}{
		"type EQ":          {types.NamespaceFilter{Name: types.NamespaceFilterNameType, Values: []string{"DNS_PRIVATE"}}, []string{"corp.internal"}},
		"type IN":          {types.NamespaceFilter{Name: types.NamespaceFilterNameType, Values: []string{"DNS_PRIVATE", "DNS_PUBLIC"}, Condition: types.FilterConditionIn}, []string{"corp.internal"}},
		"name BEGINS_WITH": {types.NamespaceFilter{Name: types.NamespaceFilterNameName, Values: []string{"al"}, Condition: types.FilterConditionBeginsWith}, []string{"alpha", "alps"}},
		"http name EQ":     {types.NamespaceFilter{Name: types.NamespaceFilterNameHttpName, Values: []string{"beta"}}, []string{"beta"}},
		"owner SELF":       {types.NamespaceFilter{Name: types.NamespaceFilterNameResourceOwner, Values: []string{"SELF"}}, []string{"alpha", "alps", "beta", "corp.internal", "delta", "gamma"}},
		"owner OTHERS":     {types.NamespaceFilter{Name: types.NamespaceFilterNameResourceOwner, Values: []string{"OTHER_ACCOUNTS"}}, nil},
	} {
		if got := list(1, tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
	for name, f := range map[string]types.NamespaceFilter{
		"type BEGINS_WITH": {Name: types.NamespaceFilterNameType, Values: []string{"HTTP"}, Condition: types.FilterConditionBeginsWith},
		"bad type":         {Name: types.NamespaceFilterNameType, Values: []string{"LDAP"}},
		"EQ two values":    {Name: types.NamespaceFilterNameName, Values: []string{"a", "b"}},
		"no values":        {Name: types.NamespaceFilterNameName, Values: []string{}},
		"unknown name":     {Name: "COLOR", Values: []string{"red"}},
	} {
		_, err := c.ListNamespaces(ctx, &sd.ListNamespacesInput{Filters: []types.NamespaceFilter{f}})
		if !errorsAs(err, new(*types.InvalidInput)) {
			t.Errorf("%s: err = %v, want InvalidInput", name, err)
		}
	}
	_, err := c.ListNamespaces(ctx, &sd.ListNamespacesInput{MaxResults: aws.Int32(101)})
	apiErr[*types.InvalidInput](t, err)
	_, err = c.ListNamespaces(ctx, &sd.ListNamespacesInput{NextToken: aws.String("bogus")})
	apiErr[*types.InvalidInput](t, err)
	// A token of one listing is refused by another.
	svcNS := e.httpNamespace("epsilon")
	e.service(svcNS, "a", nil)
	e.service(svcNS, "b", nil)
	page := must[*sd.ListServicesOutput](t)(c.ListServices(ctx, &sd.ListServicesInput{MaxResults: aws.Int32(1)}))
	_, err = c.ListNamespaces(ctx, &sd.ListNamespacesInput{NextToken: page.NextToken})
	apiErr[*types.InvalidInput](t, err)
}

func TestCloudMapServices(t *testing.T) {
	e := newCMEnv(t)
	c, ctx := e.c, e.ctx
	acct := e.ts.boot.Account
	nsID := e.httpNamespace("shop")

	svc := e.service(nsID, "payments", func(in *sd.CreateServiceInput) {
		in.Description = aws.String("takes money")
		in.CreatorRequestId = aws.String("svc-req")
		in.Tags = []types.Tag{{Key: aws.String("team"), Value: aws.String("billing")}}
	})
	if !strings.HasPrefix(aws.ToString(svc.Id), "srv-") || len(aws.ToString(svc.Id)) != 20 ||
		aws.ToString(svc.Arn) != "arn:aws:servicediscovery:us-east-1:"+acct+":service/"+aws.ToString(svc.Id) ||
		svc.Type != types.ServiceTypeHttp || aws.ToString(svc.NamespaceId) != nsID || aws.ToString(svc.Description) != "takes money" ||
		aws.ToString(svc.CreatorRequestId) != "svc-req" || aws.ToString(svc.CreatedByAccount) != acct ||
		aws.ToString(svc.ResourceOwner) != acct || svc.DnsConfig == nil || len(svc.DnsConfig.DnsRecords) != 0 {
		t.Errorf("service = %+v", svc)
	}
	// A retry of the creating request answers the service; another request
	// for the name is ServiceAlreadyExists.
	retry := e.service(nsID, "payments", func(in *sd.CreateServiceInput) { in.CreatorRequestId = aws.String("svc-req") })
	if aws.ToString(retry.Id) != aws.ToString(svc.Id) {
		t.Errorf("retry created %s, want %s", aws.ToString(retry.Id), aws.ToString(svc.Id))
	}
	_, err := c.CreateService(ctx, &sd.CreateServiceInput{Name: aws.String("payments"), NamespaceId: aws.String(nsID)})
	ae := apiErr[*types.ServiceAlreadyExists](t, err)
	if aws.ToString(ae.ServiceId) != aws.ToString(svc.Id) || aws.ToString(ae.CreatorRequestId) != "svc-req" {
		t.Errorf("ServiceAlreadyExists = %+v", ae)
	}
	// HTTP namespaces are case-sensitive.
	e.service(nsID, "Payments", nil)
	if n := aws.ToInt32(must[*sd.GetNamespaceOutput](t)(c.GetNamespace(ctx, &sd.GetNamespaceInput{Id: aws.String(nsID)})).Namespace.ServiceCount); n != 2 {
		t.Errorf("ServiceCount = %d, want 2", n)
	}

	got := must[*sd.GetServiceOutput](t)(c.GetService(ctx, &sd.GetServiceInput{Id: svc.Arn})).Service
	if aws.ToString(got.Id) != aws.ToString(svc.Id) || aws.ToInt32(got.InstanceCount) != 0 {
		t.Errorf("GetService by ARN = %+v", got)
	}
	_, err = c.GetService(ctx, &sd.GetServiceInput{Id: aws.String("srv-aaaaaaaaaaaaaaaa")})
	apiErr[*types.ServiceNotFound](t, err)
	_, err = c.GetService(ctx, &sd.GetServiceInput{Id: aws.String("arn:aws:vpc-lattice:us-east-1:" + acct + ":service/svc-0123456789abcdef0")})
	apiErr[*types.InvalidInput](t, err)

	// DNS services in a private namespace.
	priv := must[*sd.CreatePrivateDnsNamespaceOutput](t)(c.CreatePrivateDnsNamespace(ctx, &sd.CreatePrivateDnsNamespaceInput{Name: aws.String("corp.internal"), Vpc: aws.String(e.ts.boot.VPCID)}))
	privID := e.operation(priv.OperationId, types.OperationTypeCreateNamespace)["NAMESPACE"]
	dnsSvc := e.service(privID, "web", func(in *sd.CreateServiceInput) {
		in.DnsConfig = &types.DnsConfig{DnsRecords: []types.DnsRecord{{Type: types.RecordTypeA, TTL: aws.Int64(60)}, {Type: types.RecordTypeAaaa, TTL: aws.Int64(60)}}}
		in.HealthCheckCustomConfig = &types.HealthCheckCustomConfig{}
	})
	if dnsSvc.Type != types.ServiceTypeDnsHttp || dnsSvc.DnsConfig.RoutingPolicy != types.RoutingPolicyMultivalue ||
		len(dnsSvc.DnsConfig.DnsRecords) != 2 || aws.ToInt32(dnsSvc.HealthCheckCustomConfig.FailureThreshold) != 1 {
		t.Errorf("DNS service = %+v %+v", dnsSvc, dnsSvc.DnsConfig)
	}
	// DNS names ignore case; the deprecated DnsConfig.NamespaceId works.
	_, err = c.CreateService(ctx, &sd.CreateServiceInput{Name: aws.String("WEB"), NamespaceId: aws.String(privID)})
	apiErr[*types.ServiceAlreadyExists](t, err)
	e.service("", "api", func(in *sd.CreateServiceInput) {
		in.NamespaceId = nil
		in.DnsConfig = &types.DnsConfig{NamespaceId: aws.String(privID), DnsRecords: []types.DnsRecord{{Type: types.RecordTypeSrv, TTL: aws.Int64(10)}}}
	})

	for name, mod := range map[string]func(*sd.CreateServiceInput){
		"DnsConfig in an HTTP namespace": func(in *sd.CreateServiceInput) {
			in.DnsConfig = &types.DnsConfig{DnsRecords: []types.DnsRecord{{Type: types.RecordTypeA, TTL: aws.Int64(1)}}}
		},
		"both health checks": func(in *sd.CreateServiceInput) {
			in.HealthCheckConfig = &types.HealthCheckConfig{Type: types.HealthCheckTypeHttp}
			in.HealthCheckCustomConfig = &types.HealthCheckCustomConfig{}
		},
		"TCP check with a path": func(in *sd.CreateServiceInput) {
			in.HealthCheckConfig = &types.HealthCheckConfig{Type: types.HealthCheckTypeTcp, ResourcePath: aws.String("/x")}
		},
		"failure threshold 11": func(in *sd.CreateServiceInput) {
			in.HealthCheckConfig = &types.HealthCheckConfig{Type: types.HealthCheckTypeHttp, FailureThreshold: aws.Int32(11)}
		},
		"bad name":      func(in *sd.CreateServiceInput) { in.Name = aws.String("-bad") },
		"name too long": func(in *sd.CreateServiceInput) { in.Name = aws.String(strings.Repeat("a.", 64) + "a") },
		"no namespace":  func(in *sd.CreateServiceInput) { in.NamespaceId = nil },
		"type DNS":      func(in *sd.CreateServiceInput) { in.Type = "DNS" },
		"too many tags": func(in *sd.CreateServiceInput) { in.Tags = manyTags(201) },
		"A and SRV": func(in *sd.CreateServiceInput) {
			in.NamespaceId = aws.String(privID)
			in.DnsConfig = dnsRecords("A", "SRV")
		},
		"CNAME MULTIVALE": func(in *sd.CreateServiceInput) {
			in.NamespaceId = aws.String(privID)
			in.DnsConfig = dnsRecords("CNAME")
		},
		"Route 53 check in a private namespace": func(in *sd.CreateServiceInput) {
			in.NamespaceId = aws.String(privID)
			in.HealthCheckConfig = &types.HealthCheckConfig{Type: types.HealthCheckTypeHttp}
		},
	} {
		in := &sd.CreateServiceInput{Name: aws.String("x" + strings.ReplaceAll(strings.ToLower(name[:3]), " ", "")), NamespaceId: aws.String(nsID)}
		mod(in)
		_, err := c.CreateService(ctx, in)
		if !errorsAs(err, new(*types.InvalidInput)) {
			t.Errorf("%s: err = %v, want InvalidInput", name, err)
		}
	}
	_, err = c.CreateService(ctx, &sd.CreateServiceInput{Name: aws.String("x"), NamespaceId: aws.String("ns-aaaaaaaaaaaaaaaa")})
	apiErr[*types.NamespaceNotFound](t, err)
	_, err = c.CreateService(ctx, &sd.CreateServiceInput{Name: aws.String("tagged"), NamespaceId: aws.String(nsID), Tags: manyTags(51)})
	apiErr[*types.TooManyTagsException](t, err)

	// ListServices, filtered by namespace, in pages.
	var names []string
	p := sd.NewListServicesPaginator(c, &sd.ListServicesInput{MaxResults: aws.Int32(1),
		Filters: []types.ServiceFilter{{Name: types.ServiceFilterNameNamespaceId, Values: []string{privID}}}})
	for p.HasMorePages() {
		for _, s := range must[*sd.ListServicesOutput](t)(p.NextPage(ctx)).Services {
			names = append(names, aws.ToString(s.Name))
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"api", "web"}) {
		t.Errorf("services of the private namespace = %v", names)
	}
	all := must[*sd.ListServicesOutput](t)(c.ListServices(ctx, &sd.ListServicesInput{}))
	if len(all.Services) != 4 || all.NextToken != nil {
		t.Errorf("all services = %d, next %v", len(all.Services), all.NextToken)
	}
	_, err = c.ListServices(ctx, &sd.ListServicesInput{Filters: []types.ServiceFilter{{Name: types.ServiceFilterNameNamespaceId, Values: []string{nsID}, Condition: types.FilterConditionIn}}})
	apiErr[*types.InvalidInput](t, err)

	// UpdateService: description, TTLs, Route 53 health check.
	upd := must[*sd.UpdateServiceOutput](t)(c.UpdateService(ctx, &sd.UpdateServiceInput{Id: dnsSvc.Id, Service: &types.ServiceChange{
		Description: aws.String("front"),
		DnsConfig:   &types.DnsConfigChange{DnsRecords: []types.DnsRecord{{Type: types.RecordTypeAaaa, TTL: aws.Int64(5)}, {Type: types.RecordTypeA, TTL: aws.Int64(5)}}}}}))
	if tg := e.operation(upd.OperationId, types.OperationTypeUpdateService); tg["SERVICE"] != aws.ToString(dnsSvc.Id) {
		t.Errorf("update targets = %v", tg)
	}
	got = must[*sd.GetServiceOutput](t)(c.GetService(ctx, &sd.GetServiceInput{Id: dnsSvc.Id})).Service
	if aws.ToString(got.Description) != "front" || aws.ToInt64(got.DnsConfig.DnsRecords[0].TTL) != 5 || got.HealthCheckCustomConfig == nil {
		t.Errorf("updated service = %+v", got)
	}
	_, err = c.UpdateService(ctx, &sd.UpdateServiceInput{Id: dnsSvc.Id, Service: &types.ServiceChange{DnsConfig: &types.DnsConfigChange{DnsRecords: []types.DnsRecord{{Type: types.RecordTypeSrv, TTL: aws.Int64(5)}}}}})
	apiErr[*types.InvalidInput](t, err)
	_, err = c.UpdateService(ctx, &sd.UpdateServiceInput{Id: dnsSvc.Id, Service: &types.ServiceChange{HealthCheckConfig: &types.HealthCheckConfig{Type: types.HealthCheckTypeHttp}}})
	apiErr[*types.InvalidInput](t, err)
	must[*sd.UpdateServiceOutput](t)(c.UpdateService(ctx, &sd.UpdateServiceInput{Id: svc.Id, Service: &types.ServiceChange{
		HealthCheckConfig: &types.HealthCheckConfig{Type: types.HealthCheckTypeHttps, FailureThreshold: aws.Int32(3)}}}))
	hc := must[*sd.GetServiceOutput](t)(c.GetService(ctx, &sd.GetServiceInput{Id: svc.Id})).Service.HealthCheckConfig
	if hc == nil || hc.Type != types.HealthCheckTypeHttps || aws.ToString(hc.ResourcePath) != "/" || aws.ToInt32(hc.FailureThreshold) != 3 {
		t.Errorf("health check after update = %+v", hc)
	}
	// Omitting HealthCheckConfig removes it.
	must[*sd.UpdateServiceOutput](t)(c.UpdateService(ctx, &sd.UpdateServiceInput{Id: svc.Id, Service: &types.ServiceChange{}}))
	if hc := must[*sd.GetServiceOutput](t)(c.GetService(ctx, &sd.GetServiceInput{Id: svc.Id})).Service.HealthCheckConfig; hc != nil {
		t.Errorf("health check after an update without one = %+v", hc)
	}
	_, err = c.UpdateService(ctx, &sd.UpdateServiceInput{Id: aws.String("srv-aaaaaaaaaaaaaaaa"), Service: &types.ServiceChange{}})
	apiErr[*types.ServiceNotFound](t, err)

	// Service attributes.
	must[*sd.UpdateServiceAttributesOutput](t)(c.UpdateServiceAttributes(ctx, &sd.UpdateServiceAttributesInput{ServiceId: svc.Id,
		Attributes: map[string]string{"Port": "80", "Timeout": "15"}}))
	attrs := must[*sd.GetServiceAttributesOutput](t)(c.GetServiceAttributes(ctx, &sd.GetServiceAttributesInput{ServiceId: svc.Id})).ServiceAttributes
	if aws.ToString(attrs.ServiceArn) != aws.ToString(svc.Arn) || attrs.Attributes["Port"] != "80" || len(attrs.Attributes) != 2 || aws.ToString(attrs.ResourceOwner) != acct {
		t.Errorf("service attributes = %+v", attrs)
	}
	must[*sd.DeleteServiceAttributesOutput](t)(c.DeleteServiceAttributes(ctx, &sd.DeleteServiceAttributesInput{ServiceId: svc.Id, Attributes: []string{"Port", "absent"}}))
	attrs = must[*sd.GetServiceAttributesOutput](t)(c.GetServiceAttributes(ctx, &sd.GetServiceAttributesInput{ServiceId: svc.Id})).ServiceAttributes
	if len(attrs.Attributes) != 1 || attrs.Attributes["Timeout"] != "15" {
		t.Errorf("service attributes after delete = %v", attrs.Attributes)
	}
	many := map[string]string{}
	for i := range 30 {
		many["a"+strconv.Itoa(i)] = "v"
	}
	_, err = c.UpdateServiceAttributes(ctx, &sd.UpdateServiceAttributesInput{ServiceId: svc.Id, Attributes: many})
	apiErr[*types.ServiceAttributesLimitExceededException](t, err)
	many["a30"] = "v"
	_, err = c.UpdateServiceAttributes(ctx, &sd.UpdateServiceAttributesInput{ServiceId: svc.Id, Attributes: many})
	apiErr[*types.InvalidInput](t, err)
	_, err = c.GetServiceAttributes(ctx, &sd.GetServiceAttributesInput{ServiceId: aws.String("srv-aaaaaaaaaaaaaaaa")})
	apiErr[*types.ServiceNotFound](t, err)

	// DeleteService: refused while instances remain.
	e.register(aws.ToString(svc.Id), "i-1", map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1"})
	_, err = c.DeleteService(ctx, &sd.DeleteServiceInput{Id: svc.Id})
	apiErr[*types.ResourceInUse](t, err)
	must[*sd.DeregisterInstanceOutput](t)(c.DeregisterInstance(ctx, &sd.DeregisterInstanceInput{ServiceId: svc.Id, InstanceId: aws.String("i-1")}))
	must[*sd.DeleteServiceOutput](t)(c.DeleteService(ctx, &sd.DeleteServiceInput{Id: svc.Arn}))
	_, err = c.DeleteService(ctx, &sd.DeleteServiceInput{Id: svc.Id})
	apiErr[*types.ServiceNotFound](t, err)
	// Its name is free again.
	e.service(nsID, "payments", nil)
}

func manyTags(n int) []types.Tag {
	tags := make([]types.Tag, n)
	for i := range tags {
		tags[i] = types.Tag{Key: aws.String("k" + strconv.Itoa(i)), Value: aws.String("v")}
	}
	return tags
}

func dnsRecords(typs ...types.RecordType) *types.DnsConfig {
	d := &types.DnsConfig{}
	for _, t := range typs {
		d.DnsRecords = append(d.DnsRecords, types.DnsRecord{Type: t, TTL: aws.Int64(60)})
	}
	return d
}
