package policy

import "strings"

// actions validates an Action or NotAction element (named name, member of
// the statement at stmt); n is nil when absent.
func (p *parser) actions(n *node, stmt *path, name string) []string {
	if n == nil {
		return nil
	}
	at := stmt.field(name)
	vals := p.stringList(n, &at)
	for i, v := range vals {
		if msg := p.checkAction(v); msg != "" {
			ip := itemPath(&at, n, i)
			p.ps.add(&ip, msg)
		}
	}
	return vals
}

// checkAction validates one action: "*" or "service:Action", where both
// parts may use the wildcards * and ?. In an auth policy the service must
// be vpc-lattice-svcs and the action must name or match Invoke or Connect.
func (p *parser) checkAction(a string) string {
	if a == "*" {
		return ""
	}
	svc, name, ok := strings.Cut(a, ":")
	if !ok || !validServicePrefix(svc, true) || !validActionName(name) {
		return "invalid action " + quote(a) + ": expected \"service:Action\" (wildcards * and ? allowed) or \"*\""
	}
	if p.kind != AuthPolicy {
		return ""
	}
	if !strings.EqualFold(svc, latticePrefix) {
		return "action " + quote(a) + " is not allowed in an auth policy; use vpc-lattice-svcs:Invoke or vpc-lattice-svcs:Connect"
	}
	for _, known := range latticeActions {
		if wildcardMatchFold(name, known) {
			return ""
		}
	}
	return "unknown action " + quote(a) + ": vpc-lattice-svcs has only Invoke and Connect"
}

// validActionName accepts a non-empty action name of letters, digits,
// '-', '_' and the wildcards * and ?.
func validActionName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && !isDigit(c) && c != '-' && c != '_' && c != '*' && c != '?' {
			return false
		}
	}
	return true
}

// wildcardMatchFold reports whether s matches pattern, where * matches any
// run of characters and ? any one character, ignoring ASCII case.
func wildcardMatchFold(pattern, s string) bool {
	// Classic greedy matcher with a single backtrack point: linear for the
	// short patterns used here and never exponential.
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pattern) && (pattern[pi] == '?' || lowerASCII(pattern[pi]) == lowerASCII(s[si])):
			pi++
			si++
		case pi < len(pattern) && pattern[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
