package policy

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file evaluates compiled policies against a Request: conditions,
// principals, actions and resources, and (*Compiled).Evaluate, which
// combines them with Deny-over-Allow. Nothing here allocates.

// holds reports whether condition c holds for r in a statement whose
// effect is Deny (deny) or Allow. The rules, from the IAM user guide
// (condition operators; single-valued vs. multivalued context keys):
//
//   - Null: "true" holds when the key is absent, "false" when present.
//   - Key absent: ...IfExists holds; a negated operator holds;
//     ForAllValues: holds; ForAnyValue: fails — even with IfExists, as
//     IAM resolves the set operator first (observed behaviour reported in
//     public write-ups and reproduced by iam-simulate 0.1.173); anything
//     else fails.
//   - ForAllValues: every request value must satisfy the operator;
//     ForAnyValue: at least one must. A single-valued key is a set of one.
//   - Several policy values are ORed; for negated operators the request
//     value must match none of them (an AND of the negations).
//   - Without a set operator, a key holding several values in the request
//     is ambiguous (IAM: "Multivalued context keys require a condition set
//     operator" and leaves the result undefined). Trellis fails closed:
//     the condition fails in an Allow statement and holds in a Deny
//     statement. This covers repeated query parameters and a header name
//     given twice — the case behind Envoy CVE-2021-32777, where authz and
//     backend read different copies of a header. A multi-valued key that
//     holds a single value (?page=2) is compared as that value; authz and
//     backend cannot disagree about it. (iam-simulate instead fails every
//     operator without a set prefix on a multi-valued key.)
func (c *ccond) holds(r *Request, deny bool) bool {
	v := r.lookup(c.key)
	n := v.count()
	if c.op == Null {
		absent := n == 0
		for _, want := range c.bools {
			if want == absent {
				return true
			}
		}
		return false
	}
	if n == 0 {
		switch c.set {
		case ForAllValues:
			return true
		case ForAnyValue:
			return false
		}
		return c.ifExists || c.neg
	}
	it := v.iter()
	switch c.set {
	case ForAllValues:
		for sc, ok := it.next(); ok; sc, ok = it.next() {
			if !c.holdsFor(sc, r) {
				return false
			}
		}
		return true
	case ForAnyValue:
		for sc, ok := it.next(); ok; sc, ok = it.next() {
			if c.holdsFor(sc, r) {
				return true
			}
		}
		return false
	}
	if n > 1 {
		return deny
	}
	sc, _ := it.next()
	return c.holdsFor(sc, r)
}

// holdsFor applies the operator to one request value.
func (c *ccond) holdsFor(sc scalar, r *Request) bool {
	anyMatch, anyUnresolved := false, false
	for i, n := 0, c.numValues(); i < n; i++ {
		switch c.compare(i, sc, r) {
		case matched:
			if !c.neg {
				return true
			}
			anyMatch = true
		case unresolved:
			anyUnresolved = true
		}
	}
	if c.neg {
		return !anyMatch && !anyUnresolved
	}
	return false
}

func (c *ccond) numValues() int {
	switch operators[c.op].values {
	case tString:
		return len(c.strs)
	case tARN:
		return len(c.arns)
	case tNumeric:
		return len(c.nums)
	case tDate:
		return len(c.times)
	case tBool:
		return len(c.bools)
	case tBinary:
		return len(c.bins)
	case tIP:
		return len(c.ips)
	}
	return 0
}

// compare applies the positive form of c's operator (StringEquals for
// StringNotEquals, ...) to policy value i and request value sc. A request
// value of the wrong type is unresolved: it matches nothing and fails
// negated operators too.
func (c *ccond) compare(i int, sc scalar, r *Request) matchResult {
	switch c.op {
	case StringEquals, StringNotEquals, StringLike, StringNotLike:
		if sc.kind != scString {
			return unresolved
		}
		return c.strs[i].match(sc.s, false, r)
	case StringEqualsIgnoreCase, StringNotEqualsIgnoreCase:
		if sc.kind != scString {
			return unresolved
		}
		return c.strs[i].match(sc.s, true, r)
	case ArnEquals, ArnLike, ArnNotEquals, ArnNotLike:
		if sc.kind != scString {
			return unresolved
		}
		return c.arns[i].match(sc.s, r)
	case NumericEquals, NumericNotEquals, NumericLessThan, NumericLessThanEquals,
		NumericGreaterThan, NumericGreaterThanEquals:
		x, ok := asNumber(sc)
		if !ok {
			return unresolved
		}
		return boolResult(compareOrdered(c.op, x, c.nums[i]))
	case DateEquals, DateNotEquals, DateLessThan, DateLessThanEquals,
		DateGreaterThan, DateGreaterThanEquals:
		t, ok := asTime(sc)
		if !ok {
			return unresolved
		}
		return boolResult(compareOrdered(c.op, t.Compare(c.times[i]), 0))
	case Bool:
		b, ok := asBool(sc)
		if !ok {
			return unresolved
		}
		return boolResult(b == c.bools[i])
	case BinaryEquals:
		if sc.kind != scString {
			return unresolved
		}
		return boolResult(sc.s == c.bins[i])
	case IpAddress, NotIpAddress:
		a, ok := asAddr(sc)
		if !ok {
			return unresolved
		}
		return boolResult(c.ips[i].Contains(a))
	}
	return unresolved
}

func boolResult(b bool) matchResult {
	if b {
		return matched
	}
	return noMatch
}

// compareOrdered applies the relation of a Numeric or Date operator to
// x and y (negated operators use equality; the caller negates).
func compareOrdered[T int | float64](op Operator, x, y T) bool {
	switch op {
	case NumericEquals, NumericNotEquals, DateEquals, DateNotEquals:
		return x == y
	case NumericLessThan, DateLessThan:
		return x < y
	case NumericLessThanEquals, DateLessThanEquals:
		return x <= y
	case NumericGreaterThan, DateGreaterThan:
		return x > y
	case NumericGreaterThanEquals, DateGreaterThanEquals:
		return x >= y
	}
	return false
}

func asNumber(sc scalar) (float64, bool) {
	switch sc.kind {
	case scNumber:
		return sc.n, true
	case scTime:
		return float64(sc.t.Unix()), true
	case scString:
		if isNumber(sc.s) {
			f, err := strconv.ParseFloat(sc.s, 64)
			return f, err == nil
		}
	}
	return 0, false
}

func asTime(sc scalar) (time.Time, bool) {
	switch sc.kind {
	case scTime:
		return sc.t, true
	case scNumber:
		return time.Unix(int64(sc.n), 0), true
	case scString:
		return parseDate(sc.s)
	}
	return time.Time{}, false
}

func asBool(sc scalar) (bool, bool) {
	switch sc.kind {
	case scBool:
		return sc.b, true
	case scString:
		if isBool(sc.s) {
			return strings.EqualFold(sc.s, "true"), true
		}
	}
	return false, false
}

func asAddr(sc scalar) (netip.Addr, bool) {
	switch sc.kind {
	case scAddr:
		return sc.ip, true
	case scString:
		if a, err := netip.ParseAddr(sc.s); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// element names the part of a statement that did not match.
type element uint8

const (
	elemNone element = iota
	elemPrincipal
	elemAction
	elemResource
	elemCondition
)

// applies reports whether statement st applies to r. When it does not,
// elem says which element failed first (in document order: principal,
// action, resource, conditions) and cond the failing condition's index.
func (st *cstmt) applies(r *Request) (ok bool, elem element, cond int) {
	if !st.principalApplies(&r.Principal) {
		return false, elemPrincipal, 0
	}
	if !st.actionApplies(r.Action) {
		return false, elemAction, 0
	}
	if !st.resourceApplies(r) {
		return false, elemResource, 0
	}
	for i := range st.conds {
		if !st.conds[i].holds(r, st.deny) {
			return false, elemCondition, i
		}
	}
	return true, elemNone, 0
}

// principalApplies evaluates Principal/NotPrincipal (IAM user guide,
// Principal and NotPrincipal elements):
//
//   - "*" (or {"AWS": "*"}) matches every caller, the anonymous one too.
//   - An account ("111122223333" or arn:aws:iam::111122223333:root)
//     matches every principal of that account.
//   - A user or role ARN matches exactly, so a role ARN matches all of its
//     sessions (their aws:PrincipalArn is the role ARN); an assumed-role
//     session ARN matches only that session.
//   - The anonymous caller matches only "*": Lattice documents that
//     anonymous requests "can only be allowed via Principal:*"
//     (lattice.md §5.3).
//   - NotPrincipal: the statement applies unless every identity of the
//     caller is listed — its session, its user or role, and its account
//     (IAM's NotPrincipal examples list all three for that reason). The
//     anonymous caller is listed only by "*"; but since anonymous callers
//     can only be allowed by Principal "*", a NotPrincipal Allow never
//     applies to them, while a NotPrincipal Deny does.
func (st *cstmt) principalApplies(p *Principal) bool {
	ps := st.principal
	if ps == nil {
		return true
	}
	if !st.notPrincipal {
		return ps.matches(p)
	}
	if ps.wildcard {
		return false
	}
	if p.Anonymous() {
		return st.deny
	}
	return !ps.excludesAll(p)
}

func (ps *principalSet) matches(p *Principal) bool {
	if ps.wildcard {
		return true
	}
	return in(ps.accounts, p.Account) || in(ps.arns, p.ARN) || in(ps.arns, p.SessionARN) ||
		in(ps.services, p.Service) || in(ps.federated, p.FederatedProvider)
}

// excludesAll reports whether every identity of the (authenticated)
// caller p is listed in a NotPrincipal set.
func (ps *principalSet) excludesAll(p *Principal) bool {
	if p.Account != "" && !in(ps.accounts, p.Account) {
		return false
	}
	if p.ARN != "" && !in(ps.arns, p.ARN) {
		if _, root := rootARNAccount(p.ARN); !root || !in(ps.accounts, p.Account) {
			return false
		}
	}
	if p.SessionARN != "" && !in(ps.arns, p.SessionARN) {
		return false
	}
	if p.Service != "" && !in(ps.services, p.Service) {
		return false
	}
	if p.FederatedProvider != "" && !in(ps.federated, p.FederatedProvider) {
		return false
	}
	return true
}

// in reports whether the sorted list holds s; "" is never held. Short
// lists are scanned: == rejects on length before comparing bytes, which
// beats ordered comparisons of ARNs that share long prefixes.
func in(list []string, s string) bool {
	if s == "" {
		return false
	}
	if len(list) <= 8 {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	_, ok := slices.BinarySearch(list, s)
	return ok
}

// actionApplies evaluates Action/NotAction: case-insensitive, with
// wildcards.
func (st *cstmt) actionApplies(a string) bool {
	switch a {
	case ActionInvoke:
		return st.actInvoke
	case ActionConnect:
		return st.actConnect
	}
	return st.actionMatches(a)
}

// resourceApplies evaluates Resource/NotResource: case-sensitive, with
// wildcards that may span ':' and '/' (Lattice documents "*/rates" and
// "*/*"), and policy variables. A value with an unresolved variable
// matches nothing; under NotResource it keeps the statement from applying.
func (st *cstmt) resourceApplies(r *Request) bool {
	for i := range st.resources {
		switch st.resources[i].match(r.Resource, false, r) {
		case matched:
			return !st.notResource
		case unresolved:
			if st.notResource {
				return false
			}
		}
	}
	return st.notResource
}

// Outcome is the result of evaluating one policy.
type Outcome uint8

const (
	// NoMatch: no statement applies (an implicit deny).
	NoMatch Outcome = iota
	// Allowed: an Allow statement applies and no Deny statement does.
	Allowed
	// Denied: a Deny statement applies (an explicit deny).
	Denied
)

// String returns "NoMatch", "Allowed" or "Denied".
func (o Outcome) String() string {
	switch o {
	case NoMatch:
		return "NoMatch"
	case Allowed:
		return "Allowed"
	case Denied:
		return "Denied"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Evaluate evaluates the policy for r: Denied if any Deny statement
// applies, else Allowed if any Allow statement does, else NoMatch.
// statement is the document index of the deciding statement (the first
// applying Deny, else the first applying Allow), or -1. It does not
// allocate. A nil *Compiled is a policy without statements.
func (c *Compiled) Evaluate(r *Request) (out Outcome, statement int) {
	if c == nil {
		return NoMatch, -1
	}
	if c.index != nil {
		return c.evaluateIndexed(r)
	}
	for i := range c.stmts {
		if out, st := c.try(i, r); out != NoMatch {
			return out, st
		}
	}
	return NoMatch, -1
}

// try evaluates statement i of c.stmts.
func (c *Compiled) try(i int, r *Request) (Outcome, int) {
	st := &c.stmts[i]
	if ok, _, _ := st.applies(r); !ok {
		return NoMatch, -1
	}
	if st.deny {
		return Denied, st.index
	}
	return Allowed, st.index
}

// evaluateIndexed visits, in the order of c.stmts, only the statements
// whose Principal can match the caller: those always checked and those
// listing the caller's account, ARN or session ARN. It merges the four
// ascending position lists on the fly, so the result equals a full scan.
func (c *Compiled) evaluateIndexed(r *Request) (Outcome, int) {
	ix := c.index
	p := &r.Principal
	lists := [4][]int32{ix.always}
	for i, k := range [3]string{p.Account, p.ARN, p.SessionARN} {
		if k != "" {
			lists[i+1] = ix.byKey[k]
		}
	}
	if len(lists[1])+len(lists[2])+len(lists[3]) == 0 {
		for _, i := range ix.always {
			if out, st := c.try(int(i), r); out != NoMatch {
				return out, st
			}
		}
		return NoMatch, -1
	}
	last := int32(-1)
	for {
		next, from := int32(-1), -1
		for i := range lists {
			if l := lists[i]; len(l) > 0 && (from < 0 || l[0] < next) {
				next, from = l[0], i
			}
		}
		if from < 0 {
			return NoMatch, -1
		}
		lists[from] = lists[from][1:]
		if next == last {
			continue // listed under two of the caller's keys
		}
		last = next
		if out, st := c.try(int(next), r); out != NoMatch {
			return out, st
		}
	}
}
