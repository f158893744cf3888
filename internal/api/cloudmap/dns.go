package cloudmap

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/trellis-mesh/trellis/internal/store"
)

// DNSZone is what a private DNS namespace answers in its VPC: Cloud Map
// would put these records in the namespace's Route 53 hosted zone. The
// gateways of the VPC answer them (package dns).
type DNSZone struct {
	// Apex is the namespace's name, lower case.
	Apex string `json:"apex"`
	// Names are its services with A or AAAA records, sorted.
	Names []DNSName `json:"names,omitempty"`
}

// DNSName is one service of a zone: <service>.<namespace>.
type DNSName struct {
	Name string `json:"name"`
	// TTL is the service's DnsConfig TTL of its A (else AAAA) record.
	TTL uint32 `json:"ttl"`
	// Addrs are the AWS_INSTANCE_IPV4 (for an A record) and
	// AWS_INSTANCE_IPV6 (for AAAA) of its healthy instances, sorted, at
	// most MaxDNSAnswers; when none is healthy, of its other instances
	// (Route 53's multivalue answers fail open the same way).
	Addrs []netip.Addr `json:"addrs,omitempty"`
}

// MaxDNSAnswers is how many addresses a name answers, as Route 53's
// multivalue answer routing returns up to eight records.
const MaxDNSAnswers = 8

// PrivateDNS returns the zones of the private DNS namespaces associated
// with vpc, from kvs: stored key-values of the Cloud Map key space (others
// are skipped), read at one revision. Both routing policies answer every
// healthy address up to MaxDNSAnswers; SRV and CNAME records are not
// answered.
func PrivateDNS(kvs []store.KV, vpc string) ([]DNSZone, error) {
	namespaces := map[string]*namespace{} // by account/id
	var services []*service
	instances := map[string][]*instance{} // by account/service id
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
		switch kind {
		case "ns":
			var ns namespace
			if err = json.Unmarshal(kv.Value, &ns); err == nil && ns.Type == NamespaceDNSPrivate && ns.VPC == vpc {
				namespaces[account+"/"+ns.ID] = &ns
			}
		case "svc":
			var svc service
			if err = json.Unmarshal(kv.Value, &svc); err == nil && svc.DNS != nil {
				services = append(services, &svc)
			}
		case "inst":
			var inst instance
			if err = json.Unmarshal(kv.Value, &inst); err == nil {
				k := account + "/" + inst.ServiceID
				instances[k] = append(instances[k], &inst)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("cloudmap: decoding %s: %w", kv.Key, err)
		}
	}
	zones := map[string]*DNSZone{}
	for _, ns := range namespaces {
		apex := strings.ToLower(strings.TrimSuffix(ns.Name, "."))
		if zones[apex] == nil {
			zones[apex] = &DNSZone{Apex: apex}
		}
	}
	for _, svc := range services {
		ns := namespaces[svc.Account+"/"+svc.NamespaceID]
		if ns == nil {
			continue
		}
		z := zones[strings.ToLower(strings.TrimSuffix(ns.Name, "."))]
		if name, ok := dnsName(svc, z.Apex, instances[svc.Account+"/"+svc.ID]); ok {
			z.Names = append(z.Names, name)
		}
	}
	out := make([]DNSZone, 0, len(zones))
	for _, z := range zones {
		slices.SortFunc(z.Names, func(a, b DNSName) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, *z)
	}
	slices.SortFunc(out, func(a, b DNSZone) int { return strings.Compare(a.Apex, b.Apex) })
	return out, nil
}

// dnsName is the name of svc in zone apex with its instances' addresses;
// false when its DnsConfig has neither an A nor an AAAA record.
func dnsName(svc *service, apex string, insts []*instance) (DNSName, bool) {
	var a, aaaa bool
	var ttl int64 = -1
	for _, r := range svc.DNS.DNSRecords {
		switch r.Type {
		case "A":
			a, ttl = true, r.TTL
		case "AAAA":
			aaaa = true
			if ttl < 0 {
				ttl = r.TTL
			}
		}
	}
	if !a && !aaaa {
		return DNSName{}, false
	}
	name := DNSName{Name: strings.ToLower(svc.Name) + "." + apex, TTL: uint32(min(max(ttl, 0), 1<<31-1))}
	var healthy, other []netip.Addr
	for _, inst := range insts {
		for _, attr := range [...]struct {
			key string
			on  bool
		}{{AttrIPv4, a}, {AttrIPv6, aaaa}} {
			v, ok := inst.Attributes[attr.key]
			if !attr.on || !ok {
				continue
			}
			ip, err := netip.ParseAddr(v)
			if err != nil {
				continue
			}
			if healthOf(svc, inst) == Unhealthy {
				other = append(other, ip)
			} else {
				healthy = append(healthy, ip)
			}
		}
	}
	if len(healthy) == 0 {
		healthy = other
	}
	slices.SortFunc(healthy, netip.Addr.Compare)
	name.Addrs = slices.Compact(healthy)
	if len(name.Addrs) > MaxDNSAnswers {
		name.Addrs = name.Addrs[:MaxDNSAnswers]
	}
	return name, true
}
