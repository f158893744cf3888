package lattice

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Policy size limits (§2.3).
const (
	maxAuthPolicy     = 36864
	maxResourcePolicy = 10000
)

// policyTarget is a service network or service that holds policies.
type policyTarget struct {
	id, arn, authType string
	storeKey          string
}

// resolvePolicyTarget resolves an sn-/svc- ID or ARN and loads its owner.
func (a *API) resolvePolicyTarget(tx *store.Tx, field, ident, account string) (*policyTarget, error) {
	var prefix, kind, rt string
	switch {
	case strings.HasPrefix(ident, model.PrefixServiceNetwork+"-") || strings.Contains(ident, ":servicenetwork/"):
		prefix, kind, rt = model.PrefixServiceNetwork, "servicenetwork", rtServiceNetwork
	case strings.HasPrefix(ident, model.PrefixService+"-") || strings.Contains(ident, ":service/"):
		prefix, kind, rt = model.PrefixService, "service", rtService
	default:
		return nil, wire.Invalid(field, "must be the ID or ARN of a service network or service, got %q", ident)
	}
	id, err := a.resolve(field, ident, prefix, kind, rt, account)
	if err != nil {
		return nil, err
	}
	if prefix == model.PrefixServiceNetwork {
		sn, err := mustLoad[model.ServiceNetwork](tx, key(account, "sn", id), rt, id)
		if err != nil {
			return nil, err
		}
		return &policyTarget{id: id, arn: sn.ARN, authType: sn.AuthType, storeKey: key(account, "sn", id)}, nil
	}
	svc, err := mustLoad[model.Service](tx, key(account, "svc", id), rt, id)
	if err != nil {
		return nil, err
	}
	return &policyTarget{id: id, arn: svc.ARN, authType: svc.AuthType, storeKey: key(account, "svc", id)}, nil
}

// checkPolicy parses doc strictly and turns its problems into a
// ValidationException whose fieldList names each location.
func checkPolicy(doc string, kind policy.Kind, maxSize int) error {
	if strings.TrimSpace(doc) == "" {
		return wire.Invalid("policy", "is required and must contain a JSON policy document")
	}
	_, err := policy.Parse([]byte(doc), policy.ParseOptions{Kind: kind, MaxSize: maxSize})
	if err == nil {
		return nil
	}
	var ve *policy.ValidationError
	if !errors.As(err, &ve) {
		return wire.Invalid("policy", "%v", err)
	}
	var c model.Checker
	for _, p := range ve.Problems {
		name := "policy"
		if p.Path != "" {
			name += "." + p.Path
		}
		c.Addf(name, "%s", p.Message)
	}
	return c.Err()
}

func policyState(authType string) string {
	if authType == model.AuthTypeAWSIAM {
		return model.AuthPolicyActive
	}
	return model.AuthPolicyInactive
}

func (a *API) putAuthPolicy(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Policy string `json:"policy"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if err := checkPolicy(in.Policy, policy.AuthPolicy, maxAuthPolicy); err != nil {
		return 0, nil, err
	}
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		t, err := a.resolvePolicyTarget(tx, "resourceIdentifier", r.Params["resourceIdentifier"], cl.Account)
		if err != nil {
			return err
		}
		k := key(cl.Account, "authpolicy", t.id)
		now := a.timestamp()
		p := model.Policy{ResourceARN: t.arn, Document: in.Policy, CreatedAt: now, UpdatedAt: now}
		if prev, ok, err := store.GetJSON[model.Policy](tx, k); err != nil {
			return err
		} else if ok {
			p.CreatedAt = prev.CreatedAt
		}
		out = map[string]any{"policy": p.Document, "state": policyState(t.authType)}
		return store.PutJSON(tx, k, p)
	})
	return http.StatusOK, out, err
}

func (a *API) getAuthPolicy(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var out any
	err = a.view(ctx, func(tx *store.Tx) error {
		t, err := a.resolvePolicyTarget(tx, "resourceIdentifier", r.Params["resourceIdentifier"], cl.Account)
		if err != nil {
			return err
		}
		p, err := mustLoad[model.Policy](tx, key(cl.Account, "authpolicy", t.id), rtAuthPolicy, t.id)
		if err != nil {
			return err
		}
		out = map[string]any{"policy": p.Document, "state": policyState(t.authType),
			"createdAt": wire.Timestamp(p.CreatedAt), "lastUpdatedAt": wire.Timestamp(p.UpdatedAt)}
		return nil
	})
	return http.StatusOK, out, err
}

func (a *API) deleteAuthPolicy(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	err = a.update(ctx, func(tx *store.Tx) error {
		t, err := a.resolvePolicyTarget(tx, "resourceIdentifier", r.Params["resourceIdentifier"], cl.Account)
		if err != nil {
			return err
		}
		k := key(cl.Account, "authpolicy", t.id)
		if _, err := mustLoad[model.Policy](tx, k, rtAuthPolicy, t.id); err != nil {
			return err
		}
		tx.Delete(k)
		return nil
	})
	return http.StatusNoContent, nil, err
}

// resourcePolicyTarget accepts only ARNs, as the API does for resourceArn.
func (a *API) resourcePolicyTarget(tx *store.Tx, r *wire.Request, account string) (*policyTarget, error) {
	arn := r.Params["resourceArn"]
	if len(arn) < 20 || len(arn) > 200 || !strings.HasPrefix(arn, "arn:") {
		return nil, wire.Invalid("resourceArn", "must be the ARN of a service network or service (20 to 200 characters), got %q", arn)
	}
	return a.resolvePolicyTarget(tx, "resourceArn", arn, account)
}

func (a *API) putResourcePolicy(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Policy string `json:"policy"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if err := checkPolicy(in.Policy, policy.ResourcePolicy, maxResourcePolicy); err != nil {
		return 0, nil, err
	}
	err = a.update(ctx, func(tx *store.Tx) error {
		t, err := a.resourcePolicyTarget(tx, r, cl.Account)
		if err != nil {
			return err
		}
		now := a.timestamp()
		return store.PutJSON(tx, key(cl.Account, "respolicy", t.id), model.Policy{ResourceARN: t.arn, Document: in.Policy, CreatedAt: now, UpdatedAt: now})
	})
	return http.StatusOK, struct{}{}, err
}

func (a *API) getResourcePolicy(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var out any
	err = a.view(ctx, func(tx *store.Tx) error {
		t, err := a.resourcePolicyTarget(tx, r, cl.Account)
		if err != nil {
			return err
		}
		p, err := mustLoad[model.Policy](tx, key(cl.Account, "respolicy", t.id), rtResourcePolicy, t.arn)
		if err != nil {
			return err
		}
		out = map[string]any{"policy": p.Document}
		return nil
	})
	return http.StatusOK, out, err
}

func (a *API) deleteResourcePolicy(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	err = a.update(ctx, func(tx *store.Tx) error {
		t, err := a.resourcePolicyTarget(tx, r, cl.Account)
		if err != nil {
			return err
		}
		k := key(cl.Account, "respolicy", t.id)
		if _, err := mustLoad[model.Policy](tx, k, rtResourcePolicy, t.arn); err != nil {
			return err
		}
		tx.Delete(k)
		return nil
	})
	return http.StatusNoContent, nil, err
}
