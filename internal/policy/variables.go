package policy

import (
	"fmt"
	"strings"
)

// This file compiles the strings of a policy that can hold wildcards and
// policy variables — Action, Resource and the values of the String* and
// Arn* condition operators — into token lists that match.go runs against
// request values without allocating.
//
// Policy variables follow the IAM user guide, "IAM policy elements:
// Variables and tags" (reference_policies_variables):
//
//   - ${service:key} is replaced by the value of that condition key in the
//     request. Key names are case-insensitive. Only single-valued keys can
//     be variables ("you can't use multivalued context keys as policy
//     variables", single- vs multivalued context keys); a multi-valued key
//     such as vpc-lattice-svcs:RequestQueryString/<key> never resolves. A variable whose key is not present "is not in the
//     current request information, and any attempt to match it fails": the
//     policy value holding it matches nothing, and (see eval.go) it also
//     makes a negated operator fail rather than succeed.
//   - ${service:key, 'default'} uses the default text when the key is
//     absent.
//   - ${*}, ${?} and ${$} stand for a literal '*', '?' and '$'.
//   - A substituted value is literal text: a '*' inside a tag value never
//     acts as a wildcard.
//   - Variables are interpreted only under Version 2012-10-17; under
//     2008-10-17 (or no Version) "${" is plain text.
//
// Trellis resolves variables from string-typed keys only. Numeric, date,
// Bool and IP keys (vpc-lattice-svcs:Port, aws:CurrentTime, ...) used as
// variables count as absent, so the value holding them never matches; the
// documentation only shows string keys as variables, and formatting a
// number per request would allocate.

// tokKind is the kind of one pattern token.
type tokKind uint8

const (
	tokLit  tokKind = iota // literal text
	tokStar                // '*': any run of characters (wildcard patterns only)
	tokOne                 // '?': exactly one character (wildcard patterns only)
	tokVar                 // a policy variable, replaced by a request value
)

// token is one element of a compiled pattern.
type token struct {
	kind tokKind
	// text is the literal of a tokLit, or the default of a tokVar with
	// hasDefault set.
	text       string
	key        keyRef // tokVar only
	hasDefault bool   // tokVar only
	body       string // tokVar only: the text between "${" and "}"
}

// patKind selects a fast path for the common shapes of patterns.
type patKind uint8

const (
	patLiteral patKind = iota // no wildcard, no variable: compare lit
	patAll                    // "*" alone: matches everything
	patPrefix                 // lit followed by one '*'
	patSuffix                 // one '*' followed by lit
	patGeneral                // anything else: run the token matcher
)

// pattern is a compiled Action, Resource or string condition value.
type pattern struct {
	raw  string  // as written in the policy
	kind patKind // fast path
	lit  string  // literal for patLiteral, patPrefix and patSuffix
	toks []token // patGeneral only
	vars bool    // toks holds a tokVar
}

// compilePattern compiles s. With wild, '*' and '?' are wildcards; with
// vars, "${...}" is a policy variable.
func compilePattern(s string, wild, vars bool) (pattern, error) {
	p := pattern{raw: s}
	var toks []token
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			toks = append(toks, token{kind: tokLit, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case vars && c == '$' && i+1 < len(s) && s[i+1] == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return p, fmt.Errorf("unterminated policy variable in %q: %w", s, ErrCompile)
			}
			body := s[i+2 : i+2+end]
			i += 2 + end + 1
			switch body {
			case "*", "?", "$":
				lit.WriteString(body)
				continue
			}
			t, err := compileVar(body)
			if err != nil {
				return p, fmt.Errorf("policy variable in %q: %w", s, err)
			}
			flush()
			toks = append(toks, t)
		case wild && c == '*':
			flush()
			if n := len(toks); n == 0 || toks[n-1].kind != tokStar {
				toks = append(toks, token{kind: tokStar})
			}
			i++
		case wild && c == '?':
			flush()
			toks = append(toks, token{kind: tokOne})
			i++
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()

	switch {
	case len(toks) == 0:
		p.kind = patLiteral
	case len(toks) == 1 && toks[0].kind == tokLit:
		p.kind, p.lit = patLiteral, toks[0].text
	case len(toks) == 1 && toks[0].kind == tokStar:
		p.kind = patAll
	case len(toks) == 2 && toks[0].kind == tokLit && toks[1].kind == tokStar:
		p.kind, p.lit = patPrefix, toks[0].text
	case len(toks) == 2 && toks[0].kind == tokStar && toks[1].kind == tokLit:
		p.kind, p.lit = patSuffix, toks[1].text
	default:
		p.kind, p.toks = patGeneral, toks
		p.vars = p.hasVars()
	}
	return p, nil
}

// compileVar compiles the body of ${...}: "service:key" or
// "service:key, 'default'". Spaces around the key and the default are
// ignored, as IAM does.
func compileVar(body string) (token, error) {
	key, def, hasDefault := strings.Cut(body, ",")
	key = strings.TrimSpace(key)
	if !validVarKey(key) {
		return token{}, fmt.Errorf("invalid variable key %q: %w", key, ErrCompile)
	}
	t := token{kind: tokVar, key: resolveKey(key), body: body}
	if hasDefault {
		def = strings.TrimSpace(def)
		if len(def) < 2 || def[0] != '\'' || def[len(def)-1] != '\'' {
			return token{}, fmt.Errorf("default of ${%s} must be in single quotes: %w", body, ErrCompile)
		}
		t.text, t.hasDefault = def[1:len(def)-1], true
	}
	return t, nil
}

// hasVars reports whether p holds a policy variable.
func (p *pattern) hasVars() bool {
	for i := range p.toks {
		if p.toks[i].kind == tokVar {
			return true
		}
	}
	return false
}

// resolveVar returns the text a variable token stands for in r; ok is
// false when the key is absent (or not single-valued, or not a string)
// and the token has no default.
func resolveVar(t *token, r *Request) (string, bool) {
	v := r.lookup(t.key)
	if !v.multi && v.count() == 1 {
		it := v.iter()
		if sc, _ := it.next(); sc.kind == scString {
			return sc.s, true
		}
	}
	if t.hasDefault {
		return t.text, true
	}
	return "", false
}

// resolvable reports whether every variable of p has a value in r.
func (p *pattern) resolvable(r *Request) bool {
	for i := range p.toks {
		if t := &p.toks[i]; t.kind == tokVar {
			if _, ok := resolveVar(t, r); !ok {
				return false
			}
		}
	}
	return true
}

// arnPattern is a compiled Arn* condition value: the six colon-separated
// parts of an ARN, each a wildcard pattern. IAM: "Each of the six
// colon-delimited components of the ARN is checked separately and each can
// include multi-character match wildcards (*) or single-character match
// wildcards (?)" (reference_policies_elements_condition_operators, ARN
// condition operators) — so '*' never crosses a ':' of the first five.
type arnPattern struct {
	raw   string
	valid bool // false when the value does not have six parts
	parts [6]pattern
}

// compileARNPattern compiles an Arn* condition value. A value that does
// not split into six parts compiles, but never matches (and makes negated
// Arn operators fail too), as it can never describe an ARN.
func compileARNPattern(s string, vars bool) (arnPattern, error) {
	a := arnPattern{raw: s}
	parts, n := splitARN(s, vars)
	if n != 6 {
		return a, nil
	}
	for i := range parts {
		p, err := compilePattern(parts[i], true, vars)
		if err != nil {
			return a, err
		}
		a.parts[i] = p
	}
	a.valid = true
	return a, nil
}
