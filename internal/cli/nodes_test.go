package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// targetLine is the line of a 'get targets' table that shows target id.
func targetLine(table, id string) string {
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(l, id+" ") {
			return l
		}
	}
	return ""
}

func TestInstancesCLI(t *testing.T) {
	e := newEnv(t)
	e.ok("create", "vpc", "payments", "--cidr", "10.1.0.0/16")
	if out := e.ok("create", "instance", "--vpc", "default", "--address", "127.0.0.5", "--name", "web-1", "--id", "i-0123456789abcdef0"); !strings.HasPrefix(out, "instance i-0123456789abcdef0 created (127.0.0.5 in vpc-") {
		t.Errorf("create instance: %q", out)
	}
	e.ok("create", "instance", "--vpc", "payments", "--address", "10.1.0.7", "--id", "i-0badcafe")
	var generated map[string]any
	if err := json.Unmarshal([]byte(e.ok("create", "instance", "--vpc", "payments", "--address", "10.1.0.8", "--name", "db", "--tag", "role=db", "-o", "json")), &generated); err != nil {
		t.Fatal(err)
	}
	if id, _ := generated["id"].(string); len(id) != len("i-")+17 || !strings.HasPrefix(generated["arn"].(string), "arn:aws:ec2:us-east-1:") {
		t.Errorf("generated instance: %v", generated)
	}
	golden(t, "get_instances", e.ok("get", "instances", "--vpc", "default"))
	if out := e.ok("get", "instances", "--vpc", "payments"); !strings.Contains(out, "i-0badcafe") || !strings.Contains(out, "10.1.0.8") || strings.Contains(out, "web-1") {
		t.Errorf("get instances --vpc payments:\n%s", out)
	}
	var one map[string]any
	if err := json.Unmarshal([]byte(e.ok("get", "instance", "web-1", "-o", "json")), &one); err != nil || one["address"] != "127.0.0.5" {
		t.Errorf("get instance web-1: %v %v", err, one)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "instance", "--vpc", "default"}, "--vpc and --address are required"},
		{[]string{"create", "instance", "--vpc", "payments", "--address", "192.168.1.1"}, "address: 192.168.1.1 is outside the CIDR blocks"},
		{[]string{"create", "instance", "--vpc", "default", "--address", "127.0.0.9", "--id", "i-xyz"}, "id: must be i- followed by 8 or 17"},
		{[]string{"create", "instance", "--vpc", "default", "--address", "127.0.0.9", "--id", "i-0123456789abcdef0"}, "already exists"},
		{[]string{"create", "instance", "--vpc", "nowhere", "--address", "127.0.0.9"}, `vpc "nowhere" not found`},
	} {
		if msg := e.fail(c.args...); !strings.Contains(msg, c.want) {
			t.Errorf("trellis %s: %s, want %q", strings.Join(c.args, " "), msg, c.want)
		}
	}

	if out := e.ok("delete", "instance", "web-1"); out != "instance/web-1 deleted\n" {
		t.Errorf("delete instance: %q", out)
	}
	if msg := e.fail("get", "instance", "i-0123456789abcdef0"); !strings.Contains(msg, "not found") {
		t.Errorf("get a deleted instance: %s", msg)
	}
}

func TestGetNodes(t *testing.T) {
	e := newEnv(t)
	cf := &clientFlags{data: e.data}
	c, err := cf.connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Two nodes report in (as the node client does after applying).
	ack := func(node string, body map[string]any) {
		t.Helper()
		if err := c.Native(context.Background(), "POST", "/nodes/"+node+"/ack", body, nil); err != nil {
			t.Fatalf("ack %s: %v", node, err)
		}
	}
	ack("gw-a", map[string]any{"vpc": e.boot.VPCID, "version": 7, "address": "127.0.0.1", "ports": []int{443, 80}})
	ack("gw-b", map[string]any{"vpc": e.boot.VPCID, "version": 9, "error": "listener 443: address in use"})

	out := e.ok("get", "nodes")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("get nodes:\n%s", out)
	}
	header := strings.Fields(lines[0])
	if strings.Join(header, " ") != "ID VPC ADDRESS APPLIED LATEST LAG CONNECTED LAST SEEN ERROR" {
		t.Errorf("header: %q", lines[0])
	}
	a, b := strings.Fields(lines[1]), strings.Fields(lines[2])
	// gw-a applied 7; no snapshot was built yet, so latest is "-" and lag 0.
	if strings.Join(a, " ") != "gw-a "+e.boot.VPCID+" 127.0.0.1 7 - 0 no "+a[7]+" ago -" || !strings.HasSuffix(a[7], "s") {
		t.Errorf("gw-a row: %q", lines[1])
	}
	// gw-b failed to apply 9: nothing applied, the error shown.
	if strings.Join(b[:3], " ") != "gw-b "+e.boot.VPCID+" -" || b[3] != "-" || !strings.HasSuffix(lines[2], "listener 443: address in use") {
		t.Errorf("gw-b row: %q", lines[2])
	}

	var nodes []map[string]any
	if err := json.Unmarshal([]byte(e.ok("get", "nodes", "--vpc", "default", "-o", "json")), &nodes); err != nil || len(nodes) != 2 {
		t.Fatalf("get nodes -o json: %v %v", err, nodes)
	}
	if nodes[0]["id"] != "gw-a" || nodes[0]["appliedVersion"] != 7.0 || nodes[0]["connected"] != false ||
		fmt.Sprint(nodes[0]["ports"]) != "[80 443]" {
		t.Errorf("node gw-a: %v", nodes[0])
	}
	if msg := e.fail("get", "node", "gw-z"); !strings.Contains(msg, `node "gw-z" not found`) {
		t.Errorf("get an unknown node: %s", msg)
	}
}

func TestDeregistrationDelayFlag(t *testing.T) {
	clearEnv(t)
	for _, cmd := range []string{"up", "server"} {
		var out, errb strings.Builder
		if code := Execute(context.Background(), []string{cmd, "--help"}, Streams{In: strings.NewReader(""), Out: &out, Err: &errb}); code != 0 {
			t.Fatalf("%s --help: exit %d: %s", cmd, code, errb.String())
		}
		if help := out.String(); !strings.Contains(help, "--deregistration-delay duration") || !strings.Contains(help, "(default 1m0s)") ||
			!strings.Contains(help, "$TRELLIS_DEREGISTRATION_DELAY") {
			t.Errorf("%s --help does not document --deregistration-delay:\n%s", cmd, help)
		}
		errb.Reset()
		if code := Execute(context.Background(), []string{cmd, "--data", t.TempDir(), "--deregistration-delay", "-5s"}, Streams{In: strings.NewReader(""), Out: &out, Err: &errb}); code == 0 ||
			!strings.Contains(errb.String(), "--deregistration-delay must not be negative") {
			t.Errorf("%s with a negative delay: exit %d, %s", cmd, code, errb.String())
		}
	}
}
