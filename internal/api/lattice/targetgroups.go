package lattice

import (
	"context"
	"net/http"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

type createTargetGroupIn struct {
	ClientToken *string                  `json:"clientToken"`
	Name        string                   `json:"name"`
	Type        string                   `json:"type"`
	Config      *model.TargetGroupConfig `json:"config"`
	Tags        map[string]string        `json:"tags"`
}

func (a *API) createTargetGroup(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var in createTargetGroupIn
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var c model.Checker
	c.ClientToken("clientToken", in.ClientToken)
	c.ResourceName("name", in.Name, 3, 128, model.PrefixTargetGroup)
	c.Enum("type", in.Type, model.TargetGroupTypeIP, model.TargetGroupTypeLambda, model.TargetGroupTypeInstance, model.TargetGroupTypeALB)
	if c.OK() {
		c.TargetGroupConfig(in.Type, in.Config)
	}
	c.Tags("tags", in.Tags)
	if err := c.Err(); err != nil {
		return 0, nil, err
	}
	var status int
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		status, out, err = idempotent(tx, cl.Account, "CreateTargetGroup", in.ClientToken, r.HTTP.URL.EscapedPath(), r.Body, func() (int, any, error) {
			if in.Config != nil && in.Config.VpcIdentifier != "" {
				vpc, ok, err := store.GetJSON[model.VPC](tx, VPCKey(in.Config.VpcIdentifier))
				if err != nil {
					return 0, nil, err
				}
				if !ok || vpc.Account != cl.Account {
					return 0, nil, wire.NotFound(rtVPC, in.Config.VpcIdentifier)
				}
			}
			if err := a.claimName(tx, cl.Account, "tg", in.Name, rtTargetGroup); err != nil {
				return 0, nil, err
			}
			if err := a.checkQuota(tx, key(cl.Account, "tg")+"/", a.quotas.TargetGroups, rtTargetGroup, "L-BB11C6B9", "target groups per region"); err != nil {
				return 0, nil, err
			}
			tg := model.TargetGroup{Meta: a.newMeta(cl.Account, model.PrefixTargetGroup, "targetgroup/", in.Tags),
				Name: in.Name, Type: in.Type, Config: in.Config, Status: model.StatusActive}
			if err := a.putName(tx, cl.Account, "tg", in.Name, tg.ID); err != nil {
				return 0, nil, err
			}
			if err := store.PutJSON(tx, key(cl.Account, "tg", tg.ID), tg); err != nil {
				return 0, nil, err
			}
			return http.StatusCreated, tgView(&tg), nil
		})
		return err
	})
	return status, out, err
}

func tgView(tg *model.TargetGroup) map[string]any {
	out := map[string]any{"id": tg.ID, "arn": tg.ARN, "name": tg.Name, "type": tg.Type, "status": tg.Status}
	if cfg := tg.Config.Materialize(tg.Type); cfg != nil {
		out["config"] = cfg
	}
	return out
}

func (a *API) resolveTargetGroup(r *wire.Request, account string) (string, error) {
	return a.resolve("targetGroupIdentifier", r.Params["targetGroupIdentifier"], model.PrefixTargetGroup, "targetgroup", rtTargetGroup, account)
}

func (a *API) serviceARNs(tg *model.TargetGroup) []string {
	if tg.ServiceID == "" {
		return []string{}
	}
	return []string{a.arn(tg.Account, "service/"+tg.ServiceID)}
}

func (a *API) getTargetGroup(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.resolveTargetGroup(r, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	var out map[string]any
	err = a.view(ctx, func(tx *store.Tx) error {
		tg, err := mustLoad[model.TargetGroup](tx, key(cl.Account, "tg", id), rtTargetGroup, id)
		if err != nil {
			return err
		}
		out = tgView(tg)
		out["createdAt"] = wire.Timestamp(tg.CreatedAt)
		out["lastUpdatedAt"] = wire.Timestamp(tg.UpdatedAt)
		out["serviceArns"] = a.serviceARNs(tg)
		return nil
	})
	return http.StatusOK, out, err
}

func (a *API) listTargetGroups(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	vpcFilter, typeFilter := r.Query("vpcIdentifier"), r.Query("targetGroupType")
	var c model.Checker
	if typeFilter != "" {
		c.Enum("targetGroupType", typeFilter, model.TargetGroupTypeIP, model.TargetGroupTypeLambda, model.TargetGroupTypeInstance, model.TargetGroupTypeALB)
	}
	if vpcFilter != "" && (len(vpcFilter) < 5 || len(vpcFilter) > 50) {
		c.Addf("vpcIdentifier", "must be a VPC ID")
	}
	if err := c.Err(); err != nil {
		return 0, nil, err
	}
	var tgs []*model.TargetGroup
	err = a.view(ctx, func(tx *store.Tx) error {
		all, err := store.ListJSON[model.TargetGroup](tx, key(cl.Account, "tg")+"/")
		for _, tg := range all {
			if typeFilter != "" && tg.Type != typeFilter {
				continue
			}
			if vpcFilter != "" && (tg.Config == nil || tg.Config.VpcIdentifier != vpcFilter) {
				continue
			}
			tgs = append(tgs, tg)
		}
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	page, next, err := paginate(r, "tg/"+vpcFilter+"/"+typeFilter, tgs, func(tg *model.TargetGroup) string { return tg.ID })
	if err != nil {
		return 0, nil, err
	}
	items := make([]map[string]any, 0, len(page))
	for _, tg := range page {
		v := map[string]any{"id": tg.ID, "arn": tg.ARN, "name": tg.Name, "type": tg.Type, "status": tg.Status,
			"createdAt": wire.Timestamp(tg.CreatedAt), "lastUpdatedAt": wire.Timestamp(tg.UpdatedAt), "serviceArns": a.serviceARNs(tg)}
		if cfg := tg.Config.Materialize(tg.Type); cfg != nil {
			if cfg.Port != nil {
				v["port"] = *cfg.Port
			}
			for k, s := range map[string]string{"protocol": cfg.Protocol, "ipAddressType": cfg.IPAddressType,
				"vpcIdentifier": cfg.VpcIdentifier, "lambdaEventStructureVersion": cfg.LambdaEventStructureVersion} {
				if s != "" {
					v[k] = s
				}
			}
		}
		items = append(items, v)
	}
	return http.StatusOK, listOut{Items: items, NextToken: next}, nil
}

func (a *API) updateTargetGroup(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.resolveTargetGroup(r, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		HealthCheck *model.HealthCheckConfig `json:"healthCheck"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var c model.Checker
	if in.HealthCheck == nil {
		c.Addf("healthCheck", "is required")
	} else {
		c.HealthCheck("healthCheck", in.HealthCheck)
	}
	if err := c.Err(); err != nil {
		return 0, nil, err
	}
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		tg, err := mustLoad[model.TargetGroup](tx, key(cl.Account, "tg", id), rtTargetGroup, id)
		if err != nil {
			return err
		}
		if tg.Type == model.TargetGroupTypeLambda || tg.Type == model.TargetGroupTypeALB {
			return wire.Invalid("healthCheck", "%s target groups do not support Lattice health checks", tg.Type)
		}
		tg.Config.HealthCheck = in.HealthCheck
		tg.UpdatedAt = a.timestamp()
		out = tgView(tg)
		return store.PutJSON(tx, key(cl.Account, "tg", id), tg)
	})
	return http.StatusOK, out, err
}

func (a *API) deleteTargetGroup(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.resolveTargetGroup(r, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		tg, err := mustLoad[model.TargetGroup](tx, key(cl.Account, "tg", id), rtTargetGroup, id)
		if err != nil {
			return err
		}
		if len(tg.RuleRefs) > 0 {
			return wire.Conflict(rtTargetGroup, id, "target group %s is still used by %d rule(s) of service %s (%v); change or delete them first",
				id, len(tg.RuleRefs), tg.ServiceID, tg.RuleRefs)
		}
		targets, err := tx.List(key(cl.Account, "target", id) + "/")
		if err != nil {
			return err
		}
		for _, t := range targets {
			tx.Delete(t.Key)
		}
		a.dropName(tx, cl.Account, "tg", tg.Name)
		tx.Delete(key(cl.Account, "tg", id))
		out = map[string]any{"id": tg.ID, "arn": tg.ARN, "status": "DELETE_IN_PROGRESS"}
		return nil
	})
	return http.StatusOK, out, err
}
