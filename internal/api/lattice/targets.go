package lattice

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

type targetIn struct {
	ID   string `json:"id"`
	Port *int32 `json:"port"`
}

type targetFailure struct {
	ID             string `json:"id"`
	Port           *int32 `json:"port,omitempty"`
	FailureCode    string `json:"failureCode"`
	FailureMessage string `json:"failureMessage"`
}

type targetOut struct {
	ID   string `json:"id"`
	Port *int32 `json:"port,omitempty"`
}

func decodeTargetList(r *wire.Request, minN, maxN int) ([]targetIn, error) {
	var in struct {
		Targets []targetIn `json:"targets"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	var c model.Checker
	if len(in.Targets) < minN || len(in.Targets) > maxN {
		c.Addf("targets", "must list %d to %d targets, got %d", minN, maxN, len(in.Targets))
	}
	for i, t := range in.Targets {
		f := "targets[" + itoa(i) + "]"
		if len(t.ID) < 1 || len(t.ID) > 200 {
			c.Addf(f+".id", "must be 1 to 200 characters long")
		}
		if t.Port != nil {
			c.Range(f+".port", int64(*t.Port), 1, 65535)
		}
	}
	return in.Targets, c.Err()
}

// TargetGroupKey is where a target group of account is stored.
func TargetGroupKey(account, id string) string { return key(account, "tg", id) }

// TargetKey is where a registered target is stored.
func TargetKey(account, tgID, id string, port int32) string {
	return key(account, "target", tgID, id, strconv.Itoa(int(port)))
}

// targetPort is the port a target is registered on: its own, else the
// group's (none for LAMBDA targets).
func targetPort(tg *model.TargetGroup, p *int32) int32 {
	if tg.Type == model.TargetGroupTypeLambda {
		return 0
	}
	if p != nil {
		return *p
	}
	if cfg := tg.Config.Materialize(tg.Type); cfg != nil && cfg.Port != nil {
		return *cfg.Port
	}
	return 0
}

// checkTarget says why a target cannot join tg ("" when it can).
func checkTarget(tg *model.TargetGroup, vpc *model.VPC, t targetIn) (code, msg string) {
	switch tg.Type {
	case model.TargetGroupTypeIP:
		addr, err := netip.ParseAddr(t.ID)
		if err != nil {
			return "InvalidTargetId", "target id " + strconv.Quote(t.ID) + " is not an IP address"
		}
		want := tg.Config.Materialize(tg.Type).IPAddressType
		if (want == model.IPAddressTypeIPv6) != addr.Is6() {
			return "InvalidTargetId", "target " + t.ID + " is not an " + want + " address"
		}
		if vpc != nil && !inCIDRs(addr, vpc.CIDRs) {
			return "TargetNotInVpc", "target " + t.ID + " is outside the CIDR blocks of " + vpc.ID + " (" + strings.Join(vpc.CIDRs, ", ") + ")"
		}
	case model.TargetGroupTypeInstance:
		if !model.IsInstanceID(t.ID) {
			return "InvalidTargetId", "target id " + strconv.Quote(t.ID) + " is not an instance ID (i- followed by 8 or 17 hex digits)"
		}
	case model.TargetGroupTypeLambda:
		if arn, err := model.ParseARN(t.ID); err != nil || arn.Service != "lambda" || !strings.HasPrefix(arn.Resource, "function:") {
			return "InvalidTargetId", "target id " + strconv.Quote(t.ID) + " is not a Lambda function ARN"
		}
		if t.Port != nil {
			return "InvalidTargetId", "LAMBDA targets take no port"
		}
	case model.TargetGroupTypeALB:
		if arn, err := model.ParseARN(t.ID); err != nil || arn.Service != "elasticloadbalancing" || !strings.HasPrefix(arn.Resource, "loadbalancer/app/") {
			return "InvalidTargetId", "target id " + strconv.Quote(t.ID) + " is not an Application Load Balancer ARN"
		}
	}
	return "", ""
}

func inCIDRs(addr netip.Addr, cidrs []string) bool {
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Contains(addr) {
			return true
		}
	}
	return false
}

func (a *API) registerTargets(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.resolveTargetGroup(r, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	targets, err := decodeTargetList(r, 1, 100)
	if err != nil {
		return 0, nil, err
	}
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		tg, err := mustLoad[model.TargetGroup](tx, key(cl.Account, "tg", id), rtTargetGroup, id)
		if err != nil {
			return err
		}
		var vpc *model.VPC
		if tg.Config != nil && tg.Config.VpcIdentifier != "" {
			if vpc, _, err = store.GetJSON[model.VPC](tx, VPCKey(tg.Config.VpcIdentifier)); err != nil {
				return err
			}
		}
		existing, err := tx.List(key(cl.Account, "target", id) + "/")
		if err != nil {
			return err
		}
		count := len(existing)
		single := tg.Type == model.TargetGroupTypeLambda || tg.Type == model.TargetGroupTypeALB
		ok, failed := []targetOut{}, []targetFailure{}
		now := a.timestamp()
		for _, t := range targets {
			port := targetPort(tg, t.Port)
			outPort := &port
			if tg.Type == model.TargetGroupTypeLambda {
				outPort = nil
			}
			if code, msg := checkTarget(tg, vpc, t); code != "" {
				failed = append(failed, targetFailure{ID: t.ID, Port: t.Port, FailureCode: code, FailureMessage: msg})
				continue
			}
			k := TargetKey(cl.Account, id, t.ID, port)
			if prev, found, err := store.GetJSON[model.Target](tx, k); err != nil {
				return err
			} else if found {
				// Registering again is a no-op, except that it takes a
				// draining target back: it serves again from INITIAL.
				if prev.Status == model.TargetStatusDraining {
					prev.Status, prev.ReasonCode, prev.DrainUntil = model.TargetStatusInitial, "", nil
					if err := store.PutJSON(tx, k, prev); err != nil {
						return err
					}
				}
				ok = append(ok, targetOut{ID: t.ID, Port: outPort})
				continue
			}
			if single && count >= 1 {
				failed = append(failed, targetFailure{ID: t.ID, Port: t.Port, FailureCode: "TooManyTargets",
					FailureMessage: "a " + tg.Type + " target group holds exactly one target"})
				continue
			}
			if count >= a.quotas.TargetsPerTargetGroup {
				failed = append(failed, targetFailure{ID: t.ID, Port: t.Port, FailureCode: "ServiceQuotaExceeded",
					FailureMessage: "quota exceeded: at most " + itoa(a.quotas.TargetsPerTargetGroup) + " targets per target group (L-D71303F3)"})
				continue
			}
			if err := store.PutJSON(tx, k, model.Target{ID: t.ID, Port: port, Status: model.TargetStatusInitial, RegisteredAt: now, TargetGroupID: id}); err != nil {
				return err
			}
			count++
			ok = append(ok, targetOut{ID: t.ID, Port: outPort})
		}
		out = map[string]any{"successful": ok, "unsuccessful": failed}
		return nil
	})
	return http.StatusOK, out, err
}

func (a *API) deregisterTargets(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.resolveTargetGroup(r, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	targets, err := decodeTargetList(r, 1, 100)
	if err != nil {
		return 0, nil, err
	}
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		tg, err := mustLoad[model.TargetGroup](tx, key(cl.Account, "tg", id), rtTargetGroup, id)
		if err != nil {
			return err
		}
		ok, failed := []targetOut{}, []targetFailure{}
		deadline := a.timestamp().Add(a.drain)
		for _, t := range targets {
			port := targetPort(tg, t.Port)
			k := TargetKey(cl.Account, id, t.ID, port)
			target, found, err := store.GetJSON[model.Target](tx, k)
			if err != nil {
				return err
			}
			if !found {
				failed = append(failed, targetFailure{ID: t.ID, Port: t.Port, FailureCode: "TargetNotFound",
					FailureMessage: "target " + t.ID + " on port " + itoa(int(port)) + " is not registered in " + id})
				continue
			}
			if err := a.startDrain(tx, tg, k, target, deadline); err != nil {
				return err
			}
			o := targetOut{ID: t.ID}
			if tg.Type != model.TargetGroupTypeLambda {
				o.Port = &port
			}
			ok = append(ok, o)
		}
		out = map[string]any{"successful": ok, "unsuccessful": failed}
		return nil
	})
	return http.StatusOK, out, err
}

func (a *API) listTargets(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.resolveTargetGroup(r, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	filter, err := decodeTargetList(r, 0, 20)
	if err != nil {
		return 0, nil, err
	}
	var targets []*model.Target
	var tg *model.TargetGroup
	err = a.view(ctx, func(tx *store.Tx) error {
		if tg, err = mustLoad[model.TargetGroup](tx, key(cl.Account, "tg", id), rtTargetGroup, id); err != nil {
			return err
		}
		targets, err = store.ListJSON[model.Target](tx, key(cl.Account, "target", id)+"/")
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	if len(filter) > 0 {
		keep := targets[:0]
		for _, t := range targets {
			for _, f := range filter {
				if f.ID == t.ID && (f.Port == nil || *f.Port == t.Port) {
					keep = append(keep, t)
					break
				}
			}
		}
		targets = keep
	}
	page, next, err := paginate(r, "target/"+id, targets, func(t *model.Target) string { return t.ID + "/" + itoa(int(t.Port)) })
	if err != nil {
		return 0, nil, err
	}
	items := make([]map[string]any, 0, len(page))
	for _, t := range page {
		status, reason := t.EffectiveStatus(tg)
		v := map[string]any{"id": t.ID, "status": status}
		if tg.Type != model.TargetGroupTypeLambda {
			v["port"] = t.Port
		}
		if reason != "" {
			v["reasonCode"] = reason
		}
		items = append(items, v)
	}
	return http.StatusOK, listOut{Items: items, NextToken: next}, nil
}
