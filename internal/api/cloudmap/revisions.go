package cloudmap

import (
	"context"
	"errors"

	"github.com/trellis-mesh/trellis/internal/store"
)

// ServiceState is what a sidecar agent needs of one service at each poll
// of its namespace.
type ServiceState struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// InstancesRevision is the service's DiscoverInstancesRevision.
	InstancesRevision int64 `json:"instancesRevision"`
	// Attributes are the service attributes (GetServiceAttributes).
	Attributes map[string]string `json:"attributes,omitempty"`
}

// NamespaceServices returns every service of namespace nsID of account
// with its InstancesRevision and attributes, read in one transaction. It
// is the Trellis extension behind GET
// /trellis/v1/servicediscovery/namespaces/{id}/services: an agent polls
// its namespace with one call instead of one per service, and reads
// instances (DiscoverInstances) only of the services whose revision
// moved. The error of an unknown namespace is NamespaceNotFound.
func (a *API) NamespaceServices(ctx context.Context, account, nsID string) ([]ServiceState, error) {
	var out []ServiceState
	err := a.update(ctx, func(tx *store.Tx) error {
		out = out[:0]
		if _, err := a.loadNamespace(tx, account, nsID); err != nil {
			return err
		}
		svcs, _, err := loadAll[service](tx, key(account, "svc")+"/")
		if err != nil {
			return err
		}
		for _, s := range svcs {
			if s.NamespaceID != nsID {
				continue
			}
			rev, err := instancesRevision(tx, account, s.ID)
			if err != nil {
				return err
			}
			out = append(out, ServiceState{ID: s.ID, Name: s.Name, InstancesRevision: rev, Attributes: s.Attributes})
		}
		return nil
	})
	return out, err
}

// IsNamespaceNotFound reports whether err says the namespace does not
// exist.
func IsNamespaceNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Type == TypeNamespaceNotFound
}
