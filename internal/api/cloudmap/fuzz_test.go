package cloudmap_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/api/cloudmap"
)

// fuzzOps are the operations a fuzz input picks from, with a few names
// that are not operations.
var fuzzOps = []string{
	"CreateHttpNamespace", "CreatePrivateDnsNamespace", "CreatePublicDnsNamespace", "GetNamespace", "ListNamespaces",
	"DeleteNamespace", "UpdateHttpNamespace", "UpdatePrivateDnsNamespace", "UpdatePublicDnsNamespace",
	"CreateService", "GetService", "ListServices", "UpdateService", "DeleteService",
	"GetServiceAttributes", "UpdateServiceAttributes", "DeleteServiceAttributes",
	"RegisterInstance", "DeregisterInstance", "GetInstance", "ListInstances", "GetInstancesHealthStatus",
	"UpdateInstanceCustomHealthStatus", "DiscoverInstances", "DiscoverInstancesRevision",
	"GetOperation", "ListOperations", "TagResource", "UntagResource", "ListTagsForResource",
	"", "Unknown", "getnamespace",
}

// fuzzSetup is a fixture with one resource of each kind whose IDs fuzz
// bodies name through {{placeholders}}.
func fuzzSetup(tb testing.TB) (*fixture, *strings.Replacer) {
	fx := newFixture(tb, cloudmap.Quotas{Namespaces: 20, InstancesPerService: 20})
	ns := fx.created(tb, "CreateHttpNamespace", `{"Name":"shop","Tags":[{"Key":"k","Value":"v"}]}`)
	dns := fx.created(tb, "CreatePrivateDnsNamespace", `{"Name":"corp.internal","Vpc":"`+fx.vpc+`"}`)
	id := func(out map[string]any) string { return out["Service"].(map[string]any)["Id"].(string) }
	svc := id(fx.must(tb, "CreateService", `{"Name":"payments","NamespaceId":"`+ns+`","HealthCheckCustomConfig":{}}`))
	dsvc := id(fx.must(tb, "CreateService", `{"Name":"web","NamespaceId":"`+dns+`","DnsConfig":{"DnsRecords":[{"Type":"SRV","TTL":60}]}}`))
	fx.must(tb, "RegisterInstance", `{"ServiceId":"`+svc+`","InstanceId":"i-1","Attributes":{"AWS_INSTANCE_IPV4":"10.0.0.1","stage":"prod"}}`)
	fx.must(tb, "RegisterInstance", `{"ServiceId":"`+dsvc+`","InstanceId":"w-1","Attributes":{"AWS_INSTANCE_IPV4":"10.0.0.2","AWS_INSTANCE_PORT":"80"}}`)
	ops := fx.must(tb, "ListOperations", `{}`)["Operations"].([]any)
	op := ops[0].(map[string]any)["Id"].(string)
	arn := func(kind, id string) string {
		return "arn:aws:servicediscovery:" + region + ":" + account + ":" + kind + "/" + id
	}
	return fx, strings.NewReplacer("{{ns}}", ns, "{{dns}}", dns, "{{svc}}", svc, "{{dsvc}}", dsvc, "{{op}}", op,
		"{{vpc}}", fx.vpc, "{{ns.arn}}", arn("namespace", ns), "{{svc.arn}}", arn("service", svc))
}

// FuzzDispatch sends random operations and bodies: whatever arrives, the
// API answers with a success or a typed client error, never a 500, and
// every error is in the awsJson form the SDKs parse.
func FuzzDispatch(f *testing.F) {
	for _, seed := range []struct {
		op   string
		body string
	}{
		{"CreateHttpNamespace", `{"Name":"x","Tags":[{"Key":"a","Value":"b"}],"CreatorRequestId":"r"}`},
		{"CreatePrivateDnsNamespace", `{"Name":"y.internal","Vpc":"{{vpc}}","Properties":{"DnsProperties":{"SOA":{"TTL":5}}}}`},
		{"CreatePublicDnsNamespace", `{"Name":"example.com","Properties":{"DnsProperties":{}}}`},
		{"GetNamespace", `{"Id":"{{ns.arn}}"}`},
		{"ListNamespaces", `{"MaxResults":1,"Filters":[{"Name":"TYPE","Values":["HTTP","DNS_PRIVATE"],"Condition":"IN"}]}`},
		{"DeleteNamespace", `{"Id":"{{ns}}"}`},
		{"UpdateHttpNamespace", `{"Id":"{{ns}}","Namespace":{"Description":"d"},"UpdaterRequestId":"u"}`},
		{"UpdatePrivateDnsNamespace", `{"Id":"{{dns}}","Namespace":{"Properties":{"DnsProperties":{"SOA":{"TTL":9}}}}}`},
		{"CreateService", `{"Name":"s","NamespaceId":"{{dns}}","DnsConfig":{"RoutingPolicy":"WEIGHTED","DnsRecords":[{"Type":"CNAME","TTL":1}]}}`},
		{"CreateService", `{"Name":"t","DnsConfig":{"NamespaceId":"{{ns}}","DnsRecords":[]},"HealthCheckConfig":{"Type":"TCP","ResourcePath":"/"}}`},
		{"UpdateService", `{"Id":"{{dsvc}}","Service":{"DnsConfig":{"DnsRecords":[{"Type":"SRV","TTL":2}]},"HealthCheckConfig":{"Type":"HTTP"}}}`},
		{"DeleteService", `{"Id":"{{svc.arn}}"}`},
		{"UpdateServiceAttributes", `{"ServiceId":"{{svc}}","Attributes":{"a":"b"}}`},
		{"DeleteServiceAttributes", `{"ServiceId":"{{svc}}","Attributes":["a"]}`},
		{"RegisterInstance", `{"ServiceId":"{{dsvc}}","InstanceId":"x/y:z","Attributes":{"AWS_INSTANCE_IPV4":"10.1.1.1","AWS_INSTANCE_PORT":"1"}}`},
		{"RegisterInstance", `{"ServiceId":"{{svc}}","InstanceId":"i-2","Attributes":{"AWS_INIT_HEALTH_STATUS":"UNHEALTHY","AWS_ALIAS_DNS_NAME":""}}`},
		{"DeregisterInstance", `{"ServiceId":"{{svc}}","InstanceId":"i-1"}`},
		{"GetInstancesHealthStatus", `{"ServiceId":"{{svc}}","Instances":["i-1","i-1"],"MaxResults":1,"NextToken":"x"}`},
		{"UpdateInstanceCustomHealthStatus", `{"ServiceId":"{{svc}}","InstanceId":"i-1","Status":"UNHEALTHY"}`},
		{"DiscoverInstances", `{"NamespaceName":"shop","ServiceName":"payments","HealthStatus":"HEALTHY_OR_ELSE_ALL","QueryParameters":{"stage":"prod"},"OptionalParameters":{"x":"y"},"MaxResults":1000}`},
		{"DiscoverInstancesRevision", `{"NamespaceName":"corp.internal","ServiceName":"WEB","OwnerAccount":"` + account + `"}`},
		{"GetOperation", `{"OperationId":"{{op}}"}`},
		{"ListOperations", `{"Filters":[{"Name":"UPDATE_DATE","Condition":"BETWEEN","Values":["0","1e10"]}]}`},
		{"TagResource", `{"ResourceARN":"{{svc.arn}}","Tags":[{"Key":"a","Value":"b"}]}`},
		{"UntagResource", `{"ResourceARN":"{{ns.arn}}","TagKeys":["k"]}`},
		{"ListTagsForResource", `{"ResourceARN":"arn:aws:servicediscovery:us-east-1:` + other + `:namespace/ns-aaaaaaaaaaaaaaaa"}`},
		{"ListInstances", `{"ServiceId":"{{svc}}","NextToken":"","MaxResults":0}`},
		{"GetInstance", `{"ServiceId":null,"InstanceId":1}`},
		{"Unknown", `[]`},
		{"ListServices", `{"Filters":[{"Name":"NAMESPACE_ID","Values":[]}]}{}`},
	} {
		idx := -1
		for i, op := range fuzzOps {
			if op == seed.op {
				idx = i
			}
		}
		f.Add(uint8(idx), []byte(seed.body))
	}
	fx, repl := fuzzSetup(f)
	f.Fuzz(func(t *testing.T, opIdx uint8, body []byte) {
		op := fuzzOps[int(opIdx)%len(fuzzOps)]
		expanded := []byte(repl.Replace(string(body)))
		rec := fx.raw(account, http.MethodPost, cloudmap.TargetPrefix+op, expanded)
		if rec.Code >= 500 {
			t.Fatalf("%s %s = %d %s\nlog: %s", op, expanded, rec.Code, rec.Body, fx.logs.take())
		}
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s: body %q is not a JSON object", op, rec.Body)
		}
		if rec.Code != http.StatusOK {
			typ, _ := out["__type"].(string)
			if typ == "" || rec.Header().Get("X-Amzn-ErrorType") != typ || out["Message"] == "" {
				t.Fatalf("%s: error %d %v, header %q", op, rec.Code, out, rec.Header().Get("X-Amzn-ErrorType"))
			}
		}
		if logs := fx.logs.take(); logs != "" {
			t.Fatalf("%s %s logged: %s", op, expanded, logs)
		}
	})
}
