package policy

import "strings"

// resources validates a Resource or NotResource element (named name,
// member of the statement at stmt); n is nil when absent.
func (p *parser) resources(n *node, stmt *path, name string) []string {
	if n == nil {
		return nil
	}
	at := stmt.field(name)
	vals := p.stringList(n, &at)
	for i, v := range vals {
		ip := itemPath(&at, n, i)
		p.checkVars(v, &ip)
		if msg := p.checkResource(v); msg != "" {
			p.ps.add(&ip, msg)
		}
	}
	return vals
}

// checkResource validates one resource: "*", or an ARN
// arn:partition:service:region:account:resource in which any part may use
// wildcards and policy variables. Auth policies also accept patterns that
// start with a wildcard, such as the "*/rates" and "*/*" forms the Lattice
// user guide documents.
func (p *parser) checkResource(r string) string {
	if r == "*" {
		return ""
	}
	parts, n := splitARN(r, p.vars)
	if n == 6 && parts[0] == "arn" {
		switch {
		case parts[1] == "":
			return "resource " + quote(r) + ": the ARN partition is empty"
		case parts[2] == "":
			return "resource " + quote(r) + ": the ARN service is empty"
		case parts[5] == "":
			return "resource " + quote(r) + ": the ARN resource part is empty"
		}
		return ""
	}
	if p.kind == AuthPolicy && r[0] == '*' {
		return ""
	}
	return "resource " + quote(r) + " is not \"*\" or an ARN of the form arn:partition:service:region:account:resource"
}

// splitARN splits s at its first five colons into at most six parts.
// With vars set, colons inside ${...} policy variables do not split.
func splitARN(s string, vars bool) (parts [6]string, n int) {
	start, inVar := 0, false
	for i := 0; i < len(s) && n < 5; i++ {
		switch {
		case vars && !inVar && s[i] == '$' && i+1 < len(s) && s[i+1] == '{':
			inVar = true
		case inVar && s[i] == '}':
			inVar = false
		case !inVar && s[i] == ':':
			parts[n] = s[start:i]
			n++
			start = i + 1
		}
	}
	parts[n] = s[start:]
	return parts, n + 1
}

// looksLikeARN reports whether s is acceptable as an Arn* condition value:
// it has wildcards, or (with vars) a policy variable that may stand for a
// whole ARN, or the six ARN parts starting with "arn".
func looksLikeARN(s string, vars bool) bool {
	if strings.ContainsAny(s, "*?") || vars && strings.Contains(s, "${") {
		return true
	}
	parts, n := splitARN(s, vars)
	return n == 6 && parts[0] == "arn" && parts[1] != "" && parts[2] != ""
}
