package policy

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file matches compiled patterns (variables.go) against request
// values. Nothing here allocates: variables are resolved to substrings of
// the request, and the wildcard matcher keeps a single backtrack point.

// matchResult is the outcome of comparing one policy value with one
// request value.
type matchResult uint8

const (
	noMatch matchResult = iota
	matched
	// unresolved: the policy value cannot be compared — a variable has no
	// value, or an Arn* value or request value is not an ARN. It matches
	// nothing, and a negated operator does not hold on it either.
	unresolved
)

// match compares p with s. With fold, ASCII and Unicode simple case
// folding apply (Action, StringEqualsIgnoreCase); otherwise the comparison
// is exact (Resource, StringEquals, StringLike, Arn*).
func (p *pattern) match(s string, fold bool, r *Request) matchResult {
	switch p.kind {
	case patAll:
		return matched
	case patLiteral:
		if fold && strings.EqualFold(s, p.lit) || !fold && s == p.lit {
			return matched
		}
		return noMatch
	case patPrefix:
		if n, ok := prefixFold(s, p.lit, fold); ok && n <= len(s) {
			return matched
		}
		return noMatch
	case patSuffix:
		if suffixMatch(s, p.lit, fold) {
			return matched
		}
		return noMatch
	}
	if p.vars && !p.resolvable(r) {
		return unresolved
	}
	if globTokens(p.toks, s, fold, r) {
		return matched
	}
	return noMatch
}

// globTokens matches s against toks, where tokStar matches any run of
// characters and tokOne one character (a UTF-8 sequence; an invalid byte
// counts as one character). Variables must be resolvable (callers check
// first). It is the classic greedy matcher with one backtrack point —
// correct because the text between two stars only has to be found at its
// leftmost place — so it runs in O(len(s)·len(toks)) and never
// exponentially.
func globTokens(toks []token, s string, fold bool, r *Request) bool {
	ti, si := 0, 0
	starT, starS := -1, 0
	for {
		if ti < len(toks) {
			t := &toks[ti]
			switch t.kind {
			case tokStar:
				ti++
				if ti == len(toks) {
					return true // a trailing star takes the rest
				}
				starT, starS = ti-1, si
				if skip, ok := skipToLiteral(toks[ti], s[si:], fold); ok {
					starS += skip
					si = starS
				} else {
					return false
				}
				continue
			case tokOne:
				if si < len(s) {
					_, w := utf8.DecodeRuneInString(s[si:])
					si += w
					ti++
					continue
				}
			case tokLit:
				if n, ok := prefixFold(s[si:], t.text, fold); ok {
					si += n
					ti++
					continue
				}
			case tokVar:
				v, _ := resolveVar(t, r)
				if n, ok := prefixFold(s[si:], v, fold); ok {
					si += n
					ti++
					continue
				}
			}
		} else if si == len(s) {
			return true
		}
		// Mismatch: let the last star swallow one more character, and
		// then up to the next place the token after it can match.
		if starT < 0 || starS >= len(s) {
			return false
		}
		_, w := utf8.DecodeRuneInString(s[starS:])
		starS += w
		skip, ok := skipToLiteral(toks[starT+1], s[starS:], fold)
		if !ok {
			return false
		}
		starS += skip
		si, ti = starS, starT+1
	}
}

// skipToLiteral returns how far a star may jump ahead in s before trying
// the token t that follows it: to the next occurrence of t when t is an
// exact-case literal (found with strings.Index, which is vectorised), else
// not at all. ok is false when the literal does not occur, and so the
// pattern cannot match: earlier stars only ever move text to the right.
func skipToLiteral(t token, s string, fold bool) (int, bool) {
	if t.kind != tokLit || fold {
		return 0, true
	}
	i := strings.Index(s, t.text)
	return i, i >= 0
}

// prefixFold reports whether s starts with p and how many bytes of s that
// prefix takes (with folding the byte lengths can differ).
func prefixFold(s, p string, fold bool) (int, bool) {
	if !fold {
		if strings.HasPrefix(s, p) {
			return len(p), true
		}
		return 0, false
	}
	i := 0
	for j := 0; j < len(p); {
		if i >= len(s) {
			return 0, false
		}
		a, b := s[i], p[j]
		if a < utf8.RuneSelf && b < utf8.RuneSelf {
			if lowerASCII(a) != lowerASCII(b) {
				return 0, false
			}
			i++
			j++
			continue
		}
		ra, wa := utf8.DecodeRuneInString(s[i:])
		rb, wb := utf8.DecodeRuneInString(p[j:])
		if !equalFoldRune(ra, rb) {
			return 0, false
		}
		i += wa
		j += wb
	}
	return i, true
}

// suffixMatch reports whether s ends with p (folding case with fold).
func suffixMatch(s, p string, fold bool) bool {
	if !fold {
		return strings.HasSuffix(s, p)
	}
	// Folded forms can differ in byte length, so try each rune boundary
	// from which the rest of s is as long as p in runes.
	want := utf8.RuneCountInString(p)
	i := len(s)
	for k := 0; k < want; k++ {
		if i == 0 {
			return false
		}
		_, w := utf8.DecodeLastRuneInString(s[:i])
		i -= w
	}
	return strings.EqualFold(s[i:], p)
}

// equalFoldRune reports whether a and b are equal under Unicode simple
// case folding.
func equalFoldRune(a, b rune) bool {
	if a == b {
		return true
	}
	if a < b {
		a, b = b, a
	}
	for r := unicode.SimpleFold(b); r != b; r = unicode.SimpleFold(r) {
		if r == a {
			return true
		}
	}
	return false
}

// match compares an Arn* policy value with a request value, part by part.
func (a *arnPattern) match(s string, r *Request) matchResult {
	if !a.valid {
		return unresolved
	}
	parts, n := splitARN(s, false)
	if n != 6 {
		return unresolved
	}
	res := matched
	for i := range a.parts {
		switch a.parts[i].match(parts[i], false, r) {
		case unresolved:
			return unresolved
		case noMatch:
			// Keep going: an unresolved variable in a later part must
			// still make the whole value unresolved.
			res = noMatch
		}
	}
	return res
}
