// Package snapshot defines what a data-plane node serves, compiles it from
// the control plane's store, and delivers the latest one to watchers.
//
// A Snapshot is immutable once built: the server builds one per VPC whenever
// the store changes something a node of that VPC serves, and each watcher
// receives only the latest (a slow node skips intermediate versions). The node
// compiles it into routing tables, swaps them in atomically, persists the
// snapshot as its last-known-good copy, and acknowledges Version.
//
// The JSON form is the wire and on-disk form; field names are stable.
package snapshot

import (
	"strconv"

	"github.com/trellis-mesh/trellis/internal/api/cloudmap"
	"github.com/trellis-mesh/trellis/internal/model"
)

// Snapshot is everything a gateway of one VPC serves.
type Snapshot struct {
	// Version is the store revision the snapshot was built at. Versions of
	// one VPC only grow; a node acknowledges the version it applied.
	Version int64 `json:"version"`
	// Region is the region of every ARN in the snapshot.
	Region string `json:"region"`
	// VPC is the VPC the node serves.
	VPC VPC `json:"vpc"`
	// Services are the services of every service network associated with
	// the VPC, sorted by ID. A service reachable through several networks
	// appears once, with every network in Networks.
	Services []Service `json:"services"`
	// TargetGroups are the groups the services forward to, plus the groups
	// whose targets live in this VPC (which this VPC's gateway health
	// checks), sorted by ID.
	TargetGroups []TargetGroup `json:"targetGroups"`
	// Auth is what the node authenticates callers with: derived SigV4
	// signing keys (never secrets), every principal, the client CA
	// (auth.go). Never nil in a built snapshot; shared, read-only, by the
	// snapshots of one rebuild.
	Auth *AuthMaterial `json:"auth,omitempty"`
	// DNS are the zones of the Cloud Map private DNS namespaces associated
	// with the VPC, which the node's DNS responder answers; sorted.
	DNS []cloudmap.DNSZone `json:"dns,omitempty"`
}

// VPC is the node's VPC.
type VPC struct {
	ID      string   `json:"id"`
	ARN     string   `json:"arn"`
	Account string   `json:"account"`
	CIDRs   []string `json:"cidrs"`
}

// Network is a service network through which the VPC reaches a service.
type Network struct {
	ID       string `json:"id"`
	ARN      string `json:"arn"`
	Name     string `json:"name"`
	Account  string `json:"account"`
	AuthType string `json:"authType"`
	// AuthPolicy is the network's auth policy document ("" when none).
	AuthPolicy string `json:"authPolicy,omitempty"`
	// AccessLogs are the network's access-log subscriptions.
	AccessLogs []AccessLog `json:"accessLogs,omitempty"`
}

// Service is one service the node serves.
type Service struct {
	ID      string `json:"id"`
	ARN     string `json:"arn"`
	Name    string `json:"name"`
	Account string `json:"account"`
	// DNSName is the generated name (dnsEntry.domainName).
	DNSName string `json:"dnsName"`
	// CustomDomain is the service's custom domain name ("" when none).
	CustomDomain string `json:"customDomain,omitempty"`
	AuthType     string `json:"authType"`
	// AuthPolicy is the service's auth policy document ("" when none).
	AuthPolicy string            `json:"authPolicy,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
	// IdleTimeoutSeconds is the idle timeout of client and target
	// connections of the service (60–600, default 60).
	IdleTimeoutSeconds int32 `json:"idleTimeoutSeconds"`
	// Networks are the networks, associated with the node's VPC, that the
	// service is associated with; sorted by ID, never empty.
	Networks []Network `json:"networks"`
	// Certificate is what HTTPS listeners present: the imported certificate
	// named by certificateArn for a custom domain, else one issued by
	// Trellis's CA for DNSName (and CustomDomain). Nil when the service has
	// no HTTPS listener.
	Certificate *Certificate `json:"certificate,omitempty"`
	// Listeners are sorted by port.
	Listeners []Listener `json:"listeners"`
	// AccessLogs are the service's access-log subscriptions.
	AccessLogs []AccessLog `json:"accessLogs,omitempty"`
}

// Certificate is a PEM certificate chain (leaf first) and its private key.
type Certificate struct {
	ARN      string `json:"arn,omitempty"`
	CertPEM  string `json:"certPem"`
	KeyPEM   string `json:"keyPem"`
	NotAfter string `json:"notAfter,omitempty"`
}

// Listener is one listener of a service.
type Listener struct {
	ID       string `json:"id"`
	ARN      string `json:"arn"`
	Name     string `json:"name"`
	Protocol string `json:"protocol"` // HTTP, HTTPS, TLS_PASSTHROUGH
	Port     int32  `json:"port"`
	// Rules in evaluation order: by ascending priority, the default rule last.
	Rules []Rule `json:"rules"`
}

// Rule is one rule of a listener. The default rule has no Match.
type Rule struct {
	ID        string           `json:"id"`
	ARN       string           `json:"arn"`
	Priority  int32            `json:"priority"`
	IsDefault bool             `json:"isDefault"`
	Match     *model.HTTPMatch `json:"match,omitempty"`
	// Action's forward target groups are named by target group ID.
	Action model.RuleAction `json:"action"`
}

// TargetGroup is one target group with its registered targets.
type TargetGroup struct {
	ID      string `json:"id"`
	ARN     string `json:"arn"`
	Name    string `json:"name"`
	Account string `json:"account"`
	Type    string `json:"type"` // IP, INSTANCE, LAMBDA, ALB
	// Protocol (HTTP, HTTPS, TCP), ProtocolVersion (HTTP1, HTTP2, GRPC;
	// empty for TCP) and Port are the materialised config.
	Protocol        string `json:"protocol,omitempty"`
	ProtocolVersion string `json:"protocolVersion,omitempty"`
	Port            int32  `json:"port,omitempty"`
	VpcID           string `json:"vpcId,omitempty"`
	// HealthCheck is the materialised health-check config (every member
	// set), nil for LAMBDA and ALB groups.
	HealthCheck *model.HealthCheckConfig `json:"healthCheck,omitempty"`
	// Checked says this node's VPC is the group's VPC, so this node runs
	// its health checks and reports them.
	Checked bool `json:"checked,omitempty"`
	// Targets are the registered targets that take new requests, sorted
	// by ID then port. Draining targets are left out.
	Targets []Target `json:"targets"`
}

// Target is one registered target.
type Target struct {
	// ID is the registered ID (IP address, instance ID, ...).
	ID   string `json:"id"`
	Port int32  `json:"port"`
	// Address is the host:port to dial: the IP and port for IP targets,
	// the registered instance's address for INSTANCE targets. Empty when
	// it cannot be resolved (an unknown instance); such targets get no
	// traffic.
	Address string `json:"address,omitempty"`
	// Status and Reason are the health the control plane last recorded
	// (INITIAL, HEALTHY, UNHEALTHY, UNAVAILABLE).
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// Key identifies a target within its group across snapshots: "tgID/id/port".
func (t Target) Key(tgID string) string { return TargetKey(tgID, t.ID, t.Port) }

// TargetKey identifies a target within its group across snapshots.
func TargetKey(tgID, id string, port int32) string {
	return tgID + "/" + id + "/" + strconv.Itoa(int(port))
}

// AccessLog is one access-log subscription.
type AccessLog struct {
	ARN            string `json:"arn"`
	ResourceARN    string `json:"resourceArn"`
	DestinationARN string `json:"destinationArn"`
}
