package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// opCase gives, for one operator, a key it suits, values it accepts, a
// value of the wrong type with a fragment of the expected message, and a
// known key of the wrong type ("" when every key suits, as for Null).
type opCase struct {
	key      string
	good     string // JSON value
	goodVals []string
	bad      string // JSON value
	badMsg   string
	wrongKey string
}

func operatorCases() map[Operator]opCase {
	str := opCase{
		key: "vpc-lattice-svcs:RequestMethod", good: `["GET","P*",7,true]`, goodVals: []string{"GET", "P*", "7", "true"},
		bad: `{"method":"GET"}`, badMsg: "must be a string, number, boolean or an array of them, not an object",
		wrongKey: "vpc-lattice-svcs:Port",
	}
	num := opCase{
		key: "vpc-lattice-svcs:Port", good: `[80,"443","-1.5","2e3"]`, goodVals: []string{"80", "443", "-1.5", "2e3"},
		bad: `"eighty"`, badMsg: `value "eighty" is not a number`, wrongKey: "vpc-lattice-svcs:RequestMethod",
	}
	date := opCase{
		key: "aws:CurrentTime", good: `["2026-01-02T15:04:05Z","2026-01-02T15:04:05.123+01:00","2026-01-02",1767366245]`,
		goodVals: []string{"2026-01-02T15:04:05Z", "2026-01-02T15:04:05.123+01:00", "2026-01-02", "1767366245"},
		bad:      `"yesterday"`, badMsg: `value "yesterday" is not a date`, wrongKey: "aws:SourceIp",
	}
	ip := opCase{
		key: "aws:SourceIp", good: `["10.0.0.0/8","192.0.2.1","2001:db8::/32","::1"]`,
		goodVals: []string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32", "::1"},
		bad:      `"10.0.0.0/33"`, badMsg: `value "10.0.0.0/33" is not an IPv4 or IPv6 address or CIDR block`,
		wrongKey: "aws:PrincipalType",
	}
	arn := opCase{
		key: "vpc-lattice-svcs:ServiceArn", good: `["` + svcARN + `","arn:aws:vpc-lattice:*:*:service/*","*"]`,
		goodVals: []string{svcARN, "arn:aws:vpc-lattice:*:*:service/*", "*"},
		bad:      `"svc-0123456789abcdef0"`, badMsg: `value "svc-0123456789abcdef0" is not an ARN`,
		wrongKey: "vpc-lattice-svcs:RequestMethod",
	}
	return map[Operator]opCase{
		StringEquals: str, StringNotEquals: str, StringEqualsIgnoreCase: str,
		StringNotEqualsIgnoreCase: str, StringLike: str, StringNotLike: str,
		NumericEquals: num, NumericNotEquals: num, NumericLessThan: num,
		NumericLessThanEquals: num, NumericGreaterThan: num, NumericGreaterThanEquals: num,
		DateEquals: date, DateNotEquals: date, DateLessThan: date,
		DateLessThanEquals: date, DateGreaterThan: date, DateGreaterThanEquals: date,
		Bool: {
			key: "aws:SecureTransport", good: `[true,"false","TRUE"]`, goodVals: []string{"true", "false", "TRUE"},
			bad: `"yes"`, badMsg: `value "yes" is not "true" or "false"`, wrongKey: "aws:PrincipalType",
		},
		BinaryEquals: {
			key: "ex:blob", good: `["aGVsbG8=","aGVsbG8"]`, goodVals: []string{"aGVsbG8=", "aGVsbG8"},
			bad: `"not base64!"`, badMsg: `value "not base64!" is not base64-encoded`, wrongKey: "aws:PrincipalType",
		},
		IpAddress: ip, NotIpAddress: ip,
		ArnEquals: arn, ArnLike: arn, ArnNotEquals: arn, ArnNotLike: arn,
		Null: {
			key: "aws:PrincipalTag/team", good: `[true,"false"]`, goodVals: []string{"true", "false"},
			bad: `1`, badMsg: `value "1" is not "true" or "false"`,
		},
	}
}

// TestEveryOperator parses each operator of the IAM table, with every
// combination of set prefix and IfExists suffix, once with valid values,
// once with a value of the wrong type and once with a key of the wrong type.
func TestEveryOperator(t *testing.T) {
	cases := operatorCases()
	for op := Operator(1); op < numOperators; op++ {
		tc, ok := cases[op]
		if !ok {
			t.Errorf("no test case for operator %v", op)
			continue
		}
		for _, set := range []SetOp{SetOpNone, ForAllValues, ForAnyValue} {
			for _, ifExists := range []bool{false, true} {
				name := op.String()
				if ifExists {
					if op == Null {
						continue
					}
					name += "IfExists"
				}
				if set != SetOpNone {
					name = set.String() + ":" + name
				}
				t.Run(name, func(t *testing.T) {
					testOperator(t, name, op, set, ifExists, tc)
				})
			}
		}
	}
}

func testOperator(t *testing.T, name string, op Operator, set SetOp, ifExists bool, tc opCase) {
	cond := func(key, val string) []byte {
		return []byte(withCond(`{"` + name + `":{"` + key + `":` + val + `}}`))
	}
	p, err := Parse(cond(tc.key, tc.good), ParseOptions{Kind: AuthPolicy})
	if err != nil {
		t.Fatalf("valid values rejected: %v", err)
	}
	want := []Condition{{Operator: name, Base: op, SetOp: set, IfExists: ifExists, Key: tc.key, Values: tc.goodVals}}
	if got := p.Statements[0].Conditions; !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}

	wantPath := "Statement[0].Condition." + name + "." + tc.key
	assertProblem(t, cond(tc.key, tc.bad), wantPath, tc.badMsg)
	if tc.wrongKey != "" {
		assertProblem(t, cond(tc.wrongKey, tc.good), "Statement[0].Condition."+name+"."+tc.wrongKey, "key of the wrong type")
	}
}

// assertProblem parses doc as an auth policy and wants exactly one problem.
func assertProblem(t *testing.T, doc []byte, path, msg string) {
	t.Helper()
	_, err := Parse(doc, ParseOptions{Kind: AuthPolicy})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a *ValidationError at %s, got %v", path, err)
	}
	if len(ve.Problems) != 1 || ve.Problems[0].Path != path || !strings.Contains(ve.Problems[0].Message, msg) {
		t.Errorf("want one problem %s: …%s…; got\n%s", path, msg, problemList(ve))
	}
}

func TestParseOperator(t *testing.T) {
	tests := []struct {
		in       string
		base     Operator
		set      SetOp
		ifExists bool
		msg      string
	}{
		{in: "StringLike", base: StringLike},
		{in: "ForAllValues:ArnNotLikeIfExists", base: ArnNotLike, set: ForAllValues, ifExists: true},
		{in: "ForAnyValue:Null", base: Null, set: ForAnyValue},
		{in: "NotIpAddressIfExists", base: NotIpAddress, ifExists: true},
		{in: "NullIfExists", msg: "cannot take the IfExists suffix"},
		{in: "StringLikeIfExistsIfExists", msg: "unknown condition operator"},
		{in: "ForAllValues:ForAnyValue:StringLike", msg: "unknown condition operator"},
		{in: "forallvalues:stringlike", msg: `did you mean "ForAllValues:StringLike"?`},
		{in: "IPAddress", msg: `did you mean "IpAddress"?`},
		{in: "", msg: "unknown condition operator"},
	}
	for _, tt := range tests {
		base, set, ifExists, msg := parseOperator(tt.in)
		if base != tt.base || set != tt.set || ifExists != tt.ifExists || !strings.Contains(msg, tt.msg) || (tt.msg == "") != (msg == "") {
			t.Errorf("parseOperator(%q) = %v, %v, %v, %q; want %v, %v, %v, …%q…", tt.in, base, set, ifExists, msg, tt.base, tt.set, tt.ifExists, tt.msg)
		}
	}
}

func TestValueCheckers(t *testing.T) {
	for _, s := range []string{"0", "-1", "+2", "3.", ".5", "1e9", "1.5E-3"} {
		if !isNumber(s) {
			t.Errorf("isNumber(%q) = false", s)
		}
	}
	for _, s := range []string{"", "-", ".", "1e", "0x10", "Inf", "NaN", "1_000", " 1", "1 "} {
		if isNumber(s) {
			t.Errorf("isNumber(%q) = true", s)
		}
	}
	for _, s := range []string{"2026-01-02T15:04:05Z", "2026-01-02T15:04:05+0100", "2026-01-02T15:04Z", "2026-01-02T15:04:05", "2026-01-02", "1767366245", "1767366245.5"} {
		if !isDate(s) {
			t.Errorf("isDate(%q) = false", s)
		}
	}
	for _, s := range []string{"", "2026-13-01", "2026-01-02 15:04:05", "1767366245.", "12e3", "tomorrow"} {
		if isDate(s) {
			t.Errorf("isDate(%q) = true", s)
		}
	}
	for _, s := range []string{"10.0.0.0/8", "10.1.2.3/8", "::/0", "::ffff:10.0.0.1", "fe80::1"} {
		if !isIPOrCIDR(s) {
			t.Errorf("isIPOrCIDR(%q) = false", s)
		}
	}
	for _, s := range []string{"", "10.0.0.256", "10.0.0.0/", "fe80::1%eth0", "2001:db8::/129", "host.example"} {
		if isIPOrCIDR(s) {
			t.Errorf("isIPOrCIDR(%q) = true", s)
		}
	}
}

func TestLookupKey(t *testing.T) {
	tests := []struct {
		key    string
		typ    valueType
		status keyStatus
	}{
		{"aws:SourceIp", tIP, keyKnown},
		{"AWS:sourceip", tIP, keyKnown},
		{"aws:EpochTime", tDate | tNumeric, keyKnown},
		{"vpc-lattice-svcs:RequestHeader/Content-Type", tString, keyKnown},
		{"vpc-lattice-svcs:requestquerystring/q", tString, keyKnown},
		{"aws:PrincipalTag/", 0, keyNoSuffix},
		{"aws:RequestTag", 0, keyNoSuffix},
		{"aws:SourceIp/x", 0, keyUnknown},
		{"s3:prefix", 0, keyUnknown},
	}
	for _, tt := range tests {
		typ, status := lookupKey(tt.key)
		if typ != tt.typ || status != tt.status {
			t.Errorf("lookupKey(%q) = %v, %v; want %v, %v", tt.key, typ, status, tt.typ, tt.status)
		}
	}
}

func TestWildcardMatchFold(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "Invoke", true},
		{"inv*", "Invoke", true},
		{"I?voke", "Invoke", true},
		{"*o*e", "Invoke", true},
		{"Invoke?", "Invoke", false},
		{"*t", "Invoke", false},
		{"C*n*t", "Connect", true},
		{"", "Invoke", false},
	}
	for _, tt := range tests {
		if got := wildcardMatchFold(tt.pattern, tt.s); got != tt.want {
			t.Errorf("wildcardMatchFold(%q, %q) = %v", tt.pattern, tt.s, got)
		}
	}
}
