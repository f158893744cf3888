package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// explainSetup applies the quickstart with both authTypes AWS_IAM, a
// network policy that lets every caller through, and a service policy
// that lets the orders team GET /orders/*; it creates the role web (team
// orders, allowed to invoke anything).
func explainSetup(t *testing.T) *testEnv {
	e := newEnv(t)
	e.ok("apply", "-f", quickstart)
	e.stdin = `kind: ServiceNetwork
name: shop
authType: AWS_IAM
---
kind: Service
name: orders
authType: AWS_IAM
---
kind: AuthPolicy
serviceNetwork: shop
policy: {"Version": "2012-10-17", "Statement": [{"Sid": "Everyone", "Effect": "Allow", "Principal": "*", "Action": "vpc-lattice-svcs:Invoke", "Resource": "*"}]}
---
kind: AuthPolicy
service: orders
policy: {"Version": "2012-10-17", "Statement": [{"Sid": "OrdersTeamReads", "Effect": "Allow", "Principal": "*", "Action": "vpc-lattice-svcs:Invoke", "Resource": "*/orders/*", "Condition": {"StringEquals": {"vpc-lattice-svcs:RequestMethod": "GET", "aws:PrincipalTag/team": "orders"}}}]}
`
	e.ok("apply", "-f", "-")
	e.stdin = ""
	e.ok("create", "principal", "web", "--type", "role", "--tag", "team=orders", "--policy",
		writeFile(t, "web.json", `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "vpc-lattice-svcs:Invoke", "Resource": "*"}]}`))
	return e
}

func TestPolicyExplainGolden(t *testing.T) {
	e := explainSetup(t)
	writes := writeFile(t, "writes.json", `{"Version": "2012-10-17", "Statement": [{"Sid": "Writes", "Effect": "Allow", "Principal": "*",
  "Action": "vpc-lattice-svcs:Invoke", "Resource": "*/orders*",
  "Condition": {"StringEquals": {"vpc-lattice-svcs:RequestHeader/content-type": "application/json"}}}]}`)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"explain_allowed", []string{"policy", "explain", "--service", "orders", "--principal", "role/web", "--method", "GET", "--path", "/orders/1"}},
		{"explain_denied_service", []string{"policy", "explain", "--service", "orders", "--principal", "web", "--method", "POST", "--path", "/orders/new",
			"--header", "content-type=application/json", "--query", "dry=1", "--query", "dry=2", "--source-ip", "10.0.0.5"}},
		{"explain_anonymous", []string{"policy", "explain", "--service", "orders", "--principal", "anonymous", "--path", "/orders/1"}},
		{"explain_override_yaml", []string{"policy", "explain", "--service", "orders", "--principal", "role/web", "--method", "POST", "--path", "/orders",
			"--header", "content-type=application/json", "--service-policy", writes, "--network-policy", "none", "--network-auth-type", "NONE",
			"--time", "2026-01-02T03:04:05Z", "-o", "yaml"}},
	} {
		t.Run(c.name, func(t *testing.T) { golden(t, c.name, e.ok(c.args...)) })
	}
}

func TestPolicyExplain(t *testing.T) {
	e := explainSetup(t)

	// JSON is the API's answer.
	var out struct {
		Decision, DeniedBy, Message, Text string
		Request                           struct{ Principal, Resource string }
		Explanation                       struct {
			Layers []struct{ Layer, Result, Sid string }
		}
	}
	if err := json.Unmarshal([]byte(e.ok("policy", "explain", "--service", "orders", "--principal", "role/web", "--path", "/orders/1", "-o", "json")), &out); err != nil {
		t.Fatal(err)
	}
	if out.Decision != "ALLOW" || len(out.Explanation.Layers) != 3 || out.Explanation.Layers[1].Sid != "OrdersTeamReads" ||
		!strings.HasSuffix(out.Request.Principal, ":role/web") || !strings.HasSuffix(out.Request.Resource, "/orders/1") {
		t.Errorf("json: %+v", out)
	}

	// Every flag has its environment twin.
	t.Setenv("TRELLIS_SERVICE", "orders")
	t.Setenv("TRELLIS_PRINCIPAL", "anonymous")
	t.Setenv("TRELLIS_PATH", "/orders/1")
	t.Setenv("TRELLIS_SERVICE_AUTH_TYPE", "NONE")
	if got := e.ok("policy", "explain"); !strings.HasPrefix(got, "decision:   ALLOW\n") || !strings.Contains(got, "service layer: not evaluated: authType NONE") {
		t.Errorf("from TRELLIS_*:\n%s", got)
	}
	// A flag wins over its variable.
	if got := e.ok("policy", "explain", "--service-auth-type", "AWS_IAM"); !strings.HasPrefix(got, "decision:   DENY (denied by the Service layer)\n") {
		t.Errorf("flag over TRELLIS_SERVICE_AUTH_TYPE:\n%s", got)
	}
	for _, k := range []string{"TRELLIS_SERVICE", "TRELLIS_PRINCIPAL", "TRELLIS_PATH", "TRELLIS_SERVICE_AUTH_TYPE"} {
		t.Setenv(k, "")
	}

	// Identity policies from files, or none.
	if got := e.ok("policy", "explain", "--service", "orders", "--principal", "role/web", "--path", "/orders/1", "--identity-policy", "none"); !strings.Contains(got, "DENY (denied by the Identity layer)") {
		t.Errorf("--identity-policy none:\n%s", got)
	}
	deny := writeFile(t, "deny.json", `{"Version": "2012-10-17", "Statement": [{"Sid": "NoOrders", "Effect": "Deny", "Action": "*", "Resource": "arn:aws:vpc-lattice:*:*:service/*/orders/*"}]}`)
	if got := e.ok("policy", "explain", "--service", "orders", "--principal", "role/web", "--path", "/orders/1", "--identity-policy", deny); !strings.Contains(got, `identity layer: Denied by "identityPolicies[0]" statement 0 (Sid NoOrders)`) {
		t.Errorf("--identity-policy deny.json:\n%s", got)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"policy", "explain", "--principal", "anonymous"}, "--service and --principal are required"},
		{[]string{"policy", "explain", "--service", "orders", "--principal", "anonymous", "--header", "x"}, `--header "x": want NAME=VALUE`},
		{[]string{"policy", "explain", "--service", "orders", "--principal", "anonymous", "--service-policy", "/nonexistent.json"}, "--service-policy: open /nonexistent.json"},
		{[]string{"policy", "explain", "--service", "orders", "--principal", "anonymous", "--service-policy", writeFile(t, "empty.json", " ")}, `use "none" for no policy`},
		{[]string{"policy", "explain", "--service", "orders", "--principal", "anonymous", "--identity-policy", "none", "--identity-policy", deny}, "cannot be combined"},
		{[]string{"policy", "explain", "--service", "orders", "--principal", "anonymous", "--method", "GE T", "--path", "orders"}, "ValidationException: validation failed: method: must be an HTTP method"},
		{[]string{"policy", "explain", "--service", "orders", "--principal", "role/web", "--service-policy", writeFile(t, "bad.json", `{"Statement": []}`)}, "servicePolicy.Statement: must contain at least one statement"},
		{[]string{"policy", "explain", "--service", "nope", "--principal", "anonymous"}, "ResourceNotFoundException: service nope was not found"},
		{[]string{"policy", "explain", "--service", "orders", "--principal", "anonymous", "-o", "xml"}, `unknown output format "xml"`},
	} {
		if msg := e.fail(c.args...); !strings.Contains(msg, c.want) {
			t.Errorf("trellis %s:\n%s\nwant it to contain %q", strings.Join(c.args, " "), msg, c.want)
		}
	}
}
