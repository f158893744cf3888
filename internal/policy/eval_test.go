package policy

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const (
	acct      = "123456789012"
	otherAcct = "210987654321"
	snARN     = "arn:aws:vpc-lattice:us-west-2:123456789012:servicenetwork/sn-0123456789abcdef0"
	session   = "arn:aws:sts::123456789012:assumed-role/rates-client/s1"
	userARN   = "arn:aws:iam::123456789012:user/alice"
)

// baseRequest is a signed GET through a service network, by a session of
// roleARN, with every key the evaluator knows set.
func baseRequest() *Request {
	return &Request{
		Action:   ActionInvoke,
		Resource: svcARN + "/orders/12",
		Principal: Principal{
			ARN: roleARN, SessionARN: session, Account: acct, Type: "AssumedRole",
			OrgID: "o-abc", OrgPaths: []string{"o-abc/r-1/ou-a/"},
			Tags:   []KeyValue{{"team", "orders"}, {"star", "a*b"}},
			UserID: "AROAEXAMPLE:s1",
		},
		SourceIP:              netip.MustParseAddr("10.1.2.3"),
		Time:                  time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC),
		SecureTransport:       true,
		ResourceTags:          []KeyValue{{"team", "orders"}, {"env", "prod"}},
		ServiceARN:            svcARN,
		ServiceNetworkARN:     snARN,
		SourceVPC:             "vpc-1a2b3c4d",
		SourceVPCOwnerAccount: acct,
		Port:                  443,
		Method:                "GET",
		Path:                  "/orders/12",
		Headers:               []KeyValue{{"content-type", "application/json"}, {"x-role", "reader"}},
		Query:                 []KeyValue{{"quux", "corge"}, {"quux", "grault"}, {"page", "2"}},
	}
}

// condHolds evaluates cond (a Condition object) in an Allow and in a Deny
// statement that otherwise match everything, and reports whether it held
// in each.
func condHolds(t *testing.T, cond string, r *Request) (inAllow, inDeny bool) {
	t.Helper()
	for _, eff := range []string{"Allow", "Deny"} {
		doc := auth(`{"Effect":"` + eff + `","Principal":"*","Action":"*","Resource":"*","Condition":` + cond + `}`)
		c := MustCompile(doc, AuthPolicy)
		out, _ := c.Evaluate(r)
		if eff == "Allow" {
			inAllow = out == Allowed
		} else {
			inDeny = out == Denied
		}
	}
	return inAllow, inDeny
}

type condCase struct {
	name string
	cond string
	mut  func(*Request)
	want bool
	// failClosed: the key is ambiguous, so the condition fails in an Allow
	// statement but holds in a Deny statement; want is the Allow result.
	failClosed bool
}

func noMethod(r *Request)  { r.Method = "" }
func noPort(r *Request)    { r.Port = 0 }
func noTime(r *Request)    { r.Time = time.Time{} }
func noIP(r *Request)      { r.SourceIP = netip.Addr{} }
func noQuery(r *Request)   { r.Query = nil }
func anonymous(r *Request) { r.Principal = Principal{} }
func setIP(s string) func(*Request) {
	return func(r *Request) { r.SourceIP = netip.MustParseAddr(s) }
}

func stringCases() []condCase {
	return []condCase{
		{name: "StringEquals match", cond: `{"StringEquals":{"vpc-lattice-svcs:RequestMethod":"GET"}}`, want: true},
		{name: "StringEquals is case-sensitive", cond: `{"StringEquals":{"vpc-lattice-svcs:RequestMethod":"get"}}`, want: false},
		{name: "StringEquals values are ORed", cond: `{"StringEquals":{"vpc-lattice-svcs:RequestMethod":["POST","GET"]}}`, want: true},
		{name: "StringEquals treats * literally", cond: `{"StringEquals":{"vpc-lattice-svcs:RequestMethod":"*"}}`, want: false},
		{name: "StringEquals literal * matches *", cond: `{"StringEquals":{"vpc-lattice-svcs:RequestMethod":"G*"}}`, mut: func(r *Request) { r.Method = "G*" }, want: true},
		{name: "StringEquals absent key", cond: `{"StringEquals":{"vpc-lattice-svcs:RequestMethod":"GET"}}`, mut: noMethod, want: false},
		{name: "StringEqualsIfExists absent key", cond: `{"StringEqualsIfExists":{"vpc-lattice-svcs:RequestMethod":"POST"}}`, mut: noMethod, want: true},
		{name: "StringEqualsIfExists present mismatch", cond: `{"StringEqualsIfExists":{"vpc-lattice-svcs:RequestMethod":"POST"}}`, want: false},
		{name: "key names are case-insensitive", cond: `{"StringEquals":{"VPC-LATTICE-SVCS:requestMETHOD":"GET"}}`, want: true},
		{name: "StringNotEquals differs", cond: `{"StringNotEquals":{"vpc-lattice-svcs:RequestMethod":"POST"}}`, want: true},
		{name: "StringNotEquals equal", cond: `{"StringNotEquals":{"vpc-lattice-svcs:RequestMethod":"GET"}}`, want: false},
		{name: "StringNotEquals values are ANDed", cond: `{"StringNotEquals":{"vpc-lattice-svcs:RequestMethod":["POST","GET"]}}`, want: false},
		{name: "StringNotEquals none equal", cond: `{"StringNotEquals":{"vpc-lattice-svcs:RequestMethod":["POST","PUT"]}}`, want: true},
		{name: "StringNotEquals absent key holds", cond: `{"StringNotEquals":{"vpc-lattice-svcs:RequestMethod":"GET"}}`, mut: noMethod, want: true},
		{name: "StringNotEqualsIfExists absent key", cond: `{"StringNotEqualsIfExists":{"vpc-lattice-svcs:RequestMethod":"GET"}}`, mut: noMethod, want: true},
		{name: "StringEqualsIgnoreCase", cond: `{"StringEqualsIgnoreCase":{"vpc-lattice-svcs:RequestMethod":"get"}}`, want: true},
		{name: "StringEqualsIgnoreCase unicode", cond: `{"StringEqualsIgnoreCase":{"aws:PrincipalTag/team":"ÖRDERS"}}`, mut: func(r *Request) { r.Principal.Tags = []KeyValue{{"team", "örders"}} }, want: true},
		{name: "StringNotEqualsIgnoreCase anonymous caller", cond: `{"StringNotEqualsIgnoreCase":{"aws:PrincipalType":"anonymous"}}`, mut: anonymous, want: false},
		{name: "StringNotEqualsIgnoreCase signed caller", cond: `{"StringNotEqualsIgnoreCase":{"aws:PrincipalType":"anonymous"}}`, want: true},
		{name: "StringLike star", cond: `{"StringLike":{"vpc-lattice-svcs:RequestPath":"/orders/*"}}`, want: true},
		{name: "StringLike star empty run", cond: `{"StringLike":{"vpc-lattice-svcs:RequestPath":"/orders/12*"}}`, want: true},
		{name: "StringLike star crosses slashes", cond: `{"StringLike":{"vpc-lattice-svcs:RequestPath":"/*2"}}`, want: true},
		{name: "StringLike question mark", cond: `{"StringLike":{"vpc-lattice-svcs:RequestPath":"/orders/?2"}}`, want: true},
		{name: "StringLike question mark needs a char", cond: `{"StringLike":{"vpc-lattice-svcs:RequestPath":"/orders/12?"}}`, want: false},
		{name: "StringLike mismatch", cond: `{"StringLike":{"vpc-lattice-svcs:RequestPath":"/users/*"}}`, want: false},
		{name: "StringLike case-sensitive", cond: `{"StringLike":{"vpc-lattice-svcs:RequestPath":"/ORDERS/*"}}`, want: false},
		{name: "StringLike backtracking", cond: `{"StringLike":{"vpc-lattice-svcs:RequestPath":"*a*b*c"}}`, mut: func(r *Request) { r.Path = "xaxbxbxc" }, want: true},
		{name: "StringNotLike", cond: `{"StringNotLike":{"vpc-lattice-svcs:RequestPath":"/admin/*"}}`, want: true},
		{name: "StringNotLike matching", cond: `{"StringNotLike":{"vpc-lattice-svcs:RequestPath":["/admin/*","/orders/*"]}}`, want: false},
		{name: "StringNotLike absent", cond: `{"StringNotLike":{"vpc-lattice-svcs:RequestPath":"/admin/*"}}`, mut: func(r *Request) { r.Path = "" }, want: true},
		{name: "header name case-insensitive", cond: `{"StringEquals":{"vpc-lattice-svcs:RequestHeader/Content-Type":"application/json"}}`, want: true},
		{name: "header absent", cond: `{"StringEquals":{"vpc-lattice-svcs:RequestHeader/x-missing":"a"}}`, want: false},
		{name: "header empty value is present", cond: `{"Null":{"vpc-lattice-svcs:RequestHeader/x-empty":"false"}}`, mut: func(r *Request) { r.Headers = append(r.Headers, KeyValue{"X-Empty", ""}) }, want: true},
		{name: "header given twice fails closed", cond: `{"StringEquals":{"vpc-lattice-svcs:RequestHeader/x-role":"reader"}}`, mut: func(r *Request) { r.Headers = append(r.Headers, KeyValue{"X-Role", "admin"}) }, want: false, failClosed: true},
		{name: "negated on header given twice fails closed", cond: `{"StringNotEquals":{"vpc-lattice-svcs:RequestHeader/x-role":"admin"}}`, mut: func(r *Request) { r.Headers = append(r.Headers, KeyValue{"X-Role", "admin"}) }, want: false, failClosed: true},
		{name: "principal tag", cond: `{"StringEquals":{"aws:PrincipalTag/team":"orders"}}`, want: true},
		{name: "principal tag key case-insensitive", cond: `{"StringEquals":{"aws:PrincipalTag/TEAM":"orders"}}`, want: true},
		{name: "principal tag value case-sensitive", cond: `{"StringEquals":{"aws:PrincipalTag/team":"Orders"}}`, want: false},
		{name: "resource tag", cond: `{"StringEquals":{"aws:ResourceTag/env":"prod"}}`, want: true},
		{name: "unknown key is absent", cond: `{"StringEquals":{"aws:SourceVpce":"vpce-1"}}`, want: false},
		{name: "unknown key negated holds", cond: `{"StringNotEquals":{"aws:SourceVpce":"vpce-1"}}`, want: true},
		{name: "source vpc", cond: `{"StringEquals":{"vpc-lattice-svcs:SourceVpc":"vpc-1a2b3c4d","vpc-lattice-svcs:SourceVpcOwnerAccount":"123456789012"}}`, want: true},
		{name: "keys in one operator are ANDed", cond: `{"StringEquals":{"vpc-lattice-svcs:SourceVpc":"vpc-1a2b3c4d","vpc-lattice-svcs:SourceVpcOwnerAccount":"210987654321"}}`, want: false},
		{name: "operators are ANDed", cond: `{"StringEquals":{"vpc-lattice-svcs:RequestMethod":"GET"},"NumericEquals":{"vpc-lattice-svcs:Port":"80"}}`, want: false},
		{name: "resource account", cond: `{"StringEquals":{"aws:ResourceAccount":"123456789012"}}`, want: true},
		{name: "principal account", cond: `{"StringEquals":{"aws:PrincipalAccount":"123456789012","aws:PrincipalOrgID":"o-abc"}}`, want: true},
		{name: "userid and username absent for a role", cond: `{"StringEquals":{"aws:userid":"AROAEXAMPLE:s1"},"Null":{"aws:username":"true"}}`, want: true},
	}
}

func setCases() []condCase {
	return []condCase{
		{name: "query plain operator is ambiguous", cond: `{"StringEquals":{"vpc-lattice-svcs:RequestQueryString/quux":"corge"}}`, want: false, failClosed: true},
		{name: "query single occurrence plain", cond: `{"StringEquals":{"vpc-lattice-svcs:RequestQueryString/page":"2"}}`, want: true},
		{name: "ForAnyValue match", cond: `{"ForAnyValue:StringEquals":{"vpc-lattice-svcs:RequestQueryString/quux":"corge"}}`, want: true},
		{name: "ForAnyValue no match", cond: `{"ForAnyValue:StringEquals":{"vpc-lattice-svcs:RequestQueryString/quux":"x"}}`, want: false},
		{name: "ForAnyValue absent", cond: `{"ForAnyValue:StringEquals":{"vpc-lattice-svcs:RequestQueryString/quux":"corge"}}`, mut: noQuery, want: false},
		{name: "ForAnyValue IfExists absent still fails", cond: `{"ForAnyValue:StringEqualsIfExists":{"vpc-lattice-svcs:RequestQueryString/quux":"corge"}}`, mut: noQuery, want: false},
		{name: "ForAnyValue negated absent", cond: `{"ForAnyValue:StringNotEquals":{"vpc-lattice-svcs:RequestQueryString/quux":"corge"}}`, mut: noQuery, want: false},
		{name: "ForAnyValue negated one differs", cond: `{"ForAnyValue:StringNotEquals":{"vpc-lattice-svcs:RequestQueryString/quux":"corge"}}`, want: true},
		{name: "ForAllValues subset", cond: `{"ForAllValues:StringEquals":{"vpc-lattice-svcs:RequestQueryString/quux":["corge","grault","garply"]}}`, want: true},
		{name: "ForAllValues not subset", cond: `{"ForAllValues:StringEquals":{"vpc-lattice-svcs:RequestQueryString/quux":["corge"]}}`, want: false},
		{name: "ForAllValues absent holds", cond: `{"ForAllValues:StringEquals":{"vpc-lattice-svcs:RequestQueryString/quux":"corge"}}`, mut: noQuery, want: true},
		{name: "ForAllValues negated", cond: `{"ForAllValues:StringNotEquals":{"vpc-lattice-svcs:RequestQueryString/quux":["x","y"]}}`, want: true},
		{name: "ForAllValues negated one equal", cond: `{"ForAllValues:StringNotEquals":{"vpc-lattice-svcs:RequestQueryString/quux":["grault"]}}`, want: false},
		{name: "ForAllValues StringLike", cond: `{"ForAllValues:StringLike":{"vpc-lattice-svcs:RequestQueryString/quux":["*r*"]}}`, want: true},
		{name: "ForAnyValue on a single-valued key", cond: `{"ForAnyValue:StringEquals":{"vpc-lattice-svcs:RequestMethod":["GET","HEAD"]}}`, want: true},
		{name: "ForAllValues on a single-valued key", cond: `{"ForAllValues:StringEquals":{"vpc-lattice-svcs:RequestMethod":["POST"]}}`, want: false},
		{name: "org paths ForAnyValue:StringLike", cond: `{"ForAnyValue:StringLike":{"aws:PrincipalOrgPaths":"o-abc/r-1/ou-a/*"}}`, want: true},
		{name: "org paths plain single value", cond: `{"StringLike":{"aws:PrincipalOrgPaths":"o-abc/*"}}`, want: true},
		{name: "query key compares case-insensitively", cond: `{"ForAnyValue:StringEquals":{"vpc-lattice-svcs:RequestQueryString/PAGE":"2"}}`, want: true},
	}
}

func numericDateBoolCases() []condCase {
	return []condCase{
		{name: "NumericEquals", cond: `{"NumericEquals":{"vpc-lattice-svcs:Port":"443"}}`, want: true},
		{name: "NumericEquals number value", cond: `{"NumericEquals":{"vpc-lattice-svcs:Port":443}}`, want: true},
		{name: "NumericEquals decimal form", cond: `{"NumericEquals":{"vpc-lattice-svcs:Port":"443.0"}}`, want: true},
		{name: "NumericEquals mismatch", cond: `{"NumericEquals":{"vpc-lattice-svcs:Port":["80","8080"]}}`, want: false},
		{name: "NumericNotEquals", cond: `{"NumericNotEquals":{"vpc-lattice-svcs:Port":"80"}}`, want: true},
		{name: "NumericNotEquals absent holds", cond: `{"NumericNotEquals":{"vpc-lattice-svcs:Port":"80"}}`, mut: noPort, want: true},
		{name: "NumericLessThan", cond: `{"NumericLessThan":{"vpc-lattice-svcs:Port":"1024"}}`, want: true},
		{name: "NumericLessThan boundary", cond: `{"NumericLessThan":{"vpc-lattice-svcs:Port":"443"}}`, want: false},
		{name: "NumericLessThanEquals boundary", cond: `{"NumericLessThanEquals":{"vpc-lattice-svcs:Port":"443"}}`, want: true},
		{name: "NumericGreaterThan", cond: `{"NumericGreaterThan":{"vpc-lattice-svcs:Port":"442"}}`, want: true},
		{name: "NumericGreaterThan boundary", cond: `{"NumericGreaterThan":{"vpc-lattice-svcs:Port":"443"}}`, want: false},
		{name: "NumericGreaterThanEquals", cond: `{"NumericGreaterThanEquals":{"vpc-lattice-svcs:Port":"443"}}`, want: true},
		{name: "NumericGreaterThanEquals above", cond: `{"NumericGreaterThanEquals":{"vpc-lattice-svcs:Port":"444"}}`, want: false},
		{name: "Numeric absent", cond: `{"NumericLessThan":{"vpc-lattice-svcs:Port":"1024"}}`, mut: noPort, want: false},
		{name: "NumericIfExists absent", cond: `{"NumericLessThanIfExists":{"vpc-lattice-svcs:Port":"1024"}}`, mut: noPort, want: true},
		{name: "epoch time numeric", cond: `{"NumericGreaterThan":{"aws:EpochTime":"1700000000"}}`, want: true},
		{name: "DateLessThan", cond: `{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}`, want: true},
		{name: "DateLessThan past", cond: `{"DateLessThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}`, want: false},
		{name: "DateGreaterThan", cond: `{"DateGreaterThan":{"aws:CurrentTime":"2026-06-01T11:59:59Z"}}`, want: true},
		{name: "DateGreaterThanEquals boundary", cond: `{"DateGreaterThanEquals":{"aws:CurrentTime":"2026-06-01T12:00:00Z"}}`, want: true},
		{name: "DateLessThanEquals boundary", cond: `{"DateLessThanEquals":{"aws:CurrentTime":"2026-06-01T14:00:00+02:00"}}`, want: true},
		{name: "DateEquals", cond: `{"DateEquals":{"aws:CurrentTime":"2026-06-01T12:00:00Z"}}`, want: true},
		{name: "DateEquals epoch seconds", cond: `{"DateEquals":{"aws:CurrentTime":"1780315200"}}`, want: true},
		{name: "DateNotEquals", cond: `{"DateNotEquals":{"aws:CurrentTime":"2026-06-01"}}`, want: true},
		{name: "DateNotEquals absent holds", cond: `{"DateNotEquals":{"aws:CurrentTime":"2026-06-01"}}`, mut: noTime, want: true},
		{name: "Date absent", cond: `{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01"}}`, mut: noTime, want: false},
		{name: "DateIfExists absent", cond: `{"DateGreaterThanIfExists":{"aws:CurrentTime":"2030-01-01"}}`, mut: noTime, want: true},
		{name: "epoch time as date", cond: `{"DateGreaterThan":{"aws:EpochTime":"2026-01-01T00:00:00Z"}}`, want: true},
		{name: "Bool true", cond: `{"Bool":{"aws:SecureTransport":"true"}}`, want: true},
		{name: "Bool case", cond: `{"Bool":{"aws:SecureTransport":"TRUE"}}`, want: true},
		{name: "Bool JSON boolean", cond: `{"Bool":{"aws:SecureTransport":false}}`, mut: func(r *Request) { r.SecureTransport = false }, want: true},
		{name: "Bool mismatch", cond: `{"Bool":{"aws:SecureTransport":"false"}}`, want: false},
		{name: "BoolIfExists", cond: `{"BoolIfExists":{"aws:PrincipalIsAWSService":"false"}}`, want: true},
		{name: "Null true absent", cond: `{"Null":{"aws:PrincipalOrgID":"true"}}`, mut: func(r *Request) { r.Principal.OrgID = "" }, want: true},
		{name: "Null true present", cond: `{"Null":{"aws:PrincipalOrgID":"true"}}`, want: false},
		{name: "Null false present", cond: `{"Null":{"aws:PrincipalOrgID":"false"}}`, want: true},
		{name: "Null false absent", cond: `{"Null":{"aws:PrincipalTag/missing":"false"}}`, want: false},
		{name: "Null on multi-valued key", cond: `{"Null":{"vpc-lattice-svcs:RequestQueryString/quux":"false"}}`, want: true},
	}
}

func ipArnCases() []condCase {
	return []condCase{
		{name: "IpAddress in CIDR", cond: `{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, want: true},
		{name: "IpAddress out of CIDR", cond: `{"IpAddress":{"aws:SourceIp":"192.168.0.0/16"}}`, want: false},
		{name: "IpAddress single address", cond: `{"IpAddress":{"aws:SourceIp":"10.1.2.3"}}`, want: true},
		{name: "IpAddress values ORed", cond: `{"IpAddress":{"aws:SourceIp":["192.168.0.0/16","10.1.0.0/16"]}}`, want: true},
		{name: "IpAddress IPv6", cond: `{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}`, mut: setIP("2001:db8::1"), want: true},
		{name: "IpAddress IPv6 out", cond: `{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}`, mut: setIP("2001:db9::1"), want: false},
		{name: "IPv4-mapped request address", cond: `{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, mut: setIP("::ffff:10.9.9.9"), want: true},
		{name: "IPv4-mapped policy block", cond: `{"IpAddress":{"aws:SourceIp":"::ffff:10.0.0.0/104"}}`, want: true},
		{name: "IPv4 block does not hold IPv6", cond: `{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}`, mut: setIP("2001:db8::1"), want: false},
		{name: "IpAddress absent", cond: `{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}`, mut: noIP, want: false},
		{name: "NotIpAddress", cond: `{"NotIpAddress":{"aws:SourceIp":"192.168.0.0/16"}}`, want: true},
		{name: "NotIpAddress inside", cond: `{"NotIpAddress":{"aws:SourceIp":["192.168.0.0/16","10.0.0.0/8"]}}`, want: false},
		{name: "NotIpAddress absent holds", cond: `{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, mut: noIP, want: true},
		{name: "ArnLike", cond: `{"ArnLike":{"vpc-lattice-svcs:ServiceArn":"arn:aws:vpc-lattice:*:123456789012:service/*"}}`, want: true},
		{name: "ArnLike wrong account", cond: `{"ArnLike":{"vpc-lattice-svcs:ServiceArn":"arn:aws:vpc-lattice:*:210987654321:service/*"}}`, want: false},
		{name: "ArnLike star stays in its part", cond: `{"ArnLike":{"vpc-lattice-svcs:ServiceArn":"arn:aws:*:123456789012:service/*"}}`, want: false},
		{name: "ArnLike five parts never match", cond: `{"ArnLike":{"vpc-lattice-svcs:ServiceArn":"arn:aws:vpc-lattice:us-west-2:*"}}`, want: false},
		{name: "ArnLike resource part may hold colons", cond: `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/*"}}`, mut: func(r *Request) { r.Principal.ARN = "arn:aws:iam::123456789012:role/a:b" }, want: true},
		{name: "ArnLike question mark", cond: `{"ArnLike":{"vpc-lattice-svcs:ServiceNetworkArn":"arn:aws:vpc-lattice:us-west-?:123456789012:servicenetwork/sn-*"}}`, want: true},
		{name: "ArnLike case-sensitive", cond: `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::123456789012:role/RATES-*"}}`, want: false},
		{name: "ArnEquals has wildcards too", cond: `{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::123456789012:role/rates-*"}}`, want: true},
		{name: "ArnEquals exact", cond: `{"ArnEquals":{"aws:PrincipalArn":"` + roleARN + `"}}`, want: true},
		{name: "ArnNotEquals", cond: `{"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::123456789012:role/other"}}`, want: true},
		{name: "ArnNotLike matching", cond: `{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/rates-*"}}`, want: false},
		{name: "ArnNotLike absent holds", cond: `{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/*"}}`, mut: anonymous, want: true},
		{name: "ArnNotLike invalid policy value fails", cond: `{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*"}}`, want: false},
		{name: "ArnLike absent", cond: `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/*"}}`, mut: anonymous, want: false},
		{name: "ArnLikeIfExists absent", cond: `{"ArnLikeIfExists":{"aws:PrincipalArn":"arn:aws:iam::*:role/x"}}`, mut: anonymous, want: true},
		{name: "StringLike on an ARN key crosses colons", cond: `{"StringLike":{"vpc-lattice-svcs:ServiceArn":"arn:aws:*/svc-*"}}`, want: true},
	}
}

func variableCases() []condCase {
	return []condCase{
		{name: "variable from principal tag", cond: `{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"}}`, want: true},
		{name: "variable inside text", cond: `{"StringLike":{"vpc-lattice-svcs:RequestPath":"/${aws:PrincipalTag/team}/*"}}`, want: true},
		{name: "variable key case-insensitive", cond: `{"StringEquals":{"aws:ResourceTag/team":"${AWS:principaltag/TEAM}"}}`, want: true},
		{name: "variable mismatch", cond: `{"StringEquals":{"aws:ResourceTag/env":"${aws:PrincipalTag/team}"}}`, want: false},
		{name: "unresolved variable does not match", cond: `{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/missing}"}}`, want: false},
		{name: "unresolved variable, other value matches", cond: `{"StringEquals":{"aws:ResourceTag/team":["${aws:PrincipalTag/missing}","orders"]}}`, want: true},
		{name: "unresolved variable fails a negated operator", cond: `{"StringNotEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/missing}"}}`, want: false},
		{name: "default value", cond: `{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/missing, 'orders'}"}}`, want: true},
		{name: "default unused when present", cond: `{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team, 'x'}"}}`, want: true},
		{name: "substituted star is literal", cond: `{"StringLike":{"vpc-lattice-svcs:RequestPath":"${aws:PrincipalTag/star}"}}`, mut: func(r *Request) { r.Path = "axxb" }, want: false},
		{name: "substituted star matches itself", cond: `{"StringLike":{"vpc-lattice-svcs:RequestPath":"${aws:PrincipalTag/star}"}}`, mut: func(r *Request) { r.Path = "a*b" }, want: true},
		{name: "escaped star is literal", cond: `{"StringLike":{"vpc-lattice-svcs:RequestPath":"/a${*}b"}}`, mut: func(r *Request) { r.Path = "/axb" }, want: false},
		{name: "escaped star, question, dollar", cond: `{"StringEquals":{"vpc-lattice-svcs:RequestPath":"/${*}${?}${$}"}}`, mut: func(r *Request) { r.Path = "/*?$" }, want: true},
		{name: "variable of multi-valued key is unresolved", cond: `{"StringEquals":{"vpc-lattice-svcs:RequestMethod":"${vpc-lattice-svcs:RequestQueryString/quux}"}}`, want: false},
		{name: "multi-valued key with one value is no variable", cond: `{"StringEquals":{"vpc-lattice-svcs:RequestPath":"${vpc-lattice-svcs:RequestQueryString/page}"}}`, mut: func(r *Request) { r.Path = "2" }, want: false},
		{name: "header as variable", cond: `{"StringEquals":{"vpc-lattice-svcs:RequestPath":"/orders/${vpc-lattice-svcs:RequestHeader/x-id}"}}`, mut: func(r *Request) { r.Headers = append(r.Headers, KeyValue{"X-Id", "12"}) }, want: true},
		{name: "numeric key as variable is unresolved", cond: `{"StringEquals":{"vpc-lattice-svcs:RequestPath":"${vpc-lattice-svcs:Port}"}}`, mut: func(r *Request) { r.Path = "443" }, want: false},
		{name: "variable in ArnLike", cond: `{"ArnLike":{"vpc-lattice-svcs:ServiceArn":"arn:aws:vpc-lattice:*:${aws:PrincipalAccount}:service/*"}}`, want: true},
		{name: "unresolved variable in ArnNotLike fails", cond: `{"ArnNotLike":{"vpc-lattice-svcs:ServiceArn":"arn:aws:vpc-lattice:*:${aws:username}:service/*"}}`, want: false},
		{name: "IgnoreCase with variable", cond: `{"StringEqualsIgnoreCase":{"vpc-lattice-svcs:RequestPath":"/${aws:PrincipalTag/team}/12"}}`, mut: func(r *Request) { r.Path = "/ORDERS/12" }, want: true},
	}
}

func TestConditions(t *testing.T) {
	groups := map[string][]condCase{
		"string": stringCases(), "set": setCases(), "numeric-date-bool": numericDateBoolCases(),
		"ip-arn": ipArnCases(), "variables": variableCases(),
	}
	for g, cases := range groups {
		for _, tc := range cases {
			t.Run(g+"/"+tc.name, func(t *testing.T) {
				r := baseRequest()
				if tc.mut != nil {
					tc.mut(r)
				}
				inAllow, inDeny := condHolds(t, tc.cond, r)
				wantDeny := tc.want != tc.failClosed
				if inAllow != tc.want || inDeny != wantDeny {
					t.Errorf("condition %s: holds in Allow=%v Deny=%v, want %v %v", tc.cond, inAllow, inDeny, tc.want, wantDeny)
				}
			})
		}
	}
}

// Every operator of the table is covered by a case above.
func TestConditionsCoverEveryOperator(t *testing.T) {
	seen := map[Operator]bool{BinaryEquals: true} // TestBinaryEquals
	for _, cases := range [][]condCase{stringCases(), setCases(), numericDateBoolCases(), ipArnCases(), variableCases()} {
		for _, tc := range cases {
			p, err := Parse([]byte(auth(allowAll(`,"Condition":`+tc.cond))), ParseOptions{Kind: AuthPolicy})
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			for _, c := range p.Statements[0].Conditions {
				seen[c.Base] = true
			}
		}
	}
	for o := Operator(1); o < numOperators; o++ {
		if !seen[o] {
			t.Errorf("no test case for %v", o)
		}
	}
}

// BinaryEquals applies to binary keys, of which Lattice has none; Parse
// rejects it on string keys, so build the policy by hand.
func TestBinaryEquals(t *testing.T) {
	p := &Policy{Version: Version2012, Statements: []Statement{{
		Effect: Allow, Principal: &Principals{Wildcard: true}, Action: []string{"*"}, Resource: []string{"*"},
		Conditions: []Condition{{Operator: "BinaryEquals", Base: BinaryEquals,
			Key: "vpc-lattice-svcs:RequestHeader/x-bin", Values: []string{base64.StdEncoding.EncodeToString([]byte("\x00\x01bin"))}}},
	}}}
	c, err := Compile(p, AuthPolicy)
	if err != nil {
		t.Fatal(err)
	}
	r := baseRequest()
	if out, _ := c.Evaluate(r); out != NoMatch {
		t.Errorf("absent key: %v", out)
	}
	r.Headers = append(r.Headers, KeyValue{"x-bin", "\x00\x01bin"})
	if out, _ := c.Evaluate(r); out != Allowed {
		t.Errorf("equal bytes: %v", out)
	}
	r.Headers[len(r.Headers)-1].Value = "\x00\x02bin"
	if out, _ := c.Evaluate(r); out != NoMatch {
		t.Errorf("different bytes: %v", out)
	}
}

func TestCompileErrors(t *testing.T) {
	allowStar := Statement{Effect: Allow, Principal: &Principals{Wildcard: true}, Action: []string{"*"}, Resource: []string{"*"}}
	withPrincipal := allowStar
	noPrincipal := allowStar
	noPrincipal.Principal = nil
	badNum := allowStar
	badNum.Conditions = []Condition{{Operator: "NumericEquals", Base: NumericEquals, Key: "vpc-lattice-svcs:Port", Values: []string{"x"}}}
	badEffect := allowStar
	badEffect.Effect = "allow"
	noAction := allowStar
	noAction.Action = nil
	cases := []struct {
		name string
		p    *Policy
		kind Kind
	}{
		{"nil policy", nil, AuthPolicy},
		{"bad kind", &Policy{}, 0},
		{"principal in identity policy", &Policy{Statements: []Statement{withPrincipal}}, IdentityPolicy},
		{"no principal in auth policy", &Policy{Statements: []Statement{noPrincipal}}, AuthPolicy},
		{"bad number", &Policy{Statements: []Statement{badNum}}, AuthPolicy},
		{"bad effect", &Policy{Statements: []Statement{badEffect}}, AuthPolicy},
		{"no action", &Policy{Statements: []Statement{noAction}}, AuthPolicy},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Compile(tc.p, tc.kind); !errors.Is(err, ErrCompile) {
				t.Errorf("err = %v, want ErrCompile", err)
			}
		})
	}
}

// fuzzRequest builds a request from fuzzer bytes: newline-separated
// fields fill the string keys, and a few bytes pick the rest.
func fuzzRequest(b []byte) *Request {
	f := strings.Split(string(b), "\n")
	get := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	r := &Request{
		Action:   []string{ActionInvoke, ActionConnect, get(0)}[len(b)%3],
		Resource: get(1),
		Principal: Principal{
			ARN: get(2), SessionARN: get(3), Account: get(4), Type: get(5), OrgID: get(6),
			Username: get(7), UserID: get(7),
		},
		Method: get(8), Path: get(9), SourceVPC: get(10), ServiceARN: get(11),
		SecureTransport: len(b)%2 == 0,
	}
	if v := get(12); v != "" {
		r.Principal.Tags = []KeyValue{{"team", v}, {get(13), get(14)}}
		r.Principal.OrgPaths = []string{v, get(13)}
		r.ResourceTags = []KeyValue{{"team", get(14)}}
	}
	if v := get(15); v != "" {
		r.Headers = []KeyValue{{get(16), v}, {"x-role", get(17)}}
		r.Query = []KeyValue{{get(16), v}, {get(16), get(17)}}
	}
	if len(b) > 4 {
		r.Port = int(b[0])<<8 | int(b[1])
		r.SourceIP = netip.AddrFrom4([4]byte{b[1], b[2], b[3], b[4]})
		r.Time = time.Unix(int64(b[2])<<24|int64(b[3])<<16, 0)
	}
	if len(b) > 20 {
		r.SourceIP = netip.AddrFrom16([16]byte(b[:16]))
	}
	return r
}

// FuzzEvaluate parses random documents with the strict parser, compiles
// what it accepts and evaluates random requests with Evaluate, Decide and
// Explain: nothing may panic, everything Parse accepts must compile, and
// Explain must reach Decide's verdict.
func FuzzEvaluate(f *testing.F) {
	docs := []string{serviceDoc, networkDoc, identityDoc, anonymousDoc, accountDoc, denyAllDoc, paddedServiceDoc(14)}
	for _, group := range [][]condCase{stringCases(), setCases(), numericDateBoolCases(), ipArnCases(), variableCases()} {
		for _, tc := range group[:4] {
			docs = append(docs, auth(allowAll(`,"Condition":`+tc.cond)))
		}
	}
	reqs := []string{
		"x\n" + svcARN + "/orders/12\n" + roleARN + "\n" + session + "\n" + acct + "\nAssumedRole\no-abc\nalice\nGET\n/orders/12\nvpc-1\n" + svcARN + "\norders\nenv\nprod\nv\nx-role\nadmin",
		"", "\n\n\n", "*\n*\n*",
	}
	for i, d := range docs {
		f.Add(d, uint8(i), []byte(reqs[i%len(reqs)]))
	}
	f.Fuzz(func(t *testing.T, doc string, kind uint8, req []byte) {
		k := Kind(kind%3 + 1)
		p, err := Parse([]byte(doc), ParseOptions{Kind: k, MaxSize: 36864})
		if err != nil {
			return
		}
		c, err := Compile(p, k)
		if err != nil {
			t.Fatalf("Parse accepted a %v policy that does not compile: %v\n%s", k, err, doc)
		}
		r := fuzzRequest(req)
		out, st := c.Evaluate(r)
		if (out == NoMatch) != (st == -1) || st >= len(p.Statements) {
			t.Fatalf("Evaluate = %v, %d", out, st)
		}
		if o2, s2 := linearEvaluate(c, r); o2 != out || s2 != st {
			t.Fatalf("indexed %v %d, linear %v %d", out, st, o2, s2)
		}
		in := DecideInput{NetworkIAM: kind&4 != 0, ServiceIAM: kind&8 != 0, Request: r}
		if k == IdentityPolicy {
			in.IdentityPolicies = []*Compiled{c}
		} else {
			in.NetworkPolicy, in.ServicePolicy = c, c
		}
		d := Decide(in)
		_ = d.Message()
		e := Explain(ExplainInput{DecideInput: in})
		if e.Allowed != d.Allowed || e.DeniedBy != d.Reason() {
			t.Fatalf("Explain %v/%s, Decide %v/%s", e.Allowed, e.DeniedBy, d.Allowed, d.Reason())
		}
		_ = e.String()
		if _, err := json.Marshal(e); err != nil {
			t.Fatal(err)
		}
	})
}

// Parse keeps typed operators on keys of their type; hand-built policies
// can apply them to string keys, which are then converted per value (and a
// value that does not convert matches nothing, negated or not).
func TestTypeConversions(t *testing.T) {
	cases := []struct {
		op    Operator
		value string // policy value
		hdr   string // request header value
		want  bool
	}{
		{NumericLessThan, "10", "5", true},
		{NumericLessThan, "10", "50", false},
		{NumericLessThan, "10", "five", false},
		{NumericNotEquals, "10", "five", false},
		{NumericNotEquals, "10", "11", true},
		{DateLessThan, "2030-01-01", "2026-01-01T00:00:00Z", true},
		{DateLessThan, "2030-01-01", "1767225600", true},
		{DateLessThan, "2030-01-01", "soon", false},
		{Bool, "true", "TRUE", true},
		{Bool, "true", "yes", false},
		{IpAddress, "10.0.0.0/8", "10.0.0.1", true},
		{IpAddress, "10.0.0.0/8", "::ffff:10.0.0.1", true},
		{NotIpAddress, "10.0.0.0/8", "not-an-ip", false},
	}
	for _, tc := range cases {
		p := &Policy{Version: Version2012, Statements: []Statement{{
			Effect: Allow, Principal: &Principals{Wildcard: true}, Action: []string{"*"}, Resource: []string{"*"},
			Conditions: []Condition{{Operator: tc.op.String(), Base: tc.op, Key: "vpc-lattice-svcs:RequestHeader/x-v", Values: []string{tc.value}}},
		}}}
		c, err := Compile(p, AuthPolicy)
		if err != nil {
			t.Fatal(err)
		}
		r := baseRequest()
		r.Headers = []KeyValue{{"x-v", tc.hdr}}
		if out, _ := c.Evaluate(r); (out == Allowed) != tc.want {
			t.Errorf("%v %q on %q: %v, want %v", tc.op, tc.value, tc.hdr, out, tc.want)
		}
	}
	// String operators on typed keys: the values never compare, and a
	// negated operator fails too.
	for _, op := range []Operator{StringEquals, StringNotEquals, StringEqualsIgnoreCase, ArnNotLike, BinaryEquals} {
		p := &Policy{Version: Version2012, Statements: []Statement{{
			Effect: Allow, Principal: &Principals{Wildcard: true}, Action: []string{"*"}, Resource: []string{"*"},
			Conditions: []Condition{{Operator: op.String(), Base: op, Key: "vpc-lattice-svcs:Port", Values: []string{"arn:aws:a:b:c:443"}}},
		}}}
		if op == BinaryEquals {
			p.Statements[0].Conditions[0].Values = []string{"NDQz"}
		}
		c, err := Compile(p, AuthPolicy)
		if err != nil {
			t.Fatal(err)
		}
		if out, _ := c.Evaluate(baseRequest()); out != NoMatch {
			t.Errorf("%v on a numeric key: %v", op, out)
		}
	}
}

func TestLongPrincipalList(t *testing.T) {
	var arns []string
	for i := 0; i < 20; i++ {
		arns = append(arns, `"arn:aws:iam::123456789012:role/r`+string(rune('a'+i))+`"`)
	}
	stmt := `{"Effect":"Allow","Principal":{"AWS":[` + strings.Join(arns, ",") + `]},"Action":"*","Resource":"*"}`
	r := baseRequest()
	if out := evalDoc(t, stmt, r); out != NoMatch {
		t.Errorf("unlisted role: %v", out)
	}
	r.Principal.ARN = "arn:aws:iam::123456789012:role/rk"
	if out := evalDoc(t, stmt, r); out != Allowed {
		t.Errorf("listed role: %v", out)
	}
}
