package cloudmap

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/trellis-mesh/trellis/internal/store"
)

// DNSZone is what a private DNS namespace answers in its VPC: Cloud Map
// would put these records in the namespace's Route 53 hosted zone. The
// gateways of the VPC answer them (package dns).
type DNSZone struct {
	// Apex is the namespace's name, lower case.
	Apex string `json:"apex"`
	// Names are its services that have instances, sorted.
	Names []DNSName `json:"names,omitempty"`
}

// DNSName is one service of a zone, <service>.<namespace>, with the
// addresses of its instances: AWS_INSTANCE_IPV4 for an A record,
// AWS_INSTANCE_IPV6 for AAAA. Each list holds the healthy instances'
// addresses or, when none is healthy, the others' (Route 53's multivalue
// answers fail open the same way), sorted, at most MaxDNSAddrs; the
// responder answers MaxDNSAnswers of them, a different slice each time.
// A service with instances but no A or AAAA record (SRV only, say) is a
// name without addresses.
//
// A service with an SRV record (which Cloud Map takes only alone) has one
// SRV target per instance, chosen the same way: priority 1, weight 1,
// AWS_INSTANCE_PORT, and the host name <instance-id>.<service>.<namespace>,
// which is a DNSName of its own with the instance's AWS_INSTANCE_IPV4 and
// AWS_INSTANCE_IPV6 at the SRV record's TTL, as Cloud Map creates them.
// Instances whose ID is not a DNS label (letters, digits, '-' and '_', at
// most 63) or that have no valid port or address get no SRV record.
type DNSName struct {
	Name string `json:"name"`
	// Weighted: the service's routing policy is WEIGHTED, and an answer
	// carries one address of a type, picked at random.
	Weighted bool         `json:"weighted,omitempty"`
	A        []netip.Addr `json:"a,omitempty"`
	ATTL     uint32       `json:"aTtl,omitempty"`
	AAAA     []netip.Addr `json:"aaaa,omitempty"`
	AAAATTL  uint32       `json:"aaaaTtl,omitempty"`
	SRV      []DNSTarget  `json:"srv,omitempty"`
	SRVTTL   uint32       `json:"srvTtl,omitempty"`
	// CNAME are the AWS_INSTANCE_CNAME values of a service with a CNAME
	// record (always WEIGHTED), chosen as the addresses are; an answer
	// carries one, picked at random.
	CNAME    []string `json:"cname,omitempty"`
	CNAMETTL uint32   `json:"cnameTtl,omitempty"`
}

// DNSTarget is the target of an SRV record.
type DNSTarget struct {
	Host string `json:"host"`
	Port uint16 `json:"port"`
}

const (
	// MaxDNSAnswers is how many addresses of a type one answer carries,
	// as Route 53's multivalue answer routing returns up to eight records.
	MaxDNSAnswers = 8
	// MaxDNSAddrs bounds the addresses of a type a name keeps in a
	// snapshot.
	MaxDNSAddrs = 256
)

// PrivateDNS returns the zones of the private DNS namespaces, by VPC ID,
// from kvs: stored key-values of the Cloud Map key space (others are
// skipped), read at one revision. Only the namespaces, the services of
// those namespaces and their instances are decoded. Records that do not
// decode are left out and their keys returned in skipped.
func PrivateDNS(kvs []store.KV) (zones map[string][]DNSZone, skipped []string) {
	type nsKey struct{ account, id string }
	namespaces := map[nsKey]*namespace{}
	services := map[nsKey]*service{} // by account and service ID
	instances := map[nsKey][]*instance{}
	// Three passes over kvs, so that only what a zone needs is decoded.
	for pass := 0; pass < 3; pass++ {
		for _, kv := range kvs {
			rest, ok := strings.CutPrefix(kv.Key, "/cloudmap/")
			if !ok {
				continue
			}
			parts := strings.SplitN(rest, "/", 4)
			if len(parts) < 3 {
				continue
			}
			account, kind := parts[0], parts[1]
			var err error
			switch {
			case pass == 0 && kind == "ns":
				var ns namespace
				if err = json.Unmarshal(kv.Value, &ns); err == nil && ns.Type == NamespaceDNSPrivate && ns.VPC != "" {
					namespaces[nsKey{account, ns.ID}] = &ns
				}
			case pass == 1 && kind == "svc":
				var svc service
				if err = json.Unmarshal(kv.Value, &svc); err == nil && svc.DNS != nil && namespaces[nsKey{account, svc.NamespaceID}] != nil {
					services[nsKey{account, svc.ID}] = &svc
				}
			case pass == 2 && kind == "inst" && len(parts) == 4 && services[nsKey{account, parts[2]}] != nil:
				var inst instance
				if err = json.Unmarshal(kv.Value, &inst); err == nil {
					k := nsKey{account, inst.ServiceID}
					instances[k] = append(instances[k], &inst)
				}
			}
			if err != nil {
				skipped = append(skipped, kv.Key)
			}
		}
	}
	type zoneKey struct{ vpc, apex string }
	byApex := map[zoneKey]*DNSZone{}
	for _, ns := range namespaces {
		k := zoneKey{ns.VPC, strings.ToLower(strings.TrimSuffix(ns.Name, "."))}
		if byApex[k] == nil {
			byApex[k] = &DNSZone{Apex: k.apex}
		}
	}
	hosts := map[*DNSZone][]DNSName{}
	for k, svc := range services {
		ns := namespaces[nsKey{k.account, svc.NamespaceID}]
		z := byApex[zoneKey{ns.VPC, strings.ToLower(strings.TrimSuffix(ns.Name, "."))}]
		if name, ok := dnsName(svc, z.Apex, instances[k]); ok {
			z.Names = append(z.Names, name)
			hosts[z] = append(hosts[z], srvHosts(svc, name, instances[k])...)
		}
	}
	zones = map[string][]DNSZone{}
	for k, z := range byApex {
		// A service's own name wins over an SRV target of the same name
		// (service "x.db" and instance "x" of service "db").
		taken := map[string]bool{}
		for _, n := range z.Names {
			taken[n.Name] = true
		}
		for _, h := range hosts[z] {
			if !taken[h.Name] {
				taken[h.Name] = true
				z.Names = append(z.Names, h)
			}
		}
		slices.SortFunc(z.Names, func(a, b DNSName) int { return strings.Compare(a.Name, b.Name) })
		zones[k.vpc] = append(zones[k.vpc], *z)
	}
	for _, list := range zones {
		slices.SortFunc(list, func(a, b DNSZone) int { return strings.Compare(a.Apex, b.Apex) })
	}
	return zones, skipped
}

// dnsName is the name of svc in zone apex with its instances' addresses;
// false for a service without instances, which has no records (as in
// Cloud Map, whose records come with the instances).
func dnsName(svc *service, apex string, insts []*instance) (DNSName, bool) {
	if len(insts) == 0 {
		return DNSName{}, false
	}
	name := DNSName{Name: strings.ToLower(svc.Name) + "." + apex, Weighted: svc.DNS.RoutingPolicy == "WEIGHTED"}
	for _, r := range svc.DNS.DNSRecords {
		ttl := uint32(min(max(r.TTL, 0), 1<<31-1))
		switch r.Type {
		case "A":
			name.A, name.ATTL = addrs(svc, insts, AttrIPv4), ttl
		case "AAAA":
			name.AAAA, name.AAAATTL = addrs(svc, insts, AttrIPv6), ttl
		case "SRV":
			name.SRV, name.SRVTTL = srvTargets(svc, name.Name, insts), ttl
		case "CNAME":
			name.CNAME, name.CNAMETTL = cnames(svc, insts), ttl
		}
	}
	return name, true
}

// cnames are the AWS_INSTANCE_CNAME values of the healthy instances, or
// of the others when none is healthy; sorted, at most MaxDNSAddrs. The
// responder leaves out values that are no DNS name. Instances with the
// same value each count, as Route 53 keeps one weighted record per
// instance.
func cnames(svc *service, insts []*instance) []string {
	out := healthyOrAll(svc, insts, func(inst *instance) (string, bool) {
		c := inst.Attributes[AttrCNAME]
		return c, c != ""
	})
	slices.Sort(out)
	return out[:min(len(out), MaxDNSAddrs)]
}

// healthyOrAll are value's results for the healthy instances, or for the
// others when none is healthy (Route 53's multivalue answers fail open the
// same way), in the order of insts; instances for which value says false
// are left out.
func healthyOrAll[T any](svc *service, insts []*instance, value func(*instance) (T, bool)) []T {
	var healthy, other []T
	for _, inst := range insts {
		v, ok := value(inst)
		switch {
		case !ok:
		case healthOf(svc, inst) == Unhealthy:
			other = append(other, v)
		default:
			healthy = append(healthy, v)
		}
	}
	if len(healthy) == 0 {
		return other
	}
	return healthy
}

// srvTargets are the SRV targets of the healthy instances, or of the
// others when none is healthy; sorted, at most MaxDNSAddrs. Of instance
// IDs that differ only in case, the first in byte order is the target.
func srvTargets(svc *service, name string, insts []*instance) []DNSTarget {
	seen := map[string]bool{}
	out := healthyOrAll(svc, byID(insts), func(inst *instance) (DNSTarget, bool) {
		t, ok := srvTarget(name, inst)
		if !ok || seen[t.Host] {
			return t, false
		}
		seen[t.Host] = true
		return t, true
	})
	slices.SortFunc(out, func(a, b DNSTarget) int { return strings.Compare(a.Host, b.Host) })
	return out[:min(len(out), MaxDNSAddrs)]
}

// srvTarget is inst's SRV target under the service name name.
func srvTarget(name string, inst *instance) (DNSTarget, bool) {
	port, err := strconv.ParseUint(inst.Attributes[AttrPort], 10, 16)
	if err != nil || port == 0 || !dnsLabel(inst.ID) {
		return DNSTarget{}, false
	}
	_, err4 := netip.ParseAddr(inst.Attributes[AttrIPv4])
	_, err6 := netip.ParseAddr(inst.Attributes[AttrIPv6])
	if err4 != nil && err6 != nil {
		return DNSTarget{}, false
	}
	host := strings.ToLower(inst.ID) + "." + name
	if len(host) > 253 {
		return DNSTarget{}, false // longer than a DNS name can be
	}
	return DNSTarget{Host: host, Port: uint16(port)}, true
}

// byID is insts sorted by instance ID.
func byID(insts []*instance) []*instance {
	out := slices.Clone(insts)
	slices.SortFunc(out, func(a, b *instance) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// srvHosts are the names of the SRV targets of name's instances, each
// with its instance's addresses at the SRV record's TTL. Every instance
// that can be a target has one, healthy or not: alone at its name, its
// record is answered whatever its health, as Route 53's are.
func srvHosts(svc *service, name DNSName, insts []*instance) []DNSName {
	if !slices.ContainsFunc(svc.DNS.DNSRecords, func(r dnsRecord) bool { return r.Type == "SRV" }) {
		return nil
	}
	var out []DNSName
	seen := map[string]bool{}
	for _, inst := range byID(insts) {
		t, ok := srvTarget(name.Name, inst)
		if !ok || seen[t.Host] {
			continue
		}
		seen[t.Host] = true
		h := DNSName{Name: t.Host, ATTL: name.SRVTTL, AAAATTL: name.SRVTTL}
		if ip, err := netip.ParseAddr(inst.Attributes[AttrIPv4]); err == nil {
			h.A = []netip.Addr{ip}
		}
		if ip, err := netip.ParseAddr(inst.Attributes[AttrIPv6]); err == nil {
			h.AAAA = []netip.Addr{ip}
		}
		out = append(out, h)
	}
	return out
}

// dnsLabel reports whether s can be one DNS label of a host name.
func dnsLabel(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// addrs are the addresses in attribute attr of the healthy instances, or
// of the others when none is healthy; sorted, at most MaxDNSAddrs.
func addrs(svc *service, insts []*instance, attr string) []netip.Addr {
	out := healthyOrAll(svc, insts, func(inst *instance) (netip.Addr, bool) {
		ip, err := netip.ParseAddr(inst.Attributes[attr])
		return ip, err == nil
	})
	slices.SortFunc(out, netip.Addr.Compare)
	out = slices.Compact(out)
	return out[:min(len(out), MaxDNSAddrs)]
}
