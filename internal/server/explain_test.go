package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice/types"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
	"github.com/trellis-mesh/trellis/internal/api/native"
)

// explainErr is the error body of a failed explain call.
type explainErr struct {
	Message   string `json:"message"`
	FieldList []struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	} `json:"fieldList"`
}

func (e explainErr) fields() []string {
	var out []string
	for _, f := range e.FieldList {
		out = append(out, f.Name)
	}
	return out
}

// explain calls POST /trellis/v1/policy/explain, SigV4-signed with k.
func explain(t *testing.T, ts *testServer, k key, body any) (int, native.ExplainOut, explainErr) {
	t.Helper()
	var raw []byte
	if s, ok := body.(string); ok {
		raw = []byte(s)
	} else {
		raw, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest("POST", ts.endpoint+"/trellis/v1/policy/explain", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(raw)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: k.id, SecretAccessKey: k.secret},
		req, hex.EncodeToString(sum[:]), "trellis", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out native.ExplainOut
	var e explainErr
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("decoding %s: %v", b, err)
		}
	} else {
		_ = json.Unmarshal(b, &e)
	}
	return resp.StatusCode, out, e
}

// explainWorld is a shop network (AWS_IAM) with the service orders
// (AWS_IAM, HTTPS listener on 443), the default VPC associated, and
// principals with and without identity policies.
type explainWorld struct {
	ts              *testServer
	admin           key
	acct, vpc       string
	svcID, svcARN   string
	snID            string
	web, reader     string // role ARNs
	intern, blocked string
}

const allowInvoke = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"vpc-lattice-svcs:Invoke","Resource":"*"}]}`

func newExplainWorld(t *testing.T) *explainWorld {
	ts := startServer(t, t.TempDir(), lattice.Quotas{})
	ctx := context.Background()
	c := ts.admin()
	w := &explainWorld{ts: ts, admin: ts.adminKey(), acct: ts.boot.Account, vpc: ts.boot.VPCID}

	sn := must[*vpclattice.CreateServiceNetworkOutput](t)(c.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{
		Name: aws.String("shop"), AuthType: types.AuthTypeAwsIam}))
	svc := must[*vpclattice.CreateServiceOutput](t)(c.CreateService(ctx, &vpclattice.CreateServiceInput{Name: aws.String("orders"),
		Tags: map[string]string{"tier": "gold"}}))
	must[*vpclattice.UpdateServiceOutput](t)(c.UpdateService(ctx, &vpclattice.UpdateServiceInput{ServiceIdentifier: svc.Id, AuthType: types.AuthTypeAwsIam}))
	w.snID, w.svcID, w.svcARN = aws.ToString(sn.Id), aws.ToString(svc.Id), aws.ToString(svc.Arn)
	must[*vpclattice.CreateServiceNetworkServiceAssociationOutput](t)(c.CreateServiceNetworkServiceAssociation(ctx,
		&vpclattice.CreateServiceNetworkServiceAssociationInput{ServiceNetworkIdentifier: sn.Id, ServiceIdentifier: svc.Id}))
	must[*vpclattice.CreateServiceNetworkVpcAssociationOutput](t)(c.CreateServiceNetworkVpcAssociation(ctx,
		&vpclattice.CreateServiceNetworkVpcAssociationInput{ServiceNetworkIdentifier: sn.Id, VpcIdentifier: aws.String(w.vpc)}))
	must[*vpclattice.CreateListenerOutput](t)(c.CreateListener(ctx, &vpclattice.CreateListenerInput{ServiceIdentifier: svc.Id,
		Name: aws.String("https"), Protocol: types.ListenerProtocolHttps,
		DefaultAction: &types.RuleActionMemberFixedResponse{Value: types.FixedResponseAction{StatusCode: aws.Int32(404)}}}))

	root := "arn:aws:iam::" + w.acct
	w.web, w.reader, w.intern, w.blocked = root+":role/web", root+":role/reader", root+":role/intern", root+":user/blocked"
	for _, p := range []map[string]any{
		{"name": "web", "type": "role", "tags": map[string]string{"team": "orders"}, "policy": allowInvoke},
		{"name": "reader", "type": "role", "tags": map[string]string{"team": "orders"}},
		{"name": "intern", "type": "role", "tags": map[string]string{"team": "orders"}, "policy": allowInvoke},
		{"name": "blocked", "type": "user", "tags": map[string]string{"team": "orders"},
			"policy": `{"Version":"2012-10-17","Statement":[{"Sid":"NoOrders","Effect":"Deny","Action":"vpc-lattice-svcs:Invoke","Resource":"` + w.svcARN + `/*"},` +
				`{"Effect":"Allow","Action":"vpc-lattice-svcs:Invoke","Resource":"*"}]}`},
	} {
		if code := nativeCall(t, ts, ts.boot.AccessKeyID, ts.secret, "POST", "/principals", p, nil); code != 201 {
			t.Fatalf("create principal %v: %d", p["name"], code)
		}
	}

	must[*vpclattice.PutAuthPolicyOutput](t)(c.PutAuthPolicy(ctx, &vpclattice.PutAuthPolicyInput{ResourceIdentifier: sn.Id, Policy: aws.String(`{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "FromDefaultVpc", "Effect": "Allow", "Principal": "*", "Action": "vpc-lattice-svcs:Invoke", "Resource": "*",
     "Condition": {"StringEquals": {"vpc-lattice-svcs:SourceVpc": "` + w.vpc + `"}}},
    {"Sid": "NoInterns", "Effect": "Deny", "Principal": {"AWS": "` + w.intern + `"}, "Action": "vpc-lattice-svcs:Invoke", "Resource": "*"}
  ]}`)}))
	must[*vpclattice.PutAuthPolicyOutput](t)(c.PutAuthPolicy(ctx, &vpclattice.PutAuthPolicyInput{ResourceIdentifier: svc.Arn, Policy: aws.String(`{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "OrdersTeamReads", "Effect": "Allow", "Principal": {"AWS": "` + w.acct + `"}, "Action": "vpc-lattice-svcs:Invoke",
     "Resource": "` + w.svcARN + `/orders/*",
     "Condition": {"StringEquals": {"vpc-lattice-svcs:RequestMethod": "GET", "aws:PrincipalTag/team": "orders"}}},
    {"Sid": "Public", "Effect": "Allow", "Principal": "*", "Action": "vpc-lattice-svcs:Invoke", "Resource": "` + w.svcARN + `/public/*"}
  ]}`)}))
	return w
}

// call explains body as the admin; it must succeed.
func (w *explainWorld) call(t *testing.T, body map[string]any) native.ExplainOut {
	t.Helper()
	code, out, e := explain(t, w.ts, w.admin, body)
	if code != 200 {
		t.Fatalf("explain %v: %d %s %v", body, code, e.Message, e.fields())
	}
	return out
}

func layer(out native.ExplainOut, name string) *struct {
	Evaluated bool
	Result    string
	Note      string
	Sid       string
} {
	for _, l := range out.Explanation.Layers {
		if l.Layer == name {
			return &struct {
				Evaluated bool
				Result    string
				Note      string
				Sid       string
			}{l.Evaluated, l.Result, l.Note, l.Sid}
		}
	}
	return nil
}

func TestExplainDecisions(t *testing.T) {
	w := newExplainWorld(t)

	t.Run("allowed", func(t *testing.T) {
		out := w.call(t, map[string]any{"service": "orders", "principal": w.web, "method": "GET", "path": "/orders/1"})
		if out.Decision != "ALLOW" || out.DeniedBy != "" || out.Message != "" || !out.Explanation.Allowed {
			t.Fatalf("decision = %s %s %q", out.Decision, out.DeniedBy, out.Message)
		}
		r := out.Request
		if r.Resource != w.svcARN+"/orders/1" || r.Action != "vpc-lattice-svcs:Invoke" || r.Port != 443 || r.Protocol != "HTTPS" ||
			!r.SecureTransport || r.SourceVpc == nil || r.SourceVpc.ID != w.vpc || r.ServiceNetwork == nil || r.ServiceNetwork.ID != w.snID ||
			r.Service.Policy != "stored" || r.Service.AuthType != "AWS_IAM" || r.PrincipalType != "AssumedRole" ||
			r.PrincipalTags["team"] != "orders" || !slices.Equal(r.IdentityPolicies, []string{"role/web"}) {
			t.Errorf("request = %+v", r)
		}
		if l := layer(out, "service"); l.Result != "Allowed" || l.Sid != "OrdersTeamReads" {
			t.Errorf("service layer = %+v", l)
		}
		if !strings.HasPrefix(out.Text, "allowed\n") || !strings.Contains(out.Text, `service layer: Allowed by "orders" statement 0 (Sid OrdersTeamReads)`) {
			t.Errorf("text:\n%s", out.Text)
		}
	})

	t.Run("denied by service names the failing condition", func(t *testing.T) {
		out := w.call(t, map[string]any{"service": w.svcARN, "principal": "role/web", "method": "POST", "path": "/orders/1"})
		want := "AccessDeniedException: User: " + w.web + " is not authorized to perform: vpc-lattice-svcs:Invoke on resource: " +
			w.svcARN + "/orders/1 because no service-based policy allows the vpc-lattice-svcs:Invoke action"
		if out.Decision != "DENY" || out.DeniedBy != "Service" || out.Message != want {
			t.Fatalf("decision = %s %s %q", out.Decision, out.DeniedBy, out.Message)
		}
		st := out.Explanation.Layers[1].Policies[0].Statements[0]
		if st.Sid != "OrdersTeamReads" || st.Mismatch == nil || st.Mismatch.Element != "condition" ||
			st.Mismatch.Key != "vpc-lattice-svcs:RequestMethod" || !slices.Equal(st.Mismatch.RequestValues, []string{"POST"}) {
			t.Errorf("statement 0 = %+v %+v", st, st.Mismatch)
		}
		if !strings.Contains(out.Text, `condition StringEquals vpc-lattice-svcs:RequestMethod: request ["POST"], policy ["GET"]`) {
			t.Errorf("text does not name the failed condition:\n%s", out.Text)
		}
	})

	t.Run("denied by network (explicit deny)", func(t *testing.T) {
		out := w.call(t, map[string]any{"service": w.svcID, "principal": w.intern, "path": "/orders/1"})
		if out.DeniedBy != "Network" || !out.Explanation.ExplicitDeny || !strings.HasSuffix(out.Message, "with an explicit deny in a network-based policy") {
			t.Fatalf("decision = %s %s %q", out.Decision, out.DeniedBy, out.Message)
		}
		if l := layer(out, "network"); l.Result != "Denied" || l.Sid != "NoInterns" {
			t.Errorf("network layer = %+v", l)
		}
	})

	t.Run("denied by network (no allow from another VPC's view)", func(t *testing.T) {
		// A network policy that allows another VPC only: the condition
		// on SourceVpc fails.
		out := w.call(t, map[string]any{"service": "orders", "principal": w.web, "path": "/orders/1",
			"networkPolicy": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Invoke","Resource":"*",` +
				`"Condition":{"StringEquals":{"vpc-lattice-svcs:SourceVpc":"vpc-0000000000000000a"}}}]}`})
		if out.DeniedBy != "Network" || out.Explanation.ExplicitDeny || out.Request.ServiceNetwork.Policy != "override" ||
			!strings.Contains(out.Text, `condition StringEquals vpc-lattice-svcs:SourceVpc: request ["`+w.vpc+`"], policy ["vpc-0000000000000000a"]`) {
			t.Errorf("decision = %s %s\n%s", out.Decision, out.DeniedBy, out.Text)
		}
	})

	t.Run("denied by identity", func(t *testing.T) {
		out := w.call(t, map[string]any{"service": "orders", "principal": "reader", "path": "/orders/1"})
		if out.DeniedBy != "Identity" || !strings.HasSuffix(out.Message, "because no identity-based policy allows the vpc-lattice-svcs:Invoke action") ||
			len(out.Request.IdentityPolicies) != 0 {
			t.Fatalf("reader: %s %s %q %v", out.Decision, out.DeniedBy, out.Message, out.Request.IdentityPolicies)
		}
		if l := layer(out, "identity"); !l.Evaluated || l.Note != "the caller has no identity-based policies" {
			t.Errorf("identity layer = %+v", l)
		}
		out = w.call(t, map[string]any{"service": "orders", "principal": w.blocked, "path": "/orders/1"})
		if out.DeniedBy != "Identity" || !out.Explanation.ExplicitDeny || layer(out, "identity").Sid != "NoOrders" ||
			out.Request.PrincipalType != "User" {
			t.Errorf("blocked: %s %s %+v", out.Decision, out.DeniedBy, layer(out, "identity"))
		}
	})

	t.Run("anonymous matches only Principal *", func(t *testing.T) {
		out := w.call(t, map[string]any{"service": "orders", "principal": "anonymous", "path": "/orders/1"})
		if out.DeniedBy != "Service" || !strings.HasPrefix(out.Message, "AccessDeniedException: User: anonymous is not authorized") ||
			out.Request.PrincipalType != "Anonymous" {
			t.Fatalf("anonymous /orders/1: %s %s %q", out.Decision, out.DeniedBy, out.Message)
		}
		if !strings.Contains(out.Text, `principal: request ["anonymous"], policy ["`+w.acct+`"] (anonymous callers match only Principal "*")`) {
			t.Errorf("text:\n%s", out.Text)
		}
		out = w.call(t, map[string]any{"service": "orders", "principal": "anonymous", "path": "/public/logo.png"})
		if out.Decision != "ALLOW" || layer(out, "service").Sid != "Public" ||
			layer(out, "identity").Note != "not evaluated: anonymous caller (no identity-based policies)" {
			t.Errorf("anonymous /public: %s %s\n%s", out.Decision, out.DeniedBy, out.Text)
		}
	})

	t.Run("TLS passthrough is Connect by an anonymous caller", func(t *testing.T) {
		connect := `{"Version":"2012-10-17","Statement":[{"Sid":"Inside","Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Connect",` +
			`"Resource":"` + w.svcARN + `","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/16"}}}]}`
		body := map[string]any{"service": "orders", "principal": w.web, "port": 8443, "protocol": "TLS_PASSTHROUGH",
			"servicePolicy": connect, "networkAuthType": "NONE", "sourceIp": "10.0.3.4"}
		out := w.call(t, body)
		if out.Decision != "ALLOW" || out.Request.Action != "vpc-lattice-svcs:Connect" || out.Request.Resource != w.svcARN || out.Request.Principal != "anonymous" {
			t.Errorf("connect from 10.0.3.4: %s %s %s %s\n%s", out.Decision, out.Request.Action, out.Request.Resource, out.Request.Principal, out.Text)
		}
		if !strings.Contains(strings.Join(out.Notes, "\n"), "sees no caller inside the tunnel") {
			t.Errorf("notes %q do not say the principal was dropped", out.Notes)
		}
		body["sourceIp"] = "192.0.2.1"
		if out := w.call(t, body); out.Decision != "DENY" || !strings.Contains(out.Message, "vpc-lattice-svcs:Connect on resource: "+w.svcARN+" ") {
			t.Errorf("connect from 192.0.2.1: %s %q", out.Decision, out.Message)
		}
	})

	t.Run("paths are explained as a gateway normalises them", func(t *testing.T) {
		for _, path := range []string{"/public/../orders/1", "/public/%2e%2e/orders/1", "//public/./../orders/1", "/public/x%2F..%2F..%2Forders%2F1", "/public/..;/orders/1"} {
			out := w.call(t, map[string]any{"service": "orders", "principal": "anonymous", "path": path})
			if out.Decision != "DENY" || out.DeniedBy != "Service" {
				t.Errorf("anonymous %s: %s %s, want DENY by Service (it is /orders/1 to the target)\n%s", path, out.Decision, out.DeniedBy, out.Text)
			}
			if !strings.Contains(strings.Join(out.Notes, "\n"), "normalised") && !strings.Contains(strings.Join(out.Notes, "\n"), "encoded slash") {
				t.Errorf("anonymous %s: notes %q say nothing of the normalised path", path, out.Notes)
			}
		}
	})

	t.Run("overrides", func(t *testing.T) {
		// A service policy tried before it is put: POST with a header.
		svcPolicy := `{"Version":"2012-10-17","Statement":[{"Sid":"TeamWrites","Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Invoke",` +
			`"Resource":"*","Condition":{"StringEquals":{"vpc-lattice-svcs:RequestHeader/x-team":"orders","aws:ResourceTag/tier":"gold"}}}]}`
		body := map[string]any{"service": "orders", "principal": w.web, "method": "POST", "path": "/orders",
			"headers": map[string]any{"X-Team": "orders", "Accept": []string{"a", "b"}}, "servicePolicy": svcPolicy}
		out := w.call(t, body)
		if out.Decision != "ALLOW" || out.Request.Service.Policy != "override" || out.Request.Headers["x-team"] != "orders" ||
			out.Request.Headers["accept"] != "a, b" || layer(out, "service").Sid != "TeamWrites" {
			t.Errorf("service override: %s %s %+v\n%s", out.Decision, out.DeniedBy, out.Request, out.Text)
		}
		// "" is no policy: AWS_IAM without a policy denies everything.
		body["servicePolicy"] = ""
		out = w.call(t, body)
		if out.DeniedBy != "Service" || out.Request.Service.Policy != "none" ||
			layer(out, "service").Note != "authType AWS_IAM with no auth policy denies every request" {
			t.Errorf("no service policy: %s %s %+v", out.Decision, out.DeniedBy, layer(out, "service"))
		}
		// serviceAuthType NONE skips the layer; the note says the policy is unused.
		body["serviceAuthType"] = "NONE"
		out = w.call(t, body)
		if out.Decision != "ALLOW" || layer(out, "service").Evaluated || len(out.Notes) != 1 || !strings.Contains(out.Notes[0], "servicePolicy is not evaluated") {
			t.Errorf("service NONE: %s %s %v", out.Decision, out.DeniedBy, out.Notes)
		}
		// No identity policies for web.
		out = w.call(t, map[string]any{"service": "orders", "principal": w.web, "path": "/orders/1", "identityPolicies": []string{}})
		if out.DeniedBy != "Identity" {
			t.Errorf("empty identityPolicies: %s %s", out.Decision, out.DeniedBy)
		}
		// Identity policies given for a principal without any.
		out = w.call(t, map[string]any{"service": "orders", "principal": w.reader, "path": "/orders/1", "identityPolicies": []string{allowInvoke}})
		if out.Decision != "ALLOW" || !slices.Equal(out.Request.IdentityPolicies, []string{"identityPolicies[0]"}) {
			t.Errorf("identityPolicies for reader: %s %s %v", out.Decision, out.DeniedBy, out.Request.IdentityPolicies)
		}
		// Both authTypes NONE: nothing is evaluated.
		out = w.call(t, map[string]any{"service": "orders", "principal": w.reader, "networkAuthType": "NONE", "serviceAuthType": "NONE"})
		if out.Decision != "ALLOW" || layer(out, "identity").Note != "not evaluated: both authTypes are NONE" {
			t.Errorf("both NONE: %s %+v", out.Decision, layer(out, "identity"))
		}
	})

	t.Run("request keys", func(t *testing.T) {
		pol := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Invoke","Resource":"*","Condition":{` +
			`"IpAddress":{"aws:SourceIp":"10.0.0.0/24"},"NumericEquals":{"vpc-lattice-svcs:Port":"443"},"Bool":{"aws:SecureTransport":"true"},` +
			`"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"},"ForAnyValue:StringEquals":{"vpc-lattice-svcs:RequestQueryString/page":["2"]},` +
			`"StringEquals":{"vpc-lattice-svcs:SourceVpcOwnerAccount":"` + w.acct + `","vpc-lattice-svcs:ServiceNetworkArn":"` +
			"arn:aws:vpc-lattice:us-east-1:" + w.acct + ":servicenetwork/" + w.snID + `","vpc-lattice-svcs:RequestPath":"/orders/1"}}}]}`
		body := map[string]any{"service": "orders", "principal": "anonymous", "path": "/orders/1", "sourceIp": "10.0.0.5",
			"query": map[string]any{"page": []string{"1", "2"}}, "time": "2029-12-31T23:00:00Z", "servicePolicy": pol, "port": 443}
		if out := w.call(t, body); out.Decision != "ALLOW" || out.Request.Time != "2029-12-31T23:00:00Z" || out.Request.SourceIP != "10.0.0.5" {
			t.Errorf("all keys: %s %s\n%s", out.Decision, out.DeniedBy, out.Text)
		}
		body["time"] = "2030-06-01T00:00:00Z"
		if out := w.call(t, body); out.DeniedBy != "Service" || !strings.Contains(out.Text, "DateLessThan aws:CurrentTime") {
			t.Errorf("later time: %s %s\n%s", out.Decision, out.DeniedBy, out.Text)
		}
	})
}

func TestExplainResolution(t *testing.T) {
	w := newExplainWorld(t)
	ctx := context.Background()
	c := w.ts.admin()

	// A VPC that reaches no network: naming it fails; the default VPC is
	// used when no VPC is named.
	var other struct{ ID string }
	if code := nativeCall(t, w.ts, w.admin.id, w.admin.secret, "POST", "/vpcs", map[string]any{"name": "other", "cidrs": []string{"10.9.0.0/16"}}, &other); code != 201 {
		t.Fatalf("create vpc: %d", code)
	}
	code, _, e := explain(t, w.ts, w.admin, map[string]any{"service": "orders", "principal": w.web, "sourceVpc": "other"})
	if code != 400 || !slices.Equal(e.fields(), []string{"sourceVpc"}) || !strings.Contains(e.Message, "is not associated with a service network") {
		t.Errorf("unassociated VPC: %d %s", code, e.Message)
	}

	// A second network with the service: without a VPC or network the
	// choice is ambiguous; the default VPC decides, or the caller names it.
	sn2 := must[*vpclattice.CreateServiceNetworkOutput](t)(c.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{Name: aws.String("partners")}))
	must[*vpclattice.CreateServiceNetworkServiceAssociationOutput](t)(c.CreateServiceNetworkServiceAssociation(ctx,
		&vpclattice.CreateServiceNetworkServiceAssociationInput{ServiceNetworkIdentifier: sn2.Id, ServiceIdentifier: aws.String(w.svcID)}))
	out := w.call(t, map[string]any{"service": "orders", "principal": w.web, "path": "/orders/1"})
	if out.Request.ServiceNetwork.Name != "shop" || out.Request.SourceVpc == nil {
		t.Errorf("default VPC picks shop: %+v", out.Request.ServiceNetwork)
	}
	// Through partners (authType NONE) the default VPC cannot come: it is
	// left out with a note.
	out = w.call(t, map[string]any{"service": "orders", "principal": w.web, "path": "/orders/1", "serviceNetwork": "partners"})
	if out.Request.ServiceNetwork.Name != "partners" || out.Request.SourceVpc != nil || len(out.Notes) != 1 ||
		!strings.Contains(out.Notes[0], "does not reach service orders through service network partners") || layer(out, "network").Evaluated {
		t.Errorf("through partners: %+v %v", out.Request, out.Notes)
	}
	code, _, e = explain(t, w.ts, w.admin, map[string]any{"service": "orders", "principal": w.web, "serviceNetwork": "partners", "sourceVpc": w.vpc})
	if code != 400 || !slices.Equal(e.fields(), []string{"sourceVpc"}) || !strings.Contains(e.Message, "not partners") {
		t.Errorf("VPC of another network: %d %s", code, e.Message)
	}
	// Without the default VPC, two networks need a choice.
	must[*vpclattice.DeleteServiceNetworkVpcAssociationOutput](t)(c.DeleteServiceNetworkVpcAssociation(ctx, &vpclattice.DeleteServiceNetworkVpcAssociationInput{
		ServiceNetworkVpcAssociationIdentifier: aws.String(snvaOf(t, c, w.snID))}))
	code, _, e = explain(t, w.ts, w.admin, map[string]any{"service": "orders", "principal": w.web})
	if code != 400 || !slices.Equal(e.fields(), []string{"serviceNetwork"}) || !strings.Contains(e.Message, "is in 2 service networks (shop, partners)") &&
		!strings.Contains(e.Message, "is in 2 service networks (partners, shop)") {
		t.Errorf("two networks: %d %s", code, e.Message)
	}

	// A service in no network: no network layer, and a note.
	must[*vpclattice.CreateServiceOutput](t)(c.CreateService(ctx, &vpclattice.CreateServiceInput{Name: aws.String("lonely"), AuthType: types.AuthTypeAwsIam}))
	out = w.call(t, map[string]any{"service": "lonely", "principal": "anonymous", "protocol": "HTTP"})
	if out.Request.ServiceNetwork != nil || out.Request.Port != 80 || out.DeniedBy != "Service" || !hasNote(out, "is not associated with any service network") ||
		!hasNote(out, "has no HTTP listener; explained for port 80") {
		t.Errorf("lonely: %+v %v", out.Request, out.Notes)
	}
	code, _, e = explain(t, w.ts, w.admin, map[string]any{"service": "lonely", "principal": "anonymous", "networkAuthType": "AWS_IAM"})
	if code != 400 || !slices.Equal(e.fields(), []string{"networkAuthType"}) {
		t.Errorf("network override without a network: %d %s", code, e.Message)
	}

	// Ports: a named port must be a listener's, with its protocol.
	code, _, e = explain(t, w.ts, w.admin, map[string]any{"service": "orders", "principal": w.web, "serviceNetwork": "shop", "port": 443, "protocol": "HTTP"})
	if code != 400 || !slices.Equal(e.fields(), []string{"protocol"}) {
		t.Errorf("protocol of the listener: %d %s", code, e.Message)
	}
	out = w.call(t, map[string]any{"service": "orders", "principal": w.web, "serviceNetwork": "shop", "port": 8080})
	if out.Request.Port != 8080 || !hasNote(out, "no listener on port 8080") {
		t.Errorf("port without listener: %+v %v", out.Request, out.Notes)
	}

	// Not found.
	for _, b := range []map[string]any{
		{"service": "nope", "principal": "anonymous"},
		{"service": "svc-0123456789abcdef0", "principal": "anonymous"},
		{"service": "orders", "principal": "role/ghost", "serviceNetwork": "shop"},
		{"service": "orders", "principal": "anonymous", "serviceNetwork": "nope"},
		{"service": "orders", "principal": "anonymous", "sourceVpc": "vpc-0123456789abcdef0"},
	} {
		if code, _, e := explain(t, w.ts, w.admin, b); code != 404 {
			t.Errorf("%v: %d %s, want 404", b, code, e.Message)
		}
	}
}

func hasNote(out native.ExplainOut, s string) bool {
	return slices.ContainsFunc(out.Notes, func(n string) bool { return strings.Contains(n, s) })
}

func snvaOf(t *testing.T, c *vpclattice.Client, snID string) string {
	t.Helper()
	l := must[*vpclattice.ListServiceNetworkVpcAssociationsOutput](t)(c.ListServiceNetworkVpcAssociations(context.Background(),
		&vpclattice.ListServiceNetworkVpcAssociationsInput{ServiceNetworkIdentifier: aws.String(snID)}))
	if len(l.Items) != 1 {
		t.Fatalf("associations of %s: %d", snID, len(l.Items))
	}
	return aws.ToString(l.Items[0].Id)
}

func TestExplainValidation(t *testing.T) {
	w := newExplainWorld(t)
	for _, c := range []struct {
		name   string
		body   any
		fields []string
	}{
		{"empty", map[string]any{}, []string{"service", "principal"}},
		{"unknown member", `{"service":"orders","principal":"anonymous","verb":"GET"}`, []string{"verb"}},
		{"wrong type", `{"service":"orders","principal":"anonymous","port":"443"}`, []string{"port"}},
		{"bad values", map[string]any{"service": "orders", "principal": "anonymous", "method": "GE T", "path": "orders",
			"port": 0, "protocol": "FTP", "time": "yesterday", "sourceIp": "10.0.0.300", "networkAuthType": "IAM", "serviceAuthType": "none"},
			[]string{"method", "path", "sourceIp", "port", "protocol", "time", "networkAuthType", "serviceAuthType"}},
		{"headers and query", map[string]any{"service": "orders", "principal": "anonymous",
			"headers": map[string]any{"bad name": "x", "x-ok": 3, "x-crlf": "a\r\nb"}, "query": []string{"a=1"}},
			[]string{"headers.bad name", "headers.x-crlf", "headers.x-ok", "query"}},
		{"path with query", map[string]any{"service": "orders", "principal": "anonymous", "path": "/a?b=1"}, []string{"path"}},
		{"grpc", map[string]any{"service": "orders", "principal": "anonymous", "method": "GET", "headers": map[string]any{"content-type": "application/grpc"},
			"query": map[string]any{"a": "1"}}, []string{"method", "query"}},
		{"secure transport", map[string]any{"service": "orders", "principal": "anonymous", "protocol": "HTTP", "secureTransport": true}, []string{"secureTransport"}},
		{"policies", map[string]any{"service": "orders", "principal": w.web,
			"networkPolicy":    `{"Version":"2012-10-17","Statement":[{"Effect":"Permit","Principal":"*","Action":"vpc-lattice-svcs:Invoke","Resource":"*"}]}`,
			"servicePolicy":    `{"Statement":`,
			"identityPolicies": []string{allowInvoke, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}`, ""}},
			[]string{"identityPolicies[1].Statement[0].Principal", "identityPolicies[2]", "networkPolicy.Statement[0].Effect", "servicePolicy.Statement"}},
		{"anonymous with identity policies", map[string]any{"service": "orders", "principal": "anonymous", "identityPolicies": []string{allowInvoke}},
			[]string{"identityPolicies"}},
		{"bad service ARN", map[string]any{"service": "arn:aws:vpc-lattice:us-east-1:" + w.acct + ":servicenetwork/" + w.snID, "principal": "anonymous"},
			[]string{"service"}},
		{"bad principal ARN", map[string]any{"service": "orders", "principal": "arn:aws:s3:::bucket"}, []string{"principal"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, e := explain(t, w.ts, w.admin, c.body)
			got := e.fields()
			slices.Sort(got)
			want := slices.Clone(c.fields)
			slices.Sort(want)
			if code != 400 || !slices.Equal(got, want) {
				t.Errorf("%d %s\nfields %q, want %q", code, e.Message, got, want)
			}
		})
	}
}

func TestExplainAuthorization(t *testing.T) {
	w := newExplainWorld(t)
	var acct struct{ ID string }
	if code := nativeCall(t, w.ts, w.admin.id, w.admin.secret, "POST", "/accounts", map[string]string{"name": "tenant"}, &acct); code != 201 {
		t.Fatalf("create account: %d", code)
	}
	if code := nativeCall(t, w.ts, w.admin.id, w.admin.secret, "POST", "/principals", map[string]any{"name": "dev", "type": "role", "account": acct.ID}, nil); code != 201 {
		t.Fatalf("create principal: %d", code)
	}
	var k struct{ AccessKeyId, SecretAccessKey string }
	if code := nativeCall(t, w.ts, w.admin.id, w.admin.secret, "POST", "/accesskeys", map[string]string{"principal": "role/dev", "account": acct.ID}, &k); code != 201 {
		t.Fatalf("create key: %d", code)
	}
	tenant := key{k.AccessKeyId, k.SecretAccessKey}

	// The tenant sees only its own account: orders is not there, the
	// admin account cannot be named, and its service ARN names it.
	for _, c := range []struct {
		body map[string]any
		code int
	}{
		{map[string]any{"service": "orders", "principal": "anonymous"}, 404},
		{map[string]any{"service": "orders", "principal": "anonymous", "account": w.acct}, 403},
		{map[string]any{"service": w.svcARN, "principal": "anonymous"}, 403},
	} {
		if code, _, e := explain(t, w.ts, tenant, c.body); code != c.code {
			t.Errorf("tenant %v: %d %s, want %d", c.body, code, e.Message, c.code)
		}
	}
	// A principal of the account may explain its services (here as the
	// web role itself); admins may explain any account's.
	var wk struct{ AccessKeyId, SecretAccessKey string }
	if code := nativeCall(t, w.ts, w.admin.id, w.admin.secret, "POST", "/accesskeys", map[string]string{"principal": "role/web"}, &wk); code != 201 {
		t.Fatalf("create key: %d", code)
	}
	if code, out, e := explain(t, w.ts, key{wk.AccessKeyId, wk.SecretAccessKey}, map[string]any{"service": "orders", "principal": "role/web", "path": "/orders/1"}); code != 200 || out.Decision != "ALLOW" {
		t.Errorf("web explains for itself: %d %s %s", code, out.Decision, e.Message)
	}
	// The tenant's principal, named by ARN, may not be used in the admin
	// account by the tenant, but an admin may.
	devARN := "arn:aws:iam::" + acct.ID + ":role/dev"
	out := w.call(t, map[string]any{"service": "orders", "principal": devARN, "path": "/orders/1"})
	if out.DeniedBy != "Service" || out.Request.Principal != devARN {
		t.Errorf("cross-account caller: %s %s %s", out.Decision, out.DeniedBy, out.Request.Principal)
	}
	if code, _, _ := explain(t, w.ts, key{wk.AccessKeyId, wk.SecretAccessKey}, map[string]any{"service": "orders", "principal": devARN}); code != 403 {
		t.Errorf("web names another account's principal: %d, want 403", code)
	}
	// Unsigned calls never reach the handler.
	resp, err := http.Post(w.ts.endpoint+"/trellis/v1/policy/explain", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("unsigned: %d", resp.StatusCode)
	}
}
