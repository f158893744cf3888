package egress

import (
	"math/rand/v2"
	"sync/atomic"
)

// Endpoint is one instance of a service.
type Endpoint struct {
	// ID identifies the instance across endpoint updates (a Cloud Map
	// instance ID). With the same ID and address, an update keeps the
	// endpoint's load and outlier state; "" uses Addr as the ID.
	ID string
	// Addr is the instance's host:port.
	Addr string
}

// endpoint is an Endpoint with the state the data path keeps for it. An
// endpoint object lives as long as some endpoint set holds it; updates
// that keep the endpoint reuse the object.
type endpoint struct {
	Endpoint
	key string // ID, or Addr when the ID is empty
	// active counts attempts in flight (HTTP) or open connections (TCP):
	// the load least-request compares.
	active atomic.Int64
	// Outlier detection state; see outlier.go.
	consec5xx    atomic.Int32
	consecGW     atomic.Int32
	ejectedUntil atomic.Int64 // proxy clock; <= now means not ejected
	timesEjected int32        // guarded by service.ejectMu
}

func (e *endpoint) ejected(now int64) bool { return e.ejectedUntil.Load() > now }

// endpointSet is an immutable list of endpoints, published with an atomic
// pointer: readers pick from it without locks.
type endpointSet struct {
	list []*endpoint
}

// buildSet makes the set for eps, reusing the endpoint objects of old that
// have the same key and address so their load and outlier state carry
// over. Duplicate keys keep the first.
func buildSet(old *endpointSet, eps []Endpoint) *endpointSet {
	prev := make(map[string]*endpoint, len(old.list))
	for _, e := range old.list {
		prev[e.key] = e
	}
	set := &endpointSet{list: make([]*endpoint, 0, len(eps))}
	seen := make(map[string]bool, len(eps))
	for _, ep := range eps {
		key := ep.ID
		if key == "" {
			key = ep.Addr
		}
		if ep.Addr == "" || seen[key] {
			continue
		}
		seen[key] = true
		if e, ok := prev[key]; ok && e.Addr == ep.Addr {
			set.list = append(set.list, e)
			continue
		}
		set.list = append(set.list, &endpoint{Endpoint: ep, key: key})
	}
	return set
}

// maxAttempts bounds the attempts of one request.
const maxAttempts = MaxNumRetries + 1

// triedSet is the endpoints a request already tried, so that a retry goes
// to another one when there is one.
type triedSet struct {
	eps [maxAttempts]*endpoint
	n   int
}

func (t *triedSet) add(e *endpoint) {
	if t.n < len(t.eps) {
		t.eps[t.n] = e
		t.n++
	}
}

func (t *triedSet) has(e *endpoint) bool {
	for _, x := range t.eps[:t.n] {
		if x == e {
			return true
		}
	}
	return false
}

// Pick tiers, best first. A retry avoids endpoints already tried, but a
// healthy endpoint tried before is better than an ejected one (ejection is
// the stronger evidence of failure); only when every endpoint is ejected
// does the pick ignore ejections (Envoy's panic routing).
const (
	tierFresh   = iota // not tried, not ejected
	tierHealthy        // not ejected
	tierUntried        // not tried (all are ejected)
	tierAny
)

func (s *endpointSet) eligible(e *endpoint, tier int, now int64, tried *triedSet) bool {
	switch tier {
	case tierFresh:
		return !e.ejected(now) && !tried.has(e)
	case tierHealthy:
		return !e.ejected(now)
	case tierUntried:
		return !tried.has(e)
	}
	return true
}

// pick chooses an endpoint by least request with the power of two
// choices: two distinct random candidates of the best tier that has any,
// the one with fewer attempts in flight wins. It returns nil for an empty
// set, and whether every endpoint was ejected. It allocates nothing and
// takes O(n).
func (s *endpointSet) pick(now int64, tried *triedSet) (e *endpoint, allEjected bool) {
	n := len(s.list)
	if n == 0 {
		return nil, false
	}
	if n == 1 {
		e = s.list[0]
		return e, e.ejected(now)
	}
	for tier := tierFresh; tier <= tierAny; tier++ {
		k := 0
		for _, e := range s.list {
			if s.eligible(e, tier, now, tried) {
				k++
			}
		}
		if k == 0 {
			continue
		}
		a := rand.IntN(k)
		b := -1
		if k > 1 {
			b = rand.IntN(k - 1)
			if b >= a {
				b++
			}
		}
		var ea, eb *endpoint
		i := 0
		for _, e := range s.list {
			if !s.eligible(e, tier, now, tried) {
				continue
			}
			switch i {
			case a:
				ea = e
			case b:
				eb = e
			}
			i++
		}
		e = ea
		if eb != nil && eb.active.Load() < ea.active.Load() {
			e = eb
		}
		return e, tier >= tierUntried
	}
	return nil, false // not reached: tierAny admits every endpoint
}

// ejectedCount counts the endpoints ejected at now.
func (s *endpointSet) ejectedCount(now int64) int {
	k := 0
	for _, e := range s.list {
		if e.ejected(now) {
			k++
		}
	}
	return k
}

// contains reports whether e is in the set.
func (s *endpointSet) contains(e *endpoint) bool {
	for _, x := range s.list {
		if x == e {
			return true
		}
	}
	return false
}
