package dns

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// zoneLabel marks Lattice's generated service names:
// <name>-<id>.<partition>.vpc-lattice-svcs.<region>.on.aws. The server is
// authoritative for the zone that starts at this label (see table.zones).
const zoneLabel = "vpc-lattice-svcs"

// rrset is the records of one name.
type rrset struct {
	a    [][4]byte
	aaaa [][16]byte
	srv  []srvRecord
	// cname: the name is an alias; an answer carries one target, picked
	// at random, and the target's records when the table holds them.
	cname []srvRecord
	// zoned: a name of a Zone, answered with its own TTLs and at most
	// maxAnswers addresses per type, from a random offset.
	zoned                           bool
	one                             bool // a weighted name: one address per answer
	ttlA, ttlAAAA, ttlSRV, ttlCNAME uint32
}

// srvRecord is an SRV record's data (priority and weight are 1, as Cloud
// Map writes them), or a CNAME record's (port unused).
type srvRecord struct {
	target dnsmessage.Name
	port   uint16
	host   string // target, lower case, no trailing dot: its key in names
}

// maxAnswers is how many addresses of a type an answer for a zone's name
// carries (Route 53's multivalue answers return up to eight).
const maxAnswers = 8

// Zone is a zone the server answers with authority besides Lattice's
// generated names: a Cloud Map private DNS namespace. A name under Apex
// that Names does not hold is NXDOMAIN. The Lattice names (SetRecords'
// map) win: a zone inside a generated Lattice zone is ignored, and a
// zone's name that is also a Lattice name is left out. Of nested zones,
// the most specific one answers a name.
type Zone struct {
	// Apex is the zone's name (case and a trailing dot do not matter).
	Apex  string
	Names []Name
}

// Name is one name of a Zone: its A and AAAA addresses (IPv4-mapped ones
// count as IPv4) and their TTLs. A name without addresses of the type
// asked is NODATA. An answer carries up to eight addresses of a type, a
// different slice of the list each time; with Weighted, one address
// picked at random (Route 53's weighted routing, equal weights).
//
// SRV records are chosen the same way; an answer's additional section
// carries the addresses of its targets that are names of the table.
type Name struct {
	Name          string
	A, AAAA       []netip.Addr
	ATTL, AAAATTL uint32
	Weighted      bool
	SRV           []SRVTarget
	SRVTTL        uint32
	// CNAME makes the name an alias of one of these names, picked at
	// random for each answer (Route 53's weighted CNAME records, equal
	// weights); it then has no other records.
	CNAME    []string
	CNAMETTL uint32
}

// SRVTarget is the target of an SRV record.
type SRVTarget struct {
	Host string
	Port uint16
}

// table is an immutable set of records; SetRecords swaps whole tables.
type table struct {
	// names maps a lower-case name without trailing dot to its records.
	// Empty non-terminals of the authoritative zones (the parents of a
	// service name up to the zone apex) map to an empty rrset, so they
	// answer NODATA rather than NXDOMAIN (RFC 8020).
	names map[string]*rrset
	// zones are the lower-case suffixes (apexes) the server owns:
	// "vpc-lattice-svcs.<region>.on.aws" for every region a generated name
	// in names uses. A missing name inside one is NXDOMAIN; a missing name
	// anywhere else is REFUSED, because the server is not authoritative for
	// it — a custom domain's zone (example.com) has names Trellis does not
	// know, and answering NXDOMAIN for them would poison the resolver that
	// forwards to us.
	zones [][]byte
}

// newTable builds a table from SetRecords' arguments.
func newTable(names map[string][]netip.Addr, extra []Zone) *table {
	t := &table{names: make(map[string]*rrset, len(names))}
	zones := map[string]bool{}
	add := func(name string, addrs []netip.Addr) *rrset {
		name = normalize(name)
		if name == "" {
			return nil
		}
		rs := t.names[name]
		if rs == nil {
			rs = &rrset{}
			t.names[name] = rs
		}
		for _, a := range addrs {
			a = a.Unmap()
			switch {
			case a.Is4():
				rs.a = append(rs.a, a.As4())
			case a.Is6():
				rs.aaaa = append(rs.aaaa, a.As16())
			}
		}
		if zone, ok := generatedZone(name); ok {
			zones[zone] = true
		}
		return rs
	}
	for name, addrs := range names {
		add(name, addrs)
	}
	lattice := make(map[string]bool, len(t.names))
	for name := range t.names {
		lattice[name] = true
	}
	apexes := make([]string, 0, len(extra))
	for _, z := range extra {
		if apex := normalize(z.Apex); apex != "" {
			if _, lattice := generatedZone(apex); !lattice && !strings.HasSuffix(apex, "."+zoneLabel) {
				apexes = append(apexes, apex)
			}
		}
	}
	for _, z := range extra {
		apex := normalize(z.Apex)
		if !slices.Contains(apexes, apex) {
			continue
		}
		zones[apex] = true
		for _, n := range z.Names {
			nn := normalize(n.Name)
			if nn == "" || mostSpecific(apexes, nn) != apex {
				continue // outside its zone, or inside a nested one
			}
			if lattice[nn] {
				continue // Lattice's names win
			}
			if rs := t.names[nn]; rs != nil && rs.zoned {
				continue // given twice: the first stands
			}
			rs := add(nn, n.A)
			for _, a := range n.AAAA {
				if a = a.Unmap(); a.Is6() {
					rs.aaaa = append(rs.aaaa, a.As16())
				}
			}
			rs.zoned, rs.one, rs.ttlA, rs.ttlAAAA, rs.ttlSRV, rs.ttlCNAME = true, n.Weighted, n.ATTL, n.AAAATTL, n.SRVTTL, n.CNAMETTL
			for _, srv := range n.SRV {
				if r, ok := newTarget(srv.Host, srv.Port); ok {
					rs.srv = append(rs.srv, r)
				}
			}
			for _, c := range n.CNAME {
				if r, ok := newTarget(c, 0); ok && r.host != nn {
					rs.cname = append(rs.cname, r)
				}
			}
			if len(rs.cname) > 0 {
				rs.a, rs.aaaa, rs.srv = nil, nil, nil // an alias has no other data
			}
		}
	}
	for zone := range zones {
		t.zones = append(t.zones, []byte(zone))
	}
	// Empty non-terminals: every ancestor of a name inside a zone, down to
	// and including the apex.
	for name := range t.names {
		zone, ok := t.zoneOf(name)
		if !ok {
			continue
		}
		for n := name; len(n) > len(zone); {
			_, parent, _ := strings.Cut(n, ".")
			if _, exists := t.names[parent]; !exists {
				t.names[parent] = &rrset{}
			}
			n = parent
		}
	}
	return t
}

// newTarget is the record data naming host, if DNS can carry the name.
func newTarget(host string, port uint16) (srvRecord, bool) {
	host = normalize(host)
	if !hostName(host) {
		return srvRecord{}, false
	}
	target, err := dnsmessage.NewName(host + ".")
	if err != nil {
		return srvRecord{}, false
	}
	return srvRecord{target: target, port: port, host: host}, true
}

// hostName reports whether name (lower case, no trailing dot) fits in a
// DNS message: at most 253 bytes, labels of 1 to 63.
func hostName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
	}
	return true
}

// mostSpecific returns the longest of apexes that holds name, "" if none.
func mostSpecific(apexes []string, name string) string {
	best := ""
	for _, apex := range apexes {
		if (name == apex || strings.HasSuffix(name, "."+apex)) && len(apex) > len(best) {
			best = apex
		}
	}
	return best
}

// zoneOf returns the apex of the longest zone of t that holds name.
func (t *table) zoneOf(name string) (string, bool) {
	best := ""
	for _, z := range t.zones {
		apex := string(z)
		if (name == apex || strings.HasSuffix(name, "."+apex)) && len(apex) > len(best) {
			best = apex
		}
	}
	return best, best != ""
}

// generatedZone returns the zone apex of a Lattice generated name: the
// suffix that starts with the label "vpc-lattice-svcs" when the name ends in
// ".on.aws".
func generatedZone(name string) (string, bool) {
	if !strings.HasSuffix(name, ".on.aws") {
		return "", false
	}
	if strings.HasPrefix(name, zoneLabel+".") {
		return name, true
	}
	i := strings.Index(name, "."+zoneLabel+".")
	if i < 0 {
		return "", false
	}
	return name[i+1:], true
}

// normalize lower-cases an ASCII name and drops one trailing dot.
func normalize(name string) string {
	b := []byte(strings.TrimSuffix(name, "."))
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// lookup finds the records of a lower-case name. ok is false for names the
// table does not hold; then inZone says whether the name lies in a zone the
// server owns.
func (t *table) lookup(name []byte) (rs *rrset, ok, inZone bool) {
	if rs, ok := t.names[string(name)]; ok { // no allocation: map index by string(bytes)
		return rs, true, true
	}
	for _, z := range t.zones {
		if bytes.Equal(name, z) || (len(name) > len(z) && name[len(name)-len(z)-1] == '.' && bytes.HasSuffix(name, z)) {
			return nil, false, true
		}
	}
	return nil, false, false
}
