package policy

import (
	"strconv"
	"strings"
)

var principalTypes = [...]string{"AWS", "Service", "Federated", "CanonicalUser"}

// principalElement validates a Principal or NotPrincipal element (named
// name, member of the statement at stmt); n is nil when absent.
func (p *parser) principalElement(n *node, stmt *path, name string) *Principals {
	if n == nil {
		return nil
	}
	at := stmt.field(name)
	if p.kind == IdentityPolicy {
		p.ps.addf(&at, "%s is not allowed in an identity policy", name)
		return nil
	}
	switch n.kind {
	case jsonString:
		if n.text == "*" {
			return &Principals{Wildcard: true}
		}
		p.ps.addf(&at, "principal %q must be \"*\" or an object such as {\"AWS\": [...]}", n.text)
		return nil
	case jsonObject:
	default:
		p.ps.addf(&at, "must be \"*\" or an object, not %v", n.kind)
		return nil
	}
	if len(n.members) == 0 {
		p.ps.add(&at, "must name at least one principal")
		return nil
	}
	pr := &Principals{}
	for i := range n.members {
		m := &n.members[i]
		mp := at.field(m.key)
		var check func(string) string
		var dst *[]string
		switch m.key {
		case "AWS":
			check, dst = checkAWSPrincipal, &pr.AWS
		case "Service":
			check, dst = checkServicePrincipal, &pr.Service
		case "Federated":
			check, dst = checkFederatedPrincipal, &pr.Federated
		case "CanonicalUser":
			check, dst = checkCanonicalUser, &pr.CanonicalUser
		default:
			hint := ""
			for _, t := range principalTypes {
				if strings.EqualFold(t, m.key) {
					hint = "; principal types are case-sensitive: did you mean \"" + t + "\"?"
				}
			}
			p.ps.add(&mp, "unknown principal type (expected AWS, Service, Federated or CanonicalUser)"+hint)
			continue
		}
		vals := p.stringList(&m.val, &mp)
		for j, v := range vals {
			if msg := check(v); msg != "" {
				ip := itemPath(&mp, &m.val, j)
				p.ps.add(&ip, msg)
			}
		}
		*dst = vals
	}
	return pr
}

// checkAWSPrincipal validates an AWS principal: "*", a 12-digit account
// ID, or an account root, IAM user, IAM role, STS assumed-role or STS
// federated-user ARN. IAM allows no other wildcards in principals.
func checkAWSPrincipal(s string) string {
	if s == "*" || isAccountID(s) {
		return ""
	}
	if strings.ContainsAny(s, "*?") {
		return "AWS principal " + quote(s) + ": wildcards are only allowed as \"*\" alone; match patterns with a condition on aws:PrincipalArn"
	}
	const want = ": expected \"*\", a 12-digit account ID, or an arn:aws:iam::<account>:root, :user/<name>, :role/<name> or arn:aws:sts::<account>:assumed-role/<role>/<session> ARN"
	parts, n := splitARN(s, false)
	if n != 6 || parts[0] != "arn" {
		return "invalid AWS principal " + quote(s) + want
	}
	partition, service, region, account, resource := parts[1], parts[2], parts[3], parts[4], parts[5]
	switch {
	case !validPartition(partition):
		return "invalid AWS principal " + quote(s) + ": unknown partition " + quote(partition)
	case region != "":
		return "invalid AWS principal " + quote(s) + ": the region field must be empty"
	case !isAccountID(account):
		return "invalid AWS principal " + quote(s) + ": the account must be 12 digits"
	}
	kind, rest, _ := strings.Cut(resource, "/")
	ok := false
	switch service + ":" + kind {
	case "iam:root":
		ok = resource == "root"
	case "iam:user", "iam:role":
		ok = validIAMPath(rest)
	case "sts:assumed-role":
		role, session, found := strings.Cut(rest, "/")
		ok = found && validIAMName(role) && validIAMName(session)
	case "sts:federated-user":
		ok = validIAMName(rest)
	}
	if !ok {
		return "invalid AWS principal " + quote(s) + want
	}
	return ""
}

// checkServicePrincipal validates a service principal such as
// "lambda.amazonaws.com": a dotted name of letters, digits and hyphens.
func checkServicePrincipal(s string) string {
	ok := strings.Contains(s, ".") && !strings.HasPrefix(s, ".") && !strings.HasSuffix(s, ".")
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = isLetter(c) || isDigit(c) || c == '-' || c == '.'
	}
	if !ok {
		return "invalid service principal " + quote(s) + ": expected a name such as \"lambda.amazonaws.com\""
	}
	return ""
}

// checkFederatedPrincipal validates a federated principal: an identity
// provider name or ARN, without whitespace or wildcards.
func checkFederatedPrincipal(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '*' || c == '?' {
			return "invalid federated principal " + quote(s) + ": expected an identity provider name or ARN"
		}
	}
	return ""
}

// checkCanonicalUser validates an S3 canonical user ID: 64 hex digits.
func checkCanonicalUser(s string) string {
	ok := len(s) == 64
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
	}
	if !ok {
		return "invalid canonical user " + quote(s) + ": expected 64 hexadecimal digits"
	}
	return ""
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// validPartition accepts "aws" and the "aws-<name>" partitions
// (aws-cn, aws-us-gov, aws-iso-b, ...).
func validPartition(s string) bool {
	if s == "aws" {
		return true
	}
	rest, ok := strings.CutPrefix(s, "aws-")
	if !ok {
		return false
	}
	for seg := range strings.SplitSeq(rest, "-") {
		if seg == "" {
			return false
		}
		for i := 0; i < len(seg); i++ {
			if !isLetter(seg[i]) && !isDigit(seg[i]) {
				return false
			}
		}
	}
	return true
}

// validIAMPath accepts "name" or "path/.../name" made of IAM names.
func validIAMPath(s string) bool {
	if s == "" {
		return false
	}
	for seg := range strings.SplitSeq(s, "/") {
		if !validIAMName(seg) {
			return false
		}
	}
	return true
}

// validIAMName accepts a non-empty IAM user, role or session name: letters,
// digits and + = , . @ _ -.
func validIAMName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && !isDigit(c) && !strings.ContainsRune("+=,.@_-", rune(c)) {
			return false
		}
	}
	return true
}

func quote(s string) string { return strconv.Quote(s) }
