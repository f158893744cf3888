package lattice_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
	"github.com/trellis-mesh/trellis/internal/api/native"
	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/bolt"
)

const (
	fuzzAccount = "111122223333"
	fuzzOther   = "444455556666"
	fuzzRegion  = "us-east-1"
)

// fuzzRoutes mirrors the route table in routes.go (TestFuzzRoutesMatchTable
// keeps the two in step). The fuzzer picks one and fills its labels.
var fuzzRoutes = []struct{ method, pattern, op string }{
	{"POST", "/servicenetworks", "CreateServiceNetwork"},
	{"GET", "/servicenetworks", "ListServiceNetworks"},
	{"GET", "/servicenetworks/{serviceNetworkIdentifier}", "GetServiceNetwork"},
	{"PATCH", "/servicenetworks/{serviceNetworkIdentifier}", "UpdateServiceNetwork"},
	{"DELETE", "/servicenetworks/{serviceNetworkIdentifier}", "DeleteServiceNetwork"},
	{"POST", "/services", "CreateService"},
	{"GET", "/services", "ListServices"},
	{"GET", "/services/{serviceIdentifier}", "GetService"},
	{"PATCH", "/services/{serviceIdentifier}", "UpdateService"},
	{"DELETE", "/services/{serviceIdentifier}", "DeleteService"},
	{"POST", "/services/{serviceIdentifier}/listeners", "CreateListener"},
	{"GET", "/services/{serviceIdentifier}/listeners", "ListListeners"},
	{"GET", "/services/{serviceIdentifier}/listeners/{listenerIdentifier}", "GetListener"},
	{"PATCH", "/services/{serviceIdentifier}/listeners/{listenerIdentifier}", "UpdateListener"},
	{"DELETE", "/services/{serviceIdentifier}/listeners/{listenerIdentifier}", "DeleteListener"},
	{"POST", "/services/{serviceIdentifier}/listeners/{listenerIdentifier}/rules", "CreateRule"},
	{"GET", "/services/{serviceIdentifier}/listeners/{listenerIdentifier}/rules", "ListRules"},
	{"PATCH", "/services/{serviceIdentifier}/listeners/{listenerIdentifier}/rules", "BatchUpdateRule"},
	{"GET", "/services/{serviceIdentifier}/listeners/{listenerIdentifier}/rules/{ruleIdentifier}", "GetRule"},
	{"PATCH", "/services/{serviceIdentifier}/listeners/{listenerIdentifier}/rules/{ruleIdentifier}", "UpdateRule"},
	{"DELETE", "/services/{serviceIdentifier}/listeners/{listenerIdentifier}/rules/{ruleIdentifier}", "DeleteRule"},
	{"POST", "/targetgroups", "CreateTargetGroup"},
	{"GET", "/targetgroups", "ListTargetGroups"},
	{"GET", "/targetgroups/{targetGroupIdentifier}", "GetTargetGroup"},
	{"PATCH", "/targetgroups/{targetGroupIdentifier}", "UpdateTargetGroup"},
	{"DELETE", "/targetgroups/{targetGroupIdentifier}", "DeleteTargetGroup"},
	{"POST", "/targetgroups/{targetGroupIdentifier}/registertargets", "RegisterTargets"},
	{"POST", "/targetgroups/{targetGroupIdentifier}/deregistertargets", "DeregisterTargets"},
	{"POST", "/targetgroups/{targetGroupIdentifier}/listtargets", "ListTargets"},
	{"POST", "/servicenetworkserviceassociations", "CreateServiceNetworkServiceAssociation"},
	{"GET", "/servicenetworkserviceassociations", "ListServiceNetworkServiceAssociations"},
	{"GET", "/servicenetworkserviceassociations/{serviceNetworkServiceAssociationIdentifier}", "GetServiceNetworkServiceAssociation"},
	{"DELETE", "/servicenetworkserviceassociations/{serviceNetworkServiceAssociationIdentifier}", "DeleteServiceNetworkServiceAssociation"},
	{"POST", "/servicenetworkvpcassociations", "CreateServiceNetworkVpcAssociation"},
	{"GET", "/servicenetworkvpcassociations", "ListServiceNetworkVpcAssociations"},
	{"GET", "/servicenetworkvpcassociations/{serviceNetworkVpcAssociationIdentifier}", "GetServiceNetworkVpcAssociation"},
	{"PATCH", "/servicenetworkvpcassociations/{serviceNetworkVpcAssociationIdentifier}", "UpdateServiceNetworkVpcAssociation"},
	{"DELETE", "/servicenetworkvpcassociations/{serviceNetworkVpcAssociationIdentifier}", "DeleteServiceNetworkVpcAssociation"},
	{"GET", "/servicenetworkvpcendpointassociations", "ListServiceNetworkVpcEndpointAssociations"},
	{"PUT", "/authpolicy/{resourceIdentifier}", "PutAuthPolicy"},
	{"GET", "/authpolicy/{resourceIdentifier}", "GetAuthPolicy"},
	{"DELETE", "/authpolicy/{resourceIdentifier}", "DeleteAuthPolicy"},
	{"PUT", "/resourcepolicy/{resourceArn}", "PutResourcePolicy"},
	{"GET", "/resourcepolicy/{resourceArn}", "GetResourcePolicy"},
	{"DELETE", "/resourcepolicy/{resourceArn}", "DeleteResourcePolicy"},
	{"POST", "/accesslogsubscriptions", "CreateAccessLogSubscription"},
	{"GET", "/accesslogsubscriptions", "ListAccessLogSubscriptions"},
	{"GET", "/accesslogsubscriptions/{accessLogSubscriptionIdentifier}", "GetAccessLogSubscription"},
	{"PATCH", "/accesslogsubscriptions/{accessLogSubscriptionIdentifier}", "UpdateAccessLogSubscription"},
	{"DELETE", "/accesslogsubscriptions/{accessLogSubscriptionIdentifier}", "DeleteAccessLogSubscription"},
	{"POST", "/tags/{resourceArn}", "TagResource"},
	{"DELETE", "/tags/{resourceArn}", "UntagResource"},
	{"GET", "/tags/{resourceArn}", "ListTagsForResource"},
	{"POST", "/resourceconfigurations", "CreateResourceConfiguration"},
	{"GET", "/resourcegateways/{id}", "GetResourceGateway"},
	{"DELETE", "/servicenetworkresourceassociations/{id}", "DeleteServiceNetworkResourceAssociation"},
	{"POST", "/domainverifications", "StartDomainVerification"},
}

// fuzzMethods are the methods a fuzz input may use instead of the route's own.
var fuzzMethods = []string{"", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

func routeIndex(op string) uint8 {
	for i, r := range fuzzRoutes {
		if r.op == op {
			return uint8(i)
		}
	}
	panic("no route for " + op)
}

// logBuffer collects what the API logs (only internal errors), so a 500
// can be reported with its cause.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.buf.String()
	l.buf.Reset()
	return s
}

// latticeFixture is an API over its own bolt store, populated with one
// resource of every kind so fuzzed requests can name real resources
// through {{placeholders}}.
type latticeFixture struct {
	st   store.Store
	api  *lattice.API
	logs *logBuffer
	vars map[string]string
	repl *strings.Replacer
}

func newLatticeFixture(tb testing.TB, dir string) *latticeFixture {
	tb.Helper()
	st, err := bolt.Open(filepath.Join(dir, "db"), bolt.Options{})
	if err != nil {
		tb.Fatalf("bolt.Open: %v", err)
	}
	logs := &logBuffer{}
	fx := &latticeFixture{st: st, logs: logs, vars: map[string]string{"account": fuzzAccount, "other": fuzzOther}}
	fx.api = lattice.New(lattice.Config{Store: st, Region: fuzzRegion, DNSPartition: "abc1234",
		Logger: slog.New(slog.NewTextHandler(logs, nil))})

	ctx := context.Background()
	now := time.Now()
	for name, spec := range map[string]struct {
		account, name string
		cidrs         []string
	}{
		"vpc":      {fuzzAccount, "main", []string{"10.0.0.0/16", "fd00::/56"}},
		"vpc2":     {fuzzAccount, "spare", []string{"10.1.0.0/16"}},
		"othervpc": {fuzzOther, "other", []string{"10.2.0.0/16"}},
	} {
		v, err := native.CreateVPC(ctx, st, fuzzRegion, spec.account, spec.name, spec.cidrs, nil, now)
		if err != nil {
			tb.Fatalf("CreateVPC: %v", err)
		}
		fx.vars[name] = v.ID
	}

	// create runs one setup request, which must succeed, and records the
	// id and arn of its answer under name.
	create := func(name, method, path, body string) {
		tb.Helper()
		rec := fx.serve(fuzzAccount, method, fx.expand(path), fx.expand(body))
		if rec.Code/100 != 2 {
			tb.Fatalf("fixture %s: %s %s = %d %s", name, method, path, rec.Code, rec.Body)
		}
		var out struct{ ID, ARN string }
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			tb.Fatalf("fixture %s: %v", name, err)
		}
		fx.vars[name], fx.vars[name+".arn"] = out.ID, out.ARN
		fx.repl = nil
	}
	create("sn", "POST", "/servicenetworks", `{"name":"fuzz-net","authType":"AWS_IAM","tags":{"env":"fuzz"}}`)
	create("svc", "POST", "/services", `{"name":"fuzz-svc","tags":{"env":"fuzz"}}`)
	create("svc2", "POST", "/services", `{"name":"fuzz-tls","customDomainName":"api.example.com","certificateArn":"arn:aws:acm:us-east-1:111122223333:certificate/abc"}`)
	create("tg", "POST", "/targetgroups", `{"name":"fuzz-ip","type":"IP","config":{"port":8080,"protocol":"HTTP","vpcIdentifier":"{{vpc}}"}}`)
	create("tg6", "POST", "/targetgroups", `{"name":"fuzz-ip6","type":"IP","config":{"protocol":"HTTPS","protocolVersion":"HTTP2","ipAddressType":"IPV6","vpcIdentifier":"{{vpc}}"}}`)
	create("tgtcp", "POST", "/targetgroups", `{"name":"fuzz-tcp","type":"IP","config":{"port":5432,"protocol":"TCP","vpcIdentifier":"{{vpc}}"}}`)
	create("tglambda", "POST", "/targetgroups", `{"name":"fuzz-fn","type":"LAMBDA"}`)
	create("tginst", "POST", "/targetgroups", `{"name":"fuzz-inst","type":"INSTANCE","config":{"protocol":"HTTP","vpcIdentifier":"{{vpc}}","healthCheck":{"path":"/health","matcher":{"httpCode":"200-299"}}}}`)
	create("tgalb", "POST", "/targetgroups", `{"name":"fuzz-alb","type":"ALB","config":{"protocol":"HTTPS","port":443,"vpcIdentifier":"{{vpc}}"}}`)
	create("spare", "POST", "/targetgroups", `{"name":"fuzz-spare","type":"IP","config":{"protocol":"HTTP","vpcIdentifier":"{{vpc}}"}}`)
	create("listener", "POST", "/services/{{svc}}/listeners",
		`{"name":"http","protocol":"HTTP","defaultAction":{"forward":{"targetGroups":[{"targetGroupIdentifier":"{{tg}}","weight":80},{"targetGroupIdentifier":"{{tginst.arn}}","weight":20}]}}}`)
	create("tlslistener", "POST", "/services/{{svc2}}/listeners",
		`{"name":"tls","protocol":"TLS_PASSTHROUGH","port":443,"defaultAction":{"forward":{"targetGroups":[{"targetGroupIdentifier":"{{tgtcp}}"}]}}}`)
	create("rule", "POST", "/services/{{svc}}/listeners/{{listener}}/rules",
		`{"name":"api","priority":10,"match":{"httpMatch":{"pathMatch":{"match":{"prefix":"/api"}},"headerMatches":[{"name":"x-env","match":{"exact":"prod"}}]}},"action":{"fixedResponse":{"statusCode":404}},"tags":{"k":"v"}}`)
	create("rule2", "POST", "/services/{{svc}}/listeners/{{listener}}/rules",
		`{"name":"lambda","priority":20,"match":{"httpMatch":{"method":"POST"}},"action":{"forward":{"targetGroups":[{"targetGroupIdentifier":"{{tglambda}}"}]}}}`)
	create("snsa", "POST", "/servicenetworkserviceassociations", `{"serviceIdentifier":"{{svc}}","serviceNetworkIdentifier":"{{sn.arn}}"}`)
	create("snva", "POST", "/servicenetworkvpcassociations", `{"serviceNetworkIdentifier":"{{sn}}","vpcIdentifier":"{{vpc}}","securityGroupIds":["sg-0123456789abcdef0"]}`)
	create("als", "POST", "/accesslogsubscriptions", `{"resourceIdentifier":"{{sn}}","destinationArn":"arn:aws:s3:::fuzz-logs"}`)
	create("als2", "POST", "/accesslogsubscriptions", `{"resourceIdentifier":"{{svc.arn}}","destinationArn":"arn:aws:logs:us-east-1:111122223333:log-group:fuzz"}`)
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/targetgroups/{{tg}}/registertargets", `{"targets":[{"id":"10.0.0.1"},{"id":"10.0.0.2","port":9090}]}`},
		{"POST", "/targetgroups/{{tglambda}}/registertargets", `{"targets":[{"id":"arn:aws:lambda:us-east-1:111122223333:function:fuzz"}]}`},
		{"POST", "/targetgroups/{{tginst}}/registertargets", `{"targets":[{"id":"i-0123456789abcdef0"}]}`},
		{"PUT", "/authpolicy/{{svc}}", `{"policy":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"vpc-lattice-svcs:Invoke\",\"Resource\":\"*\"}]}"}`},
	} {
		if rec := fx.serve(fuzzAccount, r.method, fx.expand(r.path), fx.expand(r.body)); rec.Code/100 != 2 {
			tb.Fatalf("fixture: %s %s = %d %s", r.method, r.path, rec.Code, rec.Body)
		}
	}
	fx.vars["token"] = wire.EncodeToken("svc", "/lattice/"+fuzzAccount+"/svc/"+fx.vars["svc"])
	fx.vars["othertoken"] = wire.EncodeToken("sn", "/lattice/"+fuzzAccount+"/svc/"+fx.vars["svc"])
	fx.vars["foreign.arn"] = strings.Replace(fx.vars["svc.arn"], fuzzAccount, fuzzOther, 1)
	fx.vars["region.arn"] = strings.Replace(fx.vars["svc.arn"], fuzzRegion, "eu-west-1", 1)
	fx.repl = nil
	if got := fx.logs.take(); got != "" {
		tb.Fatalf("fixture logged errors: %s", got)
	}
	return fx
}

func (fx *latticeFixture) close() { _ = fx.st.Close() }

// expand replaces {{name}} with the fixture's values.
func (fx *latticeFixture) expand(s string) string {
	if fx.repl == nil {
		var pairs []string
		for k, v := range fx.vars {
			pairs = append(pairs, "{{"+k+"}}", v)
		}
		fx.repl = strings.NewReplacer(pairs...)
	}
	return fx.repl.Replace(s)
}

// serve sends one request as account ("" for no caller) and returns the
// recorded response. target is the request-target of the request line.
func (fx *latticeFixture) serve(account, method, target, body string) *httptest.ResponseRecorder {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		panic(fmt.Sprintf("bad fixture target %q: %v", target, err))
	}
	return fx.serveURL(account, method, target, u, []byte(body))
}

func (fx *latticeFixture) serveURL(account, method, target string, u *url.URL, body []byte) *httptest.ResponseRecorder {
	ctx := context.Background()
	if account != "" {
		ctx = iam.WithCaller(ctx, iam.Caller{Account: account, ARN: "arn:aws:iam::" + account + ":user/admin",
			PrincipalType: "user", PrincipalName: "admin"})
	}
	r := (&http.Request{Method: method, URL: u, RequestURI: target, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Host: "vpc-lattice.us-east-1.amazonaws.com",
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}).WithContext(ctx)
	rec := httptest.NewRecorder()
	fx.api.ServeHTTP(rec, r)
	return rec
}

// encodeLabel turns a label value into a path segment as a client might:
// SDK-style escaping, verbatim, escaped twice, or query-style escaping.
func encodeLabel(v string, mode uint8) string {
	switch mode % 4 {
	case 1:
		return v
	case 2:
		return url.PathEscape(url.PathEscape(v))
	case 3:
		return url.QueryEscape(v)
	}
	return url.PathEscape(v)
}

// callerFor picks the caller of a fuzz input: mostly the fixture's
// account, sometimes another account (which sees none of the fixture),
// rarely nobody (the server would have refused the request).
func callerFor(who uint8) string {
	switch who % 8 {
	case 6:
		return fuzzOther
	case 7:
		return ""
	}
	return fuzzAccount
}

// checkAPIResponse asserts what every answer of the API must satisfy.
func checkAPIResponse(t *testing.T, desc string, rec *httptest.ResponseRecorder, logs string) {
	t.Helper()
	if rec.Header().Get("x-amzn-RequestId") == "" {
		t.Fatalf("%s: no x-amzn-RequestId header", desc)
	}
	if rec.Code >= 500 || rec.Header().Get("x-amzn-ErrorType") == wire.TypeInternal {
		t.Fatalf("%s: server error %d %s: %s\nlog: %s", desc, rec.Code, rec.Header().Get("x-amzn-ErrorType"), rec.Body, logs)
	}
	if logs != "" {
		t.Fatalf("%s: %d, but the API logged: %s", desc, rec.Code, logs)
	}
	body := rec.Body.Bytes()
	if rec.Code/100 == 2 {
		if rec.Header().Get("x-amzn-ErrorType") != "" {
			t.Fatalf("%s: %d with x-amzn-ErrorType %q", desc, rec.Code, rec.Header().Get("x-amzn-ErrorType"))
		}
		if rec.Code == http.StatusNoContent {
			if len(body) != 0 {
				t.Fatalf("%s: 204 with a body %q", desc, body)
			}
			return
		}
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("%s: %d body %q is not a JSON object: %v", desc, rec.Code, body, err)
		}
		return
	}
	if rec.Header().Get("x-amzn-ErrorType") == "" {
		t.Fatalf("%s: %d without x-amzn-ErrorType: %s", desc, rec.Code, body)
	}
	var e map[string]any
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("%s: %d error body %q is not a JSON object: %v", desc, rec.Code, body, err)
	}
	if _, ok := e["message"].(string); !ok {
		t.Fatalf("%s: %d error body %s has no string message", desc, rec.Code, body)
	}
	// Every other member is a string or a list, as the SDK deserialisers expect.
	for k, v := range e {
		switch v.(type) {
		case string, []any:
		default:
			t.Fatalf("%s: error member %q is %T: %s", desc, k, v, body)
		}
	}
}

// fuzzResetEvery bounds how far the store drifts from the fixture: every
// so many inputs a worker starts over with a fresh store and fixture.
const fuzzResetEvery = 300

type seedInput struct {
	op          string
	method      uint8
	who         uint8
	enc         uint8
	l1, l2, l3  string
	query, body string
}

func latticeSeeds() []seedInput {
	svcL := [3]string{"{{svc}}", "{{listener}}", "{{rule}}"}
	return []seedInput{
		// Valid creates.
		{op: "CreateServiceNetwork", body: `{"name":"fuzz-new","authType":"NONE","tags":{"a":"b"},"sharingConfig":{"enabled":true}}`},
		{op: "CreateServiceNetwork", body: `{"name":"fuzz-idem","clientToken":"tok-1"}`},
		{op: "CreateService", body: `{"name":"fuzz-new-svc","authType":"AWS_IAM","idleTimeoutSeconds":120,"customDomainName":"new.example.com.","certificateArn":"arn:aws:acm:us-east-1:111122223333:certificate/x"}`},
		{op: "CreateTargetGroup", body: `{"name":"fuzz-new-tg","type":"IP","config":{"port":80,"protocol":"HTTP","protocolVersion":"HTTP1","ipAddressType":"IPV4","vpcIdentifier":"{{vpc}}","healthCheck":{"enabled":true,"protocol":"HTTP","path":"/ok","healthCheckIntervalSeconds":10,"healthCheckTimeoutSeconds":5,"healthyThresholdCount":3,"unhealthyThresholdCount":3,"matcher":{"httpCode":"200,202"}}}}`},
		{op: "CreateTargetGroup", body: `{"name":"fuzz-new-fn","type":"LAMBDA","config":{"lambdaEventStructureVersion":"V2"},"clientToken":"tg-tok"}`},
		{op: "CreateListener", l1: "{{svc}}", body: `{"name":"https","protocol":"HTTPS","defaultAction":{"fixedResponse":{"statusCode":404}}}`},
		{op: "CreateListener", l1: "{{svc.arn}}", body: `{"name":"alt","protocol":"HTTP","port":8080,"defaultAction":{"forward":{"targetGroups":[{"targetGroupIdentifier":"{{spare.arn}}"}]}}}`},
		{op: "CreateRule", l1: "{{svc}}", l2: "{{listener}}", body: `{"name":"new-rule","priority":30,"match":{"httpMatch":{"method":"GET","pathMatch":{"match":{"exact":"/x"},"caseSensitive":false}}},"action":{"forward":{"targetGroups":[{"targetGroupIdentifier":"{{tg}}","weight":1}]}}}`},
		{op: "CreateRule", l1: "{{svc.arn}}", l2: "{{listener.arn}}", body: `{"name":"hdr","priority":31,"match":{"httpMatch":{"headerMatches":[{"name":"x-a","match":{"contains":"b"},"caseSensitive":true}]}},"action":{"fixedResponse":{"statusCode":500}},"clientToken":"rule-tok"}`},
		{op: "CreateServiceNetworkServiceAssociation", body: `{"serviceIdentifier":"{{svc2.arn}}","serviceNetworkIdentifier":"{{sn}}"}`},
		{op: "CreateServiceNetworkVpcAssociation", body: `{"serviceNetworkIdentifier":"{{sn.arn}}","vpcIdentifier":"{{vpc2}}","privateDnsEnabled":true,"dnsOptions":{"privateDnsPreference":"SPECIFIED_DOMAINS_ONLY","privateDnsSpecifiedDomains":["*.example.com"]}}`},
		{op: "CreateAccessLogSubscription", body: `{"resourceIdentifier":"{{sn.arn}}","destinationArn":"arn:aws:firehose:us-east-1:111122223333:deliverystream/s","serviceNetworkLogType":"RESOURCE"}`},
		{op: "CreateListener", l1: "{{svc2}}", body: `{"name":"idem","protocol":"HTTPS","clientToken":"same","defaultAction":{"fixedResponse":{"statusCode":404}}}`},
		{op: "CreateListener", l1: "{{svc}}", body: `{"name":"idem","protocol":"HTTPS","clientToken":"same","defaultAction":{"fixedResponse":{"statusCode":404}}}`},
		{op: "CreateRule", l1: "{{svc}}", l2: "{{listener}}", body: `{"name":"two","priority":40,"match":{"httpMatch":{"method":"GET"}},"action":{"forward":{"targetGroups":[{"targetGroupIdentifier":"{{tg}}"},{"targetGroupIdentifier":"{{tg.arn}}"}]}}}`},
		// Broken creates.
		{op: "CreateServiceNetwork", body: `{"name":"Bad--Name","authType":"MAYBE","tags":{"aws:x":"y"},"clientToken":""}`},
		{op: "CreateServiceNetwork", body: `{"name":"fuzz-net"}`},
		{op: "CreateServiceNetwork", body: `{"name":123}`},
		{op: "CreateServiceNetwork", body: `{"name":"x","unknown":true}`},
		{op: "CreateServiceNetwork", body: `{"name":"abc"`},
		{op: "CreateServiceNetwork", body: `[]`},
		{op: "CreateServiceNetwork", body: `{"name":"a"} {"name":"b"}`},
		{op: "CreateService", body: `{"name":"svc-reserved","idleTimeoutSeconds":5,"customDomainName":"-bad-.x","certificateArn":"arn:aws:acm:::nope"}`},
		{op: "CreateService", body: `{"name":"only-cert","certificateArn":"arn:aws:acm:us-east-1:111122223333:certificate/x"}`},
		{op: "CreateTargetGroup", body: `{"name":"tg-x","type":"IP","config":{"protocol":"UDP","port":0,"vpcIdentifier":"vpc-nope","healthCheck":{"healthCheckIntervalSeconds":2,"healthCheckTimeoutSeconds":999,"path":"no-slash","matcher":{"httpCode":"2x0"}}}}`},
		{op: "CreateTargetGroup", body: `{"name":"fuzz-vpc-missing","type":"IP","config":{"protocol":"HTTP","vpcIdentifier":"vpc-0123456789abcdef0"}}`},
		{op: "CreateTargetGroup", body: `{"name":"fuzz-other-vpc","type":"INSTANCE","config":{"protocol":"HTTP","vpcIdentifier":"{{othervpc}}"}}`},
		{op: "CreateTargetGroup", body: `{"name":"fuzz-null","type":"IP","config":null}`},
		{op: "CreateListener", l1: "{{svc}}", body: `{"name":"tls","protocol":"TLS_PASSTHROUGH","defaultAction":{"fixedResponse":{"statusCode":404}}}`},
		{op: "CreateListener", l1: "{{svc}}", body: `{"name":"dup-port","protocol":"HTTP","defaultAction":{"forward":{"targetGroups":[{"targetGroupIdentifier":"{{tgtcp}}"}]}}}`},
		{op: "CreateListener", l1: "{{svc}}", body: `{"name":"h2","protocol":"HTTP","port":81,"defaultAction":{"forward":{"targetGroups":[{"targetGroupIdentifier":"{{tg6}}"}]}}}`},
		{op: "CreateListener", l1: "{{svc2}}", body: `{"name":"borrow","protocol":"HTTPS","defaultAction":{"forward":{"targetGroups":[{"targetGroupIdentifier":"{{tg}}"}]}}}`},
		{op: "CreateListener", l1: "{{svc}}", body: `{"name":"l","protocol":"HTTP","defaultAction":null}`},
		{op: "CreateRule", l1: "{{svc}}", l2: "{{listener}}", body: `{"name":"dup","priority":10,"match":{"httpMatch":{"method":"GET"}},"action":{"fixedResponse":{"statusCode":404}}}`},
		{op: "CreateRule", l1: "{{svc}}", l2: "{{listener}}", body: `{"name":"bad","priority":0,"match":{"httpMatch":{}},"action":{"forward":{"targetGroups":[]}}}`},
		{op: "CreateRule", l1: "{{svc2}}", l2: "{{tlslistener}}", body: `{"name":"tls-rule","priority":1,"match":{"httpMatch":{"method":"GET"}},"action":{"fixedResponse":{"statusCode":404}}}`},
		{op: "CreateRule", l1: "{{svc2}}", l2: "{{listener}}", body: `{"name":"wrong-svc","priority":2,"match":{"httpMatch":{"method":"GET"}},"action":{"fixedResponse":{"statusCode":404}}}`},
		{op: "CreateRule", l1: "{{svc}}", l2: "{{listener}}", body: `{"name":"foreign","priority":3,"match":{"httpMatch":{"method":"GET"}},"action":{"forward":{"targetGroups":[{"targetGroupIdentifier":"arn:aws:vpc-lattice:us-east-1:{{other}}:targetgroup/{{tg}}"}]}}}`},
		{op: "CreateServiceNetworkServiceAssociation", body: `{"serviceIdentifier":"{{svc}}","serviceNetworkIdentifier":"{{sn}}"}`},
		{op: "CreateServiceNetworkVpcAssociation", body: `{"serviceNetworkIdentifier":"{{sn}}","vpcIdentifier":"{{vpc}}","securityGroupIds":["sg-1"]}`},
		{op: "CreateAccessLogSubscription", body: `{"resourceIdentifier":"{{svc}}","destinationArn":"arn:aws:s3:::b","serviceNetworkLogType":"SERVICE"}`},
		// Reads and updates by ID and by (percent-encoded) ARN.
		{op: "ListServiceNetworks", query: "maxResults=1"},
		{op: "ListServices", query: "maxResults=1&nextToken={{token}}"},
		{op: "ListServices", query: "nextToken={{othertoken}}"},
		{op: "ListServices", query: "maxResults=0&nextToken=%ZZ"},
		{op: "ListTargetGroups", query: "vpcIdentifier={{vpc}}&targetGroupType=IP&maxResults=2"},
		{op: "GetServiceNetwork", l1: "{{sn.arn}}"},
		{op: "GetServiceNetwork", l1: "{{sn.arn}}", enc: 1},
		{op: "GetServiceNetwork", l1: "{{sn.arn}}", enc: 2},
		{op: "UpdateServiceNetwork", l1: "{{sn}}", body: `{"authType":"NONE"}`},
		{op: "GetService", l1: "{{svc.arn}}"},
		{op: "GetService", l1: "{{foreign.arn}}"},
		{op: "GetService", l1: "{{region.arn}}"},
		{op: "UpdateService", l1: "{{svc2}}", body: `{"authType":"AWS_IAM","idleTimeoutSeconds":600,"certificateArn":""}`},
		{op: "UpdateService", l1: "{{svc}}", body: `{"certificateArn":"arn:aws:acm:us-east-1:111122223333:certificate/y"}`},
		{op: "ListListeners", l1: "{{svc}}", query: "maxResults=1"},
		{op: "GetListener", l1: svcL[0], l2: "{{listener.arn}}"},
		{op: "UpdateListener", l1: svcL[0], l2: svcL[1], body: `{"defaultAction":{"forward":{"targetGroups":[{"targetGroupIdentifier":"{{spare}}"}]}}}`},
		{op: "UpdateListener", l1: "{{svc2}}", l2: "{{tlslistener}}", body: `{"defaultAction":{"fixedResponse":{"statusCode":404}}}`},
		{op: "ListRules", l1: svcL[0], l2: svcL[1], query: "maxResults=1"},
		{op: "GetRule", l1: svcL[0], l2: svcL[1], l3: "{{rule.arn}}"},
		{op: "UpdateRule", l1: svcL[0], l2: svcL[1], l3: svcL[2], body: `{"priority":20}`},
		{op: "UpdateRule", l1: svcL[0], l2: svcL[1], l3: svcL[2], body: `{"priority":11,"match":{"httpMatch":{"method":"PUT"}},"action":{"forward":{"targetGroups":[{"targetGroupIdentifier":"{{tg}}"}]}}}`},
		{op: "BatchUpdateRule", l1: svcL[0], l2: svcL[1], body: `{"rules":[{"ruleIdentifier":"{{rule}}","priority":20},{"ruleIdentifier":"{{rule2.arn}}","priority":10}]}`},
		{op: "BatchUpdateRule", l1: svcL[0], l2: svcL[1], body: `{"rules":[{"ruleIdentifier":"{{rule}}","action":{"forward":{"targetGroups":[{"targetGroupIdentifier":"{{tgtcp}}"}]}}},{"ruleIdentifier":"{{rule}}"},{"ruleIdentifier":"rule-0123456789abcdef0"},{"ruleIdentifier":"nope"}]}`},
		{op: "GetTargetGroup", l1: "{{tg.arn}}"},
		{op: "UpdateTargetGroup", l1: "{{tg}}", body: `{"healthCheck":{"enabled":false,"healthCheckIntervalSeconds":0,"matcher":{"httpCode":"200-399"}}}`},
		{op: "UpdateTargetGroup", l1: "{{tglambda}}", body: `{"healthCheck":{}}`},
		{op: "RegisterTargets", l1: "{{tg}}", body: `{"targets":[{"id":"10.0.0.9","port":80},{"id":"192.168.0.1"},{"id":"fd00::1"},{"id":"not-an-ip"}]}`},
		{op: "RegisterTargets", l1: "{{tg6}}", body: `{"targets":[{"id":"fd00::5"},{"id":"10.0.0.5"},{"id":"fe80::1%eth0"}]}`},
		{op: "RegisterTargets", l1: "{{tglambda}}", body: `{"targets":[{"id":"arn:aws:lambda:us-east-1:111122223333:function:two"},{"id":"x","port":1}]}`},
		{op: "RegisterTargets", l1: "{{tgalb}}", body: `{"targets":[{"id":"arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/app/x/1"}]}`},
		{op: "ListTargets", l1: "{{tg}}", query: "maxResults=1", body: `{"targets":[{"id":"10.0.0.2"}]}`},
		{op: "ListTargets", l1: "{{tginst.arn}}"},
		{op: "ListServiceNetworkServiceAssociations", query: "serviceNetworkIdentifier={{sn}}&serviceIdentifier={{svc.arn}}"},
		{op: "GetServiceNetworkServiceAssociation", l1: "{{snsa.arn}}"},
		{op: "ListServiceNetworkVpcAssociations", query: "vpcIdentifier={{vpc}}"},
		{op: "GetServiceNetworkVpcAssociation", l1: "{{snva.arn}}"},
		{op: "UpdateServiceNetworkVpcAssociation", l1: "{{snva}}", body: `{"securityGroupIds":["sg-0123456789abcdef1","sg-01234567"]}`},
		{op: "ListServiceNetworkVpcEndpointAssociations", query: "serviceNetworkIdentifier={{sn.arn}}&maxResults=5"},
		{op: "PutAuthPolicy", l1: "{{sn.arn}}", body: `{"policy":"{\"Statement\":[{\"Effect\":\"Deny\",\"Principal\":{\"AWS\":[\"arn:aws:iam::111122223333:root\"]},\"Action\":[\"vpc-lattice-svcs:*\"],\"Resource\":\"*\",\"Condition\":{\"IpAddress\":{\"aws:SourceIp\":\"10.0.0.0/8\"}}}]}"}`},
		{op: "PutAuthPolicy", l1: "{{svc}}", body: `{"policy":"{\"Statement\":[{\"Effect\":\"Maybe\"}]"}`},
		{op: "GetAuthPolicy", l1: "{{svc.arn}}"},
		{op: "PutResourcePolicy", l1: "{{sn.arn}}", body: `{"policy":"{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"{{other}}\"},\"Action\":\"vpc-lattice:CreateServiceNetworkServiceAssociation\",\"Resource\":\"{{sn.arn}}\"}]}"}`},
		{op: "GetResourcePolicy", l1: "{{svc.arn}}"},
		{op: "ListAccessLogSubscriptions", query: "resourceIdentifier={{sn.arn}}&maxResults=1"},
		{op: "GetAccessLogSubscription", l1: "{{als.arn}}"},
		{op: "UpdateAccessLogSubscription", l1: "{{als}}", body: `{"destinationArn":"arn:aws:s3:::other-bucket"}`},
		{op: "UpdateAccessLogSubscription", l1: "{{als2}}", body: `{"destinationArn":"arn:aws:s3:::x"}`},
		{op: "TagResource", l1: "{{rule.arn}}", body: `{"tags":{"a":"1","b":""}}`},
		{op: "TagResource", l1: "{{listener.arn}}", body: `{"tags":{}}`},
		{op: "TagResource", l1: "{{svc}}", body: `{"tags":{"a":"1"}}`},
		{op: "ListTagsForResource", l1: "{{snva.arn}}"},
		{op: "ListTagsForResource", l1: "arn:aws:vpc-lattice:us-east-1:{{account}}:service/{{svc}}/listener/{{listener}}/rule/{{rule}}/x/y"},
		{op: "CreateResourceConfiguration", body: `{}`},
		{op: "GetResourceGateway", l1: "rgw-0123456789abcdef0"},
		// Deletes, last so the seeds before them find what they name.
		{op: "DeregisterTargets", l1: "{{tg}}", body: `{"targets":[{"id":"10.0.0.1"},{"id":"10.0.0.1","port":1}]}`},
		{op: "DeleteServiceNetwork", l1: "{{sn}}"},
		{op: "DeleteService", l1: "{{svc2}}"},
		{op: "DeleteRule", l1: svcL[0], l2: svcL[1], l3: svcL[2]},
		{op: "DeleteListener", l1: svcL[0], l2: svcL[1]},
		{op: "DeleteTargetGroup", l1: "{{tg}}"},
		{op: "DeleteTargetGroup", l1: "{{spare}}"},
		{op: "DeleteServiceNetworkServiceAssociation", l1: "{{snsa}}"},
		{op: "DeleteServiceNetworkVpcAssociation", l1: "{{snva}}"},
		{op: "DeleteAuthPolicy", l1: "{{svc}}"},
		{op: "DeleteResourcePolicy", l1: "{{sn}}"},
		{op: "DeleteAccessLogSubscription", l1: "{{als2.arn}}"},
		{op: "UntagResource", l1: "{{sn.arn}}", query: "tagKeys=env&tagKeys=nope"},
		// Wrong methods, callers and encodings.
		{op: "GetService", method: 2, l1: "{{svc}}"},
		{op: "ListServices", method: 6},
		{op: "GetService", who: 6, l1: "{{svc}}"},
		{op: "CreateService", who: 7, body: `{"name":"anon"}`},
		{op: "GetRule", l1: "{{svc}}", l2: "{{listener}}", l3: "a/b", enc: 1},
		{op: "GetListener", l1: "%", l2: "%2", enc: 1},
		{op: "GetService", l1: "svc-0123456789abcdef0?x=1#frag", enc: 1},
		{op: "GetService", l1: "svc 0123", enc: 3},
		{op: "GetService", l1: "\x00\xff"},
	}
}

func FuzzLatticeAPI(f *testing.F) {
	for _, s := range latticeSeeds() {
		f.Add(routeIndex(s.op), s.method, s.who, s.enc, s.l1, s.l2, s.l3, s.query, []byte(s.body))
	}
	base := f.TempDir()
	var (
		fx    *latticeFixture
		runs  int
		fresh int
	)
	f.Cleanup(func() {
		if fx != nil {
			fx.close()
		}
	})
	f.Fuzz(func(t *testing.T, route, method, who, enc uint8, l1, l2, l3, query string, body []byte) {
		if fx == nil || runs%fuzzResetEvery == 0 {
			if fx != nil {
				fx.close()
			}
			fresh++
			fx = newLatticeFixture(t, filepath.Join(base, fmt.Sprint(fresh)))
		}
		runs++

		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		m := fuzzMethods[int(method)%len(fuzzMethods)]
		if m == "" {
			m = rt.method
		}
		labels := []string{l1, l2, l3}
		var path strings.Builder
		n := 0
		for _, seg := range strings.Split(strings.Trim(rt.pattern, "/"), "/") {
			path.WriteByte('/')
			if strings.HasPrefix(seg, "{") {
				path.WriteString(encodeLabel(fx.expand(labels[n]), enc>>(2*n)))
				n++
				continue
			}
			path.WriteString(seg)
		}
		target := path.String()
		if q := fx.expand(query); q != "" {
			target += "?" + q
		}
		// A request-target the HTTP server cannot parse never reaches
		// the API.
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		account := callerFor(who)
		rec := fx.serveURL(account, m, target, u, []byte(fx.expand(string(body))))
		checkAPIResponse(t, fmt.Sprintf("%s %s (%s as %q)", m, target, rt.op, account), rec, fx.logs.take())
	})
}

// TestFuzzRoutesMatchTable checks that every entry of fuzzRoutes is routed
// to the operation it names, so the copy cannot drift from routes.go
// unnoticed (a route added there must be added here by hand).
func TestFuzzRoutesMatchTable(t *testing.T) {
	fx := newLatticeFixture(t, t.TempDir())
	defer fx.close()
	for _, rt := range fuzzRoutes {
		p := strings.NewReplacer("{", "", "}", "").Replace(rt.pattern)
		r := &http.Request{Method: rt.method, URL: &url.URL{Path: p}}
		if got := fx.api.Op(r); got != rt.op {
			t.Errorf("%s %s routes to %q, want %q", rt.method, rt.pattern, got, rt.op)
		}
	}
}

// TestLatticeSeedsAnswer runs every seed once against a fresh fixture and
// checks the common response contract plus a few expected statuses, so the
// seeds keep exercising what they were written for.
func TestLatticeSeedsAnswer(t *testing.T) {
	fx := newLatticeFixture(t, t.TempDir())
	defer fx.close()
	want := map[string]int{
		"GetServiceNetwork": http.StatusOK,
		"GetService":        http.StatusOK,
		"GetTargetGroup":    http.StatusOK,
		"GetListener":       http.StatusOK,
		"GetRule":           http.StatusOK,
	}
	for _, s := range latticeSeeds() {
		rt := fuzzRoutes[routeIndex(s.op)]
		var path strings.Builder
		labels := []string{s.l1, s.l2, s.l3}
		n := 0
		for _, seg := range strings.Split(strings.Trim(rt.pattern, "/"), "/") {
			path.WriteByte('/')
			if strings.HasPrefix(seg, "{") {
				path.WriteString(encodeLabel(fx.expand(labels[n]), s.enc>>(2*n)))
				n++
				continue
			}
			path.WriteString(seg)
		}
		target := path.String()
		if q := fx.expand(s.query); q != "" {
			target += "?" + q
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			continue
		}
		m := fuzzMethods[int(s.method)%len(fuzzMethods)]
		if m == "" {
			m = rt.method
		}
		account := callerFor(s.who)
		rec := fx.serveURL(account, m, target, u, []byte(fx.expand(s.body)))
		desc := fmt.Sprintf("%s %s (%s)", m, target, s.op)
		checkAPIResponse(t, desc, rec, fx.logs.take())
		t.Logf("%s = %d %s", desc, rec.Code, rec.Header().Get("x-amzn-ErrorType"))
		if code, ok := want[s.op]; ok && s.method == 0 && s.who == 0 && s.enc == 0 &&
			strings.HasPrefix(s.l1, "{{") && !strings.Contains(s.l1, "foreign") && !strings.Contains(s.l1, "region") && rec.Code != code {
			t.Errorf("%s = %d %s, want %d", desc, rec.Code, rec.Body, code)
		}
	}
}
