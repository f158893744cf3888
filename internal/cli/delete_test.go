package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDeleteEveryKind(t *testing.T) {
	e := newEnv(t)
	e.ok("apply", "-f", quickstart)
	e.stdin = `{"kind": "AuthPolicy", "service": "orders", "policy": {"Version": "2012-10-17",
 "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "vpc-lattice-svcs:Invoke", "Resource": "*"}]}}`
	e.ok("apply", "-f", "-")
	e.ok("create", "vpc", "spare", "--cidr", "10.9.0.0/16")
	e.ok("create", "principal", "ci", "--type", "user")
	var key struct{ AccessKeyId string }
	if err := json.Unmarshal([]byte(e.ok("create", "access-key", "ci", "-o", "json")), &key); err != nil {
		t.Fatal(err)
	}
	var als []map[string]any
	if err := json.Unmarshal([]byte(e.ok("get", "als", "--resource", "shop", "-o", "json")), &als); err != nil || len(als) != 1 {
		t.Fatalf("als: %v %v", err, als)
	}
	alsID := als[0]["id"].(string)

	// Conflicts come back as "<ErrorCode>: <message>".
	msg := e.fail("delete", "service-network", "shop")
	if !strings.Contains(msg, "error: deleting service-network shop: ConflictException: service network sn-") {
		t.Errorf("delete a used service network: %s", msg)
	}

	steps := []struct {
		del   []string // delete KIND NAME [flags]
		check []string // a get that must no longer find it
		gone  string   // or: a get whose output must not contain this
	}{
		{[]string{"rule", "v2-canary", "--service", "orders", "--listener", "http"}, []string{"rule", "orders/http/v2-canary"}, ""},
		{[]string{"listener", "orders/http"}, []string{"listener", "http", "--service", "orders"}, ""},
		{[]string{"target", "10.0.0.11", "--target-group", "orders-v1"}, []string{"targets", "--target-group", "orders-v1"}, "10.0.0.11"},
		{[]string{"target-group", "orders-v2"}, []string{"target-group", "orders-v2"}, ""},
		{[]string{"auth-policy", "orders"}, []string{"auth-policy", "--resource", "orders"}, ""},
		{[]string{"access-log-subscription", alsID}, []string{"als", alsID}, ""},
		{[]string{"snsa", "shop/orders"}, []string{"snsa", "shop/orders"}, ""},
		{[]string{"service-network-vpc-association", "shop/default"}, []string{"snva", "shop/default"}, ""},
		{[]string{"service", "orders"}, []string{"service", "orders"}, ""},
		{[]string{"tg", "orders-v1"}, []string{"tg", "orders-v1"}, ""},
		{[]string{"service-network", "shop"}, []string{"sn", "shop"}, ""},
		{[]string{"vpc", "spare"}, []string{"vpc", "spare"}, ""},
		{[]string{"access-key", key.AccessKeyId}, []string{"access-key", key.AccessKeyId}, ""},
		{[]string{"principal", "user/ci"}, []string{"principal", "ci"}, ""},
	}
	for _, st := range steps {
		out := e.ok(append([]string{"delete"}, st.del...)...)
		k, _ := lookupKind(st.del[0])
		if want := k.singular + "/" + st.del[1] + " deleted\n"; out != want {
			t.Errorf("delete %v: %q, want %q", st.del, out, want)
		}
		if st.gone != "" {
			// A deregistered target drains first (DeregistrationDelay).
			if got := e.ok(append([]string{"get"}, st.check...)...); strings.Contains(got, st.gone) && !strings.Contains(targetLine(got, st.gone), "DRAINING") {
				t.Errorf("get %v after delete:\n%s", st.check, got)
			}
			continue
		}
		msg := e.fail(append([]string{"get"}, st.check...)...)
		if !strings.Contains(msg, "not found") && !strings.Contains(msg, "ResourceNotFoundException") {
			t.Errorf("get %v after delete: %s", st.check, msg)
		}
	}
	for _, kind := range []string{"sn", "services", "tg", "snsa", "snva"} {
		if got := e.ok("get", kind, "-o", "json"); got != "[]\n" {
			t.Errorf("get %s after deleting everything: %s", kind, got)
		}
	}
	if got := e.ok("get", "vpcs"); !strings.Contains(got, "default") || strings.Contains(got, "spare") {
		t.Errorf("vpcs:\n%s", got)
	}
}

func TestDeleteErrors(t *testing.T) {
	e := newEnv(t)
	e.ok("apply", "-f", quickstart)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"delete", "widget", "x"}, `unknown kind "widget"`},
		{[]string{"delete", "service", "nope"}, `deleting service nope: service "nope" not found`},
		{[]string{"delete", "listener", "http"}, "--service is required (or name the listener SERVICE/LISTENER)"},
		{[]string{"delete", "rule", "v2-canary", "--service", "orders"}, "--service and --listener are required"},
		{[]string{"delete", "target-group", "orders-v1"}, "ConflictException: target group tg-"},
		{[]string{"delete", "vpc", "default"}, "ConflictException: VPC vpc-"},
		{[]string{"delete", "service", "orders", "--port", "80"}, "--port applies only to targets"},
		{[]string{"delete", "target", "10.9.9.9", "--target-group", "orders-v1"}, "10.9.9.9: TargetNotFound:"},
		{[]string{"delete", "als", "shop"}, "named by its ID or ARN"},
		{[]string{"delete", "account", "admin"}, "accounts cannot be deleted with trellis"},
		{[]string{"delete", "service"}, "accepts 2 arg(s)"},
	} {
		if msg := e.fail(c.args...); !strings.Contains(msg, c.want) {
			t.Errorf("trellis %s:\n%s\nwant it to contain %q", strings.Join(c.args, " "), msg, c.want)
		}
	}
}
