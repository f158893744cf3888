package cloudmap_test

import (
	"context"
	"net/netip"
	"reflect"
	"slices"
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

// TestPrivateDNSSRV: a service with an SRV record answers one target per
// healthy instance (all of them when none is), <instance-id>.<service>.
// <namespace> at AWS_INSTANCE_PORT, and every instance's target host is a
// name with the instance's addresses at the SRV record's TTL. An instance
// whose ID is no DNS label has neither; of IDs that differ in case the
// first in byte order is the target; a service's own name wins over a
// target host of the same name.
func TestPrivateDNSSRV(t *testing.T) {
	fx := newFixture(t, cloudmap.Quotas{})
	ns := fx.created(t, "CreatePrivateDnsNamespace", `{"Name":"corp.internal","Vpc":"`+fx.vpc+`"}`)
	create := func(name, dns string) string {
		return fx.must(t, "CreateService", `{"Name":"`+name+`","NamespaceId":"`+ns+`","HealthCheckCustomConfig":{},"DnsConfig":`+
			dns+`}`)["Service"].(map[string]any)["Id"].(string)
	}
	// Cloud Map takes SRV alone (not with A or AAAA); the targets' host
	// names carry the addresses.
	pg := create("_pg._tcp", `{"RoutingPolicy":"MULTIVALUE","DnsRecords":[{"Type":"SRV","TTL":20}]}`)
	only := create("q", `{"RoutingPolicy":"MULTIVALUE","DnsRecords":[{"Type":"SRV","TTL":15}]}`)
	shadow := create("pg-4._pg._tcp", `{"RoutingPolicy":"MULTIVALUE","DnsRecords":[{"Type":"A","TTL":300}]}`)
	reg := func(svc, id, attrs string) {
		fx.must(t, "RegisterInstance", `{"ServiceId":"`+svc+`","InstanceId":"`+id+`","Attributes":{`+attrs+`}}`)
	}
	reg(pg, "Pg-1", `"AWS_INSTANCE_IPV4":"10.0.0.1","AWS_INSTANCE_PORT":"5432"`)
	reg(pg, "pg-1", `"AWS_INSTANCE_IPV4":"10.0.0.11","AWS_INSTANCE_PORT":"6000"`)
	reg(pg, "pg-2", `"AWS_INSTANCE_IPV4":"10.0.0.2","AWS_INSTANCE_IPV6":"fd00::2","AWS_INSTANCE_PORT":"5433"`)
	reg(pg, "pg-3", `"AWS_INSTANCE_IPV4":"10.0.0.3","AWS_INSTANCE_PORT":"5434"`)
	reg(pg, "pg-4", `"AWS_INSTANCE_IPV4":"10.0.0.4","AWS_INSTANCE_PORT":"5435"`)
	reg(pg, "not:a-label", `"AWS_INSTANCE_IPV4":"10.0.0.5","AWS_INSTANCE_PORT":"1"`)
	reg(shadow, "s-1", `"AWS_INSTANCE_IPV4":"10.9.9.9"`)
	reg(only, "q-1", `"AWS_INSTANCE_IPV6":"fd00::9","AWS_INSTANCE_PORT":"9000"`)
	health := func(svc, id, status string) {
		fx.must(t, "UpdateInstanceCustomHealthStatus", `{"ServiceId":"`+svc+`","InstanceId":"`+id+`","Status":"`+status+`"}`)
	}
	health(pg, "pg-3", "UNHEALTHY")

	names := func() map[string]cloudmap.DNSName {
		out := map[string]cloudmap.DNSName{}
		for _, n := range fx.privateDNS(t, fx.vpc)[0].Names {
			if _, dup := out[n.Name]; dup {
				t.Errorf("name %s given twice", n.Name)
			}
			out[n.Name] = n
		}
		return out
	}
	got := names()
	svc := got["_pg._tcp.corp.internal"]
	wantSRV := []cloudmap.DNSTarget{{Host: "pg-1._pg._tcp.corp.internal", Port: 5432}, {Host: "pg-2._pg._tcp.corp.internal", Port: 5433},
		{Host: "pg-4._pg._tcp.corp.internal", Port: 5435}}
	if !reflect.DeepEqual(svc.SRV, wantSRV) || svc.SRVTTL != 20 || len(svc.A) != 0 {
		t.Errorf("service: %+v, want SRV %+v at TTL 20 and no address", svc, wantSRV)
	}
	host := got["pg-2._pg._tcp.corp.internal"]
	if !reflect.DeepEqual(host.A, []netip.Addr{netip.MustParseAddr("10.0.0.2")}) ||
		!reflect.DeepEqual(host.AAAA, []netip.Addr{netip.MustParseAddr("fd00::2")}) || host.ATTL != 20 || host.AAAATTL != 20 {
		t.Errorf("target host: %+v", host)
	}
	if h := got["pg-1._pg._tcp.corp.internal"]; !reflect.DeepEqual(h.A, []netip.Addr{netip.MustParseAddr("10.0.0.1")}) {
		t.Errorf("of Pg-1 and pg-1, Pg-1 is the target: %+v", h)
	}
	if h := got["pg-3._pg._tcp.corp.internal"]; len(h.A) != 1 {
		t.Errorf("an unhealthy instance keeps its host name (alone at it, its record fails open): %+v", h)
	}
	if h := got["pg-4._pg._tcp.corp.internal"]; h.ATTL != 300 || !reflect.DeepEqual(h.A, []netip.Addr{netip.MustParseAddr("10.9.9.9")}) {
		t.Errorf("the service pg-4._pg._tcp did not win over the target host of the same name: %+v", h)
	}
	if _, ok := got["not:a-label._pg._tcp.corp.internal"]; ok {
		t.Error("an instance ID that is no DNS label has a host name")
	}
	q := got["q.corp.internal"]
	if len(q.A) != 0 || len(q.SRV) != 1 || q.SRV[0] != (cloudmap.DNSTarget{Host: "q-1.q.corp.internal", Port: 9000}) {
		t.Errorf("SRV-only service: %+v", q)
	}
	if h := got["q-1.q.corp.internal"]; len(h.AAAA) != 1 || h.AAAATTL != 15 {
		t.Errorf("target host takes the SRV TTL: %+v", h)
	}
	// None healthy: every instance is a target (fail open).
	for _, id := range []string{"Pg-1", "pg-2", "pg-4"} {
		health(pg, id, "UNHEALTHY")
	}
	if srv := names()["_pg._tcp.corp.internal"].SRV; len(srv) != 4 {
		t.Errorf("none healthy: %d targets, want all 4 usable instances", len(srv))
	}
}

// FuzzPrivateDNS: whatever the stored records hold, PrivateDNS returns
// zones whose names lie in them, with at most MaxDNSAddrs addresses of a
// type each.
func FuzzPrivateDNS(f *testing.F) {
	f.Add("ns/ns-1", `{"id":"ns-1","name":"Corp.Internal","type":"DNS_PRIVATE","vpc":"vpc-1"}`,
		"svc/srv-1", `{"id":"srv-1","account":"a","name":"db","namespaceId":"ns-1","dns":{"RoutingPolicy":"MULTIVALUE","DnsRecords":[{"Type":"A","TTL":30}]}}`,
		"inst/srv-1/i-1", `{"id":"i-1","serviceId":"srv-1","attributes":{"AWS_INSTANCE_IPV4":"10.0.0.1"}}`)
	f.Add("ns/ns-1", `{"id":"ns-1","name":"corp.internal","type":"DNS_PRIVATE","vpc":"vpc-1"}`,
		"svc/srv-1", `{"id":"srv-1","account":"a","name":"_pg._tcp","namespaceId":"ns-1","dns":{"RoutingPolicy":"MULTIVALUE","DnsRecords":[{"Type":"SRV","TTL":30}]}}`,
		"inst/srv-1/pg-1", `{"id":"pg-1","serviceId":"srv-1","attributes":{"AWS_INSTANCE_IPV4":"10.0.0.1","AWS_INSTANCE_PORT":"5432"}}`)
	f.Add("ns/ns-1", `{"id":"ns-1","name":"corp.internal","type":"DNS_PRIVATE","vpc":"vpc-1"}`,
		"svc/srv-1", `{"id":"srv-1","account":"a","name":"www","namespaceId":"ns-1","dns":{"RoutingPolicy":"WEIGHTED","DnsRecords":[{"Type":"CNAME","TTL":30}]}}`,
		"inst/srv-1/w-1", `{"id":"w-1","serviceId":"srv-1","attributes":{"AWS_INSTANCE_CNAME":"edge.example.com"}}`)
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		kvs := []store.KV{{Key: "/cloudmap/a/" + k1, Value: []byte(v1)}, {Key: "/cloudmap/a/" + k2, Value: []byte(v2)},
			{Key: "/cloudmap/a/" + k3, Value: []byte(v3)}}
		byVPC, _ := cloudmap.PrivateDNS(kvs)
		for _, zones := range byVPC {
			for _, z := range zones {
				for _, n := range z.Names {
					if !strings.HasSuffix(n.Name, "."+z.Apex) || len(n.A) > cloudmap.MaxDNSAddrs || len(n.AAAA) > cloudmap.MaxDNSAddrs ||
						len(n.SRV) > cloudmap.MaxDNSAddrs {
						t.Fatalf("zone %q: name %+v", z.Apex, n)
					}
					for _, s := range n.SRV {
						if !strings.HasSuffix(s.Host, "."+n.Name) || s.Port == 0 {
							t.Fatalf("zone %q: name %q: SRV target %+v", z.Apex, n.Name, s)
						}
					}
					if slices.Contains(n.CNAME, "") {
						t.Fatalf("zone %q: name %q: an empty CNAME in %q", z.Apex, n.Name, n.CNAME)
					}
				}
			}
		}
	})
}

// TestPrivateDNSCNAME: a service with a CNAME record (WEIGHTED, as Cloud
// Map requires) aliases its healthy instances' AWS_INSTANCE_CNAME values,
// one per instance; all of them when none is healthy.
func TestPrivateDNSCNAME(t *testing.T) {
	fx := newFixture(t, cloudmap.Quotas{})
	ns := fx.created(t, "CreatePrivateDnsNamespace", `{"Name":"corp.internal","Vpc":"`+fx.vpc+`"}`)
	svc := fx.must(t, "CreateService", `{"Name":"www","NamespaceId":"`+ns+`","HealthCheckCustomConfig":{},`+
		`"DnsConfig":{"RoutingPolicy":"WEIGHTED","DnsRecords":[{"Type":"CNAME","TTL":45}]}}`)["Service"].(map[string]any)["Id"].(string)
	for id, cname := range map[string]string{"a": "edge-a.example.com", "b": "edge-b.example.com.", "d": "edge-a.example.com"} {
		fx.must(t, "RegisterInstance", `{"ServiceId":"`+svc+`","InstanceId":"`+id+`","Attributes":{"AWS_INSTANCE_CNAME":"`+cname+`"}}`)
	}
	// b is unhealthy; a and d share a value, which then weighs double.
	fx.must(t, "UpdateInstanceCustomHealthStatus", `{"ServiceId":"`+svc+`","InstanceId":"b","Status":"UNHEALTHY"}`)
	n := fx.privateDNS(t, fx.vpc)[0].Names[0]
	if n.Name != "www.corp.internal" || !slices.Equal(n.CNAME, []string{"edge-a.example.com", "edge-a.example.com"}) || n.CNAMETTL != 45 || !n.Weighted {
		t.Errorf("healthy ones: %+v", n)
	}
	for _, id := range []string{"a", "d"} {
		fx.must(t, "UpdateInstanceCustomHealthStatus", `{"ServiceId":"`+svc+`","InstanceId":"`+id+`","Status":"UNHEALTHY"}`)
	}
	if n := fx.privateDNS(t, fx.vpc)[0].Names[0]; !slices.Equal(n.CNAME, []string{"edge-a.example.com", "edge-a.example.com", "edge-b.example.com."}) {
		t.Errorf("none healthy (fail open): %+v", n)
	}
}
