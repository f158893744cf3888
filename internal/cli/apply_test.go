package cli

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"
)

const quickstart = "../../examples/quickstart.yaml"

// dump is the JSON of 'get' of every kind the quickstart touches.
func (e *testEnv) dump() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	for _, args := range [][]string{
		{"service-networks"}, {"services"}, {"target-groups"}, {"vpcs"}, {"snsa"}, {"snva"},
		{"listeners", "--service", "orders"},
		{"rules", "--service", "orders", "--listener", "http"},
		{"targets", "--target-group", "orders-v1"},
		{"targets", "--target-group", "orders-v2"},
		{"als", "--resource", "shop"},
		{"principals"}, {"accounts"}, {"access-keys"},
	} {
		out[strings.Join(args, " ")] = e.ok(append([]string{"get", "-o", "json"}, args...)...)
	}
	return out
}

func lines(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

func TestApplyQuickstartTwice(t *testing.T) {
	e := newEnv(t)
	first := e.ok("apply", "-f", quickstart)
	golden(t, "apply_quickstart", first)
	for _, l := range lines(first) {
		if !strings.HasSuffix(l, " created") {
			t.Errorf("first apply: %q, want created", l)
		}
	}
	dump1 := e.dump()
	writes := e.writeCalls()

	second := e.ok("apply", "-f", quickstart)
	if len(lines(second)) != len(lines(first)) {
		t.Fatalf("second apply printed %d lines, first %d:\n%s", len(lines(second)), len(lines(first)), second)
	}
	for i, l := range lines(second) {
		if want := strings.TrimSuffix(lines(first)[i], " created") + " unchanged"; l != want {
			t.Errorf("second apply line %d: %q, want %q", i, l, want)
		}
	}
	if after := e.writeCalls(); !maps.Equal(writes, after) {
		t.Errorf("second apply made write calls: before %v, after %v", writes, after)
	}
	dump2 := e.dump()
	for k, v := range dump1 {
		if dump2[k] != v {
			t.Errorf("get %s changed after the second apply:\n%s\nthen\n%s", k, v, dump2[k])
		}
	}
	// The dump holds real objects with IDs.
	var tgs []map[string]any
	if err := json.Unmarshal([]byte(dump1["target-groups"]), &tgs); err != nil || len(tgs) != 2 || !strings.HasPrefix(tgs[0]["id"].(string), "tg-") {
		t.Errorf("target groups: %v %v", err, dump1["target-groups"])
	}
}

// edit returns the quickstart with each old string replaced by its new one.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	b, err := os.ReadFile(quickstart)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("quickstart has no %q", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return writeFile(t, "changed.yaml", s)
}

// writeDelta is the write calls made since before.
func writeDelta(before, after map[string]int) map[string]int {
	d := map[string]int{}
	for k, v := range after {
		if n := v - before[k]; n != 0 {
			d[k] = n
		}
	}
	return d
}

func TestApplyUpdatesOnlyWhatChanged(t *testing.T) {
	e := newEnv(t)
	e.ok("apply", "-f", quickstart)

	// A rule's priority and a target list change.
	changed := edit(t, "priority: 10", "priority: 20", "  - id: 10.0.0.11", "  - id: 10.0.0.12")
	before := e.writeCalls()
	got := e.ok("apply", "-f", changed)
	want := `service-network/shop unchanged
service/orders unchanged
target-group/orders-v1 updated
target-group/orders-v2 unchanged
listener/orders/http unchanged
rule/orders/http/v2-canary updated
service-network-service-association/shop/orders unchanged
service-network-vpc-association/shop/default unchanged
access-log-subscription/service-network/shop/logs unchanged
`
	if got != want {
		t.Errorf("apply changed file:\n%s\nwant\n%s", got, want)
	}
	if d := writeDelta(before, e.writeCalls()); !maps.Equal(d, map[string]int{"BatchUpdateRule": 1, "RegisterTargets": 1, "DeregisterTargets": 1}) {
		t.Errorf("write calls: %v", d)
	}
	targets := e.ok("get", "targets", "--target-group", "orders-v1")
	if !strings.Contains(targets, "10.0.0.12") || !strings.Contains(targetLine(targets, "10.0.0.11"), "DRAINING") {
		t.Errorf("targets after apply:\n%s", targets)
	}
	if rules := e.ok("get", "rules", "--service", "orders", "--listener", "http"); !strings.Contains(rules, " 20 ") {
		t.Errorf("rules after apply:\n%s", rules)
	}

	// Tags, the health check and the default action change; the rule goes.
	changed = edit(t, "team: shop", "team: retail\n  tier: web", "path: /healthz", "path: /ready", "  - id: 10.0.0.11", "  - id: 10.0.0.12",
		"        weight: 100\nrules:", "        weight: 50\n      - targetGroup: orders-v2\n        weight: 50\nrules: []\nx:")
	changed = dropFrom(t, changed, "\nx:", "\n---\n# Access logs")
	before = e.writeCalls()
	got = e.ok("apply", "-f", changed)
	want = `service-network/shop updated
service/orders unchanged
target-group/orders-v1 updated
target-group/orders-v2 unchanged
listener/orders/http updated
rule/orders/http/v2-canary deleted
service-network-service-association/shop/orders unchanged
service-network-vpc-association/shop/default unchanged
access-log-subscription/service-network/shop/logs unchanged
`
	if got != want {
		t.Errorf("apply second change:\n%s\nwant\n%s", got, want)
	}
	if d := writeDelta(before, e.writeCalls()); !maps.Equal(d, map[string]int{"TagResource": 1, "UpdateTargetGroup": 1, "UpdateListener": 1, "DeleteRule": 1}) {
		t.Errorf("write calls: %v", d)
	}
	if hc := e.ok("get", "tg", "orders-v1", "-o", "json"); !strings.Contains(hc, `"path": "/ready"`) {
		t.Errorf("health check not updated:\n%s", hc)
	}
	if again := e.ok("apply", "-f", changed); strings.Contains(again, "updated") || strings.Contains(again, "deleted") {
		t.Errorf("third apply changed things:\n%s", again)
	}
}

// dropFrom removes the text of file between from (inclusive) and to (exclusive).
func dropFrom(t *testing.T, file, from, to string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, from), strings.Index(s, to)
	if i < 0 || j < i {
		t.Fatalf("cannot cut %q..%q", from, to)
	}
	return writeFile(t, "cut.yaml", s[:i]+s[j:])
}

func TestApplyAuthPolicyAndStdin(t *testing.T) {
	e := newEnv(t)
	e.ok("apply", "-f", quickstart)
	doc := `{"kind": "AuthPolicy", "serviceNetwork": "shop",
 "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "vpc-lattice-svcs:Invoke", "Resource": "*"}]}}`
	e.stdin = doc
	if got := e.ok("apply", "-f", "-"); got != "auth-policy/service-network/shop created\n" {
		t.Errorf("apply policy: %q", got)
	}
	// The same policy with other key order and layout is unchanged.
	e.stdin = `kind: AuthPolicy
serviceNetwork: shop
policy:
  Statement:
    - Resource: "*"
      Action: vpc-lattice-svcs:Invoke
      Principal: "*"
      Effect: Allow
  Version: "2012-10-17"
`
	if got := e.ok("apply", "-f", "-"); got != "auth-policy/service-network/shop unchanged\n" {
		t.Errorf("apply same policy: %q", got)
	}
	e.stdin = strings.Replace(e.stdin, "Effect: Allow", "Effect: Deny", 1)
	if got := e.ok("apply", "-f", "-"); got != "auth-policy/service-network/shop updated\n" {
		t.Errorf("apply changed policy: %q", got)
	}
	if got := e.ok("get", "auth-policy", "--resource", "shop"); !strings.Contains(got, `"Effect": "Deny"`) {
		t.Errorf("get auth-policy:\n%s", got)
	}
}

func TestApplyImmutableChangeWritesNothing(t *testing.T) {
	e := newEnv(t)
	e.ok("apply", "-f", quickstart)
	changed := edit(t, "port: 9001", "port: 9002", "priority: 10", "priority: 30")
	before := e.writeCalls()
	msg := e.fail("apply", "-f", changed)
	for _, want := range []string{"changed.yaml: document 5 (line 43) (target-group/orders-v1)", "config.port (9001 to 9002) cannot change", "delete the target group and apply again"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if d := writeDelta(before, e.writeCalls()); len(d) != 0 {
		t.Errorf("write calls after a failed check: %v", d)
	}
	changed = edit(t, "port: 8080", "port: 8081")
	if msg := e.fail("apply", "-f", changed); !strings.Contains(msg, "protocol and port cannot change (HTTP:8080 to HTTP:8081)") {
		t.Errorf("listener port change: %s", msg)
	}
}

func TestApplyInputErrors(t *testing.T) {
	e := newEnv(t)
	cases := []struct{ name, doc, want string }{
		{"unknown kind", "kind: ServiceNetwork\nname: a1\n---\nkind: Servise\nname: x\n",
			`document 2 (line 4): unknown kind "Servise"; kinds are: ServiceNetwork, Service,`},
		{"unknown field", "kind: ServiceNetwork\nname: a1\n---\nkind: Listener\nservice: a1\nname: web\nprot: HTTP\n",
			`document 2 (line 4) (kind Listener): unknown field "prot"`},
		{"unknown nested field", "kind: TargetGroup\nname: t1\ntype: IP\nconfig: {port: 80, protocol: HTTP, vpc: default, healtcheck: {}}\n",
			`document 1 (line 1) (kind TargetGroup): unknown field "healtcheck"`},
		{"wrong type", "kind: Listener\nservice: s\nname: web\nprotocol: HTTP\nport: eighty\n",
			`field "port": want a number, got string`},
		{"missing target group", "kind: Service\nname: orders\n---\nkind: Listener\nservice: orders\nname: http\nprotocol: HTTP\n" +
			"defaultAction: {forward: {targetGroups: [{targetGroup: orders-v9}]}}\n",
			`document 2 (line 4) (listener/orders/http): defaultAction.forward.targetGroups[0].targetGroup: target group "orders-v9" is not declared in the input and does not exist`},
		{"missing vpc", "kind: TargetGroup\nname: t1\ntype: IP\nconfig: {port: 80, protocol: HTTP, vpc: nowhere}\n",
			`config.vpc: vpc "nowhere" does not exist`},
		{"missing name", "kind: Service\nauthType: NONE\n", `document 1 (line 1) (service/): name is required`},
		{"reserved prefix", "kind: TargetGroup\nname: tg-one\ntype: LAMBDA\n", `name "tg-one": names must not start with "tg-"`},
		{"duplicate", "kind: Service\nname: a1\n---\nkind: Service\nname: a1\n", `document 2 (line 4) (service/a1): declared twice (also`},
		{"bad enum", "kind: ServiceNetwork\nname: a1\nauthType: IAM\n", `authType "IAM": want one of NONE, AWS_IAM`},
		{"rules", "kind: Listener\nservice: s\nname: web\nprotocol: HTTP\ndefaultAction: {fixedResponse: {statusCode: 404}}\n" +
			"rules: [{name: r1, priority: 1, match: {httpMatch: {}}, action: {fixedResponse: {statusCode: 404}}}, {name: r1, priority: 1}]\n",
			"the input has 5 problems"},
		{"not a mapping", "- kind: Service\n", "a document must be a mapping with a kind"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.writeCalls()
			msg := e.fail("apply", "-f", writeFile(t, "in.yaml", c.doc))
			if !strings.Contains(msg, c.want) {
				t.Errorf("error:\n%s\nwant it to contain:\n%s", msg, c.want)
			}
			if d := writeDelta(before, e.writeCalls()); len(d) != 0 {
				t.Errorf("writes despite the error: %v", d)
			}
		})
	}
	// The default VPC is taken by another network.
	e.ok("apply", "-f", writeFile(t, "other.yaml", "kind: ServiceNetwork\nname: other\n---\nkind: ServiceNetworkVpcAssociation\nserviceNetwork: other\nvpc: default\n"))
	before := e.writeCalls()
	if msg := e.fail("apply", "-f", quickstart); !strings.Contains(msg, "vpc default is already associated with service network other") {
		t.Errorf("second network on the default VPC: %s", msg)
	}
	if d := writeDelta(before, e.writeCalls()); len(d) != 0 {
		t.Errorf("writes despite the error: %v", d)
	}
	if msg := e.fail("apply"); !strings.Contains(msg, "name at least one file with -f") {
		t.Errorf("no -f: %s", msg)
	}
	if got := e.ok("get", "services"); strings.Count(got, "\n") != 1 {
		t.Errorf("services exist after failed applies:\n%s", got)
	}
}

// TestApplyManyPages declares more of each thing than one API page holds
// (50), so every list is read through the SDK paginators, and more
// targets than one RegisterTargets call takes (100).
func TestApplyManyPages(t *testing.T) {
	e := newEnv(t)
	var b strings.Builder
	for i := range 55 {
		fmt.Fprintf(&b, "kind: TargetGroup\nname: page-%02d\ntype: IP\nconfig: {port: 80, protocol: HTTP, vpc: default}\n", i)
		if i == 54 {
			b.WriteString("targets:\n")
			for j := range 120 {
				fmt.Fprintf(&b, "  - id: 10.0.%d.%d\n", j/100, j%100+1)
			}
		}
		b.WriteString("---\n")
	}
	file := writeFile(t, "many.yaml", b.String())
	if got := e.ok("apply", "-f", file); strings.Count(got, " created\n") != 55 {
		t.Fatalf("first apply:\n%s", got)
	}
	var tgs []map[string]any
	if err := json.Unmarshal([]byte(e.ok("get", "tg", "-o", "json")), &tgs); err != nil || len(tgs) != 55 {
		t.Fatalf("get tg: %v, %d groups", err, len(tgs))
	}
	var targets []map[string]any
	if err := json.Unmarshal([]byte(e.ok("get", "targets", "--target-group", "page-54", "-o", "json")), &targets); err != nil || len(targets) != 120 {
		t.Fatalf("get targets: %v, %d targets", err, len(targets))
	}
	before := e.writeCalls()
	if got := e.ok("apply", "-f", file); strings.Count(got, " unchanged\n") != 55 {
		t.Fatalf("second apply:\n%s", got)
	}
	if d := writeDelta(before, e.writeCalls()); len(d) != 0 {
		t.Errorf("second apply wrote: %v", d)
	}
}

func TestApplyRulesSwapPrioritiesAndMatchForms(t *testing.T) {
	e := newEnv(t)
	doc := `kind: Service
name: api
---
kind: TargetGroup
name: api-a
type: IP
config: {port: 80, protocol: HTTP, vpc: default}
---
kind: Listener
service: api
name: https
protocol: HTTPS
defaultAction: {fixedResponse: {statusCode: 404}}
rules:
  - name: by-header
    priority: 10
    match: {httpMatch: {method: POST, headerMatches: [{name: x-env, match: {exact: canary}, caseSensitive: true}]}}
    action: {forward: {targetGroups: [{targetGroup: api-a}]}}
  - name: by-path
    priority: 20
    match: {httpMatch: {pathMatch: {match: {exact: /health}, caseSensitive: false}}}
    action: {fixedResponse: {statusCode: 500}}
    tags: {owner: web}
`
	first := e.ok("apply", "-f", writeFile(t, "a.yaml", doc))
	if !strings.Contains(first, "listener/api/https created\nrule/api/https/by-header created\nrule/api/https/by-path created\n") {
		t.Errorf("first apply:\n%s", first)
	}
	if got := e.ok("get", "listener", "api/https"); !strings.Contains(got, " 443 ") {
		t.Errorf("HTTPS listener port:\n%s", got)
	}
	before := e.writeCalls()
	if again := e.ok("apply", "-f", writeFile(t, "a.yaml", doc)); strings.Contains(again, "updated") || strings.Contains(again, "created") {
		t.Errorf("second apply:\n%s", again)
	}
	swapped := strings.Replace(strings.Replace(doc, "priority: 10", "priority: 99", 1), "priority: 20", "priority: 10", 1)
	swapped = strings.Replace(swapped, "priority: 99", "priority: 20", 1)
	swapped = strings.Replace(swapped, "owner: web", "owner: api", 1)
	got := e.ok("apply", "-f", writeFile(t, "b.yaml", swapped))
	if !strings.Contains(got, "rule/api/https/by-header updated\nrule/api/https/by-path updated\n") {
		t.Errorf("swap:\n%s", got)
	}
	if d := writeDelta(before, e.writeCalls()); !maps.Equal(d, map[string]int{"BatchUpdateRule": 1, "TagResource": 1}) {
		t.Errorf("swap write calls: %v", d)
	}
	rules := e.ok("get", "rules", "--listener", "api/https")
	if !strings.Contains(rules, "by-path     ") || strings.Index(rules, "by-path") > strings.Index(rules, "by-header") {
		t.Errorf("rules after swap (by-path first):\n%s", rules)
	}
	if !strings.Contains(rules, "POST header:x-env=canary") {
		t.Errorf("match text:\n%s", rules)
	}
}
