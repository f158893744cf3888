// Package model holds Trellis's domain types — the Lattice-compatible
// resources, accounts, principals and VPCs — with their identifiers, ARNs and
// validation. It has no HTTP dependency: the API packages decode wire
// requests into these types, call Validate, and store them as JSON.
//
// Nested Lattice structures (rule actions and matches, target-group and
// health-check configuration, DNS entries) carry the exact JSON member names
// of the Lattice wire protocol, so the same value is stored and returned
// unchanged: a client that diffs what it sent against what it reads back
// (as the Kubernetes Gateway API controller does) sees no drift.
package model
