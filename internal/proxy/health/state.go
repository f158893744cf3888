// Package health runs a gateway's active health checks and holds the live
// health of every target, which the router reads without locks.
//
// The router resolves a target's *State once, when it compiles a snapshot,
// and reads it on every request with one atomic load. A State outlives
// snapshots: the same target (same group, ID and port) keeps the same State
// across configuration changes, so a new snapshot never resets health that
// the checker has already learned.
package health

import "sync/atomic"

// Status is a target's health as Lattice names it.
type Status int32

const (
	// Initial: registered, not yet decided. Routable (Lattice sends
	// traffic to targets it has not yet checked only when all are so).
	Initial Status = iota
	// Healthy passed healthyThresholdCount consecutive checks.
	Healthy
	// Unhealthy failed unhealthyThresholdCount consecutive checks.
	Unhealthy
	// Unavailable: health checks are disabled; the target is routable.
	Unavailable
)

// String is the Lattice spelling (INITIAL, HEALTHY, UNHEALTHY, UNAVAILABLE).
func (s Status) String() string {
	switch s {
	case Healthy:
		return "HEALTHY"
	case Unhealthy:
		return "UNHEALTHY"
	case Unavailable:
		return "UNAVAILABLE"
	default:
		return "INITIAL"
	}
}

// ParseStatus reads the Lattice spelling; anything unknown is Initial.
func ParseStatus(s string) Status {
	switch s {
	case "HEALTHY":
		return Healthy
	case "UNHEALTHY":
		return Unhealthy
	case "UNAVAILABLE":
		return Unavailable
	default:
		return Initial
	}
}

// State is the live health of one target. The zero value is Initial.
// Safe for concurrent use.
type State struct {
	v atomic.Int32
}

// Load returns the current status.
func (s *State) Load() Status { return Status(s.v.Load()) }

// Store sets the status.
func (s *State) Store(st Status) { s.v.Store(int32(st)) }

// Routable reports whether new requests may go to the target when some
// target of its group is routable: HEALTHY and UNAVAILABLE targets are; an
// INITIAL target is too until it has been checked (so a new group serves at
// once). UNHEALTHY targets are not. When no target of a group is routable
// the router fails open and uses them all, as Lattice does.
func (s *State) Routable() bool { return s.Load() != Unhealthy }
