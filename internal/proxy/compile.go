package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/trellis-mesh/trellis/internal/authz"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/snapshot"
	"github.com/trellis-mesh/trellis/internal/urlpath"
)

// latticeCipherSuites are the TLS 1.2 suites of Lattice's HTTPS listeners
// (reference §3) that keep forward secrecy, for RSA and ECDSA certificates.
// The RSA-key-exchange suites of that list (AES128-GCM-SHA256, ...) are left
// out. TLS 1.3 suites are not configurable in Go and match Lattice's.
var latticeCipherSuites = []uint16{
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
}

// defaultWeight is the weight of a weighted target group without one.
const defaultWeight = 100

// compiler turns one snapshot into a table. Every problem disables the one
// object it is about (logged at Warn) and compilation goes on.
type compiler struct {
	e    *Engine
	log  *slog.Logger
	snap *snapshot.Snapshot
	// tgSrc indexes the snapshot's target groups; tgs holds those compiled
	// so far, so that rules sharing a group share its round-robin counter.
	tgSrc map[string]*snapshot.TargetGroup
	tgs   map[string]*targetGroup
	// ups are the upstreams the table uses, reused from the engine's
	// previous set where the key is unchanged so that keep-alive pools
	// survive a configuration change.
	ups map[upstreamKey]*upstream
	// gen numbers this compilation: fast-path pools it uses are marked
	// with it, and Apply prunes the others.
	gen uint64
	// authority authenticates and authorizes the snapshot's requests.
	authority *authz.Authority
}

// candidate is a compiled listener waiting to be placed on its port.
type candidate struct {
	lr   *listenerRoute
	port int32
	ss   *snapshot.Service
}

// compile builds a table from snap. It fails only when the snapshot has
// listeners and none of them is usable.
func (e *Engine) compile(snap *snapshot.Snapshot) (*table, map[upstreamKey]*upstream, error) {
	c := &compiler{
		e:     e,
		log:   e.log.With("version", snap.Version),
		snap:  snap,
		tgSrc: make(map[string]*snapshot.TargetGroup, len(snap.TargetGroups)),
		tgs:   make(map[string]*targetGroup),
		ups:   make(map[upstreamKey]*upstream),
		gen:   e.gen.Add(1),
	}
	for i := range snap.TargetGroups {
		c.tgSrc[snap.TargetGroups[i].ID] = &snap.TargetGroups[i]
	}
	a, err := authz.New(snap, authz.Options{Log: c.log})
	if err != nil {
		return nil, c.ups, fmt.Errorf("compile snapshot version %d: %w", snap.Version, err)
	}
	c.authority = a
	t := newTable(snap.Version, snap.VPC.ARN)
	t.gen = c.gen

	var cands []candidate
	total := 0
	for i := range snap.Services {
		ss := &snap.Services[i]
		svc := c.service(ss)
		var svcTLS *tls.Config
		for j := range ss.Listeners {
			total++
			l := &ss.Listeners[j]
			lr, err := c.listener(svc, ss, l, &svcTLS)
			if err != nil {
				c.log.Warn("listener disabled", "service", ss.ID, "listener", l.ID, "err", err)
				continue
			}
			cands = append(cands, candidate{lr: lr, port: l.Port, ss: ss})
		}
	}
	slices.SortStableFunc(cands, func(a, b candidate) int { return strings.Compare(a.lr.id, b.lr.id) })
	placed := 0
	for _, cd := range cands {
		if c.place(t, cd) {
			placed++
		}
	}
	for p := range t.ports {
		t.portList = append(t.portList, p)
	}
	slices.Sort(t.portList)
	if total > 0 && placed == 0 {
		return nil, c.ups, fmt.Errorf("compile snapshot version %d: none of %d listeners is usable", snap.Version, total)
	}
	return t, c.ups, nil
}

func newTable(version int64, vpcARN string) *table {
	return &table{
		version:    version,
		ports:      make(map[int32]*portTable),
		networkHdr: []string{"SourceVpcArn=" + vpcARN},
		protoHTTP:  []string{"http"},
		protoHTTPS: []string{"https"},
		teTrailers: []string{"trailers"},
		emptyUA:    []string{""},
	}
}

// place puts a listener on its port: the first listener of a port (by
// listener ID) decides whether the port speaks TLS; a later listener of the
// other kind is rejected, as is a host or server name already taken on the
// port. It reports whether the listener serves at least one name.
func (c *compiler) place(t *table, cd candidate) bool {
	lr := cd.lr
	isTLS := lr.protocol != model.ProtocolHTTP
	pt := t.ports[cd.port]
	if pt == nil {
		pt = &portTable{
			port:    cd.port,
			tls:     isTLS,
			hosts:   make(map[string]*listenerRoute),
			sni:     make(map[string]*listenerRoute),
			portHdr: []string{fmt.Sprint(cd.port)},
		}
	} else if pt.tls != isTLS {
		c.log.Warn("listener disabled: port already serves another protocol family",
			"listener", lr.id, "service", lr.svc.id, "port", cd.port, "protocol", lr.protocol)
		return false
	}
	names := serviceNames(cd.ss, lr.protocol)
	served := 0
	for _, name := range names {
		switch lr.protocol {
		case model.ProtocolHTTP, model.ProtocolHTTPS:
			if prev := pt.hosts[name]; prev != nil {
				c.log.Warn("host name already served on port", "host", name, "port", cd.port, "listener", lr.id, "servedBy", prev.id)
				continue
			}
			if lr.protocol == model.ProtocolHTTPS {
				if prev := pt.sni[name]; prev != nil {
					c.log.Warn("server name already served on port", "sni", name, "port", cd.port, "listener", lr.id, "servedBy", prev.id)
					continue
				}
				pt.sni[name] = lr
			}
			pt.hosts[name] = lr
		case model.ProtocolTLSPassthrough:
			if prev := pt.sni[name]; prev != nil {
				c.log.Warn("server name already served on port", "sni", name, "port", cd.port, "listener", lr.id, "servedBy", prev.id)
				continue
			}
			pt.sni[name] = lr
		}
		served++
	}
	if served == 0 {
		c.log.Warn("listener disabled: it serves no host name", "listener", lr.id, "service", lr.svc.id, "port", cd.port)
		return false
	}
	if lr.protocol == model.ProtocolHTTPS {
		// noSNI is the port's only HTTPS listener; a second one clears it
		// (a ClientHello without server name then fails).
		if pt.noSNI == nil && !pt.sawHTTPS {
			pt.noSNI = lr
		} else {
			pt.noSNI = nil
		}
		pt.sawHTTPS = true
	}
	t.ports[cd.port] = pt
	return true
}

// serviceNames are the host names a listener serves: the generated DNS name
// and the custom domain (only the custom domain for TLS_PASSTHROUGH),
// lower-case without trailing dot.
func serviceNames(ss *snapshot.Service, protocol string) []string {
	var names []string
	add := func(n string) {
		n = strings.TrimSuffix(lowerString(n), ".")
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if protocol != model.ProtocolTLSPassthrough {
		add(ss.DNSName)
	}
	add(ss.CustomDomain)
	return names
}

func (c *compiler) service(ss *snapshot.Service) *service {
	svc := &service{id: ss.ID, arn: ss.ARN, name: ss.Name, idle: c.e.cfg.IdleTimeout, authority: c.authority}
	svc.auth = c.authority.Service(ss, c.log)
	if ss.IdleTimeoutSeconds > 0 {
		svc.idle = time.Duration(ss.IdleTimeoutSeconds) * time.Second
	}
	if len(ss.Networks) > 0 {
		svc.networkARN = ss.Networks[0].ARN
	}
	addLog := func(a snapshot.AccessLog) {
		if a.DestinationARN != "" && !slices.Contains(svc.accessLogs, a.DestinationARN) {
			svc.accessLogs = append(svc.accessLogs, a.DestinationARN)
		}
	}
	for _, a := range ss.AccessLogs {
		addLog(a)
	}
	for _, n := range ss.Networks {
		for _, a := range n.AccessLogs {
			addLog(a)
		}
	}
	return svc
}

// listener compiles one listener. svcTLS caches the service's TLS config
// across its HTTPS listeners.
func (c *compiler) listener(svc *service, ss *snapshot.Service, l *snapshot.Listener, svcTLS **tls.Config) (*listenerRoute, error) {
	if l.Port < 1 || l.Port > 65535 {
		return nil, fmt.Errorf("port %d out of range", l.Port)
	}
	lr := &listenerRoute{svc: svc, id: l.ID, arn: l.ARN, protocol: l.Protocol}
	switch l.Protocol {
	case model.ProtocolHTTP:
	case model.ProtocolHTTPS:
		if *svcTLS == nil {
			cfg, err := serverTLS(ss)
			if err != nil {
				return nil, err
			}
			if svc.auth != nil && c.authority.HasClientCA() {
				// mTLS: a client certificate is asked for, and one that
				// does not chain to Trellis's CA fails the handshake.
				cfg.ClientAuth = tls.VerifyClientCertIfGiven
				cfg.ClientCAs = c.authority.Index().ClientCAs()
			}
			*svcTLS = cfg
		}
		lr.tlsConfig = *svcTLS
	case model.ProtocolTLSPassthrough:
		if ss.CustomDomain == "" {
			return nil, errors.New("TLS_PASSTHROUGH needs a custom domain name")
		}
		if len(l.Rules) == 0 {
			return nil, errors.New("no default rule")
		}
		def := &l.Rules[len(l.Rules)-1]
		if def.Action.Forward == nil {
			return nil, errors.New("TLS_PASSTHROUGH default action must forward")
		}
		f, err := c.forward(svc, def.Action.Forward, true)
		if err != nil {
			return nil, fmt.Errorf("default rule %s: %w", def.ID, err)
		}
		lr.passthrough = f
		return lr, nil
	default:
		return nil, fmt.Errorf("unknown protocol %q", l.Protocol)
	}
	for i := range l.Rules {
		r, err := c.rule(svc, &l.Rules[i])
		if err != nil {
			c.log.Warn("rule disabled", "listener", l.ID, "rule", l.Rules[i].ID, "err", err)
			continue
		}
		lr.rules = append(lr.rules, r)
	}
	if len(lr.rules) == 0 {
		return nil, errors.New("no usable rule")
	}
	lr.h1fast = svc.auth == nil
	lr.h2direct = lr.h1fast
	for _, r := range lr.rules {
		if r.fwd == nil {
			continue
		}
		for _, g := range r.fwd.groups {
			if g.tg.protocol == model.ProtocolHTTPS {
				lr.h1fast, lr.h2direct = false, false
			}
			if g.tg.protocol != model.ProtocolHTTP || g.tg.version != model.ProtocolVersionHTTP1 {
				lr.h2direct = false
			}
		}
	}
	return lr, nil
}

func serverTLS(ss *snapshot.Service) (*tls.Config, error) {
	if ss.Certificate == nil {
		return nil, errors.New("HTTPS listener without certificate")
	}
	cert, err := tls.X509KeyPair([]byte(ss.Certificate.CertPEM), []byte(ss.Certificate.KeyPEM))
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
		MinVersion:   tls.VersionTLS12,
		CipherSuites: latticeCipherSuites,
	}, nil
}

func (c *compiler) rule(svc *service, sr *snapshot.Rule) (rule, error) {
	r := rule{id: sr.ID}
	if m := sr.Match; m != nil && !sr.IsDefault {
		if m.Method != nil {
			if *m.Method == "" {
				return r, errors.New("empty method match")
			}
			r.method = *m.Method
		}
		if pm := m.PathMatch; pm != nil {
			fold := pm.CaseSensitive == nil || !*pm.CaseSensitive
			var v string
			switch {
			case pm.Match.Exact != nil && pm.Match.Prefix == nil:
				r.path.kind, v = matchExact, *pm.Match.Exact
			case pm.Match.Prefix != nil && pm.Match.Exact == nil:
				r.path.kind, v = matchPrefix, *pm.Match.Prefix
			default:
				return r, errors.New("path match needs exactly one of exact and prefix")
			}
			r.path.value, r.path.fold = urlpath.NormalizePattern(v), fold
			if fold {
				r.path.value = lowerString(r.path.value)
			}
		}
		for _, hm := range m.HeaderMatches {
			h, err := headerMatch(hm)
			if err != nil {
				return r, err
			}
			r.headers = append(r.headers, h)
		}
	}
	switch a := sr.Action; {
	case a.FixedResponse != nil && a.Forward == nil:
		code := int(a.FixedResponse.StatusCode)
		if code < 100 || code > 599 {
			return r, fmt.Errorf("fixed response status %d out of range", code)
		}
		r.fixed = code
	case a.Forward != nil && a.FixedResponse == nil:
		f, err := c.forward(svc, a.Forward, false)
		if err != nil {
			return r, err
		}
		r.fwd = f
	default:
		return r, errors.New("action needs exactly one of forward and fixedResponse")
	}
	return r, nil
}

func headerMatch(hm model.HeaderMatch) (headerMatcher, error) {
	if hm.Name == "" {
		return headerMatcher{}, errors.New("header match without name")
	}
	h := headerMatcher{name: textproto.CanonicalMIMEHeaderKey(hm.Name)}
	h.host = h.name == "Host"
	h.fold = hm.CaseSensitive == nil || !*hm.CaseSensitive
	var v string
	n := 0
	if hm.Match.Exact != nil {
		h.kind, v = matchExact, *hm.Match.Exact
		n++
	}
	if hm.Match.Prefix != nil {
		h.kind, v = matchPrefix, *hm.Match.Prefix
		n++
	}
	if hm.Match.Contains != nil {
		h.kind, v = matchContains, *hm.Match.Contains
		n++
	}
	if n != 1 {
		return h, fmt.Errorf("header match %q needs exactly one of exact, prefix and contains", hm.Name)
	}
	if h.fold {
		v = lowerString(v)
	}
	h.value = v
	return h, nil
}

// forward compiles a forward action. Groups with weight 0 are left out;
// a group that is missing or whose protocol the listener cannot use stays
// in with no targets (its share of requests is answered 503), so that a
// broken group never silently moves its traffic to the others.
func (c *compiler) forward(svc *service, fa *model.ForwardAction, tcp bool) (*forward, error) {
	f := &forward{}
	var weights []int
	for _, w := range fa.TargetGroups {
		weight := defaultWeight
		if w.Weight != nil {
			weight = int(*w.Weight)
		}
		if weight <= 0 {
			continue
		}
		tg := c.targetGroup(w.TargetGroupIdentifier, svc)
		if isTCP := tg.protocol == model.ProtocolTCP; isTCP != tcp && tg.protocol != "" {
			c.log.Warn("target group protocol does not suit the listener; its share is answered 503",
				"service", svc.id, "targetGroup", tg.id, "protocol", tg.protocol)
			tg = &targetGroup{id: tg.id, arn: tg.arn, protocol: tg.protocol}
		}
		f.groups = append(f.groups, groupRef{
			tg:        tg,
			targetHdr: []string{"ServiceArn=" + svc.arn + ";ServiceNetworkArn=" + svc.networkARN + ";TargetGroupArn=" + tg.arn},
		})
		weights = append(weights, weight)
	}
	if len(f.groups) > 255 {
		return nil, fmt.Errorf("%d weighted target groups (at most 255)", len(f.groups))
	}
	if len(f.groups) > 1 {
		f.sched = smoothSchedule(weights)
	}
	return f, nil
}

// smoothSchedule returns one period of smooth weighted round robin over
// weights (all > 0): each step adds every weight to its running score and
// picks the highest score, which then loses the total. Weights are reduced
// by their GCD first, so 500:500 has a period of 2.
func smoothSchedule(weights []int) []uint8 {
	g := 0
	for _, w := range weights {
		g = gcd(g, w)
	}
	total := 0
	for _, w := range weights {
		total += w / g
	}
	score := make([]int, len(weights))
	sched := make([]uint8, 0, total)
	for range total {
		best := 0
		for i, w := range weights {
			score[i] += w / g
			if score[i] > score[best] {
				best = i
			}
		}
		score[best] -= total
		sched = append(sched, uint8(best))
	}
	return sched
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// targetGroup compiles a group once per table. A missing group, or one of
// unknown protocol, compiles to a group without targets.
func (c *compiler) targetGroup(id string, svc *service) *targetGroup {
	if tg := c.tgs[id]; tg != nil {
		return tg
	}
	st := c.tgSrc[id]
	if st == nil {
		c.log.Warn("forward to unknown target group; its share is answered 503", "service", svc.id, "targetGroup", id)
		tg := &targetGroup{id: id}
		c.tgs[id] = tg
		return tg
	}
	tg := &targetGroup{id: st.ID, arn: st.ARN, protocol: st.Protocol, version: st.ProtocolVersion, scheme: "http"}
	switch st.Protocol {
	case model.ProtocolHTTP, model.ProtocolHTTPS:
		if tg.version == "" {
			tg.version = model.ProtocolVersionHTTP1
		}
		if st.Protocol == model.ProtocolHTTPS {
			tg.scheme = "https"
		}
		switch tg.version {
		case model.ProtocolVersionHTTP1, model.ProtocolVersionHTTP2, model.ProtocolVersionGRPC:
		default:
			c.log.Warn("target group of unknown protocol version; its share is answered 503", "targetGroup", id, "protocolVersion", tg.version)
			c.tgs[id] = tg
			return tg
		}
		tg.up = c.upstream(tg, svc.idle)
	case model.ProtocolTCP:
	default:
		c.log.Warn("target group of unknown protocol; its share is answered 503", "targetGroup", id, "protocol", st.Protocol)
		c.tgs[id] = tg
		return tg
	}
	for _, t := range st.Targets {
		if t.Address == "" {
			continue
		}
		tt := target{addr: t.Address}
		if tg.up != nil && st.Protocol == model.ProtocolHTTP && tg.version == model.ProtocolVersionHTTP1 {
			tt.pool = tg.up.pool(t.Address, c.gen)
		}
		if c.e.cfg.Health != nil {
			tt.state = c.e.cfg.Health(t.Key(st.ID))
		}
		tg.targets = append(tg.targets, tt)
	}
	c.tgs[id] = tg
	return tg
}

// upstream returns the group's upstream, reusing the engine's current one
// when its key is unchanged.
func (c *compiler) upstream(tg *targetGroup, idle time.Duration) *upstream {
	k := upstreamKey{tgID: tg.id, protocol: tg.protocol, version: tg.version, idle: idle}
	if u := c.ups[k]; u != nil {
		return u
	}
	u := c.e.upstreams[k]
	if u == nil {
		u = newUpstream(&c.e.cfg, k, c.e.now)
	}
	c.ups[k] = u
	return u
}
