package policy

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Compiled is a policy turned into matchers by Compile: wildcard patterns
// are tokenised, principal lists sorted, and numeric, date, Bool, IP and
// binary condition values parsed, so that evaluating a Request never
// parses, never builds a regexp and never allocates.
//
// A Compiled is immutable and safe for concurrent use. Build it when a
// snapshot arrives, not per request.
type Compiled struct {
	kind Kind
	src  *Policy
	// stmts holds the Deny statements first, then the Allow statements,
	// each group in document order, so that evaluation can stop at the
	// first Deny that applies, or else at the first Allow.
	stmts []cstmt
	// index, built for larger resource-side policies, finds the
	// statements that can apply to a caller without scanning them all.
	index *principalIndex
}

// principalIndex maps the principals a statement names to the statement,
// so that evaluation visits only statements that can apply to the caller.
// Positions are indexes into Compiled.stmts, ascending.
type principalIndex struct {
	// byKey maps account IDs and principal ARNs to the statements whose
	// Principal lists them.
	byKey map[string][]int32
	// always lists the statements that must be checked for every caller:
	// Principal "*", NotPrincipal, service and federated principals, and
	// statements without Principal.
	always []int32
}

// indexThreshold is the statement count from which Compile builds a
// principalIndex; below it a linear scan is as fast.
const indexThreshold = 12

// cstmt is one compiled statement.
type cstmt struct {
	index int // position in src.Statements
	deny  bool
	// principal is nil in identity policies: the statement applies to the
	// caller the policy is attached to.
	principal    *principalSet
	notPrincipal bool

	actions   []pattern
	notAction bool
	// actInvoke and actConnect precompute the Action/NotAction element for
	// the two Lattice actions, so the data path needs no matching.
	actInvoke, actConnect bool

	resources   []pattern
	notResource bool

	conds []ccond
}

// principalSet is a compiled Principal or NotPrincipal element.
type principalSet struct {
	wildcard  bool     // "*" or {"AWS": "*"}
	accounts  []string // sorted account IDs, from "123456789012" or ":root" ARNs
	arns      []string // sorted user, role, assumed-role and federated-user ARNs
	services  []string // sorted service principals
	federated []string // sorted identity providers
}

// ccond is one compiled condition: one operator applied to one key.
type ccond struct {
	src      *Condition
	op       Operator
	set      SetOp
	ifExists bool
	neg      bool // a negated operator (StringNotEquals, NotIpAddress, ...)
	key      keyRef

	// The parsed values; which slice is used depends on op.
	strs  []pattern    // String*
	arns  []arnPattern // Arn*
	nums  []float64    // Numeric*
	times []time.Time  // Date*
	bools []bool       // Bool, and Null ("true": the key must be absent)
	ips   []netip.Prefix
	bins  []string // BinaryEquals, decoded
}

// Compile turns a parsed policy into matchers. kind says where the policy
// is attached: statements of an IdentityPolicy must not name principals;
// those of an AuthPolicy or ResourcePolicy must. Policies returned by Parse
// for the same kind always compile; errors (wrapping ErrCompile) report
// hand-built policies that Parse would have rejected.
//
// Policy variables are interpreted when Version is 2012-10-17, as in IAM.
// The Compiled keeps p (Explain reports its Sids and values as written),
// so p must not be modified afterwards.
func Compile(p *Policy, kind Kind) (*Compiled, error) {
	if p == nil {
		return nil, fmt.Errorf("policy: nil policy: %w", ErrCompile)
	}
	if !kind.valid() {
		return nil, fmt.Errorf("policy: unknown policy kind %v: %w", kind, ErrCompile)
	}
	vars := p.Version == Version2012
	c := &Compiled{kind: kind, src: p, stmts: make([]cstmt, 0, len(p.Statements))}
	var allows []cstmt
	for i := range p.Statements {
		st, err := compileStatement(&p.Statements[i], i, kind, vars)
		if err != nil {
			return nil, fmt.Errorf("policy: statement %d: %w", i, err)
		}
		if st.deny {
			c.stmts = append(c.stmts, st)
		} else {
			allows = append(allows, st)
		}
	}
	c.stmts = append(c.stmts, allows...)
	if len(c.stmts) >= indexThreshold && kind != IdentityPolicy {
		c.index = buildIndex(c.stmts)
	}
	return c, nil
}

func buildIndex(stmts []cstmt) *principalIndex {
	ix := &principalIndex{byKey: make(map[string][]int32)}
	for i := range stmts {
		st := &stmts[i]
		ps := st.principal
		if ps == nil || st.notPrincipal || ps.wildcard || len(ps.services) > 0 || len(ps.federated) > 0 {
			ix.always = append(ix.always, int32(i))
			continue
		}
		for _, k := range ps.accounts {
			ix.byKey[k] = append(ix.byKey[k], int32(i))
		}
		for _, k := range ps.arns {
			ix.byKey[k] = append(ix.byKey[k], int32(i))
		}
	}
	return ix
}

// MustCompile is Parse followed by Compile, panicking on error. It is for
// tests and for policies built into the binary.
func MustCompile(doc string, kind Kind) *Compiled {
	p, err := Parse([]byte(doc), ParseOptions{Kind: kind})
	if err != nil {
		panic(err)
	}
	c, err := Compile(p, kind)
	if err != nil {
		panic(err)
	}
	return c
}

// Kind returns the kind the policy was compiled as.
func (c *Compiled) Kind() Kind { return c.kind }

// Policy returns the parsed policy c was compiled from. It must not be
// modified.
func (c *Compiled) Policy() *Policy { return c.src }

func compileStatement(s *Statement, index int, kind Kind, vars bool) (cstmt, error) {
	st := cstmt{index: index}
	switch s.Effect {
	case Allow:
	case Deny:
		st.deny = true
	default:
		return st, fmt.Errorf("effect %q: %w", s.Effect, ErrCompile)
	}

	hasPrincipal := s.Principal != nil || s.NotPrincipal != nil
	switch {
	case kind == IdentityPolicy && hasPrincipal:
		return st, fmt.Errorf("an identity policy cannot name principals: %w", ErrCompile)
	case kind != IdentityPolicy && !hasPrincipal:
		return st, fmt.Errorf("a %v statement needs Principal or NotPrincipal: %w", kind, ErrCompile)
	case s.Principal != nil && s.NotPrincipal != nil:
		return st, fmt.Errorf("both Principal and NotPrincipal: %w", ErrCompile)
	case s.Principal != nil:
		st.principal = compilePrincipals(s.Principal)
	case s.NotPrincipal != nil:
		st.principal, st.notPrincipal = compilePrincipals(s.NotPrincipal), true
	}

	acts := s.Action
	if s.NotAction != nil {
		acts, st.notAction = s.NotAction, true
	}
	if len(acts) == 0 || s.Action != nil && s.NotAction != nil {
		return st, fmt.Errorf("needs exactly one of Action and NotAction: %w", ErrCompile)
	}
	for _, a := range acts {
		// Actions hold no policy variables.
		p, err := compilePattern(a, true, false)
		if err != nil {
			return st, err
		}
		st.actions = append(st.actions, p)
	}
	st.actInvoke = st.actionMatches(ActionInvoke)
	st.actConnect = st.actionMatches(ActionConnect)

	res := s.Resource
	if s.NotResource != nil {
		res, st.notResource = s.NotResource, true
	}
	if len(res) == 0 || s.Resource != nil && s.NotResource != nil {
		return st, fmt.Errorf("needs exactly one of Resource and NotResource: %w", ErrCompile)
	}
	for _, r := range res {
		p, err := compilePattern(r, true, vars)
		if err != nil {
			return st, err
		}
		st.resources = append(st.resources, p)
	}

	for i := range s.Conditions {
		cc, err := compileCondition(&s.Conditions[i], vars)
		if err != nil {
			return st, fmt.Errorf("condition %s %s: %w", s.Conditions[i].Operator, s.Conditions[i].Key, err)
		}
		st.conds = append(st.conds, cc)
	}
	return st, nil
}

// actionMatches evaluates the Action/NotAction element for action.
func (st *cstmt) actionMatches(action string) bool {
	for i := range st.actions {
		if st.actions[i].match(action, true, nil) == matched {
			return !st.notAction
		}
	}
	return st.notAction
}

func compilePrincipals(p *Principals) *principalSet {
	ps := &principalSet{wildcard: p.Wildcard}
	for _, a := range p.AWS {
		switch {
		case a == "*":
			ps.wildcard = true
		case isAccountID(a):
			ps.accounts = append(ps.accounts, a)
		default:
			if acct, ok := rootARNAccount(a); ok {
				ps.accounts = append(ps.accounts, acct)
			} else {
				ps.arns = append(ps.arns, a)
			}
		}
	}
	// CanonicalUser principals name S3 identities, which never call a
	// Lattice service; they are kept out of the set and never match.
	ps.accounts = sortedUnique(ps.accounts)
	ps.arns = sortedUnique(ps.arns)
	ps.services = sortedUnique(slices.Clone(p.Service))
	ps.federated = sortedUnique(slices.Clone(p.Federated))
	return ps
}

// rootARNAccount returns the account of arn:<partition>:iam::<account>:root.
// The partition is not compared when principals are matched.
func rootARNAccount(s string) (string, bool) {
	parts, n := splitARN(s, false)
	if n == 6 && parts[0] == "arn" && parts[2] == "iam" && parts[3] == "" &&
		isAccountID(parts[4]) && parts[5] == "root" {
		return parts[4], true
	}
	return "", false
}

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return slices.Compact(s)
}

// negated reports whether op is one of IAM's negated operators, for which
// an absent key makes the condition true and several values combine with
// AND (IAM user guide, condition operators: "If the policy condition
// requires that the key is not matched, such as StringNotLike or
// ArnNotLike, and the right key is not present, the condition is true").
func negated(op Operator) bool {
	switch op {
	case StringNotEquals, StringNotEqualsIgnoreCase, StringNotLike,
		NumericNotEquals, DateNotEquals, NotIpAddress, ArnNotEquals, ArnNotLike:
		return true
	}
	return false
}

func compileCondition(c *Condition, vars bool) (ccond, error) {
	cc := ccond{src: c, op: c.Base, set: c.SetOp, ifExists: c.IfExists, neg: negated(c.Base), key: resolveKey(c.Key)}
	if c.Base == 0 || c.Base >= numOperators {
		return cc, fmt.Errorf("unknown operator: %w", ErrCompile)
	}
	if len(c.Values) == 0 {
		return cc, fmt.Errorf("no values: %w", ErrCompile)
	}
	for _, v := range c.Values {
		switch operators[c.Base].values {
		case tString:
			// StringEquals treats '*' and '?' literally; only StringLike and
			// StringNotLike have wildcards.
			wild := c.Base == StringLike || c.Base == StringNotLike
			p, err := compilePattern(v, wild, vars)
			if err != nil {
				return cc, err
			}
			cc.strs = append(cc.strs, p)
		case tARN:
			a, err := compileARNPattern(v, vars)
			if err != nil {
				return cc, err
			}
			cc.arns = append(cc.arns, a)
		case tNumeric:
			if !isNumber(v) {
				return cc, fmt.Errorf("value %q is not a number: %w", v, ErrCompile)
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return cc, fmt.Errorf("value %q: %w: %w", v, ErrCompile, err)
			}
			cc.nums = append(cc.nums, f)
		case tDate:
			t, ok := parseDate(v)
			if !ok {
				return cc, fmt.Errorf("value %q is not a date: %w", v, ErrCompile)
			}
			cc.times = append(cc.times, t)
		case tBool:
			if !isBool(v) {
				return cc, fmt.Errorf("value %q is not true or false: %w", v, ErrCompile)
			}
			cc.bools = append(cc.bools, strings.EqualFold(v, "true"))
		case tBinary:
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				b, err = base64.RawStdEncoding.DecodeString(v)
			}
			if err != nil {
				return cc, fmt.Errorf("value %q is not base64: %w", v, ErrCompile)
			}
			cc.bins = append(cc.bins, string(b))
		case tIP:
			p, ok := parseIPValue(v)
			if !ok {
				return cc, fmt.Errorf("value %q is not an IP address or CIDR block: %w", v, ErrCompile)
			}
			cc.ips = append(cc.ips, p)
		default:
			return cc, fmt.Errorf("operator %v: %w", c.Base, ErrCompile)
		}
	}
	return cc, nil
}

// parseDate parses an IAM date value: ISO 8601 (dateLayouts; a form
// without zone is UTC) or epoch seconds, optionally with a fraction.
func parseDate(s string) (time.Time, bool) {
	if s != "" && isDigit(s[0]) && !strings.ContainsAny(s, "-:T") {
		whole, frac, _ := strings.Cut(s, ".")
		if !allDigits(whole) || frac != "" && !allDigits(frac) || len(whole) > 12 {
			return time.Time{}, false
		}
		sec, err := strconv.ParseInt(whole, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		var nsec int64
		if frac != "" {
			f := (frac + "000000000")[:9]
			nsec, _ = strconv.ParseInt(f, 10, 64)
		}
		return time.Unix(sec, nsec).UTC(), true
	}
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// parseIPValue parses an IpAddress value: a CIDR block or a single
// address (a /32 or /128). IPv4-mapped IPv6 blocks of at least /96 are
// turned into the IPv4 block they stand for, since request addresses are
// unmapped before matching.
func parseIPValue(s string) (netip.Prefix, bool) {
	var p netip.Prefix
	if strings.IndexByte(s, '/') >= 0 {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return p, false
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return p, false
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), true
}

// CompileDocument parses and compiles a stored policy document of kind,
// with no size limit (the API enforced one when it stored the document):
// what a node does with each policy of a snapshot.
func CompileDocument(doc []byte, kind Kind) (*Compiled, error) {
	p, err := Parse(doc, ParseOptions{Kind: kind})
	if err != nil {
		return nil, err
	}
	return Compile(p, kind)
}

// InvokeResource is the resource of vpc-lattice-svcs:Invoke for a request
// to path (normalised, with its leading slash) of a service: the service
// ARN, "/", then the path without its leading slash, so "/" gives a
// trailing slash and a gRPC method gives <service ARN>/<pkg.Service>/<Method>
// (lattice.md §5.3).
func InvokeResource(serviceARN, path string) string {
	if len(path) > 0 && path[0] == '/' {
		path = path[1:]
	}
	return serviceARN + "/" + path
}
