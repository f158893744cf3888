package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sd "github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"
	"github.com/aws/smithy-go"

	"github.com/trellis-mesh/trellis/internal/server"
)

func TestCloudMapOperationsAndTags(t *testing.T) {
	e := newCMEnv(t)
	c, ctx := e.c, e.ctx
	acct := e.ts.boot.Account
	start := time.Now()
	nsID := e.httpNamespace("shop")
	other := e.httpNamespace("other")
	svc := e.service(nsID, "payments", func(in *sd.CreateServiceInput) {
		in.Tags = []types.Tag{{Key: aws.String("team"), Value: aws.String("billing")}}
	})
	svcID := aws.ToString(svc.Id)
	e.register(svcID, "i-1", map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1"})
	e.register(svcID, "i-2", map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.2"})
	must[*sd.DeregisterInstanceOutput](t)(c.DeregisterInstance(ctx, &sd.DeregisterInstanceInput{ServiceId: svc.Id, InstanceId: aws.String("i-2")}))

	list := func(max int32, filters ...types.OperationFilter) []string {
		t.Helper()
		var ids []string
		p := sd.NewListOperationsPaginator(c, &sd.ListOperationsInput{MaxResults: aws.Int32(max), Filters: filters})
		for p.HasMorePages() {
			page := must[*sd.ListOperationsOutput](t)(p.NextPage(ctx))
			if len(page.Operations) > int(max) {
				t.Fatalf("page of %d", len(page.Operations))
			}
			for _, op := range page.Operations {
				if op.Status != types.OperationStatusSuccess {
					t.Errorf("operation %s is %s", aws.ToString(op.Id), op.Status)
				}
				ids = append(ids, aws.ToString(op.Id))
			}
		}
		return ids
	}
	all := list(2)
	if len(all) != 5 {
		t.Fatalf("operations = %d, want 5 (2 namespaces, 2 registrations, 1 deregistration)", len(all))
	}
	// Oldest first.
	first := must[*sd.GetOperationOutput](t)(c.GetOperation(ctx, &sd.GetOperationInput{OperationId: aws.String(all[0])})).Operation
	if first.Type != types.OperationTypeCreateNamespace || first.Targets["NAMESPACE"] != nsID {
		t.Errorf("first operation = %+v", first)
	}
	now := time.Now()
	for name, tc := range map[string]struct {
		f    types.OperationFilter
		want int
	}{
		"namespace":         {types.OperationFilter{Name: types.OperationFilterNameNamespaceId, Values: []string{nsID}}, 4},
		"other namespace":   {types.OperationFilter{Name: types.OperationFilterNameNamespaceId, Values: []string{other}}, 1},
		"service":           {types.OperationFilter{Name: types.OperationFilterNameServiceId, Values: []string{svcID}}, 3},
		"status":            {types.OperationFilter{Name: types.OperationFilterNameStatus, Values: []string{"SUCCESS"}}, 5},
		"status IN":         {types.OperationFilter{Name: types.OperationFilterNameStatus, Values: []string{"PENDING", "FAIL"}, Condition: types.FilterConditionIn}, 0},
		"type IN":           {types.OperationFilter{Name: types.OperationFilterNameType, Values: []string{"REGISTER_INSTANCE", "DEREGISTER_INSTANCE"}, Condition: types.FilterConditionIn}, 3},
		"update date":       {types.OperationFilter{Name: types.OperationFilterNameUpdateDate, Condition: types.FilterConditionBetween, Values: []string{epochString(start.Add(-time.Second)), epochString(now.Add(time.Second))}}, 5},
		"update date, past": {types.OperationFilter{Name: types.OperationFilterNameUpdateDate, Condition: types.FilterConditionBetween, Values: []string{"0", "1000"}}, 0},
	} {
		if got := list(100, tc.f); len(got) != tc.want {
			t.Errorf("%s: %d operations, want %d", name, len(got), tc.want)
		}
	}
	for name, f := range map[string]types.OperationFilter{
		"date EQ":       {Name: types.OperationFilterNameUpdateDate, Values: []string{"1"}},
		"date not time": {Name: types.OperationFilterNameUpdateDate, Condition: types.FilterConditionBetween, Values: []string{"yesterday", "today"}},
		"status value":  {Name: types.OperationFilterNameStatus, Values: []string{"DONE"}},
		"service IN":    {Name: types.OperationFilterNameServiceId, Values: []string{svcID}, Condition: types.FilterConditionIn},
	} {
		_, err := c.ListOperations(ctx, &sd.ListOperationsInput{Filters: []types.OperationFilter{f}})
		if !errorsAs(err, new(*types.InvalidInput)) {
			t.Errorf("%s: err = %v, want InvalidInput", name, err)
		}
	}
	_, err := c.GetOperation(ctx, &sd.GetOperationInput{OperationId: aws.String("abcdefghijklmnopqrstuvwxyz234567-abcdefgh")})
	apiErr[*types.OperationNotFound](t, err)
	must[*sd.GetOperationOutput](t)(c.GetOperation(ctx, &sd.GetOperationInput{OperationId: aws.String(all[0]), OwnerAccount: aws.String(acct)}))
	_, err = c.GetOperation(ctx, &sd.GetOperationInput{OperationId: aws.String(all[0]), OwnerAccount: aws.String("999988887777")})
	apiErr[*types.OperationNotFound](t, err)

	// Tags of services and namespaces.
	tags := func(arn *string) map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, tg := range must[*sd.ListTagsForResourceOutput](t)(c.ListTagsForResource(ctx, &sd.ListTagsForResourceInput{ResourceARN: arn})).Tags {
			out[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		return out
	}
	if got := tags(svc.Arn); len(got) != 1 || got["team"] != "billing" {
		t.Errorf("service tags = %v", got)
	}
	nsARN := aws.String("arn:aws:servicediscovery:us-east-1:" + acct + ":namespace/" + nsID)
	must[*sd.TagResourceOutput](t)(c.TagResource(ctx, &sd.TagResourceInput{ResourceARN: nsARN,
		Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("prod")}, {Key: aws.String("cost"), Value: aws.String("")}}}))
	must[*sd.TagResourceOutput](t)(c.TagResource(ctx, &sd.TagResourceInput{ResourceARN: nsARN, Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("dev")}}}))
	if got := tags(nsARN); len(got) != 2 || got["env"] != "dev" {
		t.Errorf("namespace tags = %v", got)
	}
	must[*sd.UntagResourceOutput](t)(c.UntagResource(ctx, &sd.UntagResourceInput{ResourceARN: nsARN, TagKeys: []string{"cost", "absent"}}))
	if got := tags(nsARN); len(got) != 1 {
		t.Errorf("namespace tags after untag = %v", got)
	}
	_, err = c.TagResource(ctx, &sd.TagResourceInput{ResourceARN: svc.Arn, Tags: manyTags(50)})
	tm := apiErr[*types.TooManyTagsException](t, err)
	if aws.ToString(tm.ResourceName) != aws.ToString(svc.Arn) {
		t.Errorf("TooManyTagsException.ResourceName = %q", aws.ToString(tm.ResourceName))
	}
	must[*sd.TagResourceOutput](t)(c.TagResource(ctx, &sd.TagResourceInput{ResourceARN: svc.Arn, Tags: manyTags(49)}))
	for name, arn := range map[string]string{
		"missing service":   "arn:aws:servicediscovery:us-east-1:" + acct + ":service/srv-aaaaaaaaaaaaaaaa",
		"other account":     strings.Replace(aws.ToString(svc.Arn), acct, "999988887777", 1),
		"other region":      strings.Replace(aws.ToString(svc.Arn), "us-east-1", "eu-west-1", 1),
		"instance resource": "arn:aws:servicediscovery:us-east-1:" + acct + ":instance/i-1",
		"lattice service":   "arn:aws:vpc-lattice:us-east-1:" + acct + ":service/svc-0123456789abcdef0",
	} {
		_, err := c.ListTagsForResource(ctx, &sd.ListTagsForResourceInput{ResourceARN: aws.String(arn)})
		if !errorsAs(err, new(*types.ResourceNotFoundException)) {
			t.Errorf("%s: err = %v, want ResourceNotFoundException", name, err)
		}
	}
	_, err = c.ListTagsForResource(ctx, &sd.ListTagsForResourceInput{ResourceARN: aws.String("not-an-arn")})
	apiErr[*types.InvalidInput](t, err)
	_, err = c.TagResource(ctx, &sd.TagResourceInput{ResourceARN: svc.Arn, Tags: []types.Tag{{Key: aws.String("aws:owner"), Value: aws.String("x")}}})
	apiErr[*types.InvalidInput](t, err)
	_, err = c.UntagResource(ctx, &sd.UntagResourceInput{ResourceARN: svc.Arn, TagKeys: []string{""}})
	apiErr[*types.InvalidInput](t, err)
}

// TestCloudMapThrottling: over --rate-limit, the discovery operations
// answer their modeled RequestLimitExceeded, the others ThrottlingException.
func TestCloudMapThrottling(t *testing.T) {
	ts := startServerWith(t, server.Config{DataDir: t.TempDir(), RateLimit: 1})
	c, ctx := ts.cloudMapAdmin(), context.Background()
	in := &sd.DiscoverInstancesRevisionInput{NamespaceName: aws.String("shop"), ServiceName: aws.String("payments")}
	for range 2 { // the burst
		_, err := c.DiscoverInstancesRevision(ctx, in)
		apiErr[*types.NamespaceNotFound](t, err)
	}
	_, err := c.DiscoverInstancesRevision(ctx, in)
	apiErr[*types.RequestLimitExceeded](t, err)
	_, err = c.ListNamespaces(ctx, &sd.ListNamespacesInput{})
	if ae := apiErr[smithy.APIError](t, err); ae.ErrorCode() != "ThrottlingException" {
		t.Errorf("ListNamespaces over the limit: %v", err)
	}
}

func epochString(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

func TestCloudMapAccountIsolation(t *testing.T) {
	e := newCMEnv(t)
	admin, ctx, ts := e.c, e.ctx, e.ts
	nsID := e.httpNamespace("shop")
	svc := e.service(nsID, "payments", nil)
	e.register(aws.ToString(svc.Id), "admin-1", map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1"})
	ops := must[*sd.ListOperationsOutput](t)(admin.ListOperations(ctx, &sd.ListOperationsInput{})).Operations

	var acct struct{ ID string }
	if code := nativeCall(t, ts, ts.boot.AccessKeyID, ts.secret, "POST", "/accounts", map[string]string{"name": "tenant"}, &acct); code != 201 {
		t.Fatalf("create account: %d", code)
	}
	if code := nativeCall(t, ts, ts.boot.AccessKeyID, ts.secret, "POST", "/principals", map[string]any{"name": "dev", "type": "role", "account": acct.ID}, nil); code != 201 {
		t.Fatalf("create principal: %d", code)
	}
	var key struct{ AccessKeyId, SecretAccessKey string }
	if code := nativeCall(t, ts, ts.boot.AccessKeyID, ts.secret, "POST", "/accesskeys", map[string]string{"principal": "role/dev", "account": acct.ID}, &key); code != 201 {
		t.Fatalf("create key: %d", code)
	}
	tenant := ts.cloudMap(key.AccessKeyId, key.SecretAccessKey)

	nsARN := "arn:aws:servicediscovery:us-east-1:" + ts.boot.Account + ":namespace/" + nsID
	for name, err := range map[string]error{
		"GetNamespace by ID":  second(tenant.GetNamespace(ctx, &sd.GetNamespaceInput{Id: aws.String(nsID)})),
		"GetNamespace by ARN": second(tenant.GetNamespace(ctx, &sd.GetNamespaceInput{Id: aws.String(nsARN)})),
		"DeleteNamespace":     second(tenant.DeleteNamespace(ctx, &sd.DeleteNamespaceInput{Id: aws.String(nsARN)})),
		"CreateService":       second(tenant.CreateService(ctx, &sd.CreateServiceInput{Name: aws.String("x"), NamespaceId: aws.String(nsID)})),
		"DiscoverInstances":   second(tenant.DiscoverInstances(ctx, &sd.DiscoverInstancesInput{NamespaceName: aws.String("shop"), ServiceName: aws.String("payments")})),
	} {
		if !errorsAs(err, new(*types.NamespaceNotFound)) {
			t.Errorf("tenant %s: err = %v, want NamespaceNotFound", name, err)
		}
	}
	for name, err := range map[string]error{
		"GetService by ARN": second(tenant.GetService(ctx, &sd.GetServiceInput{Id: svc.Arn})),
		"RegisterInstance":  second(tenant.RegisterInstance(ctx, &sd.RegisterInstanceInput{ServiceId: svc.Id, InstanceId: aws.String("evil"), Attributes: map[string]string{"a": "b"}})),
		"ListInstances":     second(tenant.ListInstances(ctx, &sd.ListInstancesInput{ServiceId: svc.Id})),
	} {
		if !errorsAs(err, new(*types.ServiceNotFound)) {
			t.Errorf("tenant %s: err = %v, want ServiceNotFound", name, err)
		}
	}
	_, err := tenant.ListTagsForResource(ctx, &sd.ListTagsForResourceInput{ResourceARN: svc.Arn})
	apiErr[*types.ResourceNotFoundException](t, err)
	_, err = tenant.GetOperation(ctx, &sd.GetOperationInput{OperationId: ops[0].Id})
	apiErr[*types.OperationNotFound](t, err)
	if n := len(must[*sd.ListNamespacesOutput](t)(tenant.ListNamespaces(ctx, &sd.ListNamespacesInput{})).Namespaces); n != 0 {
		t.Errorf("tenant lists %d namespaces", n)
	}
	if n := len(must[*sd.ListOperationsOutput](t)(tenant.ListOperations(ctx, &sd.ListOperationsInput{})).Operations); n != 0 {
		t.Errorf("tenant lists %d operations", n)
	}

	// The tenant may use the same names, and discovers only its own.
	out := must[*sd.CreateHttpNamespaceOutput](t)(tenant.CreateHttpNamespace(ctx, &sd.CreateHttpNamespaceInput{Name: aws.String("shop")}))
	op := must[*sd.GetOperationOutput](t)(tenant.GetOperation(ctx, &sd.GetOperationInput{OperationId: out.OperationId})).Operation
	tsvc := must[*sd.CreateServiceOutput](t)(tenant.CreateService(ctx, &sd.CreateServiceInput{Name: aws.String("payments"), NamespaceId: aws.String(op.Targets["NAMESPACE"])})).Service
	must[*sd.RegisterInstanceOutput](t)(tenant.RegisterInstance(ctx, &sd.RegisterInstanceInput{ServiceId: tsvc.Id, InstanceId: aws.String("tenant-1"), Attributes: map[string]string{"AWS_INSTANCE_IPV4": "10.9.0.1"}}))
	for who, c := range map[string]*sd.Client{"admin-1": admin, "tenant-1": tenant} {
		d := must[*sd.DiscoverInstancesOutput](t)(c.DiscoverInstances(ctx, &sd.DiscoverInstancesInput{NamespaceName: aws.String("shop"), ServiceName: aws.String("payments")}))
		if len(d.Instances) != 1 || aws.ToString(d.Instances[0].InstanceId) != who {
			t.Errorf("%s discovers %+v", who, d.Instances)
		}
	}
	// Namespaces are not shared: naming another owner finds nothing.
	_, err = admin.DiscoverInstances(ctx, &sd.DiscoverInstancesInput{NamespaceName: aws.String("shop"), ServiceName: aws.String("payments"), OwnerAccount: aws.String(acct.ID)})
	apiErr[*types.NamespaceNotFound](t, err)
	must[*sd.DiscoverInstancesRevisionOutput](t)(admin.DiscoverInstancesRevision(ctx, &sd.DiscoverInstancesRevisionInput{NamespaceName: aws.String("shop"), ServiceName: aws.String("payments"), OwnerAccount: aws.String(ts.boot.Account)}))
}

func second[T any](_ T, err error) error { return err }

// cmRaw sends a signed awsJson request and returns the status, headers and body.
func cmRaw(t *testing.T, ts *testServer, method, target, body string, sign bool) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.endpoint+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	if sign {
		sum := sha256.Sum256([]byte(body))
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: ts.boot.AccessKeyID, SecretAccessKey: ts.secret},
			req, hex.EncodeToString(sum[:]), "servicediscovery", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: body %q is not a JSON object: %v", target, raw, err)
	}
	return resp.StatusCode, resp.Header, out
}

// TestCloudMapWire checks the awsJson1.1 wire form the SDKs and the AWS
// CLI parse: error types in X-Amzn-ErrorType and __type, Message, status
// codes, timestamps as epoch seconds.
func TestCloudMapWire(t *testing.T) {
	e := newCMEnv(t)
	ts := e.ts
	const p = "Route53AutoNaming_v20170314."
	for _, tc := range []struct {
		name, method, target, body string
		sign                       bool
		status                     int
		typ                        string
	}{
		{"not found", "POST", p + "GetNamespace", `{"Id":"ns-aaaaaaaaaaaaaaaa"}`, true, 404, "NamespaceNotFound"},
		{"unknown operation", "POST", p + "LaunchRockets", `{}`, true, 400, "UnknownOperationException"},
		{"another service", "POST", "AmazonEC2ContainerServiceV20141113.ListClusters", `{}`, true, 400, "UnknownOperationException"},
		{"GET", "GET", p + "ListNamespaces", ``, true, 400, "UnknownOperationException"},
		{"unknown member", "POST", p + "ListNamespaces", `{"Colour":"red"}`, true, 400, "InvalidInput"},
		{"wrong type", "POST", p + "ListNamespaces", `{"MaxResults":"ten"}`, true, 400, "InvalidInput"},
		{"not JSON", "POST", p + "ListNamespaces", `{`, true, 400, "InvalidInput"},
		{"missing member", "POST", p + "GetService", `{}`, true, 400, "InvalidInput"},
		{"unsigned", "POST", p + "ListNamespaces", `{}`, false, 403, "MissingAuthenticationTokenException"},
		{"in use", "POST", p + "DeleteNamespace", `{"Id":"{{ns}}"}`, true, 409, "ResourceInUse"},
	} {
		nsID := e.httpNamespace("wire-" + strings.ReplaceAll(tc.name, " ", "-"))
		e.service(nsID, "s", nil)
		status, h, body := cmRaw(t, ts, tc.method, tc.target, strings.ReplaceAll(tc.body, "{{ns}}", nsID), tc.sign)
		if status != tc.status || h.Get("X-Amzn-ErrorType") != tc.typ || body["__type"] != tc.typ {
			t.Errorf("%s: %d %q %v, want %d %s", tc.name, status, h.Get("X-Amzn-ErrorType"), body, tc.status, tc.typ)
		}
		if msg, _ := body["Message"].(string); msg == "" {
			t.Errorf("%s: no Message in %v", tc.name, body)
		}
		if h.Get("Content-Type") != "application/x-amz-json-1.1" || h.Get("x-amzn-RequestId") == "" {
			t.Errorf("%s: headers %v", tc.name, h)
		}
	}
	// Timestamps are epoch seconds with a millisecond fraction.
	_, _, body := cmRaw(t, ts, "POST", p+"ListNamespaces", `{}`, true)
	first := body["Namespaces"].([]any)[0].(map[string]any)
	if d, ok := first["CreateDate"].(float64); !ok || d < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("CreateDate = %#v", first["CreateDate"])
	}
	// Operations without output answer {}.
	status, _, body := cmRaw(t, ts, "POST", p+"TagResource", `{"ResourceARN":"`+first["Arn"].(string)+`","Tags":[]}`, true)
	if status != 200 || len(body) != 0 {
		t.Errorf("TagResource = %d %v", status, body)
	}
}

// TestCloudMapDataPrefix: the SDKs send DiscoverInstances and
// DiscoverInstancesRevision to "data-" + the endpoint's host.
// data-127.0.0.1 resolves nowhere, so a Go client needs the option of
// docs/cloudmap.md, and the AWS CLI works with the DATA/config that
// 'trellis up' writes (disable_host_prefix_injection = true).
func TestCloudMapDataPrefix(t *testing.T) {
	e := newCMEnv(t)
	ts := e.ts
	nsID := e.httpNamespace("shop")
	svc := e.service(nsID, "payments", nil)
	e.register(aws.ToString(svc.Id), "i-1", map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "8080"})

	// The default Go client goes to data-127.0.0.1.
	plain := sd.New(sd.Options{Region: "us-east-1", BaseEndpoint: aws.String(ts.endpoint), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(ts.boot.AccessKeyID, ts.secret, ""),
		HTTPClient:  &http.Client{Timeout: 5 * time.Second}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := plain.DiscoverInstances(ctx, &sd.DiscoverInstancesInput{NamespaceName: aws.String("shop"), ServiceName: aws.String("payments")})
	if err == nil || !strings.Contains(err.Error(), "data-127.0.0.1") {
		t.Errorf("default client: err = %v, want a failure to reach data-127.0.0.1", err)
	}
	// Other operations carry no prefix.
	must[*sd.ListNamespacesOutput](t)(plain.ListNamespaces(ctx, &sd.ListNamespacesInput{}))
	// With the option (e.c has it) discovery works.
	must[*sd.DiscoverInstancesRevisionOutput](t)(e.c.DiscoverInstancesRevision(ctx, &sd.DiscoverInstancesRevisionInput{NamespaceName: aws.String("shop"), ServiceName: aws.String("payments")}))

	// The config file names the endpoint and turns prefixing off.
	conf, err := os.ReadFile(ts.boot.ConfigPath)
	if err != nil || !strings.Contains(string(conf), "disable_host_prefix_injection = true\n") || !strings.Contains(string(conf), "endpoint_url = "+ts.endpoint+"\n") {
		t.Fatalf("%s = %q (%v)", ts.boot.ConfigPath, conf, err)
	}
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("no AWS CLI on PATH: its steps are skipped")
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AWS_CONFIG_FILE=" + ts.boot.ConfigPath,
		"AWS_SHARED_CREDENTIALS_FILE=" + ts.boot.CredentialsPath, "AWS_RETRY_MODE=standard", "AWS_MAX_ATTEMPTS=1", "AWS_PAGER="}
	aws := func(extraEnv []string, args ...string) (string, error) {
		cmd := exec.Command("aws", append(args, "--output", "json", "--cli-connect-timeout", "5")...)
		cmd.Env = append(slices.Clone(env), extraEnv...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return stderr.String(), err
		}
		return string(out), nil
	}
	out, err := aws(nil, "servicediscovery", "discover-instances", "--namespace-name", "shop", "--service-name", "payments")
	if err != nil {
		t.Fatalf("aws servicediscovery discover-instances: %v\n%s", err, out)
	}
	var d struct {
		Instances []struct {
			InstanceId string
			Attributes map[string]string
		}
		InstancesRevision int64
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || len(d.Instances) != 1 || d.Instances[0].InstanceId != "i-1" ||
		d.Instances[0].Attributes["AWS_INSTANCE_PORT"] != "8080" || d.InstancesRevision <= 0 {
		t.Errorf("discover-instances = %s (%v)", out, err)
	}
	if out, err := aws(nil, "servicediscovery", "discover-instances-revision", "--namespace-name", "shop", "--service-name", "payments"); err != nil ||
		!strings.Contains(out, strconv.FormatInt(d.InstancesRevision, 10)) {
		t.Errorf("discover-instances-revision = %s (%v)", out, err)
	}
	// The setting is what makes it work: overriding it fails on the prefix.
	if out, err := aws([]string{"AWS_DISABLE_HOST_PREFIX_INJECTION=false"}, "servicediscovery", "discover-instances", "--namespace-name", "shop", "--service-name", "payments"); err == nil ||
		!strings.Contains(out, "data-127.0.0.1") {
		t.Errorf("with host prefixes: %v\n%s", err, out)
	}
	// Errors reach the CLI by type.
	if out, err := aws(nil, "servicediscovery", "get-service", "--id", "srv-aaaaaaaaaaaaaaaa"); err == nil || !strings.Contains(out, "(ServiceNotFound)") {
		t.Errorf("get-service of a missing service: %v\n%s", err, out)
	}
}
