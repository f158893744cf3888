package lattice

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

// resolveChild resolves a listener or rule identifier: its ID, or its full
// nested ARN whose resource part must be parent + "/" + kind + "/" + id.
func (a *API) resolveChild(field, ident, prefix, kind, parent, resType, account string) (string, error) {
	if model.IsID(ident, prefix) {
		return ident, nil
	}
	arn, err := model.ParseARN(ident)
	if err != nil || arn.Service != "vpc-lattice" {
		return "", wire.Invalid(field, "must be a %s ID (%s-<17 characters>) or ARN, got %q", humanKind(resType), prefix, ident)
	}
	id, ok := strings.CutPrefix(arn.Resource, parent+"/"+kind+"/")
	if !ok || !model.IsID(id, prefix) {
		if strings.Contains(arn.Resource, "/"+kind+"/") {
			return "", wire.NotFound(resType, ident)
		}
		return "", wire.Invalid(field, "ARN %q is not a %s ARN of %s", ident, humanKind(resType), parent)
	}
	if arn.Partition != "aws" || arn.Account != account || arn.Region != a.region {
		return "", wire.NotFound(resType, ident)
	}
	return id, nil
}

// listenerCtx loads the service and listener named by the path.
func (a *API) listenerCtx(tx *store.Tx, r *wire.Request, account string) (*model.Service, *model.Listener, error) {
	svcID, err := a.resolveService(r, account)
	if err != nil {
		return nil, nil, err
	}
	lid, err := a.resolveChild("listenerIdentifier", r.Params["listenerIdentifier"], model.PrefixListener, "listener", "service/"+svcID, rtListener, account)
	if err != nil {
		return nil, nil, err
	}
	svc, err := mustLoad[model.Service](tx, key(account, "svc", svcID), rtService, svcID)
	if err != nil {
		return nil, nil, err
	}
	l, err := mustLoad[model.Listener](tx, key(account, "listener", svcID, lid), rtListener, lid)
	if err != nil {
		return nil, nil, err
	}
	return svc, l, nil
}

type createListenerIn struct {
	ClientToken   *string           `json:"clientToken"`
	Name          string            `json:"name"`
	Protocol      string            `json:"protocol"`
	Port          *int32            `json:"port"`
	DefaultAction *model.RuleAction `json:"defaultAction"`
	Tags          map[string]string `json:"tags"`
}

func (a *API) createListener(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	svcID, err := a.resolveService(r, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	var in createListenerIn
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var c model.Checker
	c.ClientToken("clientToken", in.ClientToken)
	c.ResourceName("name", in.Name, 3, 63, model.PrefixListener)
	c.Enum("protocol", in.Protocol, model.ProtocolHTTP, model.ProtocolHTTPS, model.ProtocolTLSPassthrough)
	port := int32(0)
	switch {
	case in.Port != nil:
		c.Range("port", int64(*in.Port), 1, 65535)
		port = *in.Port
	case in.Protocol == model.ProtocolHTTP:
		port = 80
	case in.Protocol == model.ProtocolHTTPS:
		port = 443
	case in.Protocol == model.ProtocolTLSPassthrough:
		c.Addf("port", "is required for TLS_PASSTHROUGH listeners")
	}
	c.RuleAction("defaultAction", in.DefaultAction)
	if in.Protocol == model.ProtocolTLSPassthrough && in.DefaultAction != nil && in.DefaultAction.Forward == nil {
		c.Addf("defaultAction", "a TLS_PASSTHROUGH listener's default action must forward to TCP target groups")
	}
	c.Tags("tags", in.Tags)
	if err := c.Err(); err != nil {
		return 0, nil, err
	}
	var status int
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		status, out, err = idempotent(tx, cl.Account, "CreateListener", in.ClientToken, r.HTTP.URL.EscapedPath(), r.Body, func() (int, any, error) {
			svc, err := mustLoad[model.Service](tx, key(cl.Account, "svc", svcID), rtService, svcID)
			if err != nil {
				return 0, nil, err
			}
			if in.Protocol == model.ProtocolTLSPassthrough && svc.CustomDomainName == "" {
				return 0, nil, wire.Invalid("protocol", "TLS_PASSTHROUGH needs a service with a custom domain name (routing is by SNI); service %s has none", svcID)
			}
			others, err := store.ListJSON[model.Listener](tx, key(cl.Account, "listener", svcID)+"/")
			if err != nil {
				return 0, nil, err
			}
			for _, o := range others {
				if o.Name == in.Name {
					return 0, nil, wire.Conflict(rtListener, o.ID, "service %s already has a listener named %q (%s)", svcID, in.Name, o.ID)
				}
				if o.Port == port {
					return 0, nil, wire.Conflict(rtListener, o.ID, "service %s already has a listener on port %d (%s)", svcID, port, o.ID)
				}
			}
			if len(others) >= a.quotas.ListenersPerService {
				return 0, nil, wire.Quota(rtListener, "L-D64E952E", "quota exceeded: at most %d listeners per service", a.quotas.ListenersPerService)
			}
			l := model.Listener{Meta: a.newMeta(cl.Account, model.PrefixListener, "service/"+svcID+"/listener/", in.Tags),
				Name: in.Name, ServiceID: svcID, ServiceARN: svc.ARN, Protocol: in.Protocol, Port: port}
			def := model.Rule{Meta: a.newMeta(cl.Account, model.PrefixRule, "service/"+svcID+"/listener/"+l.ID+"/rule/", nil),
				Name: "default", ServiceID: svcID, ListenerID: l.ID, IsDefault: true, Action: *in.DefaultAction}
			if err := a.bindTargetGroups(tx, cl.Account, svc, &l, def.ID, nil, &def.Action, "defaultAction"); err != nil {
				return 0, nil, err
			}
			l.DefaultAction = def.Action
			l.DefaultRuleID = def.ID
			if err := store.PutJSON(tx, key(cl.Account, "rule", l.ID, def.ID), def); err != nil {
				return 0, nil, err
			}
			if err := store.PutJSON(tx, key(cl.Account, "listener", svcID, l.ID), l); err != nil {
				return 0, nil, err
			}
			return http.StatusCreated, listenerView(&l, false), nil
		})
		return err
	})
	return status, out, err
}

func listenerView(l *model.Listener, full bool) map[string]any {
	out := map[string]any{"arn": l.ARN, "id": l.ID, "name": l.Name, "protocol": l.Protocol, "port": l.Port,
		"serviceArn": l.ServiceARN, "serviceId": l.ServiceID, "defaultAction": l.DefaultAction}
	if full {
		out["createdAt"] = wire.Timestamp(l.CreatedAt)
		out["lastUpdatedAt"] = wire.Timestamp(l.UpdatedAt)
	}
	return out
}

func (a *API) getListener(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var out any
	err = a.view(ctx, func(tx *store.Tx) error {
		_, l, err := a.listenerCtx(tx, r, cl.Account)
		if err != nil {
			return err
		}
		out = listenerView(l, true)
		return nil
	})
	return http.StatusOK, out, err
}

func (a *API) listListeners(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	svcID, err := a.resolveService(r, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	var ls []*model.Listener
	err = a.view(ctx, func(tx *store.Tx) error {
		if _, err := mustLoad[model.Service](tx, key(cl.Account, "svc", svcID), rtService, svcID); err != nil {
			return err
		}
		ls, err = store.ListJSON[model.Listener](tx, key(cl.Account, "listener", svcID)+"/")
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	page, next, err := paginate(r, "listener/"+svcID, ls, func(l *model.Listener) string { return l.ID })
	if err != nil {
		return 0, nil, err
	}
	items := make([]map[string]any, 0, len(page))
	for _, l := range page {
		items = append(items, map[string]any{"arn": l.ARN, "id": l.ID, "name": l.Name, "protocol": l.Protocol,
			"port": l.Port, "createdAt": wire.Timestamp(l.CreatedAt), "lastUpdatedAt": wire.Timestamp(l.UpdatedAt)})
	}
	return http.StatusOK, listOut{Items: items, NextToken: next}, nil
}

func (a *API) updateListener(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		DefaultAction *model.RuleAction `json:"defaultAction"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var c model.Checker
	c.RuleAction("defaultAction", in.DefaultAction)
	if err := c.Err(); err != nil {
		return 0, nil, err
	}
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		svc, l, err := a.listenerCtx(tx, r, cl.Account)
		if err != nil {
			return err
		}
		if l.Protocol == model.ProtocolTLSPassthrough && in.DefaultAction.Forward == nil {
			return wire.Invalid("defaultAction", "a TLS_PASSTHROUGH listener's default action must forward to TCP target groups")
		}
		def, err := mustLoad[model.Rule](tx, key(cl.Account, "rule", l.ID, l.DefaultRuleID), rtRule, l.DefaultRuleID)
		if err != nil {
			return err
		}
		next := *in.DefaultAction
		if err := a.bindTargetGroups(tx, cl.Account, svc, l, def.ID, &def.Action, &next, "defaultAction"); err != nil {
			return err
		}
		now := a.timestamp()
		def.Action, def.UpdatedAt = next, now
		l.DefaultAction, l.UpdatedAt = next, now
		if err := store.PutJSON(tx, key(cl.Account, "rule", l.ID, def.ID), def); err != nil {
			return err
		}
		out = listenerView(l, false)
		return store.PutJSON(tx, key(cl.Account, "listener", svc.ID, l.ID), l)
	})
	return http.StatusOK, out, err
}

func (a *API) deleteListener(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	err = a.update(ctx, func(tx *store.Tx) error {
		_, l, err := a.listenerCtx(tx, r, cl.Account)
		if err != nil {
			return err
		}
		return a.deleteListenerTx(tx, cl.Account, l)
	})
	return http.StatusNoContent, nil, err
}

// deleteListenerTx deletes a listener and all its rules, releasing the
// target groups they forwarded to.
func (a *API) deleteListenerTx(tx *store.Tx, account string, l *model.Listener) error {
	rules, err := store.ListJSON[model.Rule](tx, key(account, "rule", l.ID)+"/")
	if err != nil {
		return err
	}
	for _, rl := range rules {
		if err := a.releaseTargetGroups(tx, account, rl.ID, &rl.Action); err != nil {
			return err
		}
		tx.Delete(key(account, "rule", l.ID, rl.ID))
	}
	tx.Delete(key(account, "listener", l.ServiceID, l.ID))
	return nil
}

// bindTargetGroups resolves the target groups a rule's next action forwards
// to (rewriting identifiers to IDs), checks each exists, serves no other
// service and suits the listener's protocol, and enforces the
// target-groups-per-service quota; only when every check passed does it
// record the rule as a reference and release the groups only prev used, so
// a failed call changes nothing.
func (a *API) bindTargetGroups(tx *store.Tx, account string, svc *model.Service, l *model.Listener, ruleID string,
	prev, next *model.RuleAction, field string) error {
	var bind []*model.TargetGroup
	if next.Forward != nil {
		for i := range next.Forward.TargetGroups {
			wtg := &next.Forward.TargetGroups[i]
			f := field + ".forward.targetGroups[" + itoa(i) + "].targetGroupIdentifier"
			id, err := a.resolve(f, wtg.TargetGroupIdentifier, model.PrefixTargetGroup, "targetgroup", rtTargetGroup, account)
			if err != nil {
				return err
			}
			tg, err := mustLoad[model.TargetGroup](tx, key(account, "tg", id), rtTargetGroup, id)
			if err != nil {
				return err
			}
			if tg.ServiceID != "" && tg.ServiceID != svc.ID {
				return wire.Conflict(rtTargetGroup, id, "target group %s already serves service %s; a target group serves one service", id, tg.ServiceID)
			}
			if err := checkListenerTargetGroup(f, l, tg); err != nil {
				return err
			}
			for _, b := range bind {
				if b.ID == id {
					return wire.Invalid(f, "target group %s is listed twice", id)
				}
			}
			wtg.TargetGroupIdentifier = id
			bind = append(bind, tg)
		}
	}
	var dropped model.RuleAction
	if prev != nil && prev.Forward != nil {
		dropped.Forward = &model.ForwardAction{}
		for _, old := range prev.Forward.TargetGroups {
			if !forwardsTo(next, old.TargetGroupIdentifier) {
				dropped.Forward.TargetGroups = append(dropped.Forward.TargetGroups, old)
			}
		}
	}
	// Quota: the groups of the service after this change.
	tgs, err := store.ListJSON[model.TargetGroup](tx, key(account, "tg")+"/")
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, tg := range tgs {
		if tg.ServiceID == svc.ID && !(forwardsTo(&dropped, tg.ID) && len(tg.RuleRefs) == 1 && tg.RuleRefs[0] == ruleID) {
			used[tg.ID] = true
		}
	}
	for _, tg := range bind {
		used[tg.ID] = true
	}
	if len(used) > a.quotas.TargetGroupsPerService {
		return wire.Quota(rtTargetGroup, "L-3DEC3B9F", "quota exceeded: service %s would use %d target groups; the limit is %d", svc.ID, len(used), a.quotas.TargetGroupsPerService)
	}
	for _, tg := range bind {
		if !slices.Contains(tg.RuleRefs, ruleID) {
			tg.RuleRefs = append(tg.RuleRefs, ruleID)
		}
		tg.ServiceID = svc.ID
		if err := store.PutJSON(tx, key(account, "tg", tg.ID), tg); err != nil {
			return err
		}
	}
	return a.releaseTargetGroups(tx, account, ruleID, &dropped)
}

func forwardsTo(a *model.RuleAction, tgID string) bool {
	if a == nil || a.Forward == nil {
		return false
	}
	for _, t := range a.Forward.TargetGroups {
		if t.TargetGroupIdentifier == tgID {
			return true
		}
	}
	return false
}

// releaseTargetGroups removes ruleID from the references of the groups act forwards to.
func (a *API) releaseTargetGroups(tx *store.Tx, account, ruleID string, act *model.RuleAction) error {
	if act.Forward == nil {
		return nil
	}
	for _, wtg := range act.Forward.TargetGroups {
		tg, ok, err := store.GetJSON[model.TargetGroup](tx, key(account, "tg", wtg.TargetGroupIdentifier))
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		tg.RuleRefs = slices.DeleteFunc(tg.RuleRefs, func(s string) bool { return s == ruleID })
		if len(tg.RuleRefs) == 0 {
			tg.ServiceID = ""
		}
		if err := store.PutJSON(tx, key(account, "tg", tg.ID), tg); err != nil {
			return err
		}
	}
	return nil
}

// checkListenerTargetGroup enforces which target groups a listener may
// forward to (§3, §4.1–4.2).
func checkListenerTargetGroup(field string, l *model.Listener, tg *model.TargetGroup) error {
	proto, version := "", ""
	if tg.Config != nil {
		proto, version = tg.Config.Protocol, tg.Config.ProtocolVersion
	}
	switch {
	case l.Protocol == model.ProtocolTLSPassthrough && proto != model.ProtocolTCP:
		return wire.Invalid(field, "a TLS_PASSTHROUGH listener forwards only to TCP target groups; %s is %s", tg.ID, orType(proto, tg.Type))
	case l.Protocol != model.ProtocolTLSPassthrough && proto == model.ProtocolTCP:
		return wire.Invalid(field, "TCP target group %s can be used only by a TLS_PASSTHROUGH listener", tg.ID)
	case l.Protocol == model.ProtocolHTTP && (version == model.ProtocolVersionGRPC || version == model.ProtocolVersionHTTP2):
		return wire.Invalid(field, "target group %s uses %s, which needs an HTTPS listener", tg.ID, version)
	}
	return nil
}

func orType(proto, typ string) string {
	if proto != "" {
		return proto
	}
	return "a " + typ + " target group"
}
