package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDescribeShowsWhatBelongs(t *testing.T) {
	e := newEnv(t)
	e.stdin = `{"kind": "AuthPolicy", "serviceNetwork": "shop", "policy": {"Version": "2012-10-17",
 "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "vpc-lattice-svcs:Invoke", "Resource": "*"}]}}`
	var results []map[string]string
	e.ok("apply", "-f", quickstart)
	if err := json.Unmarshal([]byte(e.ok("apply", "-f", "-", "-o", "json")), &results); err != nil ||
		len(results) != 1 || results[0]["resource"] != "auth-policy/service-network/shop" || results[0]["result"] != "created" {
		t.Errorf("apply -o json: %v %v", err, results)
	}

	var sn map[string]any
	if err := json.Unmarshal([]byte(e.ok("describe", "sn", "shop", "-o", "json")), &sn); err != nil {
		t.Fatal(err)
	}
	for k, n := range map[string]int{"serviceAssociations": 1, "vpcAssociations": 1, "accessLogSubscriptions": 1} {
		if l, _ := sn[k].([]any); len(l) != n {
			t.Errorf("describe sn shop: %s = %v", k, sn[k])
		}
	}
	if p, _ := sn["authPolicy"].(map[string]any); p["state"] != "Inactive" {
		t.Errorf("describe sn shop: authPolicy = %v", sn["authPolicy"])
	}

	var lis map[string]any
	if err := json.Unmarshal([]byte(e.ok("describe", "listener", "http", "--service", "orders", "-o", "json")), &lis); err != nil {
		t.Fatal(err)
	}
	if rules, _ := lis["rules"].([]any); len(rules) != 2 || rules[0].(map[string]any)["name"] != "v2-canary" {
		t.Errorf("describe listener: rules = %v", lis["rules"])
	}
	if got := e.ok("describe", "auth-policy", "shop"); !strings.Contains(got, "state: Inactive") || !strings.Contains(got, "vpc-lattice-svcs:Invoke") {
		t.Errorf("describe auth-policy:\n%s", got)
	}
	if got := e.ok("describe", "vpc", "default"); !strings.Contains(got, "name: default\nid: vpc-") {
		t.Errorf("describe vpc:\n%s", got)
	}
	if msg := e.fail("describe", "targets", "x"); !strings.Contains(msg, "describe target-group NAME") {
		t.Errorf("describe targets: %s", msg)
	}
}
