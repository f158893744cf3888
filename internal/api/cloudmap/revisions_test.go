package cloudmap_test

import (
	"context"
	"testing"

	"github.com/trellis-mesh/trellis/internal/api/cloudmap"
)

// TestNamespaceServices: one read gives every service of a namespace with
// its InstancesRevision (as DiscoverInstancesRevision) and attributes.
func TestNamespaceServices(t *testing.T) {
	fx := newFixture(t, cloudmap.Quotas{})
	ns := fx.created(t, "CreateHttpNamespace", `{"Name":"shop"}`)
	other := fx.created(t, "CreateHttpNamespace", `{"Name":"other"}`)
	pay := fx.must(t, "CreateService", `{"Name":"payments","NamespaceId":"`+ns+`"}`)["Service"].(map[string]any)["Id"].(string)
	fx.must(t, "CreateService", `{"Name":"orders","NamespaceId":"`+ns+`"}`)
	fx.must(t, "CreateService", `{"Name":"elsewhere","NamespaceId":"`+other+`"}`)
	fx.must(t, "UpdateServiceAttributes", `{"ServiceId":"`+pay+`","Attributes":{"TRELLIS_CONNECT":"x"}}`)
	fx.must(t, "RegisterInstance", `{"ServiceId":"`+pay+`","InstanceId":"i","Attributes":{"k":"v"}}`)

	got, err := fx.api.NamespaceServices(context.Background(), account, ns)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]cloudmap.ServiceState{}
	for _, s := range got {
		byName[s.Name] = s
	}
	if len(got) != 2 || byName["payments"].ID != pay || byName["payments"].Attributes["TRELLIS_CONNECT"] != "x" {
		t.Fatalf("services of shop: %+v", got)
	}
	want := fx.must(t, "DiscoverInstancesRevision", `{"NamespaceName":"shop","ServiceName":"payments"}`)["InstancesRevision"].(float64)
	if float64(byName["payments"].InstancesRevision) != want {
		t.Errorf("revision %d, DiscoverInstancesRevision says %v", byName["payments"].InstancesRevision, want)
	}
	fx.must(t, "DeregisterInstance", `{"ServiceId":"`+pay+`","InstanceId":"i"}`)
	again, _ := fx.api.NamespaceServices(context.Background(), account, ns)
	for _, s := range again {
		if s.Name == "payments" && s.InstancesRevision <= byName["payments"].InstancesRevision {
			t.Errorf("revision did not move on a deregistration: %d", s.InstancesRevision)
		}
	}
	for _, c := range []struct{ acct, ns string }{{account, "ns-nonexistent0000"}, {"444455556666", ns}} {
		if _, err := fx.api.NamespaceServices(context.Background(), c.acct, c.ns); !cloudmap.IsNamespaceNotFound(err) {
			t.Errorf("account %s namespace %s: %v, want NamespaceNotFound", c.acct, c.ns, err)
		}
	}
}
