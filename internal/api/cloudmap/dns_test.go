package cloudmap_test

import (
	"context"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/api/cloudmap"
	"github.com/trellis-mesh/trellis/internal/store"
)

// privateDNS reads the whole store and returns the zones of vpc.
func (fx *fixture) privateDNS(t *testing.T, vpc string) []cloudmap.DNSZone {
	t.Helper()
	res, err := fx.st.List(context.Background(), "/", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	zones, skipped := cloudmap.PrivateDNS(res.Items)
	if len(skipped) > 0 {
		t.Fatalf("skipped %v", skipped)
	}
	return zones[vpc]
}

// TestPrivateDNS: a private DNS namespace of the VPC answers its services'
// A records with their healthy instances' addresses, at the service's
// TTL; unhealthy ones only when no instance is healthy; other namespaces
// and VPCs answer nothing.
func TestPrivateDNS(t *testing.T) {
	fx := newFixture(t, cloudmap.Quotas{})
	ns := fx.created(t, "CreatePrivateDnsNamespace", `{"Name":"Corp.Internal","Vpc":"`+fx.vpc+`"}`)
	web := fx.created(t, "CreateHttpNamespace", `{"Name":"web"}`)
	svc := func(name, ns, dns string) string {
		body := `{"Name":"` + name + `","NamespaceId":"` + ns + `","HealthCheckCustomConfig":{}`
		if dns != "" {
			body += `,"DnsConfig":` + dns
		}
		return fx.must(t, "CreateService", body+`}`)["Service"].(map[string]any)["Id"].(string)
	}
	db := svc("DB", ns, `{"RoutingPolicy":"MULTIVALUE","DnsRecords":[{"Type":"A","TTL":30}]}`)
	svc("srv-only", ns, `{"RoutingPolicy":"MULTIVALUE","DnsRecords":[{"Type":"SRV","TTL":30}]}`)
	api := svc("api", web, "")
	reg := func(svc, id, ip string) {
		fx.must(t, "RegisterInstance", `{"ServiceId":"`+svc+`","InstanceId":"`+id+`","Attributes":{"AWS_INSTANCE_IPV4":"`+ip+`"}}`)
	}
	reg(db, "db-1", "10.0.0.6")
	reg(db, "db-2", "10.0.0.5")
	reg(api, "api-1", "10.0.0.9")
	health := func(id, status string) {
		fx.must(t, "UpdateInstanceCustomHealthStatus", `{"ServiceId":"`+db+`","InstanceId":"`+id+`","Status":"`+status+`"}`)
	}
	health("db-1", "UNHEALTHY")

	name := func(addrs ...string) []cloudmap.DNSZone {
		n := cloudmap.DNSName{Name: "db.corp.internal", ATTL: 30}
		for _, a := range addrs {
			n.A = append(n.A, netip.MustParseAddr(a))
		}
		// The SRV-only service has no instances: no name.
		return []cloudmap.DNSZone{{Apex: "corp.internal", Names: []cloudmap.DNSName{n}}}
	}
	if got, want := fx.privateDNS(t, fx.vpc), name("10.0.0.5"); !reflect.DeepEqual(got, want) {
		t.Fatalf("one healthy instance: got %+v, want %+v", got, want)
	}
	health("db-2", "UNHEALTHY")
	if got, want := fx.privateDNS(t, fx.vpc), name("10.0.0.5", "10.0.0.6"); !reflect.DeepEqual(got, want) {
		t.Fatalf("none healthy (fail open): got %+v, want %+v", got, want)
	}
	w := svc("w", ns, `{"RoutingPolicy":"WEIGHTED","DnsRecords":[{"Type":"A","TTL":60}]}`)
	reg(w, "w-1", "10.0.1.1")
	if got := fx.privateDNS(t, fx.vpc)[0].Names; len(got) != 2 || got[1].Name != "w.corp.internal" || !got[1].Weighted || got[0].Weighted {
		t.Fatalf("a weighted service: %+v", got)
	}
	if got := fx.privateDNS(t, "vpc-0000000000000000"); len(got) != 0 {
		t.Fatalf("another VPC: got %+v", got)
	}
}

// FuzzPrivateDNS: whatever the stored records hold, PrivateDNS returns
// zones whose names lie in them, with at most MaxDNSAddrs addresses of a
// type each.
func FuzzPrivateDNS(f *testing.F) {
	f.Add("ns/ns-1", `{"id":"ns-1","name":"Corp.Internal","type":"DNS_PRIVATE","vpc":"vpc-1"}`,
		"svc/srv-1", `{"id":"srv-1","account":"a","name":"db","namespaceId":"ns-1","dns":{"RoutingPolicy":"MULTIVALUE","DnsRecords":[{"Type":"A","TTL":30}]}}`,
		"inst/srv-1/i-1", `{"id":"i-1","serviceId":"srv-1","attributes":{"AWS_INSTANCE_IPV4":"10.0.0.1"}}`)
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		kvs := []store.KV{{Key: "/cloudmap/a/" + k1, Value: []byte(v1)}, {Key: "/cloudmap/a/" + k2, Value: []byte(v2)},
			{Key: "/cloudmap/a/" + k3, Value: []byte(v3)}}
		byVPC, _ := cloudmap.PrivateDNS(kvs)
		for _, zones := range byVPC {
			for _, z := range zones {
				for _, n := range z.Names {
					if !strings.HasSuffix(n.Name, "."+z.Apex) || len(n.A) > cloudmap.MaxDNSAddrs || len(n.AAAA) > cloudmap.MaxDNSAddrs {
						t.Fatalf("zone %q: name %+v", z.Apex, n)
					}
				}
			}
		}
	})
}
