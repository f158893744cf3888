package config

import (
	"math"
	"net/netip"
	"time"
)

const trPath = "trellis"

// maxCount bounds counts and second values of the extension block that
// have no natural bound: the int32 range, as ECS's own integers.
const maxCount = math.MaxInt32

// trellis applies the defaults of the extension block and resolves it.
// It runs after serviceConnect, as per-service policies depend on each
// service's protocol and timeouts.
func (r *resolver) trellis(cfg *Config) {
	cfg.Drain = DefaultDrain
	cfg.VIPCIDR = netip.MustParsePrefix(DefaultVIPCIDR)
	cfg.AdminAddr = DefaultAdminAddr
	for i := range cfg.Services {
		s := &cfg.Services[i]
		s.Retry = defaultRetryPolicy(s.Protocol)
		s.Outlier = defaultOutlierDetection()
		s.Breaker = defaultCircuitBreaker()
	}
	ext := r.doc.Trellis
	if ext == nil {
		return
	}
	if d, ok := r.seconds(field(trPath, "drainSeconds"), ext.DrainSeconds, MinDrainSeconds, MaxDrainSeconds); ok {
		cfg.Drain = d
	}
	if ext.VIPCIDR != nil {
		at := field(trPath, "vipCidr")
		p, err := netip.ParsePrefix(*ext.VIPCIDR)
		if err != nil {
			r.ps.addf(at, "must be a CIDR such as %s, got %q", DefaultVIPCIDR, *ext.VIPCIDR)
		} else if r.check(at, checkVIPCIDR(p)) {
			cfg.VIPCIDR = p
		}
	}
	if ext.AdminAddr != nil {
		if r.check(field(trPath, "adminAddr"), checkAdminAddr(*ext.AdminAddr)) {
			cfg.AdminAddr = *ext.AdminAddr
		}
	}

	seen := make(map[string]int)
	sat := field(trPath, "services")
	for k := range ext.Services {
		ts := &ext.Services[k]
		at := index(sat, k)
		// svc stays nil for an entry that names no service: its blocks
		// are still checked, against a scratch Service, for the rules that
		// do not depend on the protocol.
		var svc *Service
		known := false
		nat := field(at, "discoveryName")
		if ts.DiscoveryName == "" {
			r.ps.addf(nat, "is required")
		} else if j, dup := seen[ts.DiscoveryName]; dup {
			r.ps.addf(nat, "duplicate entry for %q (also trellis.services[%d])", ts.DiscoveryName, j)
		} else {
			seen[ts.DiscoveryName] = k
			for i := range cfg.Services {
				if cfg.Services[i].DiscoveryName == ts.DiscoveryName {
					svc, known = &cfg.Services[i], r.known[i]
					break
				}
			}
			if svc == nil {
				r.ps.addf(nat, "no service in serviceConnectConfiguration.services has discoveryName %q", ts.DiscoveryName)
			}
		}
		if svc == nil {
			svc = &Service{}
		}
		p := policyTarget{svc: svc, known: known}
		if ts.RetryPolicy != nil {
			r.retryPolicy(field(at, "retryPolicy"), ts.RetryPolicy, p)
		}
		if ts.OutlierDetection != nil {
			r.outlierDetection(field(at, "outlierDetection"), ts.OutlierDetection, p)
		}
		if ts.CircuitBreaker != nil {
			r.circuitBreaker(field(at, "circuitBreaker"), ts.CircuitBreaker, p)
		}
		if ts.Readiness != nil {
			r.readiness(field(at, "readiness"), ts.Readiness, p)
		}
	}
}

// policyTarget is the service a trellis.services entry applies to.
type policyTarget struct {
	svc *Service
	// known is set when svc's protocol is real (its port mapping
	// resolved); protocol-dependent rules are skipped otherwise.
	known bool
}

// tcp reports whether the target is known to be a TCP service.
func (p policyTarget) tcp() bool { return p.known && p.svc.Protocol == ProtocolTCP }

const httpOnly = "applies only to http, http2 and grpc services, and %q is TCP"

func (r *resolver) retryPolicy(at string, in *TrellisRetryPolicy, p policyTarget) {
	rp := &p.svc.Retry
	if n, ok := r.intIn(field(at, "numRetries"), in.NumRetries, 0, MaxNumRetries); ok {
		rp.NumRetries = n
	}
	if in.RetryOn != nil {
		oat := field(at, "retryOn")
		if len(in.RetryOn) == 0 {
			r.ps.addf(oat, "must not be empty; set numRetries to 0 to turn retries off")
		}
		var set RetryOn
		allowed := allowedRetryOn(p.svc.Protocol)
		for i, name := range in.RetryOn {
			eat := index(oat, i)
			ev, ok := retryEventNamed(name)
			switch {
			case !ok:
				r.ps.addf(eat, "unknown retry event %q; the events are %s", name, retryEventNames())
			case set.Has(ev):
				r.ps.addf(eat, "duplicate event %q", name)
			case p.known && !allowed.Has(ev):
				if p.svc.Protocol == ProtocolTCP {
					r.ps.addf(eat, "%q does not apply to TCP services such as %q; only connect-failure does", name, p.svc.DiscoveryName)
				} else {
					r.ps.addf(eat, "%q applies only to grpc services, and %q is %v", name, p.svc.DiscoveryName, p.svc.Protocol)
				}
			default:
				set |= ev
			}
		}
		if len(in.RetryOn) > 0 {
			rp.RetryOn = set
		}
	}
	tat := field(at, "perTryTimeoutSeconds")
	if d, ok := r.seconds(tat, in.PerTryTimeoutSeconds, 0, MaxTimeoutSeconds); ok {
		switch {
		case p.tcp():
			r.ps.addf(tat, httpOnly, p.svc.DiscoveryName)
		case p.known && p.svc.PerRequestTimeout > 0 && d > p.svc.PerRequestTimeout:
			r.ps.addf(tat, "must not exceed the service's per-request timeout (%d s)", int64(p.svc.PerRequestTimeout/time.Second))
		default:
			rp.PerTryTimeout = d
		}
	}
	if n, ok := r.intIn(field(at, "budgetPercent"), in.BudgetPercent, 0, 100); ok {
		rp.BudgetPercent = n
	}
	if in.RetryNonIdempotent != nil {
		if p.tcp() {
			r.ps.addf(field(at, "retryNonIdempotent"), httpOnly, p.svc.DiscoveryName)
		} else {
			rp.RetryNonIdempotent = *in.RetryNonIdempotent
		}
	}
}

func (r *resolver) outlierDetection(at string, in *TrellisOutlierDetection, p policyTarget) {
	o := &p.svc.Outlier
	if n, ok := r.intIn(field(at, "consecutive5xx"), in.Consecutive5xx, 0, maxCount); ok {
		o.Consecutive5xx = n
	}
	gat := field(at, "consecutiveGatewayFailure")
	if n, ok := r.intIn(gat, in.ConsecutiveGatewayFailure, 0, maxCount); ok {
		if p.tcp() && n > 0 {
			r.ps.addf(gat, httpOnly+"; use consecutive5xx, which counts failed connects", p.svc.DiscoveryName)
		} else {
			o.ConsecutiveGatewayFailure = n
		}
	}
	if d, ok := r.seconds(field(at, "intervalSeconds"), in.IntervalSeconds, 1, maxCount); ok {
		o.Interval = d
	}
	if d, ok := r.seconds(field(at, "baseEjectionSeconds"), in.BaseEjectionSeconds, 1, maxCount); ok {
		o.BaseEjection = d
	}
	if n, ok := r.intIn(field(at, "maxEjectionPercent"), in.MaxEjectionPercent, 0, 100); ok {
		o.MaxEjectionPercent = n
	}
}

func (r *resolver) circuitBreaker(at string, in *TrellisCircuitBreaker, p policyTarget) {
	b := &p.svc.Breaker
	if n, ok := r.intIn(field(at, "maxConnections"), in.MaxConnections, 1, maxCount); ok {
		b.MaxConnections = n
	}
	for _, f := range [...]struct {
		name string
		in   *int
		out  *int
	}{
		{"maxPendingRequests", in.MaxPendingRequests, &b.MaxPendingRequests},
		{"maxRequests", in.MaxRequests, &b.MaxRequests},
	} {
		fat := field(at, f.name)
		if n, ok := r.intIn(fat, f.in, 1, maxCount); ok {
			if p.tcp() {
				r.ps.addf(fat, httpOnly, p.svc.DiscoveryName)
			} else {
				*f.out = n
			}
		}
	}
}

func (r *resolver) readiness(at string, in *TrellisReadiness, p policyTarget) {
	rd := &Readiness{
		Port:             p.svc.ContainerPort,
		Interval:         DefaultReadinessInterval,
		Timeout:          DefaultReadinessTimeout,
		HealthyThreshold: DefaultReadinessHealthyThreshold,
	}
	if in.Path != nil {
		switch pat := field(at, "path"); {
		case !r.check(pat, checkReadinessPath(*in.Path)):
		case p.tcp():
			r.ps.addf(pat, httpOnly+"; a TCP service is ready when its port accepts a connection", p.svc.DiscoveryName)
		default:
			rd.Path = *in.Path
		}
	}
	if port, ok := r.port(field(at, "port"), in.Port); ok {
		rd.Port = port
	}
	iok, tok := true, true
	if in.IntervalSeconds != nil {
		rd.Interval, iok = r.seconds(field(at, "intervalSeconds"), in.IntervalSeconds, 1, MaxReadinessIntervalSeconds)
	}
	tat := field(at, "timeoutSeconds")
	if in.TimeoutSeconds != nil {
		rd.Timeout, tok = r.seconds(tat, in.TimeoutSeconds, 1, MaxReadinessTimeoutSeconds)
	}
	if iok && tok && rd.Timeout > rd.Interval {
		r.ps.addf(tat, "must not exceed intervalSeconds (%d)", int64(rd.Interval/time.Second))
	}
	if n, ok := r.intIn(field(at, "healthyThreshold"), in.HealthyThreshold, 1, MaxReadinessHealthyThreshold); ok {
		rd.HealthyThreshold = n
	}
	p.svc.Readiness = rd
}
