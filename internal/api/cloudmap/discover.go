package cloudmap

import (
	"context"
	"math/rand/v2"

	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

type discoverInstancesIn struct {
	NamespaceName      *string           `json:"NamespaceName"`
	ServiceName        *string           `json:"ServiceName"`
	MaxResults         *int32            `json:"MaxResults"`
	QueryParameters    map[string]string `json:"QueryParameters"`
	OptionalParameters map[string]string `json:"OptionalParameters"`
	HealthStatus       *string           `json:"HealthStatus"`
	OwnerAccount       *string           `json:"OwnerAccount"`
}

type discoverRevisionIn struct {
	NamespaceName *string `json:"NamespaceName"`
	ServiceName   *string `json:"ServiceName"`
	OwnerAccount  *string `json:"OwnerAccount"`
}

type httpInstanceSummary struct {
	InstanceID    string            `json:"InstanceId"`
	NamespaceName string            `json:"NamespaceName"`
	ServiceName   string            `json:"ServiceName"`
	HealthStatus  string            `json:"HealthStatus"`
	Attributes    map[string]string `json:"Attributes"`
}

// checkDiscoverTarget validates the namespace and service names (and
// owner) that Discover* name.
func checkDiscoverTarget(c *model.Checker, ns, svc, owner *string) {
	checkHTTPNamespaceName(c, "NamespaceName", ns)
	checkServiceName(c, "ServiceName", svc)
	if owner != nil && !model.IsAccountID(*owner) {
		c.Addf("OwnerAccount", "must be a 12-digit account ID, got %q", *owner)
	}
}

// findService resolves a namespace's HttpName and a service name to the
// service. A namespace of another owner account is not found: namespaces
// are not shared across accounts yet.
func (a *API) findService(tx *store.Tx, account string, nsName, svcName string, owner *string) (*namespace, *service, error) {
	notFound := errorf(TypeNamespaceNotFound, "namespace %q was not found", nsName)
	if owner != nil && *owner != account {
		return nil, nil, notFound
	}
	kv, err := tx.Get(key(account, "httpname", nsName))
	if isNotFound(err) {
		return nil, nil, notFound
	}
	if err != nil {
		return nil, nil, err
	}
	ns, err := a.loadNamespace(tx, account, string(kv.Value))
	if err != nil {
		return nil, nil, err
	}
	kv, err = tx.Get(serviceNameKey(account, ns, svcName))
	if isNotFound(err) {
		return nil, nil, errorf(TypeServiceNotFound, "service %q was not found in namespace %q", svcName, nsName)
	}
	if err != nil {
		return nil, nil, err
	}
	svc, err := a.loadService(tx, account, string(kv.Value))
	return ns, svc, err
}

// discoverInstances answers with the instances of a service that match
// every QueryParameter, then the HealthStatus filter, then, if any of
// those match every OptionalParameter too, only those; in random order,
// at most MaxResults (default 100).
//
// HealthStatus defaults to HEALTHY ("when you configure a health check,
// Cloud Map returns healthy resources by default") and is ignored for a
// service without health checks, whose instances are all returned with
// HealthStatus UNKNOWN.
func (a *API) discoverInstances(ctx context.Context, cl iam.Caller, in *discoverInstancesIn) (any, error) {
	var c model.Checker
	checkDiscoverTarget(&c, in.NamespaceName, in.ServiceName, in.OwnerAccount)
	limit := checkMaxResults(&c, in.MaxResults, 1000, 100)
	checkAttributeMap(&c, "QueryParameters", in.QueryParameters)
	checkAttributeMap(&c, "OptionalParameters", in.OptionalParameters)
	filter := Healthy
	if in.HealthStatus != nil {
		filter = *in.HealthStatus
		c.Enum("HealthStatus", filter, Healthy, Unhealthy, FilterAll, FilterHealthyOrElseAll)
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	var ns *namespace
	var svc *service
	var insts []*instance
	var rev int64
	err := a.update(ctx, func(tx *store.Tx) error {
		var err error
		if ns, svc, err = a.findService(tx, cl.Account, *in.NamespaceName, *in.ServiceName, in.OwnerAccount); err != nil {
			return err
		}
		if rev, err = instancesRevision(tx, cl.Account, svc.ID); err != nil {
			return err
		}
		insts, _, err = loadAll[instance](tx, key(cl.Account, "inst", svc.ID)+"/")
		return err
	})
	if err != nil {
		return nil, err
	}
	matched := insts[:0]
	for _, inst := range insts {
		if attributesMatch(inst.Attributes, in.QueryParameters) {
			matched = append(matched, inst)
		}
	}
	if svc.CustomHealth != nil || svc.HealthCheck != nil {
		matched = filterHealth(svc, matched, filter)
	}
	if len(in.OptionalParameters) > 0 {
		var opt []*instance
		for _, inst := range matched {
			if attributesMatch(inst.Attributes, in.OptionalParameters) {
				opt = append(opt, inst)
			}
		}
		if len(opt) > 0 {
			matched = opt
		}
	}
	rand.Shuffle(len(matched), func(i, j int) { matched[i], matched[j] = matched[j], matched[i] })
	matched = matched[:min(limit, len(matched))]
	out := make([]httpInstanceSummary, 0, len(matched))
	for _, inst := range matched {
		out = append(out, httpInstanceSummary{InstanceID: inst.ID, NamespaceName: ns.HTTPName, ServiceName: svc.Name,
			HealthStatus: healthOf(svc, inst), Attributes: inst.Attributes})
	}
	return struct {
		Instances         []httpInstanceSummary `json:"Instances"`
		InstancesRevision int64                 `json:"InstancesRevision"`
	}{out, rev}, nil
}

func attributesMatch(attrs, want map[string]string) bool {
	for k, v := range want {
		if got, ok := attrs[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func filterHealth(svc *service, insts []*instance, filter string) []*instance {
	if filter == FilterAll {
		return insts
	}
	want := filter
	if filter == FilterHealthyOrElseAll {
		want = Healthy
	}
	var out []*instance
	for _, inst := range insts {
		if healthOf(svc, inst) == want {
			out = append(out, inst)
		}
	}
	if filter == FilterHealthyOrElseAll && len(out) == 0 {
		return insts // fail open
	}
	return out
}

// discoverInstancesRevision returns the service's InstancesRevision, which
// grows with every registration and deregistration (not with health
// changes): a cheap way to poll for changes.
func (a *API) discoverInstancesRevision(ctx context.Context, cl iam.Caller, in *discoverRevisionIn) (any, error) {
	var c model.Checker
	checkDiscoverTarget(&c, in.NamespaceName, in.ServiceName, in.OwnerAccount)
	if err := c.Err(); err != nil {
		return nil, err
	}
	var rev int64
	err := a.update(ctx, func(tx *store.Tx) error {
		_, svc, err := a.findService(tx, cl.Account, *in.NamespaceName, *in.ServiceName, in.OwnerAccount)
		if err != nil {
			return err
		}
		rev, err = instancesRevision(tx, cl.Account, svc.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return struct {
		InstancesRevision int64 `json:"InstancesRevision"`
	}{rev}, nil
}
