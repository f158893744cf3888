// Package lattice serves the VPC Lattice–compatible control-plane API
// (restJson1, API version 2022-11-30): the same paths, methods, status
// codes, JSON members, IDs, ARNs, errors and pagination as AWS, so the AWS
// SDK for Go v2 vpclattice client and the AWS CLI work unchanged.
//
// Flow of a request: the server authenticates it (SigV4) and puts the
// iam.Caller in the context; the router in routes.go finds the operation;
// the handler decodes the body strictly, validates every field (collecting
// all problems into one ValidationException), then runs one optimistic
// store transaction (store.Update) that checks relationships and quotas and
// writes the change. Every resource lives under its owner account's prefix,
// so another account's resources are simply not found.
package lattice

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Quotas are the adjustable limits of §8. Zero values take the defaults.
type Quotas struct {
	ServiceNetworks               int `json:"serviceNetworks"`
	Services                      int `json:"services"`
	TargetGroups                  int `json:"targetGroups"`
	TargetGroupsPerService        int `json:"targetGroupsPerService"`
	TargetsPerTargetGroup         int `json:"targetsPerTargetGroup"`
	ListenersPerService           int `json:"listenersPerService"`
	RulesPerListener              int `json:"rulesPerListener"`
	ServiceAssociationsPerNetwork int `json:"serviceAssociationsPerNetwork"`
	VPCAssociationsPerNetwork     int `json:"vpcAssociationsPerNetwork"`
}

// DefaultQuotas are Lattice's default quotas.
func DefaultQuotas() Quotas {
	return Quotas{
		ServiceNetworks: 50, Services: 2000, TargetGroups: 500, TargetGroupsPerService: 10,
		TargetsPerTargetGroup: 1000, ListenersPerService: 2, RulesPerListener: 10,
		ServiceAssociationsPerNetwork: 500, VPCAssociationsPerNetwork: 500,
	}
}

func (q Quotas) withDefaults() Quotas {
	d := DefaultQuotas()
	pick := func(v, def int) int {
		if v > 0 {
			return v
		}
		return def
	}
	return Quotas{
		ServiceNetworks:               pick(q.ServiceNetworks, d.ServiceNetworks),
		Services:                      pick(q.Services, d.Services),
		TargetGroups:                  pick(q.TargetGroups, d.TargetGroups),
		TargetGroupsPerService:        pick(q.TargetGroupsPerService, d.TargetGroupsPerService),
		TargetsPerTargetGroup:         pick(q.TargetsPerTargetGroup, d.TargetsPerTargetGroup),
		ListenersPerService:           pick(q.ListenersPerService, d.ListenersPerService),
		RulesPerListener:              pick(q.RulesPerListener, d.RulesPerListener),
		ServiceAssociationsPerNetwork: pick(q.ServiceAssociationsPerNetwork, d.ServiceAssociationsPerNetwork),
		VPCAssociationsPerNetwork:     pick(q.VPCAssociationsPerNetwork, d.VPCAssociationsPerNetwork),
	}
}

// Config configures the API.
type Config struct {
	Store  store.Store
	Region string
	// DNSPartition is the 7-hex label in generated service names
	// (<name>-<id>.<partition>.vpc-lattice-svcs.<region>.on.aws).
	DNSPartition string
	Quotas       Quotas
	Logger       *slog.Logger
	// Now defaults to time.Now; tests pin it.
	Now func() time.Time
	// Observe, if set, is told the operation, status and latency of every request.
	Observe wire.Observer
	// DeregistrationDelay is how long a deregistered target stays DRAINING
	// (gateways send it no new requests, in-flight ones finish) before
	// RunDrainer removes it. Zero or negative removes targets at once.
	// The server passes Lattice's 60 s unless configured otherwise.
	DeregistrationDelay time.Duration
}

// API is the Lattice-compatible API handler.
type API struct {
	st        store.Store
	region    string
	partition string
	quotas    Quotas
	log       *slog.Logger
	now       func() time.Time
	router    *wire.Router
	drain     time.Duration
}

// New returns the API for cfg.
func New(cfg Config) *API {
	a := &API{
		st: cfg.Store, region: cfg.Region, partition: cfg.DNSPartition,
		quotas: cfg.Quotas.withDefaults(), log: cfg.Logger, now: cfg.Now, drain: cfg.DeregistrationDelay,
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.router = wire.NewRouter(a.log, cfg.Observe)
	a.routes()
	return a
}

// ServeHTTP serves one authenticated request.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.router.ServeHTTP(w, r) }

// Op names the operation a request maps to ("" if none); the server uses it
// for logs.
func (a *API) Op(r *http.Request) string { return a.router.Op(r) }

func (a *API) timestamp() time.Time { return a.now().UTC().Truncate(time.Millisecond) }
