package native

import (
	"context"
	"net/http"
	"unicode"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

// The instance registry: compute instances declared with their VPC and
// address, so that INSTANCE targets (registered by instance ID, as in
// Lattice) resolve to something a gateway can dial. An instance belongs to
// the account that owns its VPC.

type createInstanceIn struct {
	ID      string            `json:"id"`
	VPC     string            `json:"vpc"`
	Address string            `json:"address"`
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
}

func (a *API) createInstance(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var in createInstanceIn
	if err := wire.Decode(r.Body, &in); err != nil {
		return 0, nil, err
	}
	var ck model.Checker
	if in.ID != "" && !model.IsInstanceID(in.ID) {
		ck.Addf("id", "must be i- followed by 8 or 17 lowercase hex digits, got %q", in.ID)
	}
	if in.VPC == "" {
		ck.Addf("vpc", "is required")
	}
	if in.Address == "" {
		ck.Addf("address", "is required")
	} else {
		ck.InstanceAddress("address", in.Address, nil)
	}
	if in.Name != "" {
		ck.Length("name", in.Name, 1, 255)
		for _, r := range in.Name {
			if !unicode.IsPrint(r) {
				ck.Addf("name", "must contain only printable characters")
				break
			}
		}
	}
	ck.Tags("tags", in.Tags)
	if err := ck.Err(); err != nil {
		return 0, nil, err
	}
	inst := model.Instance{ID: in.ID, VpcID: in.VPC, Address: in.Address, Name: in.Name, Tags: in.Tags, CreatedAt: a.timestamp()}
	if inst.ID == "" {
		inst.ID = model.NewInstanceID()
	}
	_, err = store.Update(ctx, a.st, func(tx *store.Tx) error {
		vpc, ok, err := store.GetJSON[model.VPC](tx, lattice.VPCKey(in.VPC))
		if err != nil {
			return err
		}
		if !ok {
			return wire.NotFound("VPC", in.VPC)
		}
		if _, err := actingAccount(c, vpc.Account); err != nil {
			return wire.NotFound("VPC", in.VPC)
		}
		var ck model.Checker
		ck.InstanceAddress("address", in.Address, vpc)
		if err := ck.Err(); err != nil {
			return err
		}
		if _, ok, err := store.GetJSON[model.Instance](tx, model.InstanceKey(inst.ID)); err != nil {
			return err
		} else if ok {
			return wire.Conflict("INSTANCE", inst.ID, "instance %s already exists", inst.ID)
		}
		inst.Account, inst.ARN = vpc.Account, model.InstanceARN(a.region, vpc.Account, inst.ID)
		return store.PutJSON(tx, model.InstanceKey(inst.ID), inst)
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, instanceView(&inst), nil
}

func instanceView(i *model.Instance) map[string]any {
	tags := i.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	v := map[string]any{"id": i.ID, "vpc": i.VpcID, "address": i.Address, "account": i.Account, "arn": i.ARN,
		"tags": tags, "createdAt": wire.Timestamp(i.CreatedAt)}
	if i.Name != "" {
		v["name"] = i.Name
	}
	return v
}

// listInstances lists the instances of an account (the caller's, or for
// admins the one named by ?account=), optionally of one VPC (?vpc=).
func (a *API) listInstances(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	acct, err := actingAccount(c, r.Query("account"))
	if err != nil {
		return 0, nil, err
	}
	all, err := list[model.Instance](ctx, a.st, model.InstancesPrefix)
	if err != nil {
		return 0, nil, err
	}
	vpc := r.Query("vpc")
	items := []map[string]any{}
	for _, i := range all {
		if i.Account == acct && (vpc == "" || i.VpcID == vpc) {
			items = append(items, instanceView(i))
		}
	}
	return http.StatusOK, map[string]any{"items": items}, nil
}

// visibleInstance loads an instance the caller may act on; others are not found.
func visibleInstance(ctx context.Context, tx *store.Tx, id string) (*model.Instance, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	i, ok, err := store.GetJSON[model.Instance](tx, model.InstanceKey(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, wire.NotFound("INSTANCE", id)
	}
	if _, err := actingAccount(c, i.Account); err != nil {
		return nil, wire.NotFound("INSTANCE", id)
	}
	return i, nil
}

func (a *API) getInstance(ctx context.Context, r *wire.Request) (int, any, error) {
	var out any
	_, err := store.Update(ctx, a.st, func(tx *store.Tx) error {
		i, err := visibleInstance(ctx, tx, r.Params["id"])
		if err == nil {
			out = instanceView(i)
		}
		return err
	})
	return http.StatusOK, out, err
}

// deleteInstance removes an instance. Targets registered with its ID stay
// registered; gateways send them nothing until it is declared again.
func (a *API) deleteInstance(ctx context.Context, r *wire.Request) (int, any, error) {
	_, err := store.Update(ctx, a.st, func(tx *store.Tx) error {
		if _, err := visibleInstance(ctx, tx, r.Params["id"]); err != nil {
			return err
		}
		tx.Delete(model.InstanceKey(r.Params["id"]))
		return nil
	})
	return http.StatusNoContent, nil, err
}
