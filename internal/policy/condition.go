package policy

import (
	"encoding/base64"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// conditions validates a Condition element: an object mapping operators to
// objects that map condition keys to a scalar or a non-empty array of
// scalars.
func (p *parser) conditions(n *node, at *path) []Condition {
	if n.kind != jsonObject {
		p.ps.addf(at, "must be an object mapping condition operators to keys, not %v", n.kind)
		return nil
	}
	var out []Condition
	for i := range n.members {
		om := &n.members[i]
		op := at.field(om.key)
		base, set, ifExists, msg := parseOperator(om.key)
		if msg != "" {
			p.ps.add(&op, msg)
			continue
		}
		if om.val.kind != jsonObject {
			p.ps.addf(&op, "must be an object mapping condition keys to values, not %v", om.val.kind)
			continue
		}
		for j := range om.val.members {
			km := &om.val.members[j]
			kp := op.field(km.key)
			p.checkKey(km.key, base, &kp)
			out = append(out, Condition{
				Operator: om.key,
				Base:     base,
				SetOp:    set,
				IfExists: ifExists,
				Key:      km.key,
				Values:   p.conditionValues(&km.val, &kp, base),
			})
		}
	}
	slices.SortFunc(out, func(a, b Condition) int {
		if c := strings.Compare(a.Operator, b.Operator); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out
}

// checkKey validates a condition key used with operator op: it must be
// "service:name"; an unknown vpc-lattice-svcs key is an error; a known
// key's type must suit the operator.
func (p *parser) checkKey(key string, op Operator, at *path) {
	prefix, name, ok := strings.Cut(key, ":")
	if !ok || prefix == "" || name == "" {
		p.ps.addf(at, "condition key %q must have the form service:name", key)
		return
	}
	t, status := lookupKey(key)
	switch status {
	case keyNoSuffix:
		p.ps.addf(at, "condition key %q needs a name after the \"/\", e.g. %s/team", key, strings.TrimSuffix(key, "/"))
		return
	case keyUnknown:
		if strings.EqualFold(prefix, latticePrefix) {
			p.ps.addf(at, "unknown condition key %q: vpc-lattice-svcs has Port, RequestMethod, RequestPath, RequestHeader/<name>, RequestQueryString/<key>, ServiceArn, ServiceNetworkArn, SourceVpc and SourceVpcOwnerAccount", key)
		}
		return
	}
	info := operators[op]
	if info.keys&t == 0 {
		p.ps.addf(at, "key of the wrong type: %s has type %v, but %s works on %v keys", key, t, info.name, info.keys)
	}
}

// conditionValues decodes the values of one condition key and checks each
// against the type its operator expects.
func (p *parser) conditionValues(n *node, at *path, op Operator) []string {
	var vals []string
	switch {
	case n.isScalar():
		vals = []string{n.text}
	case n.kind == jsonArray:
		if len(n.elems) == 0 {
			p.ps.add(at, "must not be an empty array")
			return nil
		}
		vals = make([]string, 0, len(n.elems))
		for i := range n.elems {
			e := &n.elems[i]
			if !e.isScalar() {
				ep := at.elem(i)
				p.ps.addf(&ep, "condition values must be strings, numbers or booleans, not %v", e.kind)
			}
			vals = append(vals, e.text)
		}
	default:
		p.ps.addf(at, "must be a string, number, boolean or an array of them, not %v", n.kind)
		return nil
	}
	for i, v := range vals {
		if n.kind == jsonArray && !n.elems[i].isScalar() {
			continue
		}
		if msg := p.checkValue(op, v); msg != "" {
			ip := itemPath(at, n, i)
			p.ps.add(&ip, msg)
		} else if t := operators[op].values; t == tString || t == tARN {
			ip := itemPath(at, n, i)
			p.checkVars(v, &ip)
		}
	}
	return vals
}

// checkValue checks that v, the string form of one value, suits op.
func (p *parser) checkValue(op Operator, v string) string {
	switch operators[op].values {
	case tNumeric:
		if !isNumber(v) {
			return "value " + quote(v) + " is not a number"
		}
	case tDate:
		if !isDate(v) {
			return "value " + quote(v) + " is not a date: expected ISO 8601 (e.g. 2026-01-02T15:04:05Z) or epoch seconds"
		}
	case tBool:
		if !isBool(v) {
			return "value " + quote(v) + " is not \"true\" or \"false\""
		}
	case tBinary:
		if !isBase64(v) {
			return "value " + quote(v) + " is not base64-encoded"
		}
	case tIP:
		if !isIPOrCIDR(v) {
			return "value " + quote(v) + " is not an IPv4 or IPv6 address or CIDR block"
		}
	case tARN:
		if !looksLikeARN(v, p.vars) {
			return "value " + quote(v) + " is not an ARN (arn:partition:service:region:account:resource) or a wildcard pattern"
		}
	}
	return ""
}

// isNumber accepts decimal numbers: an optional sign, digits with an
// optional fraction, and an optional exponent ("80", "-1.5", "2e3").
func isNumber(s string) bool {
	i, digits := 0, 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	for ; i < len(s) && isDigit(s[i]); i++ {
		digits++
	}
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && isDigit(s[i]); i++ {
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for ; i < len(s) && isDigit(s[i]); i++ {
		}
		if i == start {
			return false
		}
	}
	return i == len(s)
}

// dateLayouts are the ISO 8601 forms IAM date values take. RFC 3339
// (with or without fractional seconds) comes first.
var dateLayouts = [...]string{
	time.RFC3339,
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
	"2006-01-02",
}

// isDate accepts ISO 8601 dates and times, and epoch seconds (an integer,
// optionally with a fraction).
func isDate(s string) bool {
	if s == "" {
		return false
	}
	if isDigit(s[0]) && !strings.ContainsAny(s, "-:T") {
		whole, frac, _ := strings.Cut(s, ".")
		return allDigits(whole) && (frac == "" && !strings.HasSuffix(s, ".") || allDigits(frac))
	}
	for _, layout := range dateLayouts {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	return false
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// isBool accepts "true" and "false" in any case, as IAM does for Bool and
// Null values.
func isBool(s string) bool {
	return strings.EqualFold(s, "true") || strings.EqualFold(s, "false")
}

// isBase64 accepts standard base64, padded or not.
func isBase64(s string) bool {
	if _, err := base64.StdEncoding.DecodeString(s); err == nil {
		return true
	}
	_, err := base64.RawStdEncoding.DecodeString(s)
	return err == nil
}

// isIPOrCIDR accepts an IPv4 or IPv6 address or CIDR block, without zone.
func isIPOrCIDR(s string) bool {
	if strings.IndexByte(s, '/') >= 0 {
		_, err := netip.ParsePrefix(s)
		return err == nil
	}
	a, err := netip.ParseAddr(s)
	return err == nil && a.Zone() == ""
}
