package egress

import (
	"time"
)

// Outlier detection, as Envoy does it with split_external_local_origin_errors
// off: each attempt's result is reported per endpoint as an HTTP status.
// Failures without an answer count as the status the proxy would have
// answered (a connect failure or reset as 503, a timeout as 504); a gRPC
// status counts as its HTTP equivalent (UNAVAILABLE as 503). A status
// below 500 resets both counters; a 5xx other than 502-504 resets the
// gateway-failure counter. A counter reaching its threshold ejects the
// endpoint and starts again from zero.
//
// Ejection is lazy: an endpoint is ejected until a time on the proxy's
// monotonic clock, pick skips it until then, and no timer re-admits it.
// The n-th ejection in a row lasts BaseEjection × n (at most MaxEjection,
// or BaseEjection if that is larger); the count n decays by one for every
// Interval the endpoint has spent re-admitted, as Envoy decrements it on
// every interval tick it finds the endpoint healthy.

// Statuses reported for failures without an answer.
const (
	statusConnectFailure = 503
	statusReset          = 503
	statusTimeout        = 504
)

// report feeds one attempt's result for ep into outlier detection;
// status 0 says nothing about the endpoint and is ignored.
func (s *service) report(ep *endpoint, status int, pol *policy) {
	o := &pol.Outlier
	if status == 0 || !o.enabled() {
		return
	}
	if status < 500 {
		// Loads first: most results are successes on healthy endpoints,
		// and a store to a shared cache line on every request is costly.
		if ep.consec5xx.Load() != 0 {
			ep.consec5xx.Store(0)
		}
		if ep.consecGW.Load() != 0 {
			ep.consecGW.Store(0)
		}
		return
	}
	eject := false
	if status >= 502 && status <= 504 {
		if n := ep.consecGW.Add(1); o.ConsecutiveGatewayFailure > 0 && int(n) >= o.ConsecutiveGatewayFailure {
			eject = true
		}
	} else if ep.consecGW.Load() != 0 {
		ep.consecGW.Store(0)
	}
	if n := ep.consec5xx.Add(1); o.Consecutive5xx > 0 && int(n) >= o.Consecutive5xx {
		eject = true
	}
	if eject {
		s.eject(ep, s.p.now(), pol)
	}
}

// eject ejects ep at now unless it is already ejected, is no longer an
// endpoint of the service, or MaxEjectionPercent forbids it. Either way its
// counters start again from zero. It reports whether ep was ejected.
func (s *service) eject(ep *endpoint, now int64, pol *policy) bool {
	s.ejectMu.Lock()
	defer s.ejectMu.Unlock()
	ep.consec5xx.Store(0)
	ep.consecGW.Store(0)
	set := s.eps.Load()
	if ep.ejected(now) || !set.contains(ep) {
		return false
	}
	n := len(set.list)
	limit := max(1, n*pol.Outlier.MaxEjectionPercent/100)
	if k := set.ejectedCount(now) + 1; k > limit || k >= n {
		s.ejectionsSkipped.Add(1)
		s.log.Debug("ejection skipped", "endpoint", ep.key, "addr", ep.Addr, "ejected", k-1, "endpoints", n)
		return false
	}
	times := ep.timesEjected
	if until := ep.ejectedUntil.Load(); until > 0 && pol.Outlier.Interval > 0 {
		times -= int32(min((now-until)/int64(pol.Outlier.Interval), int64(times)))
	}
	times++
	ep.timesEjected = times
	d := ejectionTime(pol.Outlier.BaseEjection, times)
	ep.ejectedUntil.Store(now + int64(d))
	s.ejections.Add(1)
	s.log.Info("endpoint ejected", "endpoint", ep.key, "addr", ep.Addr, "for", d, "times", times)
	return true
}

// ejectionTime is the length of the times-th ejection in a row.
func ejectionTime(base time.Duration, times int32) time.Duration {
	ceiling := max(MaxEjection, base)
	if times <= 0 {
		return base
	}
	if base > 0 && time.Duration(times) > ceiling/base {
		return ceiling
	}
	return min(base*time.Duration(times), ceiling)
}

// grpcHTTPStatus is the HTTP status a gRPC status counts as for outlier
// detection (Envoy's Grpc::Utility::grpcToHttpStatus); 200 for OK and the
// statuses that say nothing about the endpoint's health.
func grpcHTTPStatus(code int) int {
	switch code {
	case 14: // UNAVAILABLE
		return 503
	case 4: // DEADLINE_EXCEEDED
		return 504
	case 2, 13, 15: // UNKNOWN, INTERNAL, DATA_LOSS
		return 500
	case 12: // UNIMPLEMENTED
		return 501
	}
	return 200
}
