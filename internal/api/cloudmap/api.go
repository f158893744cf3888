// Package cloudmap serves the AWS Cloud Map–compatible registry API
// (servicediscovery 2017-03-14, awsJson1.1): namespaces, services,
// instances with attributes and custom health, DiscoverInstances and
// DiscoverInstancesRevision, operations and tags, with the IDs, ARNs,
// members and error types of AWS, so the AWS SDK for Go v2
// servicediscovery client and `aws servicediscovery` work unchanged.
//
// Flow of a request: the server authenticates it (SigV4, signing name
// servicediscovery) and puts the iam.Caller in the context, then hands
// every request that carries X-Amz-Target here. ServeHTTP looks the target
// up in the operation table (routes.go), decodes the JSON body strictly
// into the operation's input (unknown members are InvalidInput), validates
// every member, and runs one optimistic store transaction (store.Update)
// that checks relationships and quotas and writes the change. Every
// resource lives under its owner account's prefix (state.go), so another
// account's resources are simply not found.
//
// Cloud Map's asynchronous operations (namespace create/update/delete,
// UpdateService, RegisterInstance, DeregisterInstance) complete inside the
// request here: their OperationId already reads SUCCESS in GetOperation.
// Operation records, and the idempotency tokens that point at them, are
// kept for Config.OperationRetention and pruned as new operations arrive.
package cloudmap

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/store"
)

// TargetPrefix is the X-Amz-Target prefix of every Cloud Map operation.
const TargetPrefix = "Route53AutoNaming_v20170314."

const contentType = "application/x-amz-json-1.1"

// Quotas are Cloud Map's default quotas that Trellis enforces. Zero values
// take the defaults.
type Quotas struct {
	// Namespaces per account; default 50. Over it: ResourceLimitExceeded.
	Namespaces int
	// InstancesPerService; default 1000. Over it: ResourceLimitExceeded.
	InstancesPerService int
}

func (q Quotas) withDefaults() Quotas {
	if q.Namespaces <= 0 {
		q.Namespaces = 50
	}
	if q.InstancesPerService <= 0 {
		q.InstancesPerService = 1000
	}
	return q
}

// DefaultOperationRetention is how long operation records are kept.
const DefaultOperationRetention = 24 * time.Hour

// Config configures the API.
type Config struct {
	Store  store.Store
	Region string
	Quotas Quotas
	// OperationRetention is how long GetOperation and ListOperations still
	// know an operation (and its CreatorRequestId still deduplicates);
	// default DefaultOperationRetention. Longer keeps more history at the
	// cost of store space: every RegisterInstance writes one record.
	OperationRetention time.Duration
	Logger             *slog.Logger
	// Now defaults to time.Now; tests pin it.
	Now func() time.Time
	// Observe, if set, is told the operation, status and latency of every request.
	Observe wire.Observer
}

// API is the Cloud Map–compatible API handler. It is safe for concurrent use.
type API struct {
	st        store.Store
	region    string
	quotas    Quotas
	retention time.Duration
	log       *slog.Logger
	now       func() time.Time
	observe   wire.Observer
	ops       map[string]handler
	// leaseStart is when lease expiry began (lease.go).
	leaseStart atomic.Pointer[time.Time]
}

// New returns the API for cfg.
func New(cfg Config) *API {
	a := &API{st: cfg.Store, region: cfg.Region, quotas: cfg.Quotas.withDefaults(), retention: cfg.OperationRetention,
		log: cfg.Logger, now: cfg.Now, observe: cfg.Observe}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.retention <= 0 {
		a.retention = DefaultOperationRetention
	}
	a.ops = a.routes()
	return a
}

// IsRequest reports whether r is an awsJson request (it carries
// X-Amz-Target), which this API answers.
func IsRequest(r *http.Request) bool { return r.Header.Get("X-Amz-Target") != "" }

// operationOf is the Cloud Map operation r names, or "".
func operationOf(r *http.Request) string {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
	if !ok {
		return ""
	}
	return op
}

// handler runs one operation on a request body for an authenticated caller.
type handler func(ctx context.Context, cl iam.Caller, body []byte) (any, error)

// bind makes a handler of a typed operation: it decodes the body into a
// new In and calls fn.
func bind[In any](fn func(context.Context, iam.Caller, *In) (any, error)) handler {
	return func(ctx context.Context, cl iam.Caller, body []byte) (any, error) {
		in := new(In)
		if err := wire.Decode(body, in); err != nil {
			return nil, err
		}
		return fn(ctx, cl, in)
	}
}

// ServeHTTP serves one authenticated request.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := w.Header().Get("x-amzn-RequestId")
	if reqID == "" {
		reqID = wire.NewRequestID()
		w.Header().Set("x-amzn-RequestId", reqID)
	}
	op := operationOf(r)
	out, err := a.serve(r, op)
	status := http.StatusOK
	if err != nil {
		e, internal := asError(err, reqID)
		if internal {
			a.log.Error("request failed", "op", op, "requestId", reqID, "err", err)
		}
		WriteError(w, e)
		status = e.Status()
	} else {
		writeJSON(w, out)
	}
	if a.observe != nil {
		if _, known := a.ops[op]; !known {
			op = "Unknown"
		}
		a.observe(op, status, time.Since(start))
	}
}

func (a *API) serve(r *http.Request, op string) (any, error) {
	target := r.Header.Get("X-Amz-Target")
	h, ok := a.ops[op]
	switch {
	case !strings.HasPrefix(target, TargetPrefix):
		return nil, errorf(TypeUnknownOperation, "X-Amz-Target %q is not a Cloud Map operation (%s<Operation>); Trellis serves no other JSON API", target, TargetPrefix)
	case !ok:
		return nil, errorf(TypeUnknownOperation, "%s is not a Cloud Map operation", op)
	case r.Method != http.MethodPost || r.URL.Path != "/":
		return nil, errorf(TypeUnknownOperation, "Cloud Map operations are POST /, got %s %s", r.Method, r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, contentType) && !strings.HasPrefix(ct, "application/json") {
		return nil, errorf(TypeSerialization, "Content-Type must be %s, got %q", contentType, ct)
	}
	cl, ok := iam.CallerFrom(r.Context())
	if !ok || cl.Account == "" {
		return nil, AccessDenied("the request is not authenticated")
	}
	body, err := wire.ReadBody(r)
	if err != nil {
		return nil, err
	}
	return h(r.Context(), cl, body)
}

// writeJSON writes a success response; a nil out is the empty structure {}.
func writeJSON(w http.ResponseWriter, out any) {
	b := []byte("{}")
	if out != nil {
		var err error
		if b, err = json.Marshal(out); err != nil {
			// Only our own response types reach here; a failure is a bug.
			WriteError(w, errorf(TypeInternalFailure, "encoding the response failed"))
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func (a *API) timestamp() time.Time { return a.now().UTC().Truncate(time.Millisecond) }
