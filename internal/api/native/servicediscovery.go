package native

import (
	"context"
	"net/http"

	"github.com/trellis-mesh/trellis/internal/api/cloudmap"
	"github.com/trellis-mesh/trellis/internal/api/wire"
)

// NamespaceReader is the registry's view a sidecar agent polls
// (cloudmap.API).
type NamespaceReader interface {
	NamespaceServices(ctx context.Context, account, nsID string) ([]cloudmap.ServiceState, error)
}

// WithServiceDiscovery serves GET
// /trellis/v1/servicediscovery/namespaces/{id}/services from r.
func WithServiceDiscovery(r NamespaceReader) Option {
	return func(a *API) { a.namespaces = r }
}

// NamespaceServicesOut is the answer of
// GET /trellis/v1/servicediscovery/namespaces/{id}/services.
type NamespaceServicesOut struct {
	Services []cloudmap.ServiceState `json:"services"`
}

// namespaceServices lists a namespace's services with their
// InstancesRevision and attributes in one answer: what an agent polls.
// The namespace must belong to the caller's account.
func (a *API) namespaceServices(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	if a.namespaces == nil {
		return 0, nil, wire.NotFound("NAMESPACE", r.Params["id"])
	}
	svcs, err := a.namespaces.NamespaceServices(ctx, c.Account, r.Params["id"])
	if cloudmap.IsNamespaceNotFound(err) {
		return 0, nil, wire.NotFound("NAMESPACE", r.Params["id"])
	}
	if err != nil {
		return 0, nil, err
	}
	if svcs == nil {
		svcs = []cloudmap.ServiceState{}
	}
	return http.StatusOK, NamespaceServicesOut{Services: svcs}, nil
}
