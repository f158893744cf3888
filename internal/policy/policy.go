// Package policy parses and validates IAM-style JSON policy documents: the
// auth policies attached to Lattice services and service networks, the
// resource policies that share them across accounts, and the identity
// policies attached to callers.
//
// Parse is strict. It decodes the document with a token-streaming JSON
// decoder so that duplicate object keys, trailing data and excessive nesting
// are caught, then checks the IAM grammar: the allowed elements at each
// level, Effect, Principal/NotPrincipal, Action/NotAction,
// Resource/NotResource, Sid uniqueness, the full IAM condition-operator
// table with IfExists and the ForAllValues:/ForAnyValue: set prefixes, the
// type of every condition value, the type of every known condition key, and
// policy-variable syntax. Every problem found is reported, each with a
// JSON-path-like location, in one *ValidationError.
//
// The result is a Policy value that mirrors the document with each
// string-or-array element normalised to a slice and each condition operator
// split into its parts.
//
// Compile turns a Policy into a *Compiled once, when a snapshot arrives:
// wildcard patterns are tokenised, principal lists sorted, typed condition
// values parsed and condition keys resolved to fields of Request. On the
// data path, Decide combines the compiled service-network, service and
// identity policies for one Request into Lattice's verdict, its
// authDeniedReason and its 403 body, without allocating; Evaluate does the
// same for a single policy. Explain runs the same evaluation and reports,
// statement by statement, what matched and what did not; it backs `trellis
// policy explain`. Compiled policies are immutable and safe for concurrent
// use.
//
// Canonical gives a compact, key-sorted JSON form of a document for
// comparing two documents; the API itself stores policies as given.
package policy

import "strconv"

// Versions of the IAM policy language.
const (
	// Version2012 is the current policy language; it enables policy
	// variables such as ${aws:PrincipalTag/team}.
	Version2012 = "2012-10-17"
	// Version2008 is the original policy language. IAM also uses it when
	// Version is absent. Policy variables are plain text under it.
	Version2008 = "2008-10-17"
)

// Kind selects the rules that depend on where a policy is attached.
type Kind int

const (
	// AuthPolicy is a Lattice auth policy, attached to a service or a
	// service network. It is resource-based: each statement needs Principal
	// or NotPrincipal, and actions must belong to the vpc-lattice-svcs
	// service.
	AuthPolicy Kind = iota + 1
	// IdentityPolicy is attached to a caller; Principal and NotPrincipal are
	// not allowed.
	IdentityPolicy
	// ResourcePolicy is a general resource-based policy (for example the one
	// AWS RAM puts on a shared service network). Each statement needs
	// Principal or NotPrincipal; actions may name any service.
	ResourcePolicy
)

// String returns the name of the kind.
func (k Kind) String() string {
	switch k {
	case AuthPolicy:
		return "AuthPolicy"
	case IdentityPolicy:
		return "IdentityPolicy"
	case ResourcePolicy:
		return "ResourcePolicy"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

func (k Kind) valid() bool { return k >= AuthPolicy && k <= ResourcePolicy }

// ParseOptions control Parse.
type ParseOptions struct {
	// Kind selects the kind-specific rules. It is required: the zero Kind
	// makes Parse fail.
	Kind Kind
	// MaxSize is the largest accepted document, in characters (Unicode code
	// points, whitespace included); 0 means no limit. The API passes 36864
	// for auth policies, 10000 for resource policies and 6144 for identity
	// policies.
	MaxSize int
}

// Effect is the effect of a statement.
type Effect string

// The two effects. IAM spells them case-sensitively.
const (
	Allow Effect = "Allow"
	Deny  Effect = "Deny"
)

// Policy is a parsed and validated policy document.
type Policy struct {
	// Version is the Version element as written, or "" when absent (which
	// IAM treats as Version2008).
	Version string
	// ID is the Id element, or "".
	ID string
	// Statements are in document order. A document whose Statement is a
	// single object yields one statement.
	Statements []Statement
}

// Statement is one statement of a policy. Of each Action/NotAction and
// Resource/NotResource pair exactly one is non-nil; of Principal and
// NotPrincipal at most one is.
type Statement struct {
	Sid          string
	Effect       Effect
	Principal    *Principals
	NotPrincipal *Principals
	Action       []string
	NotAction    []string
	Resource     []string
	NotResource  []string
	// Conditions are sorted by Operator, then Key (byte order), so that
	// documents differing only in member order parse to equal policies.
	// All of them must hold for the statement to apply.
	Conditions []Condition
}

// Principals is a Principal or NotPrincipal element.
type Principals struct {
	// Wildcard is set for the bare string form "Principal": "*". The form
	// {"AWS": "*"} is kept as AWS: ["*"]; IAM treats the two alike.
	Wildcard bool
	// AWS holds "*", account IDs, account root ARNs, IAM user and role
	// ARNs, STS assumed-role ARNs and federated-user ARNs.
	AWS []string
	// Service holds service principals such as "lambda.amazonaws.com".
	Service []string
	// Federated holds identity providers (OIDC/SAML provider ARNs or names
	// such as "cognito-identity.amazonaws.com").
	Federated []string
	// CanonicalUser holds S3 canonical user IDs.
	CanonicalUser []string
}

// Condition is one key test inside a statement's Condition block:
// "Operator": {"Key": Values}.
type Condition struct {
	// Operator is the operator as written, for example
	// "ForAnyValue:StringLike" or "StringEqualsIfExists".
	Operator string
	// Base is the operator without set prefix and IfExists suffix.
	Base Operator
	// SetOp is the ForAllValues:/ForAnyValue: prefix, if any.
	SetOp SetOp
	// IfExists is set when the operator carries the IfExists suffix.
	IfExists bool
	// Key is the condition key as written. IAM compares key names
	// case-insensitively.
	Key string
	// Values are the condition values in document order, each in its
	// string form: JSON strings as they are, numbers as written, booleans
	// as "true" or "false". Any one of them may match.
	Values []string
}
