package cloudmap_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/api/cloudmap"
)

// TestLeases: an instance registered with TRELLIS_LEASE_SECONDS is removed
// once its lease runs out unrenewed; RegisterInstance and
// UpdateInstanceCustomHealthStatus renew it; instances without the
// attribute stay.
func TestLeases(t *testing.T) {
	fx := newFixture(t, cloudmap.Quotas{})
	ns := fx.created(t, "CreateHttpNamespace", `{"Name":"shop"}`)
	svc := fx.must(t, "CreateService", `{"Name":"payments","NamespaceId":"`+ns+`","HealthCheckCustomConfig":{}}`)["Service"].(map[string]any)["Id"].(string)
	reg := func(id, attrs string) {
		fx.must(t, "RegisterInstance", `{"ServiceId":"`+svc+`","InstanceId":"`+id+`","Attributes":{"AWS_INSTANCE_IPV4":"10.0.0.1"`+attrs+`}}`)
	}
	ids := func() map[string]bool {
		out := map[string]bool{}
		for _, i := range fx.must(t, "ListInstances", `{"ServiceId":"`+svc+`"}`)["Instances"].([]any) {
			out[i.(map[string]any)["Id"].(string)] = true
		}
		return out
	}
	expire := func() int {
		n, err := fx.api.ExpireLeases(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	fx.api.StartLeaseClock()
	reg("leased", `,"TRELLIS_LEASE_SECONDS":"10"`)
	reg("renewed", `,"TRELLIS_LEASE_SECONDS":"10"`)
	reg("heartbeat", `,"TRELLIS_LEASE_SECONDS":"10"`)
	reg("forever", ``)
	rev := fx.must(t, "DiscoverInstancesRevision", `{"NamespaceName":"shop","ServiceName":"payments"}`)["InstancesRevision"].(float64)

	fx.clock.advance(6 * time.Second)
	if n := expire(); n != 0 {
		t.Fatalf("expired %d before any lease ran out", n)
	}
	reg("renewed", `,"TRELLIS_LEASE_SECONDS":"10"`)
	fx.must(t, "UpdateInstanceCustomHealthStatus", `{"ServiceId":"`+svc+`","InstanceId":"heartbeat","Status":"HEALTHY"}`)
	fx.clock.advance(6 * time.Second)
	if n := expire(); n != 1 {
		t.Errorf("expired %d, want 1 (the unrenewed instance)", n)
	}
	if got := ids(); got["leased"] || !got["renewed"] || !got["heartbeat"] || !got["forever"] {
		t.Errorf("instances after expiry: %v", got)
	}
	if after := fx.must(t, "DiscoverInstancesRevision", `{"NamespaceName":"shop","ServiceName":"payments"}`)["InstancesRevision"].(float64); after <= rev {
		t.Errorf("InstancesRevision %v did not move on from %v when an instance expired", after, rev)
	}
	// Registering again without the attribute drops the lease.
	reg("renewed", ``)
	fx.clock.advance(time.Hour)
	if n := expire(); n != 1 {
		t.Errorf("expired %d, want 1 (heartbeat)", n)
	}
	if got := ids(); len(got) != 2 || !got["renewed"] || !got["forever"] {
		t.Errorf("instances after an hour: %v", got)
	}
	// Deregistering a leased instance leaves no stale entry behind.
	reg("gone", `,"TRELLIS_LEASE_SECONDS":"5"`)
	fx.must(t, "DeregisterInstance", `{"ServiceId":"`+svc+`","InstanceId":"gone"}`)
	fx.clock.advance(time.Minute)
	if n := expire(); n != 0 {
		t.Errorf("expired %d after a deregistration, want 0", n)
	}
	for _, bad := range []string{`"4"`, `"3601"`, `"ten"`} {
		code, out := fx.call(account, "RegisterInstance", `{"ServiceId":"`+svc+`","InstanceId":"x","Attributes":{"TRELLIS_LEASE_SECONDS":`+bad+`}}`)
		wantError(t, code, out, 400, "InvalidInput")
	}
	if logs := fx.logs.take(); logs != "" && !strings.Contains(logs, "lease expired") {
		t.Errorf("logged: %s", logs)
	}
}

// TestLeaseEntriesDoNotBlock: instance IDs with '/' expire like others, so
// a hundred of them cannot hold up expiry for everyone behind them.
func TestLeaseEntriesDoNotBlock(t *testing.T) {
	fx := newFixture(t, cloudmap.Quotas{})
	fx.api.StartLeaseClock()
	ns := fx.created(t, "CreateHttpNamespace", `{"Name":"shop"}`)
	svc := fx.must(t, "CreateService", `{"Name":"s","NamespaceId":"`+ns+`"}`)["Service"].(map[string]any)["Id"].(string)
	for i := range 120 {
		id := "i/" + strconv.Itoa(i)
		fx.must(t, "RegisterInstance", `{"ServiceId":"`+svc+`","InstanceId":"`+id+`","Attributes":{"k":"v","TRELLIS_LEASE_SECONDS":"5"}}`)
	}
	fx.must(t, "RegisterInstance", `{"ServiceId":"`+svc+`","InstanceId":"normal","Attributes":{"k":"v","TRELLIS_LEASE_SECONDS":"5"}}`)
	fx.clock.advance(time.Minute)
	total := 0
	for range 3 {
		n, err := fx.api.ExpireLeases(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != 121 {
		t.Errorf("expired %d of 121", total)
	}
}

// TestLeaseGraceAfterStart: leases that ran out while the server was down
// are not expired until the server has run for a lease.
func TestLeaseGraceAfterStart(t *testing.T) {
	fx := newFixture(t, cloudmap.Quotas{})
	ns := fx.created(t, "CreateHttpNamespace", `{"Name":"shop"}`)
	svc := fx.must(t, "CreateService", `{"Name":"s","NamespaceId":"`+ns+`","HealthCheckCustomConfig":{}}`)["Service"].(map[string]any)["Id"].(string)
	fx.must(t, "RegisterInstance", `{"ServiceId":"`+svc+`","InstanceId":"a","Attributes":{"k":"v","TRELLIS_LEASE_SECONDS":"10"}}`)
	fx.clock.advance(time.Minute) // "down" for a minute
	fx.api.StartLeaseClock()      // back up
	if n, _ := fx.api.ExpireLeases(context.Background()); n != 0 {
		t.Fatalf("expired %d at start, want 0", n)
	}
	fx.clock.advance(5 * time.Second)
	fx.must(t, "UpdateInstanceCustomHealthStatus", `{"ServiceId":"`+svc+`","InstanceId":"a","Status":"HEALTHY"}`) // the owner renews
	fx.clock.advance(9 * time.Second)
	if n, _ := fx.api.ExpireLeases(context.Background()); n != 0 {
		t.Fatalf("expired %d after a renewal, want 0", n)
	}
	fx.clock.advance(2 * time.Second)
	if n, _ := fx.api.ExpireLeases(context.Background()); n != 1 {
		t.Fatalf("expired %d once the renewed lease ran out, want 1", n)
	}
}
