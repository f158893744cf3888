package lattice

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

type createServiceNetworkIn struct {
	ClientToken   *string              `json:"clientToken"`
	Name          string               `json:"name"`
	AuthType      *string              `json:"authType"`
	Tags          map[string]string    `json:"tags"`
	SharingConfig *model.SharingConfig `json:"sharingConfig"`
}

func authTypeOr(c *model.Checker, field string, v *string) string {
	if v == nil {
		return model.AuthTypeNone
	}
	c.Enum(field, *v, model.AuthTypeNone, model.AuthTypeAWSIAM)
	return *v
}

func (a *API) createServiceNetwork(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var in createServiceNetworkIn
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var c model.Checker
	c.ClientToken("clientToken", in.ClientToken)
	c.ResourceName("name", in.Name, 3, 63, "")
	authType := authTypeOr(&c, "authType", in.AuthType)
	c.Tags("tags", in.Tags)
	if err := c.Err(); err != nil {
		return 0, nil, err
	}
	var status int
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		status, out, err = idempotent(tx, cl.Account, "CreateServiceNetwork", in.ClientToken, r.HTTP.URL.EscapedPath(), r.Body, func() (int, any, error) {
			if err := a.claimName(tx, cl.Account, "sn", in.Name, rtServiceNetwork); err != nil {
				return 0, nil, err
			}
			if err := a.checkQuota(tx, key(cl.Account, "sn")+"/", a.quotas.ServiceNetworks, rtServiceNetwork, "L-9CAD07FB", "service networks per region"); err != nil {
				return 0, nil, err
			}
			sn := model.ServiceNetwork{Meta: a.newMeta(cl.Account, model.PrefixServiceNetwork, "servicenetwork/", in.Tags),
				Name: in.Name, AuthType: authType, SharingConfig: in.SharingConfig}
			if err := a.putName(tx, cl.Account, "sn", in.Name, sn.ID); err != nil {
				return 0, nil, err
			}
			if err := store.PutJSON(tx, key(cl.Account, "sn", sn.ID), sn); err != nil {
				return 0, nil, err
			}
			return http.StatusCreated, map[string]any{"id": sn.ID, "name": sn.Name, "arn": sn.ARN,
				"authType": sn.AuthType, "sharingConfig": sharing(sn.SharingConfig)}, nil
		})
		return err
	})
	return status, out, err
}

func sharing(s *model.SharingConfig) *model.SharingConfig {
	if s == nil || s.Enabled == nil {
		f := false
		return &model.SharingConfig{Enabled: &f}
	}
	return s
}

// claimName fails with ConflictException when name is taken in the account.
func (a *API) claimName(tx *store.Tx, account, kind, name, resType string) error {
	kv, err := tx.Get(key(account, "name", kind, name))
	if err == nil {
		return wire.Conflict(resType, string(kv.Value), "a %s named %q already exists (%s)", humanKind(resType), name, kv.Value)
	}
	if !isNotFound(err) {
		return err
	}
	return nil
}

func (a *API) putName(tx *store.Tx, account, kind, name, id string) error {
	tx.Put(key(account, "name", kind, name), []byte(id))
	return nil
}

func (a *API) dropName(tx *store.Tx, account, kind, name string) {
	tx.Delete(key(account, "name", kind, name))
}

// checkQuota fails with ServiceQuotaExceededException when prefix already
// holds limit keys.
func (a *API) checkQuota(tx *store.Tx, prefix string, limit int, resType, code, what string) error {
	kvs, err := tx.List(prefix)
	if err != nil {
		return err
	}
	if len(kvs) >= limit {
		return wire.Quota(resType, code, "quota exceeded: at most %d %s", limit, what)
	}
	return nil
}

// snCounts counts the service and VPC associations of each network of an account.
func snCounts(tx *store.Tx, account string) (svcs, vpcs map[string]int64, err error) {
	snsas, err := store.ListJSON[model.ServiceNetworkServiceAssociation](tx, key(account, "snsa")+"/")
	if err != nil {
		return nil, nil, err
	}
	snvas, err := store.ListJSON[model.ServiceNetworkVpcAssociation](tx, key(account, "snva")+"/")
	if err != nil {
		return nil, nil, err
	}
	svcs, vpcs = map[string]int64{}, map[string]int64{}
	for _, s := range snsas {
		svcs[s.ServiceNetworkID]++
	}
	for _, v := range snvas {
		vpcs[v.ServiceNetworkID]++
	}
	return svcs, vpcs, nil
}

func (a *API) getServiceNetwork(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.resolve("serviceNetworkIdentifier", r.Params["serviceNetworkIdentifier"], model.PrefixServiceNetwork, "servicenetwork", rtServiceNetwork, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	var out map[string]any
	err = a.view(ctx, func(tx *store.Tx) error {
		sn, err := mustLoad[model.ServiceNetwork](tx, key(cl.Account, "sn", id), rtServiceNetwork, id)
		if err != nil {
			return err
		}
		svcs, vpcs, err := snCounts(tx, cl.Account)
		if err != nil {
			return err
		}
		out = map[string]any{"id": sn.ID, "name": sn.Name, "arn": sn.ARN, "authType": sn.AuthType,
			"createdAt": wire.Timestamp(sn.CreatedAt), "lastUpdatedAt": wire.Timestamp(sn.UpdatedAt),
			"sharingConfig": sharing(sn.SharingConfig), "numberOfAssociatedServices": svcs[sn.ID],
			"numberOfAssociatedVPCs": vpcs[sn.ID]}
		return nil
	})
	return http.StatusOK, out, err
}

func (a *API) listServiceNetworks(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	kvs, next, err := a.page(ctx, r, "sn", key(cl.Account, "sn")+"/")
	if err != nil {
		return 0, nil, err
	}
	var svcs, vpcs map[string]int64
	if err := a.view(ctx, func(tx *store.Tx) (err error) {
		svcs, vpcs, err = snCounts(tx, cl.Account)
		return err
	}); err != nil {
		return 0, nil, err
	}
	items := make([]map[string]any, 0, len(kvs))
	for _, kv := range kvs {
		var sn model.ServiceNetwork
		if err := json.Unmarshal(kv.Value, &sn); err != nil {
			return 0, nil, err
		}
		items = append(items, map[string]any{"id": sn.ID, "name": sn.Name, "arn": sn.ARN,
			"createdAt": wire.Timestamp(sn.CreatedAt), "lastUpdatedAt": wire.Timestamp(sn.UpdatedAt),
			"numberOfAssociatedServices": svcs[sn.ID], "numberOfAssociatedVPCs": vpcs[sn.ID],
			"numberOfAssociatedResourceConfigurations": 0})
	}
	return http.StatusOK, listOut{Items: items, NextToken: next}, nil
}

func (a *API) updateServiceNetwork(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.resolve("serviceNetworkIdentifier", r.Params["serviceNetworkIdentifier"], model.PrefixServiceNetwork, "servicenetwork", rtServiceNetwork, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		AuthType *string `json:"authType"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var c model.Checker
	if in.AuthType == nil {
		c.Addf("authType", "is required")
	} else {
		c.Enum("authType", *in.AuthType, model.AuthTypeNone, model.AuthTypeAWSIAM)
	}
	if err := c.Err(); err != nil {
		return 0, nil, err
	}
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		sn, err := mustLoad[model.ServiceNetwork](tx, key(cl.Account, "sn", id), rtServiceNetwork, id)
		if err != nil {
			return err
		}
		sn.AuthType = *in.AuthType
		sn.UpdatedAt = a.timestamp()
		out = map[string]any{"id": sn.ID, "name": sn.Name, "arn": sn.ARN, "authType": sn.AuthType}
		return store.PutJSON(tx, key(cl.Account, "sn", id), sn)
	})
	return http.StatusOK, out, err
}

func (a *API) deleteServiceNetwork(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.resolve("serviceNetworkIdentifier", r.Params["serviceNetworkIdentifier"], model.PrefixServiceNetwork, "servicenetwork", rtServiceNetwork, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	err = a.update(ctx, func(tx *store.Tx) error {
		sn, err := mustLoad[model.ServiceNetwork](tx, key(cl.Account, "sn", id), rtServiceNetwork, id)
		if err != nil {
			return err
		}
		svcs, vpcs, err := snCounts(tx, cl.Account)
		if err != nil {
			return err
		}
		if svcs[id] > 0 || vpcs[id] > 0 {
			return wire.Conflict(rtServiceNetwork, id,
				"service network %s still has %d service and %d VPC associations; delete them first", id, svcs[id], vpcs[id])
		}
		a.dropName(tx, cl.Account, "sn", sn.Name)
		tx.Delete(key(cl.Account, "sn", id))
		return a.deletePoliciesAndLogs(tx, cl.Account, id)
	})
	return http.StatusNoContent, nil, err
}
