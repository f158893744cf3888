package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The two Lattice data-plane actions.
const (
	// ActionInvoke is checked for HTTP, HTTPS and gRPC requests.
	ActionInvoke = "vpc-lattice-svcs:Invoke"
	// ActionConnect is checked for TLS-passthrough and TCP connections.
	ActionConnect = "vpc-lattice-svcs:Connect"
)

// KeyValue is one tag, header or query parameter.
type KeyValue struct {
	Key, Value string
}

// Principal is the caller as policy evaluation sees it. The zero Principal
// is the anonymous caller (a request that was not SigV4-signed).
//
// Empty strings mean "not present" for every field: IAM has no empty
// principal ARNs, accounts or names.
type Principal struct {
	// ARN is aws:PrincipalArn: the IAM user ARN; for a role session the
	// ARN of the role, including its path
	// (arn:aws:iam::111122223333:role/path/name); the account root ARN
	// for the root user. A Principal element naming this ARN matches.
	ARN string
	// SessionARN is the identity the caller signed as, when that is not
	// ARN: an STS assumed-role session
	// (arn:aws:sts::111122223333:assumed-role/name/session) or a federated
	// user. A Principal element naming this exact session matches, and
	// 403 messages show it.
	SessionARN string
	// Account is aws:PrincipalAccount. A Principal element naming the
	// account (as "111122223333" or arn:aws:iam::111122223333:root)
	// matches every principal of the account.
	Account string
	// Type is aws:PrincipalType: Account, User, AssumedRole or
	// FederatedUser. For the anonymous caller it may be left empty; the
	// key then reads "Anonymous", as Lattice documents.
	Type string
	// OrgID is aws:PrincipalOrgID, OrgPaths aws:PrincipalOrgPaths (a
	// multi-valued key).
	OrgID    string
	OrgPaths []string
	// Tags are aws:PrincipalTag/<key>. Tag keys are compared
	// case-insensitively, as IAM tag keys are.
	Tags []KeyValue
	// UserID is aws:userid (AIDA... for users, "<role-id>:<session>" for
	// role sessions, the account ID for the root user); Username is
	// aws:username (IAM users only).
	UserID   string
	Username string
	// Service is the service principal (for example
	// "lambda.amazonaws.com") when an AWS service calls on its own
	// behalf: aws:PrincipalServiceName, and aws:PrincipalIsAWSService is
	// then true. It is matched by Principal {"Service": ...}.
	Service string
	// FederatedProvider is aws:FederatedProvider, matched by Principal
	// {"Federated": ...}.
	FederatedProvider string
}

// Anonymous reports whether p is the anonymous caller.
func (p *Principal) Anonymous() bool {
	return p.ARN == "" && p.SessionARN == "" && p.Account == "" && p.Service == "" && p.FederatedProvider == ""
}

// Display returns the name 403 messages show: the session ARN, else the
// ARN, else "anonymous".
func (p *Principal) Display() string {
	switch {
	case p.SessionARN != "":
		return p.SessionARN
	case p.ARN != "":
		return p.ARN
	case p.Service != "":
		return p.Service
	case p.FederatedProvider != "":
		return p.FederatedProvider
	}
	return "anonymous"
}

// PrincipalFromARN builds the Principal of a caller from the ARN it
// authenticated as: an IAM user, role or root ARN, an STS assumed-role
// session ARN or an STS federated-user ARN. For a session, ARN becomes
// arn:<partition>:iam::<account>:role/<name>: a session ARN does not carry
// the role's path, so a caller that knows the role's real ARN should set
// ARN itself. Tags, organization and user ID are left for the caller to
// fill in.
func PrincipalFromARN(arn string) (Principal, error) {
	parts, n := splitARN(arn, false)
	if n != 6 || parts[0] != "arn" || !validPartition(parts[1]) || parts[3] != "" || !isAccountID(parts[4]) {
		return Principal{}, fmt.Errorf("policy: %q is not an IAM or STS principal ARN: %w", arn, ErrCompile)
	}
	partition, account, res := parts[1], parts[4], parts[5]
	kind, rest, _ := strings.Cut(res, "/")
	p := Principal{Account: account}
	switch parts[2] + ":" + kind {
	case "iam:root":
		if res != "root" {
			break
		}
		p.ARN, p.Type, p.UserID = arn, "Account", account
		return p, nil
	case "iam:user":
		if !validIAMPath(rest) {
			break
		}
		p.ARN, p.Type = arn, "User"
		p.Username = rest[strings.LastIndexByte(rest, '/')+1:]
		return p, nil
	case "iam:role":
		if !validIAMPath(rest) {
			break
		}
		p.ARN, p.Type = arn, "AssumedRole"
		return p, nil
	case "sts:assumed-role":
		role, session, ok := strings.Cut(rest, "/")
		if !ok || !validIAMName(role) || !validIAMName(session) {
			break
		}
		p.SessionARN, p.Type = arn, "AssumedRole"
		p.ARN = "arn:" + partition + ":iam::" + account + ":role/" + role
		return p, nil
	case "sts:federated-user":
		if !validIAMName(rest) {
			break
		}
		p.ARN, p.SessionARN, p.Type = arn, arn, "FederatedUser"
		return p, nil
	}
	return Principal{}, fmt.Errorf("policy: %q is not an IAM or STS principal ARN: %w", arn, ErrCompile)
}

// Request is the request context of one evaluation: the action, the
// resource, the caller and the condition keys. The data plane fills one
// per request (it can live on the stack or in a pooled struct); nothing
// in it is retained by evaluation.
//
// A key whose field holds its zero value ("" , 0, zero time, invalid
// address) is absent from the context, except SecureTransport, which is
// always present as IAM's aws:SecureTransport is.
type Request struct {
	// Action is ActionInvoke or ActionConnect.
	Action string
	// Resource is the ARN the request acts on: for Invoke
	// <service ARN>/<path without leading slash> (so "/" gives a trailing
	// "/", and gRPC gives <service ARN>/<package.Service>/<Method>); for
	// Connect the service ARN.
	Resource string

	Principal Principal

	// SourceIP is aws:SourceIp, the client address (IPv4-mapped IPv6
	// addresses are unmapped before matching).
	SourceIP netip.Addr
	// Time is aws:CurrentTime and aws:EpochTime. The data plane sets it
	// (time.Now is not called here, so tests are deterministic).
	Time time.Time
	// SecureTransport is aws:SecureTransport: the request arrived over TLS.
	SecureTransport bool
	// ResourceTags are aws:ResourceTag/<key>: the tags of the service.
	ResourceTags []KeyValue

	// The vpc-lattice-svcs condition keys (lattice.md §5.4).
	ServiceARN            string // vpc-lattice-svcs:ServiceArn; also gives aws:ResourceAccount
	ServiceNetworkARN     string // vpc-lattice-svcs:ServiceNetworkArn
	SourceVPC             string // vpc-lattice-svcs:SourceVpc
	SourceVPCOwnerAccount string // vpc-lattice-svcs:SourceVpcOwnerAccount
	Port                  int    // vpc-lattice-svcs:Port; 0 is absent
	Method                string // vpc-lattice-svcs:RequestMethod (Invoke only)
	Path                  string // vpc-lattice-svcs:RequestPath (Invoke only)
	// Headers are vpc-lattice-svcs:RequestHeader/<name>, names compared
	// case-insensitively. The key is single-valued: give one entry per
	// name (repeated fields combined with ", " as RFC 9110 §5.3 allows).
	// A name given twice is ambiguous, and conditions on it fail closed
	// (see ccond.holds).
	Headers []KeyValue
	// Query holds vpc-lattice-svcs:RequestQueryString/<key>, one entry per
	// parameter occurrence; the key is multi-valued (ArrayOfString).
	Query []KeyValue
}

// keyID identifies a condition key the evaluator knows how to read.
type keyID uint8

const (
	kUnknown keyID = iota // not provided by Trellis: always absent
	kPrincipalArn
	kPrincipalAccount
	kPrincipalType
	kPrincipalOrgID
	kPrincipalOrgPaths
	kPrincipalTag // family
	kPrincipalIsAWSService
	kPrincipalServiceName
	kFederatedProvider
	kUserID
	kUsername
	kSourceIP
	kCurrentTime
	kEpochTime
	kSecureTransport
	kResourceTag // family
	kResourceAccount
	kLatticePort
	kLatticeMethod
	kLatticePath
	kLatticeHeader // family
	kLatticeQuery  // family
	kLatticeServiceArn
	kLatticeServiceNetworkArn
	kLatticeSourceVpc
	kLatticeSourceVpcOwnerAccount
)

// keyRef is a condition key resolved at compile time.
type keyRef struct {
	id keyID
	// name is the part after "/" of a family key such as
	// aws:PrincipalTag/team, as written.
	name string
}

// resolveKey maps a condition key name, case-insensitively as IAM does, to
// the field of Request that holds it.
func resolveKey(key string) keyRef {
	lower := strings.ToLower(key)
	if i := strings.IndexByte(lower, '/'); i >= 0 && i < len(lower)-1 {
		name := key[i+1:]
		switch lower[:i+1] {
		case "aws:principaltag/":
			return keyRef{kPrincipalTag, name}
		case "aws:resourcetag/":
			return keyRef{kResourceTag, name}
		case "vpc-lattice-svcs:requestheader/":
			return keyRef{kLatticeHeader, name}
		case "vpc-lattice-svcs:requestquerystring/":
			return keyRef{kLatticeQuery, name}
		}
		return keyRef{}
	}
	var id keyID
	switch lower {
	case "aws:principalarn":
		id = kPrincipalArn
	case "aws:principalaccount":
		id = kPrincipalAccount
	case "aws:principaltype":
		id = kPrincipalType
	case "aws:principalorgid":
		id = kPrincipalOrgID
	case "aws:principalorgpaths":
		id = kPrincipalOrgPaths
	case "aws:principalisawsservice":
		id = kPrincipalIsAWSService
	case "aws:principalservicename":
		id = kPrincipalServiceName
	case "aws:federatedprovider":
		id = kFederatedProvider
	case "aws:userid":
		id = kUserID
	case "aws:username":
		id = kUsername
	case "aws:sourceip":
		id = kSourceIP
	case "aws:currenttime":
		id = kCurrentTime
	case "aws:epochtime":
		id = kEpochTime
	case "aws:securetransport":
		id = kSecureTransport
	case "aws:resourceaccount":
		id = kResourceAccount
	case "vpc-lattice-svcs:port":
		id = kLatticePort
	case "vpc-lattice-svcs:requestmethod":
		id = kLatticeMethod
	case "vpc-lattice-svcs:requestpath":
		id = kLatticePath
	case "vpc-lattice-svcs:servicearn":
		id = kLatticeServiceArn
	case "vpc-lattice-svcs:servicenetworkarn":
		id = kLatticeServiceNetworkArn
	case "vpc-lattice-svcs:sourcevpc":
		id = kLatticeSourceVpc
	case "vpc-lattice-svcs:sourcevpcowneraccount":
		id = kLatticeSourceVpcOwnerAccount
	}
	return keyRef{id: id}
}

// scKind is the type of one request value.
type scKind uint8

const (
	scString scKind = iota + 1
	scNumber
	scTime
	scBool
	scAddr
)

// scalar is one value of a condition key in the request.
type scalar struct {
	kind scKind
	s    string
	n    float64
	t    time.Time
	b    bool
	ip   netip.Addr
}

// rkind is the shape of a key's values in the request.
type rkind uint8

const (
	rAbsent rkind = iota
	rScalar       // one value: sc
	rList         // list
	rPairs        // the values of pairs whose Key equals name (case-insensitively)
)

// rval is the value of a condition key in a request, by reference: it
// points into the Request and is never retained.
type rval struct {
	kind  rkind
	sc    scalar
	list  []string
	pairs []KeyValue
	name  string
}

func strVal(s string) rval {
	if s == "" {
		return rval{}
	}
	return rval{kind: rScalar, sc: scalar{kind: scString, s: s}}
}

// lookup returns the value of key k in r. It does not allocate.
func (r *Request) lookup(k keyRef) rval {
	p := &r.Principal
	switch k.id {
	case kPrincipalArn:
		return strVal(p.ARN)
	case kPrincipalAccount:
		return strVal(p.Account)
	case kPrincipalType:
		if p.Type == "" && p.Anonymous() {
			return strVal("Anonymous")
		}
		return strVal(p.Type)
	case kPrincipalOrgID:
		return strVal(p.OrgID)
	case kPrincipalOrgPaths:
		if len(p.OrgPaths) == 0 {
			return rval{}
		}
		return rval{kind: rList, list: p.OrgPaths}
	case kPrincipalTag:
		return rval{kind: rPairs, pairs: p.Tags, name: k.name}
	case kPrincipalIsAWSService:
		return rval{kind: rScalar, sc: scalar{kind: scBool, b: p.Service != ""}}
	case kPrincipalServiceName:
		return strVal(p.Service)
	case kFederatedProvider:
		return strVal(p.FederatedProvider)
	case kUserID:
		return strVal(p.UserID)
	case kUsername:
		return strVal(p.Username)
	case kSourceIP:
		if !r.SourceIP.IsValid() {
			return rval{}
		}
		return rval{kind: rScalar, sc: scalar{kind: scAddr, ip: r.SourceIP.Unmap()}}
	case kCurrentTime, kEpochTime:
		if r.Time.IsZero() {
			return rval{}
		}
		return rval{kind: rScalar, sc: scalar{kind: scTime, t: r.Time}}
	case kSecureTransport:
		return rval{kind: rScalar, sc: scalar{kind: scBool, b: r.SecureTransport}}
	case kResourceTag:
		return rval{kind: rPairs, pairs: r.ResourceTags, name: k.name}
	case kResourceAccount:
		parts, n := splitARN(r.ServiceARN, false)
		if n != 6 {
			return rval{}
		}
		return strVal(parts[4])
	case kLatticePort:
		if r.Port <= 0 {
			return rval{}
		}
		return rval{kind: rScalar, sc: scalar{kind: scNumber, n: float64(r.Port)}}
	case kLatticeMethod:
		return strVal(r.Method)
	case kLatticePath:
		return strVal(r.Path)
	case kLatticeHeader:
		return rval{kind: rPairs, pairs: r.Headers, name: k.name}
	case kLatticeQuery:
		return rval{kind: rPairs, pairs: r.Query, name: k.name}
	case kLatticeServiceArn:
		return strVal(r.ServiceARN)
	case kLatticeServiceNetworkArn:
		return strVal(r.ServiceNetworkARN)
	case kLatticeSourceVpc:
		return strVal(r.SourceVPC)
	case kLatticeSourceVpcOwnerAccount:
		return strVal(r.SourceVPCOwnerAccount)
	}
	return rval{}
}

// count returns how many values the key has; 0 means absent.
func (v *rval) count() int {
	switch v.kind {
	case rScalar:
		return 1
	case rList:
		return len(v.list)
	case rPairs:
		n := 0
		for i := range v.pairs {
			if strings.EqualFold(v.pairs[i].Key, v.name) {
				n++
			}
		}
		return n
	}
	return 0
}

// valIter walks the values of an rval.
type valIter struct {
	v *rval
	i int
}

func (v *rval) iter() valIter { return valIter{v: v} }

func (it *valIter) next() (scalar, bool) {
	v := it.v
	switch v.kind {
	case rScalar:
		if it.i == 0 {
			it.i++
			return v.sc, true
		}
	case rList:
		if it.i < len(v.list) {
			it.i++
			return scalar{kind: scString, s: v.list[it.i-1]}, true
		}
	case rPairs:
		for it.i < len(v.pairs) {
			kv := &v.pairs[it.i]
			it.i++
			if strings.EqualFold(kv.Key, v.name) {
				return scalar{kind: scString, s: kv.Value}, true
			}
		}
	}
	return scalar{}, false
}

// holds reports whether condition c holds for r in a statement whose
// effect is Deny (deny) or Allow. The rules, from the IAM user guide
// (condition operators; single-valued vs. multivalued context keys):
//
//   - Null: "true" holds when the key is absent, "false" when present.
//   - Key absent: ...IfExists holds; a negated operator holds;
//     ForAllValues: holds; ForAnyValue: fails; anything else fails.
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
//     backend read different copies of a header.
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
			return c.ifExists
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
	for i := range c.stmts {
		st := &c.stmts[i]
		if ok, _, _ := st.applies(r); ok {
			if st.deny {
				return Denied, st.index
			}
			return Allowed, st.index
		}
	}
	return NoMatch, -1
}
