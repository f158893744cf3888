// Package config decodes, validates and defaults the document a Trellis
// sidecar agent is started with (`trellis agent --config FILE`).
//
// The document is one JSON object with three members:
//
//	{"serviceConnectConfiguration": {...}, // ECS ServiceConnectConfiguration, verbatim
//	 "portMappings": [...],                 // ECS task-definition PortMapping list
//	 "trellis": {...}}                      // optional Trellis extensions
//
// # Lifecycle
//
// Parse (and Load, which reads a file first) runs one pipeline:
//
//  1. Strict decode. The bytes are tokenised into an ordered tree and bound
//     onto the raw shapes in ecs.go and trellis.go. Unknown members,
//     duplicate members and wrong JSON types are problems, each with its
//     field path; decoding goes on past them so that one run reports
//     everything.
//  2. Resolve. The raw Document is checked field by field against the ECS
//     rules (name patterns, port ranges, enums, the portName → portMappings
//     reference, duplicate discovery names and dnsName:port pairs, the
//     timeout rules) and the Trellis extension rules, while the defaulting
//     chain of ECS (discoveryName ← portName, dnsName ←
//     discoveryName.namespace, alias port ← containerPort, ingress port ←
//     containerPort) and the Trellis defaults in defaults.go are applied.
//  3. The result is a *Config: the resolved, fully defaulted form the agent
//     uses. The raw Document it came from stays reachable as Config.Source,
//     unchanged, so the agent can print back what it was given.
//
// Any problem makes Parse return a *ValidationError listing all of them,
// sorted by path, and no Config. Config.Validate re-checks the invariants
// of a resolved Config; Parse never returns a Config that fails it, and
// the agent can use it on Configs built by hand (in tests).
//
// Nothing here holds process-wide state; a Config is immutable by
// convention once returned and safe to share between goroutines for
// reading.
package config
