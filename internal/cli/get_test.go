package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestGetGolden(t *testing.T) {
	e := newEnv(t)
	e.ok("apply", "-f", quickstart)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"get_services", []string{"get", "services"}},
		{"get_target_groups", []string{"get", "target-groups"}},
		{"get_targets", []string{"get", "targets", "--target-group", "orders-v1"}},
		{"get_vpcs_json", []string{"get", "vpcs", "-o", "json"}},
		{"get_rules", []string{"get", "rules", "--service", "orders", "--listener", "http"}},
		{"get_listeners", []string{"get", "listeners", "--service", "orders"}},
		{"get_service_networks", []string{"get", "sn"}},
		{"get_snsa", []string{"get", "snsa", "--service-network", "shop"}},
		{"describe_service", []string{"describe", "service", "orders"}},
		{"describe_target_group_yaml", []string{"describe", "target-group", "orders-v1", "-o", "yaml"}},
	} {
		t.Run(c.name, func(t *testing.T) { golden(t, c.name, e.ok(c.args...)) })
	}
}

func TestGetVpcsJSONIsAnArrayOfObjects(t *testing.T) {
	e := newEnv(t)
	e.ok("create", "vpc", "payments", "--cidr", "10.1.0.0/16", "--cidr", "fd00:1::/64")
	var vpcs []struct {
		ID    string   `json:"id"`
		Name  string   `json:"name"`
		CIDRs []string `json:"cidrs"`
	}
	out := e.ok("get", "vpcs", "-o", "json")
	if err := json.Unmarshal([]byte(out), &vpcs); err != nil {
		t.Fatalf("get vpcs -o json is not a JSON array of objects: %v\n%s", err, out)
	}
	if len(vpcs) != 2 || vpcs[0].Name != "default" || vpcs[1].Name != "payments" || vpcs[0].ID != e.boot.VPCID ||
		strings.Join(vpcs[0].CIDRs, ",") != "127.0.0.0/8,10.0.0.0/16" || len(vpcs[1].CIDRs) != 2 {
		t.Errorf("vpcs: %+v", vpcs)
	}
	// One VPC by name is the object itself.
	var one map[string]any
	if err := json.Unmarshal([]byte(e.ok("get", "vpc", "payments", "-o", "json")), &one); err != nil || one["name"] != "payments" {
		t.Errorf("get vpc payments: %v %v", err, one)
	}
	if got := e.ok("get", "vpcs", "default"); !strings.Contains(got, "10.0.0.0/16") {
		t.Errorf("get vpcs default:\n%s", got)
	}
}

func TestGetByNameIDAndARN(t *testing.T) {
	e := newEnv(t)
	e.ok("apply", "-f", quickstart)
	var svc map[string]any
	if err := json.Unmarshal([]byte(e.ok("get", "service", "orders", "-o", "json")), &svc); err != nil {
		t.Fatal(err)
	}
	id, arn := svc["id"].(string), svc["arn"].(string)
	for _, ref := range []string{id, arn} {
		var o map[string]any
		if err := json.Unmarshal([]byte(e.ok("get", "svc", ref, "-o", "json")), &o); err != nil || o["id"] != id {
			t.Errorf("get svc %s: %v %v", ref, err, o)
		}
	}
	var lis map[string]any
	_ = json.Unmarshal([]byte(e.ok("get", "listener", "orders/http", "-o", "json")), &lis)
	if lis["port"] != 8080.0 {
		t.Errorf("get listener orders/http: %v", lis)
	}
	if got := e.ok("get", "listener", lis["arn"].(string)); !strings.Contains(got, "forward orders-v1=100") {
		t.Errorf("get listener by ARN:\n%s", got)
	}
	if got := e.ok("get", "rules", "--listener", "orders/http"); !strings.Contains(got, "v2-canary") {
		t.Errorf("get rules --listener orders/http:\n%s", got)
	}
	if got := e.ok("get", "rule", "orders/http/v2-canary", "-o", "yaml"); !strings.Contains(got, "priority: 10") {
		t.Errorf("get rule:\n%s", got)
	}
	if got := e.ok("get", "snva", "shop/default", "-o", "json"); !strings.Contains(got, e.boot.VPCID) {
		t.Errorf("get snva shop/default:\n%s", got)
	}
	// Lists read in JSON are arrays even when empty.
	if got := e.ok("get", "targets", "--target-group", "orders-v2", "-o", "json"); !strings.HasPrefix(got, "[") {
		t.Errorf("targets json: %s", got)
	}
}

func TestGetErrors(t *testing.T) {
	e := newEnv(t)
	e.ok("apply", "-f", quickstart)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "widgets"}, `unknown kind "widgets"; kinds are: service-networks, services,`},
		{[]string{"get", "services", "-o", "xml"}, `unknown output format "xml" (want table, json or yaml)`},
		{[]string{"describe", "service", "orders", "-o", "toml"}, `unknown output format "toml"`},
		{[]string{"get", "targets"}, "targets needs --target-group"},
		{[]string{"get", "targets", "x", "--target-group", "orders-v1"}, "targets have no names"},
		{[]string{"get", "listeners"}, "listeners needs --service"},
		{[]string{"get", "rules", "--service", "orders"}, "rules needs --listener"},
		{[]string{"get", "rules", "--listener", "http"}, "--service is required (or name the listener SERVICE/LISTENER)"},
		{[]string{"get", "services", "--vpc", "default"}, "--vpc does not apply to services"},
		{[]string{"get", "service", "nope"}, `service "nope" not found`},
		{[]string{"get", "service", "svc-0123456789abcdef0"}, "ResourceNotFoundException: "},
		{[]string{"get", "auth-policy", "--resource", "shop"}, "ResourceNotFoundException: "},
		{[]string{"get", "snsa", "--service", "nope"}, `service "nope" not found`},
		{[]string{"get", "als", "--resource", "orders-v1"}, `service network or service "orders-v1" not found`},
		{[]string{"describe", "service"}, "describe service needs a NAME"},
	} {
		if msg := e.fail(c.args...); !strings.Contains(msg, c.want) {
			t.Errorf("trellis %s:\n%s\nwant it to contain %q", strings.Join(c.args, " "), msg, c.want)
		}
	}
}

// TestHelpTeaches checks every runnable command's --help has examples.
func TestHelpTeaches(t *testing.T) {
	clearEnv(t)
	root := NewRoot(Streams{In: strings.NewReader(""), Out: &strings.Builder{}, Err: &strings.Builder{}})
	var walk func(path []string, cmds []*cobra.Command)
	walk = func(path []string, cmds []*cobra.Command) {
		for _, c := range cmds {
			p := append(append([]string(nil), path...), c.Name())
			if c.Runnable() {
				var out strings.Builder
				if code := Execute(t.Context(), append(p, "--help"), Streams{In: strings.NewReader(""), Out: &out, Err: &out}); code != 0 {
					t.Errorf("%v --help: exit %d", p, code)
				}
				if !strings.Contains(out.String(), "Examples:") || c.Short == "" || c.Long == "" && len(p) == 1 {
					t.Errorf("trellis %s --help lacks Short, Long or Examples:\n%s", strings.Join(p, " "), out.String())
				}
			}
			walk(p, c.Commands())
		}
	}
	walk(nil, root.Commands())
	var out strings.Builder
	Execute(t.Context(), []string{"get", "--help"}, Streams{Out: &out, Err: &out})
	for _, want := range []string{"service-network-service-associations (snsa)", "targets                                      needs --target-group", "trellis get vpcs -o json"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("get --help lacks %q:\n%s", want, out.String())
		}
	}
}
