package policy

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Parse strictly decodes and validates an IAM JSON policy document.
//
// A document that is not a valid policy of opts.Kind yields a
// *ValidationError listing every problem found. An invalid opts (unknown
// Kind, negative MaxSize) yields a plain error. A document over MaxSize is
// rejected with that single problem and is not parsed further.
func Parse(doc []byte, opts ParseOptions) (*Policy, error) {
	if !opts.Kind.valid() {
		return nil, fmt.Errorf("policy: unknown policy kind %v", opts.Kind)
	}
	if opts.MaxSize < 0 {
		return nil, fmt.Errorf("policy: negative MaxSize %d", opts.MaxSize)
	}
	var ps problems
	if opts.MaxSize > 0 && len(doc) > opts.MaxSize {
		if n := utf8.RuneCount(doc); n > opts.MaxSize {
			ps.addf(nil, "policy is %d characters; the limit is %d", n, opts.MaxSize)
			return nil, ps.err()
		}
	}
	root, ok := decodeJSON(doc, &ps)
	if !ok {
		return nil, ps.err()
	}
	p := parser{kind: opts.Kind, ps: &ps}
	pol := p.policy(&root)
	if err := ps.err(); err != nil {
		return nil, err
	}
	return pol, nil
}

// parser validates a decoded document and builds the Policy.
type parser struct {
	kind Kind
	ps   *problems
	// vars is set when "${" starts a policy variable rather than plain text:
	// always under Version 2012-10-17, and for auth and identity policies
	// regardless (where variables then need that Version).
	vars bool
	// varsNeedVersion is set when variables are checked but Version is not
	// 2012-10-17; varUse then records where the first one is.
	varsNeedVersion bool
	varUse          string
	// sids maps each Sid seen so far to the index of its statement.
	sids map[string]int
}

var topLevelElements = [...]string{"Version", "Id", "Statement"}

var statementElements = [...]string{
	"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
	"Resource", "NotResource", "Condition",
}

func (p *parser) policy(root *node) *Policy {
	if root.kind != jsonObject {
		p.ps.addf(nil, "policy must be a JSON object, not %v", root.kind)
		return nil
	}
	pol := &Policy{}
	versionValid := true
	for i := range root.members {
		m := &root.members[i]
		at := (*path)(nil).field(m.key)
		switch m.key {
		case "Version":
			pol.Version, versionValid = p.version(&m.val, &at)
		case "Id":
			if m.val.kind != jsonString {
				p.ps.addf(&at, "must be a string, not %v", m.val.kind)
			}
			pol.ID = m.val.text
		case "Statement":
		default:
			p.unknownElement(&at, m.key, topLevelElements[:], "top-level")
		}
	}
	switch {
	case pol.Version == Version2012:
		p.vars = true
	case p.kind == AuthPolicy || p.kind == IdentityPolicy:
		p.vars, p.varsNeedVersion = true, true
	}

	at := (*path)(nil).field("Statement")
	st := root.get("Statement")
	switch {
	case st == nil:
		p.ps.add(nil, "missing required element Statement")
	case st.kind == jsonObject:
		pol.Statements = []Statement{p.statement(st, &at, -1)}
	case st.kind == jsonArray:
		if len(st.elems) == 0 {
			p.ps.add(&at, "must contain at least one statement")
		}
		pol.Statements = make([]Statement, 0, len(st.elems))
		for i := range st.elems {
			ep := at.elem(i)
			pol.Statements = append(pol.Statements, p.statement(&st.elems[i], &ep, i))
		}
	default:
		p.ps.addf(&at, "must be an object or an array of objects, not %v", st.kind)
	}

	if p.varUse != "" && versionValid {
		vp := (*path)(nil).field("Version")
		p.ps.addf(&vp, "policy variables (first at %s) require Version %q", p.varUse, Version2012)
	}
	return pol
}

// version checks the Version element; ok is false when it is invalid.
func (p *parser) version(n *node, at *path) (v string, ok bool) {
	if n.kind != jsonString {
		p.ps.addf(at, "must be a string, not %v", n.kind)
		return "", false
	}
	if n.text != Version2012 && n.text != Version2008 {
		p.ps.addf(at, "unsupported version %q; use %q", n.text, Version2012)
		return n.text, false
	}
	return n.text, true
}

// unknownElement reports a member that is not one of known, hinting at a
// spelling that differs only in case.
func (p *parser) unknownElement(at *path, key string, known []string, where string) {
	for _, k := range known {
		if strings.EqualFold(k, key) {
			p.ps.addf(at, "unknown %s element; element names are case-sensitive: did you mean %q?", where, k)
			return
		}
	}
	p.ps.addf(at, "unknown %s element", where)
}

// statement validates one statement; index is its position in the
// Statement array, or -1 when Statement is a single object.
func (p *parser) statement(n *node, at *path, index int) Statement {
	var s Statement
	if n.kind != jsonObject {
		p.ps.addf(at, "statement must be an object, not %v", n.kind)
		return s
	}
	var effect, principal, notPrincipal, action, notAction, resource, notResource *node
	for i := range n.members {
		m := &n.members[i]
		mp := at.field(m.key)
		switch m.key {
		case "Sid":
			s.Sid = p.sid(&m.val, &mp, index)
		case "Effect":
			effect = &m.val
		case "Principal":
			principal = &m.val
		case "NotPrincipal":
			notPrincipal = &m.val
		case "Action":
			action = &m.val
		case "NotAction":
			notAction = &m.val
		case "Resource":
			resource = &m.val
		case "NotResource":
			notResource = &m.val
		case "Condition":
			s.Conditions = p.conditions(&m.val, &mp)
		default:
			p.unknownElement(&mp, m.key, statementElements[:], "statement")
		}
	}

	if effect == nil {
		p.ps.add(at, "missing required element Effect")
	} else {
		ep := at.field("Effect")
		switch {
		case effect.kind != jsonString:
			p.ps.addf(&ep, "must be a string, not %v", effect.kind)
		case effect.text == string(Allow) || effect.text == string(Deny):
			s.Effect = Effect(effect.text)
		default:
			p.ps.addf(&ep, "effect %q must be %q or %q (case-sensitive)", effect.text, Allow, Deny)
		}
	}

	s.Principal = p.principalElement(principal, at, "Principal")
	s.NotPrincipal = p.principalElement(notPrincipal, at, "NotPrincipal")
	if p.kind != IdentityPolicy {
		switch {
		case principal != nil && notPrincipal != nil:
			p.ps.add(at, "statement must not have both Principal and NotPrincipal")
		case principal == nil && notPrincipal == nil:
			p.ps.addf(at, "statement must have Principal or NotPrincipal in %s", p.kindName())
		}
	}

	p.pair(at, action, notAction, "Action", "NotAction")
	s.Action = p.actions(action, at, "Action")
	s.NotAction = p.actions(notAction, at, "NotAction")

	p.pair(at, resource, notResource, "Resource", "NotResource")
	s.Resource = p.resources(resource, at, "Resource")
	s.NotResource = p.resources(notResource, at, "NotResource")
	return s
}

// pair checks that exactly one of a positive/negative element pair is set.
func (p *parser) pair(at *path, pos, neg *node, posName, negName string) {
	switch {
	case pos != nil && neg != nil:
		p.ps.addf(at, "statement must not have both %s and %s", posName, negName)
	case pos == nil && neg == nil:
		p.ps.addf(at, "statement must have %s or %s", posName, negName)
	}
}

func (p *parser) kindName() string {
	switch p.kind {
	case AuthPolicy:
		return "an auth policy"
	case IdentityPolicy:
		return "an identity policy"
	}
	return "a resource policy"
}

// sid checks a Sid: a string of letters and digits, unique in the policy.
func (p *parser) sid(n *node, at *path, index int) string {
	if n.kind != jsonString {
		p.ps.addf(at, "must be a string, not %v", n.kind)
		return ""
	}
	sid := n.text
	for i := 0; i < len(sid); i++ {
		if c := sid[i]; !isDigit(c) && !isLetter(c) {
			p.ps.addf(at, "Sid %q must contain only letters and digits", sid)
			return sid
		}
	}
	if sid == "" {
		return sid
	}
	if prev, dup := p.sids[sid]; dup {
		p.ps.addf(at, "duplicate Sid %q (also in Statement[%d])", sid, prev)
		return sid
	}
	if p.sids == nil {
		p.sids = make(map[string]int)
	}
	p.sids[sid] = index
	return sid
}

// stringList decodes a string-or-array element: a non-empty string, or a
// non-empty array of non-empty strings. It returns nil after reporting a
// problem with the element's shape.
func (p *parser) stringList(n *node, at *path) []string {
	switch n.kind {
	case jsonString:
		if n.text == "" {
			p.ps.add(at, "must not be an empty string")
			return nil
		}
		return []string{n.text}
	case jsonArray:
		if len(n.elems) == 0 {
			p.ps.add(at, "must not be an empty array")
			return nil
		}
		out := make([]string, 0, len(n.elems))
		ok := true
		for i := range n.elems {
			e := &n.elems[i]
			ep := at.elem(i)
			switch {
			case e.kind != jsonString:
				p.ps.addf(&ep, "must be a string, not %v", e.kind)
				ok = false
			case e.text == "":
				p.ps.add(&ep, "must not be an empty string")
				ok = false
			}
			out = append(out, e.text)
		}
		if !ok {
			return nil
		}
		return out
	}
	p.ps.addf(at, "must be a string or an array of strings, not %v", n.kind)
	return nil
}

// itemPath is the location of item i of a string-or-array element n at at.
func itemPath(at *path, n *node, i int) path {
	if n.kind == jsonArray {
		return at.elem(i)
	}
	return *at
}

// checkVars checks the policy-variable syntax of s at at, when variables
// are interpreted, and records their use.
func (p *parser) checkVars(s string, at *path) {
	if !p.vars || !strings.Contains(s, "${") {
		return
	}
	if msg := varSyntax(s); msg != "" {
		p.ps.add(at, msg)
	}
	if p.varsNeedVersion && p.varUse == "" {
		p.varUse = at.String()
	}
}

// varSyntax returns a problem with the first malformed policy variable in
// s, or "". A variable is ${service:key}, optionally with a default value
// as in ${aws:PrincipalTag/team, 'none'}, or one of the escapes ${*},
// ${?} and ${$}.
func varSyntax(s string) string {
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			return ""
		}
		s = s[i+2:]
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return "unterminated policy variable: missing \"}\" after \"${\""
		}
		body := s[:end]
		s = s[end+1:]
		if body == "*" || body == "?" || body == "$" {
			continue
		}
		key, def, hasDefault := strings.Cut(body, ",")
		key = strings.TrimSpace(key)
		bad := !validVarKey(key)
		if hasDefault {
			def = strings.TrimSpace(def)
			bad = bad || len(def) < 2 || def[0] != '\'' || def[len(def)-1] != '\'' ||
				strings.ContainsRune(def[1:len(def)-1], '\'')
		}
		if bad {
			return "invalid policy variable " + strconv.Quote("${"+body+"}") +
				": expected ${service:key}, ${service:key, 'default'}, ${*}, ${?} or ${$}"
		}
	}
}

// validVarKey reports whether k looks like a condition key usable as a
// variable: "prefix:name" with no braces, dollars, quotes or control
// characters.
func validVarKey(k string) bool {
	prefix, name, ok := strings.Cut(k, ":")
	if !ok || !validServicePrefix(prefix, false) || name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c < ' ' || c == 0x7f, c == '{', c == '}', c == '$', c == '\'':
			return false
		}
	}
	return true
}

// validServicePrefix reports whether s is a service prefix such as
// "vpc-lattice-svcs": letters, digits and hyphens, and with wild also the
// wildcards * and ?.
func validServicePrefix(s string, wild bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && !isDigit(c) && c != '-' && !(wild && (c == '*' || c == '?')) {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
