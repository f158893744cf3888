package model

// Target statuses besides INITIAL and UNAVAILABLE (reference/lattice.md §4.4).
const (
	TargetStatusHealthy   = "HEALTHY"
	TargetStatusUnhealthy = "UNHEALTHY"
	TargetStatusDraining  = "DRAINING"
)

// EffectiveStatus is the status ListTargets and node snapshots show for t,
// a target of tg: DRAINING while it drains; UNAVAILABLE when the group has
// no Lattice health checks (disabled, or a LAMBDA or ALB group); else the
// status a gateway last reported (INITIAL before any report). The stored
// status survives disabling health checks, so re-enabling them shows the
// last known health until the next report.
func (t *Target) EffectiveStatus(tg *TargetGroup) (status, reason string) {
	if t.Status == TargetStatusDraining {
		return t.Status, t.ReasonCode
	}
	if !tg.HealthChecked() {
		return TargetStatusUnavailable, ""
	}
	if t.Status == "" {
		return TargetStatusInitial, ""
	}
	return t.Status, t.ReasonCode
}

// HealthChecked reports whether Lattice health checks run for the group's
// targets: the group type supports them and they are enabled (explicitly or
// by default, see Materialize).
func (tg *TargetGroup) HealthChecked() bool {
	cfg := tg.Config.Materialize(tg.Type)
	if cfg == nil || cfg.HealthCheck == nil || cfg.HealthCheck.Enabled == nil {
		return false
	}
	return *cfg.HealthCheck.Enabled
}
