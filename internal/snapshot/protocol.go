package snapshot

import (
	"context"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
)

// The node protocol, under the native API (SigV4-signed like every call):
//
//	GET  /trellis/v1/nodes/{node}/snapshots?vpc=VPC&version=N
//	     200, Content-Type application/x-ndjson, a long-lived stream of
//	     StreamMessage lines: the latest snapshot of VPC at once when its
//	     Version differs from N, then every newer one (latest only), and a
//	     heartbeat every HeartbeatInterval so a node can tell a dead
//	     server from a quiet one.
//	POST /trellis/v1/nodes/{node}/ack      body Ack     → 200 {}
//	POST /trellis/v1/nodes/{node}/health   body HealthReport → 200 {}
//	GET  /trellis/v1/nodes                 → 200 {"items": [NodeStatus...]}
//
// {node} is 1–128 characters of [A-Za-z0-9._-].

// HeartbeatInterval is how often the server writes a heartbeat line on an
// idle stream; a node that hears nothing for three intervals reconnects.
const HeartbeatInterval = 10 * time.Second

// StreamMessage is one line of the snapshot stream: exactly one member set.
type StreamMessage struct {
	Snapshot *Snapshot `json:"snapshot,omitempty"`
	// Heartbeat is the server's clock in Unix milliseconds.
	Heartbeat int64 `json:"heartbeat,omitempty"`
}

// Ack reports the snapshot version a node applied (or failed to apply).
type Ack struct {
	VPC     string `json:"vpc"`
	Version int64  `json:"version"`
	// Error is why the node could not apply Version ("" when it did); the
	// node keeps serving its previous version.
	Error string `json:"error,omitempty"`
	// Address is the address the node's listeners and DNS answers use.
	Address string `json:"address,omitempty"`
	// Ports are the listener ports the node has open.
	Ports []int32 `json:"ports,omitempty"`
}

// HealthReport carries target health changes seen by a node's checks.
type HealthReport struct {
	VPC     string         `json:"vpc"`
	Targets []TargetHealth `json:"targets"`
}

// TargetHealth is the health of one target as a node's checks found it.
type TargetHealth struct {
	TargetGroupID string `json:"targetGroupId"`
	ID            string `json:"id"`
	Port          int32  `json:"port"`
	Status        string `json:"status"` // HEALTHY, UNHEALTHY, INITIAL, UNAVAILABLE
	Reason        string `json:"reason,omitempty"`
}

// NodeStatus is what the server knows of one node.
type NodeStatus struct {
	ID             string    `json:"id"`
	VPC            string    `json:"vpc"`
	Address        string    `json:"address,omitempty"`
	Ports          []int32   `json:"ports,omitempty"`
	AppliedVersion int64     `json:"appliedVersion"`
	LatestVersion  int64     `json:"latestVersion"`
	Lag            int64     `json:"lag"`
	Connected      bool      `json:"connected"`
	LastSeen       time.Time `json:"lastSeen"`
	LastError      string    `json:"lastError,omitempty"`
}

// CertSource gives the certificate a service's HTTPS listeners present:
// the imported one named by the service's certificateArn, else one issued
// by Trellis's CA for its generated name and custom domain.
// Implemented by package pki; safe for concurrent use.
type CertSource interface {
	ServiceCertificate(ctx context.Context, svc *model.Service) (*Certificate, error)
}
