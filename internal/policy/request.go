package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// This file is the request context: the caller and the condition keys of
// one request, in fixed fields, and the compile-time resolution of key
// names to those fields, so that reading a key never allocates.

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
	// multi marks a multi-valued key (ArrayOf... in IAM's terms), which
	// cannot be a policy variable even when it holds one value.
	multi bool
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
		return rval{kind: rList, list: p.OrgPaths, multi: true}
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
		return rval{kind: rPairs, pairs: r.Query, name: k.name, multi: true}
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
