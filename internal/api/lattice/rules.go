package lattice

import (
	"context"
	"errors"
	"net/http"
	"sort"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

type createRuleIn struct {
	ClientToken *string           `json:"clientToken"`
	Name        string            `json:"name"`
	Match       *model.RuleMatch  `json:"match"`
	Priority    *int32            `json:"priority"`
	Action      *model.RuleAction `json:"action"`
	Tags        map[string]string `json:"tags"`
}

// normalizeMatch stores headerMatches as an empty list rather than null,
// as Lattice returns it.
func normalizeMatch(m *model.RuleMatch) {
	if m != nil && m.HTTPMatch != nil && m.HTTPMatch.HeaderMatches == nil {
		m.HTTPMatch.HeaderMatches = []model.HeaderMatch{}
	}
}

func checkPriority(c *model.Checker, field string, p *int32, required bool) {
	if p == nil {
		if required {
			c.Addf(field, "is required")
		}
		return
	}
	c.Range(field, int64(*p), 1, model.MaxPriority)
}

func (a *API) createRule(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var in createRuleIn
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var c model.Checker
	c.ClientToken("clientToken", in.ClientToken)
	c.ResourceName("name", in.Name, 3, 63, model.PrefixRule)
	c.RuleMatch("match", in.Match)
	checkPriority(&c, "priority", in.Priority, true)
	c.RuleAction("action", in.Action)
	c.Tags("tags", in.Tags)
	if err := c.Err(); err != nil {
		return 0, nil, err
	}
	normalizeMatch(in.Match)
	var status int
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		status, out, err = idempotent(tx, cl.Account, "CreateRule", in.ClientToken, r.HTTP.URL.EscapedPath(), r.Body, func() (int, any, error) {
			svc, l, err := a.listenerCtx(tx, r, cl.Account)
			if err != nil {
				return 0, nil, err
			}
			if l.Protocol == model.ProtocolTLSPassthrough {
				return 0, nil, wire.Invalid("match", "a TLS_PASSTHROUGH listener has only its default rule; it cannot have rules")
			}
			rules, err := store.ListJSON[model.Rule](tx, key(cl.Account, "rule", l.ID)+"/")
			if err != nil {
				return 0, nil, err
			}
			n := 0
			for _, o := range rules {
				if !o.IsDefault && o.Name == in.Name {
					return 0, nil, wire.Conflict(rtRule, o.ID, "listener %s already has a rule named %q (%s)", l.ID, in.Name, o.ID)
				}
				if !o.IsDefault && o.Priority == *in.Priority {
					return 0, nil, wire.Conflict(rtRule, o.ID, "listener %s already has a rule with priority %d (%s)", l.ID, o.Priority, o.ID)
				}
				if !o.IsDefault {
					n++
				}
			}
			if n >= a.quotas.RulesPerListener {
				return 0, nil, wire.Quota(rtRule, "L-CF78395E", "quota exceeded: at most %d rules per listener", a.quotas.RulesPerListener)
			}
			rl := model.Rule{Meta: a.newMeta(cl.Account, model.PrefixRule, "service/"+svc.ID+"/listener/"+l.ID+"/rule/", in.Tags),
				Name: in.Name, ServiceID: svc.ID, ListenerID: l.ID, Priority: *in.Priority, Match: in.Match, Action: *in.Action}
			if err := a.bindTargetGroups(tx, cl.Account, svc, l, rl.ID, nil, &rl.Action, "action"); err != nil {
				return 0, nil, err
			}
			if err := store.PutJSON(tx, key(cl.Account, "rule", l.ID, rl.ID), rl); err != nil {
				return 0, nil, err
			}
			v := ruleView(&rl, false)
			delete(v, "isDefault")
			return http.StatusCreated, v, nil
		})
		return err
	})
	return status, out, err
}

func ruleView(rl *model.Rule, full bool) map[string]any {
	out := map[string]any{"arn": rl.ARN, "id": rl.ID, "name": rl.Name, "isDefault": rl.IsDefault, "action": rl.Action}
	if !rl.IsDefault {
		out["priority"] = rl.Priority
		out["match"] = rl.Match
	}
	if full {
		out["createdAt"] = wire.Timestamp(rl.CreatedAt)
		out["lastUpdatedAt"] = wire.Timestamp(rl.UpdatedAt)
	}
	return out
}

func (a *API) ruleCtx(tx *store.Tx, r *wire.Request, account string) (*model.Service, *model.Listener, *model.Rule, error) {
	svc, l, err := a.listenerCtx(tx, r, account)
	if err != nil {
		return nil, nil, nil, err
	}
	rid, err := a.resolveChild("ruleIdentifier", r.Params["ruleIdentifier"], model.PrefixRule, "rule", "service/"+svc.ID+"/listener/"+l.ID, rtRule, account)
	if err != nil {
		return nil, nil, nil, err
	}
	rl, err := mustLoad[model.Rule](tx, key(account, "rule", l.ID, rid), rtRule, rid)
	if err != nil {
		return nil, nil, nil, err
	}
	return svc, l, rl, nil
}

func (a *API) getRule(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var out any
	err = a.view(ctx, func(tx *store.Tx) error {
		_, _, rl, err := a.ruleCtx(tx, r, cl.Account)
		if err != nil {
			return err
		}
		out = ruleView(rl, true)
		return nil
	})
	return http.StatusOK, out, err
}

func (a *API) listRules(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var rules []*model.Rule
	var listenerID string
	err = a.view(ctx, func(tx *store.Tx) error {
		_, l, err := a.listenerCtx(tx, r, cl.Account)
		if err != nil {
			return err
		}
		listenerID = l.ID
		rules, err = store.ListJSON[model.Rule](tx, key(cl.Account, "rule", l.ID)+"/")
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	page, next, err := paginate(r, "rule/"+listenerID, rules, func(rl *model.Rule) string { return rl.ID })
	if err != nil {
		return 0, nil, err
	}
	items := make([]map[string]any, 0, len(page))
	for _, rl := range page {
		v := ruleView(rl, true)
		delete(v, "action")
		delete(v, "match")
		items = append(items, v)
	}
	return http.StatusOK, listOut{Items: items, NextToken: next}, nil
}

type ruleUpdate struct {
	RuleIdentifier string            `json:"ruleIdentifier"`
	Match          *model.RuleMatch  `json:"match"`
	Priority       *int32            `json:"priority"`
	Action         *model.RuleAction `json:"action"`
}

func checkRuleUpdate(c *model.Checker, prefix string, u *ruleUpdate) {
	if u.Match != nil {
		c.RuleMatch(prefix+"match", u.Match)
	}
	checkPriority(c, prefix+"priority", u.Priority, false)
	if u.Action != nil {
		c.RuleAction(prefix+"action", u.Action)
	}
}

// applyRuleUpdate changes rl in place (without the priority uniqueness
// check, which needs every rule of the listener).
func (a *API) applyRuleUpdate(tx *store.Tx, account string, svc *model.Service, l *model.Listener, rl *model.Rule, u *ruleUpdate, field string) error {
	if rl.IsDefault {
		return wire.Invalid(field+"ruleIdentifier", "rule %s is the listener's default rule; change it with UpdateListener", rl.ID)
	}
	if u.Action != nil {
		next := *u.Action
		if err := a.bindTargetGroups(tx, account, svc, l, rl.ID, &rl.Action, &next, field+"action"); err != nil {
			return err
		}
		rl.Action = next
	}
	if u.Match != nil {
		normalizeMatch(u.Match)
		rl.Match = u.Match
	}
	if u.Priority != nil {
		rl.Priority = *u.Priority
	}
	rl.UpdatedAt = a.timestamp()
	return nil
}

func (a *API) updateRule(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var in ruleUpdate
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var c model.Checker
	checkRuleUpdate(&c, "", &in)
	if err := c.Err(); err != nil {
		return 0, nil, err
	}
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		svc, l, rl, err := a.ruleCtx(tx, r, cl.Account)
		if err != nil {
			return err
		}
		if err := a.applyRuleUpdate(tx, cl.Account, svc, l, rl, &in, ""); err != nil {
			return err
		}
		rules, err := store.ListJSON[model.Rule](tx, key(cl.Account, "rule", l.ID)+"/")
		if err != nil {
			return err
		}
		for _, o := range rules {
			if o.ID != rl.ID && !o.IsDefault && o.Priority == rl.Priority {
				return wire.Conflict(rtRule, o.ID, "listener %s already has a rule with priority %d (%s)", l.ID, o.Priority, o.ID)
			}
		}
		out = ruleView(rl, false)
		return store.PutJSON(tx, key(cl.Account, "rule", l.ID, rl.ID), rl)
	})
	return http.StatusOK, out, err
}

func (a *API) deleteRule(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	err = a.update(ctx, func(tx *store.Tx) error {
		_, l, rl, err := a.ruleCtx(tx, r, cl.Account)
		if err != nil {
			return err
		}
		if rl.IsDefault {
			return wire.Invalid("ruleIdentifier", "rule %s is the listener's default rule; it is deleted with its listener", rl.ID)
		}
		if err := a.releaseTargetGroups(tx, cl.Account, rl.ID, &rl.Action); err != nil {
			return err
		}
		tx.Delete(key(cl.Account, "rule", l.ID, rl.ID))
		return nil
	})
	return http.StatusNoContent, nil, err
}

type ruleFailure struct {
	RuleIdentifier string `json:"ruleIdentifier"`
	FailureCode    string `json:"failureCode"`
	FailureMessage string `json:"failureMessage"`
}

// batchUpdateRule applies up to 10 rule updates in one transaction. Every
// update is checked on its own; the priority uniqueness check runs on the
// final state, so two rules can swap priorities in one call. Updates that
// fail are reported in "unsuccessful" and leave their rule unchanged.
func (a *API) batchUpdateRule(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Rules []ruleUpdate `json:"rules"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var c model.Checker
	if len(in.Rules) < 1 || len(in.Rules) > 10 {
		c.Addf("rules", "must list 1 to 10 rule updates, got %d", len(in.Rules))
	}
	for i := range in.Rules {
		u := &in.Rules[i]
		p := "rules[" + itoa(i) + "]."
		if u.RuleIdentifier == "" {
			c.Addf(p+"ruleIdentifier", "is required")
		}
		checkRuleUpdate(&c, p, u)
	}
	if err := c.Err(); err != nil {
		return 0, nil, err
	}
	var out map[string]any
	err = a.update(ctx, func(tx *store.Tx) error {
		svc, l, err := a.listenerCtx(tx, r, cl.Account)
		if err != nil {
			return err
		}
		rules, err := store.ListJSON[model.Rule](tx, key(cl.Account, "rule", l.ID)+"/")
		if err != nil {
			return err
		}
		byID := map[string]*model.Rule{}
		for _, rl := range rules {
			byID[rl.ID] = rl
		}
		var failed []ruleFailure
		applied := map[string]int{} // rule ID -> index of its update
		snapshot := map[string]model.Rule{}
		for i := range in.Rules {
			u := &in.Rules[i]
			fail := func(err error) {
				code, msg := "InternalServerException", err.Error()
				var we *wire.Error
				if errors.As(err, &we) {
					code, msg = we.Type, we.Message
				}
				failed = append(failed, ruleFailure{RuleIdentifier: u.RuleIdentifier, FailureCode: code, FailureMessage: msg})
			}
			rid, err := a.resolveChild("ruleIdentifier", u.RuleIdentifier, model.PrefixRule, "rule", "service/"+svc.ID+"/listener/"+l.ID, rtRule, cl.Account)
			if err != nil {
				fail(err)
				continue
			}
			rl, ok := byID[rid]
			if !ok {
				fail(wire.NotFound(rtRule, rid))
				continue
			}
			if _, dup := applied[rid]; dup {
				fail(wire.Invalid("ruleIdentifier", "rule %s appears twice in one batch", rid))
				continue
			}
			snapshot[rid] = *rl
			if err := a.applyRuleUpdate(tx, cl.Account, svc, l, rl, u, ""); err != nil {
				*rl = snapshot[rid]
				delete(snapshot, rid)
				fail(err)
				continue
			}
			applied[rid] = i
		}
		// Revert updates whose new priority collides in the final state,
		// until no collision remains.
		for {
			owner := map[int32][]*model.Rule{}
			for _, rl := range rules {
				if !rl.IsDefault {
					owner[rl.Priority] = append(owner[rl.Priority], rl)
				}
			}
			reverted := false
			for prio, rs := range owner {
				if len(rs) < 2 {
					continue
				}
				for _, rl := range rs {
					if _, ok := applied[rl.ID]; ok {
						u := in.Rules[applied[rl.ID]]
						old := snapshot[rl.ID]
						if u.Action != nil {
							if err := a.bindTargetGroups(tx, cl.Account, svc, l, rl.ID, &rl.Action, &old.Action, "action"); err != nil {
								return err
							}
						}
						*rl = old
						delete(applied, rl.ID)
						failed = append(failed, ruleFailure{RuleIdentifier: u.RuleIdentifier, FailureCode: wire.TypeConflict,
							FailureMessage: "priority " + itoa(int(prio)) + " is used by another rule of listener " + l.ID})
						reverted = true
					}
				}
			}
			if !reverted {
				break
			}
		}
		successful := []map[string]any{}
		ids := make([]string, 0, len(applied))
		for id := range applied {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return applied[ids[i]] < applied[ids[j]] })
		for _, id := range ids {
			rl := byID[id]
			if err := store.PutJSON(tx, key(cl.Account, "rule", l.ID, id), rl); err != nil {
				return err
			}
			successful = append(successful, ruleView(rl, false))
		}
		if failed == nil {
			failed = []ruleFailure{}
		}
		out = map[string]any{"successful": successful, "unsuccessful": failed}
		return nil
	})
	return http.StatusOK, out, err
}
