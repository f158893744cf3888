package cloudmap

import (
	"context"
	"strings"

	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

type registerInstanceIn struct {
	ServiceID        *string           `json:"ServiceId"`
	InstanceID       *string           `json:"InstanceId"`
	CreatorRequestID *string           `json:"CreatorRequestId"`
	Attributes       map[string]string `json:"Attributes"`
}

type instanceRefIn struct {
	ServiceID  *string `json:"ServiceId"`
	InstanceID *string `json:"InstanceId"`
}

// checkInstanceID follows the model: 1 to 64 characters of
// [0-9a-zA-Z_/:.@-].
func checkInstanceID(c *model.Checker, field string, v *string) {
	if !required(c, field, v) {
		return
	}
	ok := len(*v) <= maxResourceID
	for i := 0; ok && i < len(*v); i++ {
		ch := (*v)[i]
		ok = alnum(ch) || strings.IndexByte("_/:.@-", ch) >= 0
	}
	if !ok {
		c.Addf(field, "must be 1 to %d characters of letters, digits and _/:.@-, got %q", maxResourceID, *v)
	}
}

// healthOf is an instance's health status: the reported one for a
// service with a custom health check, HEALTHY for a service with a
// Route 53 health check (Trellis does not probe instances; see
// docs/cloudmap.md), and UNKNOWN for a service without health checks.
func healthOf(svc *service, inst *instance) string {
	switch {
	case svc.CustomHealth != nil:
		if inst.Health == "" {
			return Healthy
		}
		return inst.Health
	case svc.HealthCheck != nil:
		return Healthy
	}
	return Unknown
}

func (a *API) registerInstance(ctx context.Context, cl iam.Caller, in *registerInstanceIn) (any, error) {
	var c model.Checker
	checkInstanceID(&c, "InstanceId", in.InstanceID)
	requestID(&c, "CreatorRequestId", in.CreatorRequestID)
	if in.Attributes == nil {
		c.Addf("Attributes", "is required")
	}
	checkLease(&c, in.Attributes)
	if err := c.Err(); err != nil {
		return nil, err
	}
	svcID, err := a.serviceID("ServiceId", in.ServiceID, cl.Account)
	if err != nil {
		return nil, err
	}
	var opID string
	err = a.update(ctx, func(tx *store.Tx) error {
		var err error
		opID, err = idempotent(tx, cl.Account, "RegisterInstance", in.CreatorRequestID, in, func(tokenKey string) (string, error) {
			svc, err := a.loadService(tx, cl.Account, svcID)
			if err != nil {
				return "", err
			}
			var c model.Checker
			checkInstanceAttributes(&c, svc, in.Attributes)
			if err := c.Err(); err != nil {
				return "", err
			}
			k := key(cl.Account, "inst", svcID, *in.InstanceID)
			inst, exists, err := store.GetJSON[instance](tx, k)
			if err != nil {
				return "", err
			}
			now := a.timestamp()
			if !exists {
				if svc.InstanceCount >= a.quotas.InstancesPerService {
					return "", errorf(TypeResourceLimitExceeded, "service %s already has %d instances, the most allowed", svcID, svc.InstanceCount)
				}
				inst = &instance{ID: *in.InstanceID, ServiceID: svcID, CreatedBy: cl.Account, CreateDate: now}
				if svc.CustomHealth != nil {
					// AWS_INIT_HEALTH_STATUS applies to the first
					// registration; a re-registration keeps the status.
					inst.Health = Healthy
					if s := in.Attributes[AttrInitHealthStat]; s != "" {
						inst.Health = s
					}
				}
				svc.InstanceCount++
			}
			inst.Attributes = in.Attributes
			inst.CreatorRequestID = derefOr(in.CreatorRequestID, "")
			inst.UpdateDate = now
			a.renewLease(tx, cl.Account, inst)
			touchRevision(tx, cl.Account, svcID)
			if err := store.PutJSON(tx, k, inst); err != nil {
				return "", err
			}
			if err := store.PutJSON(tx, key(cl.Account, "svc", svcID), svc); err != nil {
				return "", err
			}
			return a.newOperation(tx, cl.Account, OpRegisterInstance,
				map[string]string{"NAMESPACE": svc.NamespaceID, "SERVICE": svcID, "INSTANCE": inst.ID}, tokenKey)
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	a.pruneOperations(ctx, cl.Account)
	return operationIDOut{OperationID: opID}, nil
}

// instanceRef validates a ServiceId and InstanceId pair.
func (a *API) instanceRef(in *instanceRefIn, account string) (svcID string, err error) {
	var c model.Checker
	if required(&c, "InstanceId", in.InstanceID) {
		maxLen(&c, "InstanceId", in.InstanceID, maxResourceID)
	}
	if err := c.Err(); err != nil {
		return "", err
	}
	return a.serviceID("ServiceId", in.ServiceID, account)
}

func (a *API) deregisterInstance(ctx context.Context, cl iam.Caller, in *instanceRefIn) (any, error) {
	svcID, err := a.instanceRef(in, cl.Account)
	if err != nil {
		return nil, err
	}
	var opID string
	err = a.update(ctx, func(tx *store.Tx) error {
		svc, err := a.loadService(tx, cl.Account, svcID)
		if err != nil {
			return err
		}
		inst, err := a.loadInstance(tx, cl.Account, svcID, *in.InstanceID)
		if err != nil {
			return err
		}
		dropLease(tx, inst)
		tx.Delete(key(cl.Account, "inst", svcID, *in.InstanceID))
		svc.InstanceCount--
		touchRevision(tx, cl.Account, svcID)
		if err := store.PutJSON(tx, key(cl.Account, "svc", svcID), svc); err != nil {
			return err
		}
		opID, err = a.newOperation(tx, cl.Account, OpDeregisterInstance,
			map[string]string{"NAMESPACE": svc.NamespaceID, "SERVICE": svcID, "INSTANCE": *in.InstanceID}, "")
		return err
	})
	if err != nil {
		return nil, err
	}
	a.pruneOperations(ctx, cl.Account)
	return operationIDOut{OperationID: opID}, nil
}

type instanceOut struct {
	ID               string            `json:"Id"`
	CreatorRequestID string            `json:"CreatorRequestId,omitempty"`
	Attributes       map[string]string `json:"Attributes"`
	CreatedByAccount string            `json:"CreatedByAccount"`
}

func (a *API) getInstance(ctx context.Context, cl iam.Caller, in *instanceRefIn) (any, error) {
	svcID, err := a.instanceRef(in, cl.Account)
	if err != nil {
		return nil, err
	}
	var out instanceOut
	err = a.update(ctx, func(tx *store.Tx) error {
		if _, err := a.loadService(tx, cl.Account, svcID); err != nil {
			return err
		}
		inst, err := a.loadInstance(tx, cl.Account, svcID, *in.InstanceID)
		if err != nil {
			return err
		}
		out = instanceOut{ID: inst.ID, CreatorRequestID: inst.CreatorRequestID, Attributes: inst.Attributes, CreatedByAccount: inst.CreatedBy}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return struct {
		ResourceOwner string      `json:"ResourceOwner"`
		Instance      instanceOut `json:"Instance"`
	}{cl.Account, out}, nil
}

// serviceInstances loads a service and all its instances in key order.
func (a *API) serviceInstances(ctx context.Context, account, svcID string) (*service, []*instance, []string, error) {
	var svc *service
	var insts []*instance
	var keys []string
	err := a.update(ctx, func(tx *store.Tx) error {
		var err error
		if svc, err = a.loadService(tx, account, svcID); err != nil {
			return err
		}
		insts, keys, err = loadAll[instance](tx, key(account, "inst", svcID)+"/")
		return err
	})
	return svc, insts, keys, err
}

type listInstancesIn struct {
	ServiceID  *string `json:"ServiceId"`
	NextToken  *string `json:"NextToken"`
	MaxResults *int32  `json:"MaxResults"`
}

func (a *API) listInstances(ctx context.Context, cl iam.Caller, in *listInstancesIn) (any, error) {
	var c model.Checker
	limit := checkMaxResults(&c, in.MaxResults, 100, 100)
	if err := c.Err(); err != nil {
		return nil, err
	}
	svcID, err := a.serviceID("ServiceId", in.ServiceID, cl.Account)
	if err != nil {
		return nil, err
	}
	_, insts, keys, err := a.serviceInstances(ctx, cl.Account, svcID)
	if err != nil {
		return nil, err
	}
	items := make([]keyed[instanceOut], len(insts))
	for i, inst := range insts {
		items[i] = keyed[instanceOut]{keys[i], instanceOut{ID: inst.ID, Attributes: inst.Attributes, CreatedByAccount: inst.CreatedBy}}
	}
	page, next, err := paginate(items, "instances/"+svcID, in.NextToken, limit)
	if err != nil {
		return nil, err
	}
	return struct {
		Instances     []instanceOut `json:"Instances"`
		NextToken     *string       `json:"NextToken,omitempty"`
		ResourceOwner string        `json:"ResourceOwner"`
	}{page, next, cl.Account}, nil
}

type getInstancesHealthStatusIn struct {
	ServiceID  *string  `json:"ServiceId"`
	Instances  []string `json:"Instances"`
	MaxResults *int32   `json:"MaxResults"`
	NextToken  *string  `json:"NextToken"`
}

func (a *API) getInstancesHealthStatus(ctx context.Context, cl iam.Caller, in *getInstancesHealthStatusIn) (any, error) {
	var c model.Checker
	limit := checkMaxResults(&c, in.MaxResults, 100, 100)
	if in.Instances != nil && len(in.Instances) == 0 {
		c.Addf("Instances", "must list at least one instance ID when given")
	}
	for _, id := range in.Instances {
		if len(id) == 0 || len(id) > maxResourceID {
			c.Addf("Instances", "instance IDs must be 1 to %d characters long", maxResourceID)
			break
		}
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	svcID, err := a.serviceID("ServiceId", in.ServiceID, cl.Account)
	if err != nil {
		return nil, err
	}
	svc, insts, keys, err := a.serviceInstances(ctx, cl.Account, svcID)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]int, len(insts))
	for i, inst := range insts {
		byID[inst.ID] = i
	}
	want := insts
	wantKeys := keys
	if in.Instances != nil {
		want, wantKeys = nil, nil
		seen := map[string]bool{}
		for _, id := range in.Instances {
			i, ok := byID[id]
			if !ok {
				return nil, errorf(TypeInstanceNotFound, "instance %s of service %s was not found", id, svcID)
			}
			if !seen[id] {
				seen[id] = true
				want, wantKeys = append(want, insts[i]), append(wantKeys, keys[i])
			}
		}
	}
	type status struct{ id, health string }
	items := make([]keyed[status], 0, len(want))
	for i, inst := range want {
		items = append(items, keyed[status]{wantKeys[i], status{inst.ID, healthOf(svc, inst)}})
	}
	sortKeyed(items)
	page, next, err := paginate(items, "health/"+svcID, in.NextToken, limit)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(page))
	for _, s := range page {
		out[s.id] = s.health
	}
	return struct {
		Status    map[string]string `json:"Status"`
		NextToken *string           `json:"NextToken,omitempty"`
	}{out, next}, nil
}

type updateCustomHealthIn struct {
	ServiceID  *string `json:"ServiceId"`
	InstanceID *string `json:"InstanceId"`
	Status     *string `json:"Status"`
}

// updateInstanceCustomHealthStatus records the health an instance's own
// checker reports. It applies at once (Cloud Map waits about 30 s), and,
// as in Cloud Map, it does not change the service's InstancesRevision.
func (a *API) updateInstanceCustomHealthStatus(ctx context.Context, cl iam.Caller, in *updateCustomHealthIn) (any, error) {
	var c model.Checker
	if required(&c, "Status", in.Status) {
		c.Enum("Status", *in.Status, Healthy, Unhealthy)
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	svcID, err := a.instanceRef(&instanceRefIn{ServiceID: in.ServiceID, InstanceID: in.InstanceID}, cl.Account)
	if err != nil {
		return nil, err
	}
	err = a.update(ctx, func(tx *store.Tx) error {
		svc, err := a.loadService(tx, cl.Account, svcID)
		if err != nil {
			return err
		}
		inst, err := a.loadInstance(tx, cl.Account, svcID, *in.InstanceID)
		if err != nil {
			return err
		}
		if svc.CustomHealth == nil {
			return errorf(TypeCustomHealthNotFound, "service %s was not created with HealthCheckCustomConfig", svcID)
		}
		if inst.Health == *in.Status && inst.LeaseKey == "" {
			return nil
		}
		if inst.Health != *in.Status {
			inst.Health = *in.Status
			inst.UpdateDate = a.timestamp()
		}
		// A report is a heartbeat: it renews the instance's lease.
		a.renewLease(tx, cl.Account, inst)
		return store.PutJSON(tx, key(cl.Account, "inst", svcID, inst.ID), inst)
	})
	return nil, err
}
