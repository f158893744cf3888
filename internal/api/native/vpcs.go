package native

import (
	"context"
	"net/http"
	"time"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

func vpcNameKey(account, name string) string { return "/vpc-names/" + account + "/" + name }

// CreateVPC declares a VPC in account; it is used by the API and by
// `trellis up` for the default VPC.
func CreateVPC(ctx context.Context, st store.Store, region, account, name string, cidrs []string, tags map[string]string, now time.Time) (*model.VPC, error) {
	var c model.Checker
	c.ResourceName("name", name, 1, 63, "")
	c.CIDRs("cidrs", cidrs)
	c.Tags("tags", tags)
	if err := c.Err(); err != nil {
		return nil, err
	}
	id := model.NewID(model.PrefixVPC)
	v := model.VPC{ID: id, Name: name, CIDRs: cidrs, Account: account, ARN: model.VPCARN(region, account, id), Tags: tags, CreatedAt: now}
	_, err := store.Update(ctx, st, func(tx *store.Tx) error {
		if kv, err := tx.Get(vpcNameKey(account, name)); err == nil {
			return wire.Conflict("VPC", string(kv.Value), "account %s already has a VPC named %q (%s)", account, name, kv.Value)
		} else if !isNotFound(err) {
			return err
		}
		tx.Put(vpcNameKey(account, name), []byte(id))
		return store.PutJSON(tx, lattice.VPCKey(id), v)
	})
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func (a *API) createVPC(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Name    string            `json:"name"`
		CIDRs   []string          `json:"cidrs"`
		Tags    map[string]string `json:"tags"`
		Account string            `json:"account"`
	}
	if err := wire.Decode(r.Body, &in); err != nil {
		return 0, nil, err
	}
	acct, err := actingAccount(c, in.Account)
	if err != nil {
		return 0, nil, err
	}
	v, err := CreateVPC(ctx, a.st, a.region, acct, in.Name, in.CIDRs, in.Tags, a.timestamp())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, vpcView(v), nil
}

func vpcView(v *model.VPC) map[string]any {
	tags := v.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return map[string]any{"id": v.ID, "name": v.Name, "cidrs": v.CIDRs, "account": v.Account, "arn": v.ARN,
		"tags": tags, "createdAt": wire.Timestamp(v.CreatedAt)}
}

func (a *API) listVPCs(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	acct, err := actingAccount(c, r.Query("account"))
	if err != nil {
		return 0, nil, err
	}
	vpcs, err := list[model.VPC](ctx, a.st, "/vpcs/")
	if err != nil {
		return 0, nil, err
	}
	items := []map[string]any{}
	for _, v := range vpcs {
		if v.Account == acct {
			items = append(items, vpcView(v))
		}
	}
	return http.StatusOK, map[string]any{"items": items}, nil
}

func (a *API) getVPC(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var out any
	_, err = store.Update(ctx, a.st, func(tx *store.Tx) error {
		v, ok, err := store.GetJSON[model.VPC](tx, lattice.VPCKey(r.Params["id"]))
		if err != nil {
			return err
		}
		if !ok {
			return wire.NotFound("VPC", r.Params["id"])
		}
		if _, err := actingAccount(c, v.Account); err != nil {
			return wire.NotFound("VPC", r.Params["id"])
		}
		out = vpcView(v)
		return nil
	})
	return http.StatusOK, out, err
}

func (a *API) deleteVPC(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id := r.Params["id"]
	_, err = store.Update(ctx, a.st, func(tx *store.Tx) error {
		v, ok, err := store.GetJSON[model.VPC](tx, lattice.VPCKey(id))
		if err != nil {
			return err
		}
		if !ok {
			return wire.NotFound("VPC", id)
		}
		if _, err := actingAccount(c, v.Account); err != nil {
			return wire.NotFound("VPC", id)
		}
		if kv, err := tx.Get(lattice.VPCAssociationKey(id)); err == nil {
			return wire.Conflict("VPC", id, "VPC %s is associated with a service network (%s); delete the association first", id, kv.Value)
		} else if !isNotFound(err) {
			return err
		}
		tx.Delete(vpcNameKey(v.Account, v.Name))
		tx.Delete(lattice.VPCKey(id))
		return nil
	})
	return http.StatusNoContent, nil, err
}
