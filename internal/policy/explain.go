package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// This file explains a decision: the same evaluation as Decide, statement
// by statement, saying for each statement that does not apply which
// element failed first. It allocates freely; it backs `trellis policy
// explain`, not the data path. The verdict is Decide's own, so the two can
// never disagree.

// ExplainInput is a DecideInput with names for its policies (for example
// the ARNs they are attached to), used in the explanation.
type ExplainInput struct {
	DecideInput
	NetworkName   string
	ServiceName   string
	IdentityNames []string // parallel to IdentityPolicies; missing names become "identity policy <i>"
}

// Explanation is the explained decision.
type Explanation struct {
	Allowed bool `json:"allowed"`
	// DeniedBy is the access log's authDeniedReason: Network, Service or
	// Identity; "" when allowed.
	DeniedBy string `json:"deniedBy,omitempty"`
	// ExplicitDeny is set when a Deny statement decided.
	ExplicitDeny bool `json:"explicitDeny,omitempty"`
	// Message is the 403 body; "" when allowed.
	Message string             `json:"message,omitempty"`
	Layers  []LayerExplanation `json:"layers"`
}

// LayerExplanation explains one layer: network, service or identity.
type LayerExplanation struct {
	Layer string `json:"layer"`
	// Evaluated is false when the layer does not apply (authType NONE,
	// anonymous caller for the identity layer, or both authTypes NONE).
	Evaluated bool `json:"evaluated"`
	// Note says why a layer was skipped, or that AWS_IAM without a policy
	// denies everything.
	Note string `json:"note,omitempty"`
	// Result is Allowed, Denied or NoMatch for an evaluated layer.
	Result string `json:"result,omitempty"`
	// Policy, Statement and Sid name the deciding statement, when one
	// decided (Statement is -1 otherwise).
	Policy    string              `json:"policy,omitempty"`
	Statement int                 `json:"statement"`
	Sid       string              `json:"sid,omitempty"`
	Policies  []PolicyExplanation `json:"policies,omitempty"`
}

// PolicyExplanation explains one policy.
type PolicyExplanation struct {
	Name       string                 `json:"name"`
	Result     string                 `json:"result"`
	Statements []StatementExplanation `json:"statements"`
}

// StatementExplanation explains one statement, in document order.
type StatementExplanation struct {
	Index   int    `json:"index"`
	Sid     string `json:"sid,omitempty"`
	Effect  string `json:"effect"`
	Matched bool   `json:"matched"`
	// Mismatch is the first element that did not match, in document order
	// (principal, action, resource, conditions).
	Mismatch *Mismatch `json:"mismatch,omitempty"`
}

// Mismatch describes an element of a statement that did not match.
type Mismatch struct {
	// Element is "principal", "notPrincipal", "action", "notAction",
	// "resource", "notResource" or "condition".
	Element string `json:"element"`
	// Operator and Key are set for conditions, as written in the policy.
	Operator string `json:"operator,omitempty"`
	Key      string `json:"key,omitempty"`
	// RequestValues are the request's values for the element or key
	// (none when the key is absent); PolicyValues the policy's.
	RequestValues []string `json:"requestValues"`
	PolicyValues  []string `json:"policyValues"`
	// ResolvedPolicyValues are PolicyValues with their policy variables
	// replaced by the request's values (an unresolved one stays as
	// written); set only when some value holds a variable.
	ResolvedPolicyValues []string `json:"resolvedPolicyValues,omitempty"`
	// Reason adds what the values alone do not show, such as "key absent".
	Reason string `json:"reason,omitempty"`
}

// Explain evaluates like Decide and explains every statement of every
// evaluated policy.
func Explain(in ExplainInput) *Explanation {
	d := Decide(in.DecideInput)
	r := in.Request
	if r == nil {
		r = &Request{}
	}
	e := &Explanation{Allowed: d.Allowed, DeniedBy: d.Reason(), ExplicitDeny: d.Explicit, Message: d.Message()}
	anyIAM := in.NetworkIAM || in.ServiceIAM

	e.Layers = append(e.Layers,
		explainResourceLayer("network", in.NetworkIAM, anyIAM, in.NetworkPolicy, nameOr(in.NetworkName, "service network auth policy"), r),
		explainResourceLayer("service", in.ServiceIAM, anyIAM, in.ServicePolicy, nameOr(in.ServiceName, "service auth policy"), r))

	id := LayerExplanation{Layer: "identity", Statement: -1}
	switch {
	case !anyIAM:
		id.Note = "not evaluated: both authTypes are NONE"
	case r.Principal.Anonymous():
		id.Note = "not evaluated: anonymous caller (no identity-based policies)"
	default:
		id.Evaluated = true
		out, stmt, pol := identitySide(in.IdentityPolicies, r)
		id.Result = out.String()
		if len(in.IdentityPolicies) == 0 {
			id.Note = "the caller has no identity-based policies"
		}
		for i, c := range in.IdentityPolicies {
			name := "identity policy " + strconv.Itoa(i)
			if i < len(in.IdentityNames) && in.IdentityNames[i] != "" {
				name = in.IdentityNames[i]
			}
			if c == nil || c.kind != IdentityPolicy {
				id.Policies = append(id.Policies, PolicyExplanation{Name: name, Result: "ignored: not compiled as an identity policy"})
				continue
			}
			id.Policies = append(id.Policies, explainPolicy(c, name, r))
			if i == pol {
				id.Policy, id.Statement, id.Sid = name, stmt, c.src.Statements[stmt].Sid
			}
		}
	}
	e.Layers = append(e.Layers, id)
	return e
}

func nameOr(name, def string) string {
	if name != "" {
		return name
	}
	return def
}

func explainResourceLayer(layer string, iam, anyIAM bool, c *Compiled, name string, r *Request) LayerExplanation {
	le := LayerExplanation{Layer: layer, Statement: -1}
	switch {
	case !iam:
		le.Note = "not evaluated: authType NONE"
		if !anyIAM {
			le.Note = "not evaluated: both authTypes are NONE"
		}
		return le
	case c == nil:
		le.Evaluated, le.Result = true, NoMatch.String()
		le.Note = "authType AWS_IAM with no auth policy denies every request"
		return le
	case c.kind == IdentityPolicy:
		le.Evaluated, le.Result = true, NoMatch.String()
		le.Note = "the policy was compiled as an identity policy and is ignored"
		return le
	}
	le.Evaluated = true
	out, stmt := c.Evaluate(r)
	le.Result = out.String()
	if stmt >= 0 {
		le.Policy, le.Statement, le.Sid = name, stmt, c.src.Statements[stmt].Sid
	}
	le.Policies = []PolicyExplanation{explainPolicy(c, name, r)}
	return le
}

func explainPolicy(c *Compiled, name string, r *Request) PolicyExplanation {
	out, _ := c.Evaluate(r)
	pe := PolicyExplanation{Name: name, Result: out.String(), Statements: make([]StatementExplanation, len(c.src.Statements))}
	for i := range c.stmts {
		st := &c.stmts[i]
		src := &c.src.Statements[st.index]
		se := StatementExplanation{Index: st.index, Sid: src.Sid, Effect: string(src.Effect)}
		ok, elem, ci := st.applies(r)
		se.Matched = ok
		if !ok {
			se.Mismatch = explainMismatch(st, src, elem, ci, r)
		}
		pe.Statements[st.index] = se
	}
	return pe
}

func explainMismatch(st *cstmt, src *Statement, elem element, ci int, r *Request) *Mismatch {
	switch elem {
	case elemPrincipal:
		m := &Mismatch{Element: "principal", RequestValues: principalValues(&r.Principal)}
		pr := src.Principal
		if st.notPrincipal {
			m.Element, pr = "notPrincipal", src.NotPrincipal
			m.Reason = "every identity of the caller is listed"
			if r.Principal.Anonymous() {
				m.Reason = "a NotPrincipal Allow never applies to anonymous callers"
			}
		} else if r.Principal.Anonymous() {
			m.Reason = "anonymous callers match only Principal \"*\""
		}
		m.PolicyValues = principalStrings(pr)
		return m
	case elemAction:
		m := &Mismatch{Element: "action", RequestValues: []string{r.Action}, PolicyValues: src.Action}
		if st.notAction {
			m.Element, m.PolicyValues = "notAction", src.NotAction
		}
		return m
	case elemResource:
		m := &Mismatch{Element: "resource", RequestValues: []string{r.Resource}, PolicyValues: src.Resource}
		if st.notResource {
			m.Element, m.PolicyValues = "notResource", src.NotResource
		}
		for i := range st.resources {
			if !st.resources[i].resolvable(r) {
				m.Reason = "a policy variable has no value in the request"
			}
		}
		m.ResolvedPolicyValues = renderPatterns(st.resources, r)
		return m
	case elemCondition:
		return explainCondition(&st.conds[ci], r)
	}
	return nil
}

func principalValues(p *Principal) []string {
	if p.Anonymous() {
		return []string{"anonymous"}
	}
	var out []string
	for _, s := range []string{p.SessionARN, p.ARN, p.Account, p.Service, p.FederatedProvider} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func principalStrings(p *Principals) []string {
	if p == nil {
		return nil
	}
	var out []string
	if p.Wildcard {
		out = append(out, "*")
	}
	out = append(out, p.AWS...)
	out = append(out, p.Service...)
	out = append(out, p.Federated...)
	return append(out, p.CanonicalUser...)
}

func explainCondition(c *ccond, r *Request) *Mismatch {
	m := &Mismatch{Element: "condition", Operator: c.src.Operator, Key: c.src.Key, PolicyValues: c.src.Values}
	v := r.lookup(c.key)
	it := v.iter()
	for sc, ok := it.next(); ok; sc, ok = it.next() {
		m.RequestValues = append(m.RequestValues, formatScalar(sc))
	}
	n := len(m.RequestValues)
	switch {
	case c.key.id == kUnknown:
		m.Reason = "key absent: Trellis does not provide this key"
	case n == 0:
		m.Reason = "key absent from the request"
	case c.op == Null:
		m.Reason = "key present"
	case n > 1 && c.set == SetOpNone:
		m.Reason = strconv.Itoa(n) + " values without a ForAllValues:/ForAnyValue: prefix: ambiguous, fails closed"
	default:
		for i := range c.strs {
			if !c.strs[i].resolvable(r) {
				m.Reason = "a policy variable has no value in the request"
			}
		}
		for i := range c.arns {
			a := &c.arns[i]
			if !a.valid {
				m.Reason = "policy value " + strconv.Quote(a.raw) + " is not an ARN of six parts"
			}
			for j := range a.parts {
				if !a.parts[j].resolvable(r) {
					m.Reason = "a policy variable has no value in the request"
				}
			}
		}
	}
	if m.RequestValues == nil {
		m.RequestValues = []string{}
	}
	if len(c.strs) > 0 {
		m.ResolvedPolicyValues = renderPatterns(c.strs, r)
	}
	if len(c.arns) > 0 {
		vars := false
		out := make([]string, len(c.arns))
		for i := range c.arns {
			a := &c.arns[i]
			out[i] = a.raw
			if !a.valid {
				continue
			}
			parts := make([]string, len(a.parts))
			for j := range a.parts {
				vars = vars || a.parts[j].vars
				parts[j] = a.parts[j].render(r)
			}
			out[i] = strings.Join(parts, ":")
		}
		if vars {
			m.ResolvedPolicyValues = out
		}
	}
	return m
}

// renderPatterns returns the patterns with their variables resolved, or
// nil when none holds a variable.
func renderPatterns(ps []pattern, r *Request) []string {
	vars := false
	for i := range ps {
		vars = vars || ps[i].vars
	}
	if !vars {
		return nil
	}
	out := make([]string, len(ps))
	for i := range ps {
		out[i] = ps[i].render(r)
	}
	return out
}

// render writes p with its variables replaced by their values in r; an
// unresolved variable is written as in the policy.
func (p *pattern) render(r *Request) string {
	if !p.vars {
		return p.raw
	}
	var b strings.Builder
	for i := range p.toks {
		t := &p.toks[i]
		switch t.kind {
		case tokLit:
			b.WriteString(t.text)
		case tokStar:
			b.WriteByte('*')
		case tokOne:
			b.WriteByte('?')
		case tokVar:
			if v, ok := resolveVar(t, r); ok {
				b.WriteString(v)
			} else {
				b.WriteString("${" + t.body + "}")
			}
		}
	}
	return b.String()
}

func formatScalar(sc scalar) string {
	switch sc.kind {
	case scString:
		return sc.s
	case scNumber:
		return strconv.FormatFloat(sc.n, 'f', -1, 64)
	case scTime:
		return sc.t.UTC().Format(time.RFC3339Nano)
	case scBool:
		return strconv.FormatBool(sc.b)
	case scAddr:
		return sc.ip.String()
	}
	return ""
}

// String renders the explanation in a few lines: the verdict, then per
// layer its result and one line per statement, for example:
//
//	denied by the Service layer (no Allow): AccessDeniedException: ...
//	network layer: not evaluated: authType NONE
//	service layer: NoMatch
//	  service policy "svc", statement 0 (Sid AllowOrders): Allow — not matched: condition StringEquals vpc-lattice-svcs:RequestMethod: request ["POST"], policy ["GET"]
//	identity layer: Allowed by "reader" statement 0
//	  identity policy "reader", statement 0: Allow — matched
func (e *Explanation) String() string {
	var b strings.Builder
	if e.Allowed {
		b.WriteString("allowed\n")
	} else {
		kind := "no Allow"
		if e.ExplicitDeny {
			kind = "explicit Deny"
		}
		fmt.Fprintf(&b, "denied by the %s layer (%s): %s\n", e.DeniedBy, kind, e.Message)
	}
	for _, l := range e.Layers {
		fmt.Fprintf(&b, "%s layer: ", l.Layer)
		switch {
		case !l.Evaluated:
			b.WriteString(l.Note + "\n")
			continue
		case l.Statement >= 0:
			fmt.Fprintf(&b, "%s by %q statement %d", l.Result, l.Policy, l.Statement)
			if l.Sid != "" {
				fmt.Fprintf(&b, " (Sid %s)", l.Sid)
			}
		default:
			b.WriteString(l.Result)
		}
		if l.Note != "" {
			b.WriteString(": " + l.Note)
		}
		b.WriteByte('\n')
		for _, p := range l.Policies {
			if len(p.Statements) == 0 {
				fmt.Fprintf(&b, "  %s policy %q: %s\n", l.Layer, p.Name, p.Result)
			}
			for _, s := range p.Statements {
				fmt.Fprintf(&b, "  %s policy %q, statement %d", l.Layer, p.Name, s.Index)
				if s.Sid != "" {
					fmt.Fprintf(&b, " (Sid %s)", s.Sid)
				}
				fmt.Fprintf(&b, ": %s — ", s.Effect)
				if s.Matched {
					b.WriteString("matched\n")
					continue
				}
				b.WriteString("not matched: " + s.Mismatch.String() + "\n")
			}
		}
	}
	return b.String()
}

// String renders a mismatch on one line.
func (m *Mismatch) String() string {
	var b strings.Builder
	b.WriteString(m.Element)
	if m.Operator != "" {
		b.WriteString(" " + m.Operator + " " + m.Key)
	}
	fmt.Fprintf(&b, ": request %s, policy %s", quoteList(m.RequestValues), quoteList(m.PolicyValues))
	if m.ResolvedPolicyValues != nil {
		fmt.Fprintf(&b, " = %s", quoteList(m.ResolvedPolicyValues))
	}
	if m.Reason != "" {
		b.WriteString(" (" + m.Reason + ")")
	}
	return b.String()
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
