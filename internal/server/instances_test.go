package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice/types"
)

func TestInstancesAPI(t *testing.T) {
	ts := startNodeServer(t)
	admin := ts.adminKey()
	vpc := ts.boot.VPCID
	call := func(method, path string, in, out any) int {
		t.Helper()
		return nativeCall(t, ts, admin.id, admin.secret, method, path, in, out)
	}

	var inst map[string]any
	if code := call("POST", "/instances", map[string]any{"id": "i-0123456789abcdef0", "vpc": vpc, "address": "127.0.0.5",
		"name": "web-1", "tags": map[string]string{"role": "web"}}, &inst); code != 201 {
		t.Fatalf("create instance: %d", code)
	}
	if inst["arn"] != "arn:aws:ec2:us-east-1:"+ts.boot.Account+":instance/i-0123456789abcdef0" || inst["account"] != ts.boot.Account || inst["vpc"] != vpc {
		t.Errorf("instance = %v", inst)
	}
	var gen map[string]any
	if code := call("POST", "/instances", map[string]any{"vpc": vpc, "address": "10.0.0.9"}, &gen); code != 201 || len(gen["id"].(string)) != 19 {
		t.Errorf("create with a generated ID: %d %v", code, gen)
	}
	if code := call("POST", "/instances", map[string]any{"id": "i-0123456789abcdef0", "vpc": vpc, "address": "127.0.0.6"}, nil); code != 409 {
		t.Errorf("duplicate ID: %d, want 409", code)
	}
	if code := call("POST", "/instances", map[string]any{"vpc": "vpc-0000000000000000f", "address": "10.0.0.1"}, nil); code != 404 {
		t.Errorf("unknown VPC: %d, want 404", code)
	}
	for _, c := range []struct {
		body   map[string]any
		fields string
	}{
		{map[string]any{}, "address,vpc"},
		{map[string]any{"id": "i-XYZ", "vpc": vpc, "address": "not-an-ip", "tags": map[string]string{"aws:x": "y"}}, "address,id,tags.aws:x"},
		{map[string]any{"vpc": vpc, "address": "192.168.0.1"}, "address"}, // outside the VPC's CIDRs
		{map[string]any{"vpc": vpc, "address": "10.0.0.1", "name": strings.Repeat("n", 256)}, "name"},
	} {
		var ve struct{ FieldList []struct{ Name string } }
		if code := nativeCallErr(t, ts, admin, "POST", "/instances", c.body, &ve); code != 400 || fieldNames(ve.FieldList) != c.fields {
			t.Errorf("create %v: %d, fields %s, want 400 naming %s", c.body, code, fieldNames(ve.FieldList), c.fields)
		}
	}

	var list struct{ Items []map[string]any }
	call("GET", "/instances?vpc="+vpc, nil, &list)
	if len(list.Items) != 2 || list.Items[0]["id"] != "i-0123456789abcdef0" && list.Items[1]["id"] != "i-0123456789abcdef0" {
		t.Errorf("list: %v", list.Items)
	}
	call("GET", "/instances?vpc=vpc-0000000000000000f", nil, &list)
	if len(list.Items) != 0 {
		t.Errorf("list of another VPC: %v", list.Items)
	}
	if code := call("GET", "/instances/i-0123456789abcdef0", nil, &inst); code != 200 || inst["name"] != "web-1" {
		t.Errorf("get: %d %v", code, inst)
	}

	// Another account sees nothing of them.
	var acct struct{ ID string }
	call("POST", "/accounts", map[string]string{"name": "tenant"}, &acct)
	call("POST", "/principals", map[string]any{"name": "dev", "type": "role", "account": acct.ID}, nil)
	var k struct{ AccessKeyId, SecretAccessKey string }
	call("POST", "/accesskeys", map[string]string{"principal": "role/dev", "account": acct.ID}, &k)
	if code := nativeCall(t, ts, k.AccessKeyId, k.SecretAccessKey, "GET", "/instances/i-0123456789abcdef0", nil, nil); code != 404 {
		t.Errorf("tenant get: %d, want 404", code)
	}
	if code := nativeCall(t, ts, k.AccessKeyId, k.SecretAccessKey, "POST", "/instances", map[string]any{"vpc": vpc, "address": "10.0.0.2"}, nil); code != 404 {
		t.Errorf("tenant create in the admin's VPC: %d, want 404", code)
	}
	nativeCall(t, ts, k.AccessKeyId, k.SecretAccessKey, "GET", "/instances", nil, &list)
	if len(list.Items) != 0 {
		t.Errorf("tenant list: %v", list.Items)
	}

	// An INSTANCE target resolves to its instance's address in snapshots,
	// and to nothing once the instance is gone.
	ctx, c := context.Background(), ts.admin()
	tg := must[*vpclattice.CreateTargetGroupOutput](t)(c.CreateTargetGroup(ctx, &vpclattice.CreateTargetGroupInput{
		Name: aws.String("fleet"), Type: types.TargetGroupTypeInstance,
		Config: &types.TargetGroupConfig{Protocol: types.TargetGroupProtocolHttp, Port: aws.Int32(8080), VpcIdentifier: aws.String(vpc)}}))
	register(t, ts, aws.ToString(tg.Id), "i-0123456789abcdef0")
	s, code, body := openStream(t, ts, admin, "gw-1", "vpc="+vpc)
	if code != 200 {
		t.Fatalf("stream: %d %s", code, body)
	}
	if snap := s.nextSnapshot(); len(snap.TargetGroups) != 1 || snap.TargetGroups[0].Targets[0].Address != "127.0.0.5:8080" {
		t.Errorf("instance target in the snapshot: %+v", snap.TargetGroups)
	}
	if code := call("DELETE", "/instances/i-0123456789abcdef0", nil, nil); code != 204 {
		t.Errorf("delete: %d", code)
	}
	if snap := s.nextSnapshot(); snap.TargetGroups[0].Targets[0].Address != "" {
		t.Errorf("target of a deleted instance: %+v", snap.TargetGroups[0].Targets[0])
	}
	if code := call("GET", "/instances/i-0123456789abcdef0", nil, nil); code != 404 {
		t.Errorf("get after delete: %d", code)
	}
}
