package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const (
	svcARN  = "arn:aws:vpc-lattice:us-west-2:123456789012:service/svc-0123456789abcdef0"
	roleARN = "arn:aws:iam::123456789012:role/rates-client"
)

// auth wraps statements (JSON objects, comma-separated) into a 2012-10-17
// policy document.
func auth(stmts string) string {
	return `{"Version":"2012-10-17","Statement":[` + stmts + `]}`
}

// allowAll is a minimal valid auth-policy statement; extra is spliced in
// before the closing brace (start it with a comma).
func allowAll(extra string) string {
	return `{"Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Invoke","Resource":"*"` + extra + `}`
}

// withCond is allowAll with a Condition element.
func withCond(cond string) string { return auth(allowAll(`,"Condition":` + cond)) }

// want is one expected problem: the exact path and a fragment of the message.
type want struct{ path, msg string }

type parseCase struct {
	name    string
	kind    Kind // AuthPolicy when zero
	maxSize int
	doc     string
	errs    []want // nil: the document must be accepted
	check   func(t *testing.T, p *Policy)
}

func parseCases() []parseCase {
	return []parseCase{
		// ---- valid documents ----
		{
			name: "allow role GET orders",
			doc: `{
			  "Version": "2012-10-17",
			  "Statement": [{
			    "Sid": "AllowOrdersRead",
			    "Effect": "Allow",
			    "Principal": {"AWS": ["` + roleARN + `"]},
			    "Action": "vpc-lattice-svcs:Invoke",
			    "Resource": ["` + svcARN + `/orders/*"],
			    "Condition": {"StringEquals": {"vpc-lattice-svcs:RequestMethod": "GET"}}
			  }]
			}`,
			check: func(t *testing.T, p *Policy) {
				want := &Policy{Version: "2012-10-17", Statements: []Statement{{
					Sid:       "AllowOrdersRead",
					Effect:    Allow,
					Principal: &Principals{AWS: []string{roleARN}},
					Action:    []string{"vpc-lattice-svcs:Invoke"},
					Resource:  []string{svcARN + "/orders/*"},
					Conditions: []Condition{{
						Operator: "StringEquals", Base: StringEquals,
						Key: "vpc-lattice-svcs:RequestMethod", Values: []string{"GET"},
					}},
				}}}
				if !reflect.DeepEqual(p, want) {
					t.Errorf("got  %+v\nwant %+v", p, want)
				}
			},
		},
		{
			name: "allow only authenticated callers",
			doc:  withCond(`{"StringNotEqualsIgnoreCase":{"aws:PrincipalType":"anonymous"}}`),
			check: func(t *testing.T, p *Policy) {
				s := p.Statements[0]
				if !s.Principal.Wildcard || s.Effect != Allow {
					t.Errorf("statement = %+v", s)
				}
				c := s.Conditions[0]
				if c.Base != StringNotEqualsIgnoreCase || c.SetOp != SetOpNone || c.IfExists || c.Values[0] != "anonymous" {
					t.Errorf("condition = %+v", c)
				}
			},
		},
		{
			name: "deny anonymous callers",
			doc: auth(allowAll("") + `,{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*",
				"Condition":{"StringEqualsIgnoreCase":{"aws:PrincipalType":"Anonymous"}}}`),
			check: func(t *testing.T, p *Policy) {
				if len(p.Statements) != 2 || p.Statements[1].Effect != Deny || p.Statements[1].Action[0] != "*" {
					t.Errorf("statements = %+v", p.Statements)
				}
			},
		},
		{
			name: "ForAnyValue StringLike on a query string",
			doc:  withCond(`{"ForAnyValue:StringLike":{"vpc-lattice-svcs:RequestQueryString/color":["bl*","gr?y"]}}`),
			check: func(t *testing.T, p *Policy) {
				c := p.Statements[0].Conditions[0]
				if c.Operator != "ForAnyValue:StringLike" || c.Base != StringLike || c.SetOp != ForAnyValue || c.IfExists {
					t.Errorf("condition = %+v", c)
				}
			},
		},
		{
			name: "IfExists and ForAllValues",
			doc: withCond(`{"StringEqualsIfExists":{"aws:PrincipalOrgID":"o-123456example"},
				"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]},
				"NumericLessThanEqualsIfExists":{"vpc-lattice-svcs:Port":443}}`),
			check: func(t *testing.T, p *Policy) {
				got := p.Statements[0].Conditions
				want := []Condition{
					{Operator: "ForAllValues:StringEquals", Base: StringEquals, SetOp: ForAllValues, Key: "aws:TagKeys", Values: []string{"team", "env"}},
					{Operator: "NumericLessThanEqualsIfExists", Base: NumericLessThanEquals, IfExists: true, Key: "vpc-lattice-svcs:Port", Values: []string{"443"}},
					{Operator: "StringEqualsIfExists", Base: StringEquals, IfExists: true, Key: "aws:PrincipalOrgID", Values: []string{"o-123456example"}},
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got  %+v\nwant %+v", got, want)
				}
			},
		},
		{
			name: "IpAddress with CIDRs and addresses",
			doc:  withCond(`{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","192.0.2.7","2001:db8::/32","2001:db8::1"]},"NotIpAddress":{"aws:SourceIp":"10.1.0.0/16"}}`),
		},
		{
			name: "policy variables",
			doc: auth(`{"Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Invoke",
				"Resource":["` + svcARN + `/teams/${aws:PrincipalTag/team}/*","` + svcARN + `/literal/${*}${?}${$}",
				"arn:aws:vpc-lattice:${aws:RequestedRegion}:123456789012:service/*"],
				"Condition":{"StringLike":{"vpc-lattice-svcs:RequestHeader/x-team":"${aws:PrincipalTag/team, 'none'}"},
				"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::${aws:PrincipalAccount}:role/app"},
				"ArnEquals":{"aws:SourceArn":"${aws:PrincipalArn}"}}}`),
		},
		{
			name: "statement as a single object",
			doc:  `{"Version":"2012-10-17","Statement":` + allowAll("") + `}`,
			check: func(t *testing.T, p *Policy) {
				if len(p.Statements) != 1 {
					t.Errorf("statements = %+v", p.Statements)
				}
			},
		},
		{
			name: "lattice user guide resource forms",
			doc: auth(`{"Sid":"Rates","Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Invoke",
				"Resource":["*/rates","*/*","` + svcARN + `/api.parking/*","` + svcARN + `"]}`),
		},
		{
			name: "Not elements",
			doc: auth(`{"Effect":"Deny","NotPrincipal":{"AWS":"123456789012"},"NotAction":"vpc-lattice-svcs:Connect",
				"NotResource":"` + svcARN + `/health"}`),
			check: func(t *testing.T, p *Policy) {
				s := p.Statements[0]
				if s.Principal != nil || s.NotPrincipal == nil || s.Action != nil || s.NotAction == nil || s.Resource != nil || s.NotResource == nil {
					t.Errorf("statement = %+v", s)
				}
			},
		},
		{
			name: "every principal form",
			doc: auth(`{"Effect":"Allow","Action":"vpc-lattice-svcs:*","Resource":"*","Principal":{
				"AWS":["*","123456789012","arn:aws:iam::123456789012:root","arn:aws:iam::123456789012:user/division/alice",
				"arn:aws-us-gov:iam::123456789012:role/svc/app.role","arn:aws:sts::123456789012:assumed-role/app/session-1",
				"arn:aws-cn:sts::123456789012:federated-user/bob"],
				"Service":"lambda.amazonaws.com",
				"Federated":["cognito-identity.amazonaws.com","arn:aws:iam::123456789012:saml-provider/corp"],
				"CanonicalUser":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}}`),
			check: func(t *testing.T, p *Policy) {
				pr := p.Statements[0].Principal
				if len(pr.AWS) != 7 || len(pr.Service) != 1 || len(pr.Federated) != 2 || len(pr.CanonicalUser) != 1 || pr.Wildcard {
					t.Errorf("principals = %+v", pr)
				}
			},
		},
		{
			name: "identity policy",
			kind: IdentityPolicy,
			doc:  `{"Version":"2012-10-17","Id":"p1","Statement":{"Effect":"Allow","Action":["s3:Get*","vpc-lattice-svcs:Invoke"],"Resource":["arn:aws:s3:::bucket/*","*"]}}`,
			check: func(t *testing.T, p *Policy) {
				if p.ID != "p1" || p.Statements[0].Principal != nil {
					t.Errorf("policy = %+v", p)
				}
			},
		},
		{
			name: "resource policy with RAM actions",
			kind: ResourcePolicy,
			doc: `{"Version":"2012-10-17","Statement":[{"Sid":"Share1","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},
				"Action":["vpc-lattice:CreateServiceNetworkVpcAssociation","vpc-lattice:GetServiceNetwork"],
				"Resource":"arn:aws:vpc-lattice:us-west-2:123456789012:servicenetwork/sn-0123456789abcdef0"}]}`,
		},
		{
			name: "resource policy 2008 treats ${ as text",
			kind: ResourcePolicy,
			doc:  `{"Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${unterminated"}}`,
		},
		{
			name: "numbers and booleans become strings",
			doc:  withCond(`{"NumericEquals":{"vpc-lattice-svcs:Port":[443,8080.5,"80"]},"Bool":{"aws:SecureTransport":true},"StringEquals":{"aws:PrincipalAccount":123456789012}}`),
			check: func(t *testing.T, p *Policy) {
				c := p.Statements[0].Conditions
				if got := c[0].Values; !reflect.DeepEqual(got, []string{"true"}) {
					t.Errorf("Bool values = %q", got)
				}
				if got := c[1].Values; !reflect.DeepEqual(got, []string{"443", "8080.5", "80"}) {
					t.Errorf("NumericEquals values = %q", got)
				}
				if got := c[2].Values; !reflect.DeepEqual(got, []string{"123456789012"}) {
					t.Errorf("StringEquals values = %q", got)
				}
			},
		},
		{
			name: "unknown keys of other services are accepted",
			doc:  withCond(`{"StringEquals":{"aws:SomeFutureKey":"x","s3:prefix":"home/"},"NumericEquals":{"ec2:Count":"3"}}`),
		},
		{
			name: "condition keys compare case-insensitively",
			doc:  withCond(`{"IpAddress":{"AWS:SOURCEIP":"10.0.0.0/8"},"StringEquals":{"VPC-LATTICE-SVCS:requestmethod":"GET"},"Bool":{"aws:principaltag/x":"true"}}`),
			errs: []want{{"Statement[0].Condition.Bool.aws:principaltag/x", "key of the wrong type"}},
		},
		{
			name: "no Version and no variables",
			doc:  `{"Statement":[` + allowAll("") + `]}`,
			check: func(t *testing.T, p *Policy) {
				if p.Version != "" {
					t.Errorf("Version = %q", p.Version)
				}
			},
		},
		{
			name: "action wildcards",
			doc:  auth(`{"Effect":"Allow","Principal":"*","Action":["vpc-lattice-svcs:*","vpc-lattice-svcs:Inv*","VPC-Lattice-Svcs:con?ect","*"],"Resource":"*"}`),
		},
		{
			name:    "size exactly at the limit",
			maxSize: len(auth(allowAll(""))),
			doc:     auth(allowAll("")),
		},
		{
			name: "empty condition blocks",
			doc:  withCond(`{}`),
		},

		// ---- document-level problems ----
		{name: "empty document", doc: "  ", errs: []want{{"", "policy document is empty"}}},
		{name: "not an object", doc: `[]`, errs: []want{{"", "policy must be a JSON object, not an array"}}},
		{name: "invalid JSON", doc: `{"Version":"2012-10-17",}`, errs: []want{{"", "invalid JSON at offset"}}},
		{name: "truncated JSON", doc: `{"Version":"2012-10-17","Statement":[`, errs: []want{{"Statement", "unexpected end of document"}}},
		{name: "invalid UTF-8", doc: "{\"Id\":\"\xff\"}", errs: []want{{"", "not valid UTF-8"}}},
		{name: "trailing data", doc: auth(allowAll("")) + ` {}`, errs: []want{{"", "unexpected data after the policy document"}}},
		{name: "trailing garbage", doc: auth(allowAll("")) + `x`, errs: []want{{"", "unexpected data after the policy document"}}},
		{
			name: "deep nesting",
			doc:  `{"Id":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`,
			errs: []want{{"Id" + strings.Repeat("[0]", 15), "nested more than 16 levels"}},
		},
		{
			name:    "over the size limit",
			maxSize: 40,
			doc:     `{"Id":"` + strings.Repeat("é", 50) + `"}`,
			errs:    []want{{"", "policy is 59 characters; the limit is 40"}},
		},
		{
			// 159 characters in 189 bytes.
			name:    "size counts characters, not bytes",
			maxSize: 159,
			doc:     `{"Version":"2012-10-17","Id":"` + strings.Repeat("é", 30) + `","Statement":` + allowAll("") + `}`,
		},
		{
			name:    "one character over the limit",
			maxSize: 158,
			doc:     `{"Version":"2012-10-17","Id":"` + strings.Repeat("é", 30) + `","Statement":` + allowAll("") + `}`,
			errs:    []want{{"", "policy is 159 characters; the limit is 158"}},
		},
		{
			name: "duplicate keys",
			doc: `{"Version":"2012-10-17","Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*",
				"Resource":"*","Condition":{"StringEquals":{"aws:PrincipalType":"User","aws:PrincipalType":"Role"}}}]}`,
			errs: []want{
				{"Statement[0].Condition.StringEquals.aws:PrincipalType", "duplicate key"},
				{"Version", "duplicate key"},
			},
		},
		{
			name: "unknown top-level element",
			doc:  `{"Version":"2012-10-17","Statement":[` + allowAll("") + `],"Foo":1,"statement":[]}`,
			errs: []want{{"Foo", "unknown top-level element"}, {"statement", `did you mean "Statement"?`}},
		},
		{name: "missing Statement", doc: `{"Version":"2012-10-17"}`, errs: []want{{"", "missing required element Statement"}}},
		{name: "unsupported Version", doc: `{"Version":"2012-10-18","Statement":` + allowAll("") + `}`, errs: []want{{"Version", `unsupported version "2012-10-18"`}}},
		{name: "Version not a string", doc: `{"Version":2012,"Statement":` + allowAll("") + `}`, errs: []want{{"Version", "must be a string, not a number"}}},
		{name: "Id not a string", doc: `{"Id":{},"Statement":` + allowAll("") + `}`, errs: []want{{"Id", "must be a string, not an object"}}},
		{name: "empty Statement array", doc: `{"Version":"2012-10-17","Statement":[]}`, errs: []want{{"Statement", "at least one statement"}}},
		{name: "Statement a string", doc: `{"Version":"2012-10-17","Statement":"x"}`, errs: []want{{"Statement", "must be an object or an array of objects"}}},
		{name: "statement not an object", doc: auth(allowAll("") + `,[]`), errs: []want{{"Statement[1]", "statement must be an object"}}},

		// ---- statement problems ----
		{
			name: "unknown statement element",
			doc:  auth(`{"Effect":"Allow","Principal":"*","Actions":"vpc-lattice-svcs:Invoke","Resource":"*"}`),
			errs: []want{{"Statement[0]", "statement must have Action or NotAction"}, {"Statement[0].Actions", "unknown statement element"}},
		},
		{
			name: "element names are case-sensitive",
			doc:  auth(allowAll(`,"condition":{}`)),
			errs: []want{{"Statement[0].condition", `did you mean "Condition"?`}},
		},
		{name: "lower-case effect", doc: auth(`{"Effect":"allow","Principal":"*","Action":"*","Resource":"*"}`), errs: []want{{"Statement[0].Effect", `must be "Allow" or "Deny"`}}},
		{name: "missing Effect", doc: auth(`{"Principal":"*","Action":"*","Resource":"*"}`), errs: []want{{"Statement[0]", "missing required element Effect"}}},
		{name: "Effect not a string", doc: auth(`{"Effect":true,"Principal":"*","Action":"*","Resource":"*"}`), errs: []want{{"Statement[0].Effect", "must be a string, not a boolean"}}},
		{name: "Action and NotAction", doc: auth(allowAll(`,"NotAction":"vpc-lattice-svcs:Connect"`)), errs: []want{{"Statement[0]", "must not have both Action and NotAction"}}},
		{name: "no Resource", doc: auth(`{"Effect":"Allow","Principal":"*","Action":"*"}`), errs: []want{{"Statement[0]", "must have Resource or NotResource"}}},
		{name: "Resource and NotResource", doc: auth(allowAll(`,"NotResource":"*"`)), errs: []want{{"Statement[0]", "must not have both Resource and NotResource"}}},
		{name: "Principal and NotPrincipal", doc: auth(allowAll(`,"NotPrincipal":"*"`)), errs: []want{{"Statement[0]", "must not have both Principal and NotPrincipal"}}},
		{name: "auth policy needs a principal", doc: auth(`{"Effect":"Allow","Action":"*","Resource":"*"}`), errs: []want{{"Statement[0]", "must have Principal or NotPrincipal in an auth policy"}}},
		{
			name: "resource policy needs a principal",
			kind: ResourcePolicy,
			doc:  `{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}`,
			errs: []want{{"Statement", "must have Principal or NotPrincipal in a resource policy"}},
		},
		{
			name: "identity policy forbids principals",
			kind: IdentityPolicy,
			doc:  auth(allowAll("") + `,{"Effect":"Allow","NotPrincipal":"*","Action":"*","Resource":"*"}`),
			errs: []want{{"Statement[0].Principal", "Principal is not allowed in an identity policy"}, {"Statement[1].NotPrincipal", "NotPrincipal is not allowed"}},
		},
		{name: "Sid not alphanumeric", doc: auth(allowAll(`,"Sid":"allow-all"`)), errs: []want{{"Statement[0].Sid", `Sid "allow-all" must contain only letters and digits`}}},
		{name: "Sid not a string", doc: auth(allowAll(`,"Sid":1`)), errs: []want{{"Statement[0].Sid", "must be a string, not a number"}}},
		{
			name: "duplicate Sid",
			doc:  auth(allowAll(`,"Sid":"A1"`) + "," + allowAll(`,"Sid":"B"`) + "," + allowAll(`,"Sid":"A1"`)),
			errs: []want{{"Statement[2].Sid", `duplicate Sid "A1" (also in Statement[0])`}},
		},
		{
			name: "string-or-array shapes",
			doc: auth(`{"Effect":"Allow","Principal":"*","Action":[],"Resource":["*","",7]},
				{"Effect":"Allow","Principal":"*","Action":"","Resource":{}}`),
			errs: []want{
				{"Statement[0].Action", "must not be an empty array"},
				{"Statement[0].Resource[1]", "must not be an empty string"},
				{"Statement[0].Resource[2]", "must be a string, not a number"},
				{"Statement[1].Action", "must not be an empty string"},
				{"Statement[1].Resource", "must be a string or an array of strings, not an object"},
			},
		},
		{
			name: "problems sorted with numeric indexes",
			doc: auth(allowAll("") + strings.Repeat(","+allowAll(""), 1) +
				`,{"Effect":"Maybe","Principal":"*","Action":"*","Resource":"*"}` + strings.Repeat(","+allowAll(""), 7) +
				`,{"Effect":"Perhaps","Principal":"*","Action":"*","Resource":"*"}`),
			errs: []want{{"Statement[2].Effect", `"Maybe"`}, {"Statement[10].Effect", `"Perhaps"`}},
		},

		// ---- principals ----
		{name: "principal string other than *", doc: auth(`{"Effect":"Allow","Principal":"123456789012","Action":"*","Resource":"*"}`), errs: []want{{"Statement[0].Principal", `must be "*" or an object`}}},
		{name: "principal array", doc: auth(`{"Effect":"Allow","Principal":["*"],"Action":"*","Resource":"*"}`), errs: []want{{"Statement[0].Principal", `must be "*" or an object, not an array`}}},
		{name: "empty principal object", doc: auth(`{"Effect":"Allow","Principal":{},"Action":"*","Resource":"*"}`), errs: []want{{"Statement[0].Principal", "must name at least one principal"}}},
		{name: "unknown principal type", doc: auth(`{"Effect":"Allow","Principal":{"aws":"*"},"Action":"*","Resource":"*"}`), errs: []want{{"Statement[0].Principal.aws", `unknown principal type (expected AWS, Service, Federated or CanonicalUser); principal types are case-sensitive: did you mean "AWS"?`}}},
		{
			name: "invalid AWS principals",
			doc: auth(`{"Effect":"Allow","Action":"*","Resource":"*","Principal":{"AWS":[
				"arn:aws:iam::123456789012:role/*","arn:aws:iam::12345:root","arn:aws:iam::123456789012:group/devs",
				"arn:aws:sts::123456789012:assumed-role/app","arn:aws:iam:us-east-1:123456789012:root","arn:gcp:iam::123456789012:root",
				"alice","arn:aws:iam::123456789012:user/a//b"]}}`),
			errs: []want{
				{"Statement[0].Principal.AWS[0]", `wildcards are only allowed as "*" alone`},
				{"Statement[0].Principal.AWS[1]", "the account must be 12 digits"},
				{"Statement[0].Principal.AWS[2]", `invalid AWS principal "arn:aws:iam::123456789012:group/devs"`},
				{"Statement[0].Principal.AWS[3]", `invalid AWS principal "arn:aws:sts::123456789012:assumed-role/app"`},
				{"Statement[0].Principal.AWS[4]", "the region field must be empty"},
				{"Statement[0].Principal.AWS[5]", `unknown partition "gcp"`},
				{"Statement[0].Principal.AWS[6]", `invalid AWS principal "alice"`},
				{"Statement[0].Principal.AWS[7]", "invalid AWS principal"},
			},
		},
		{
			name: "invalid service and federated principals",
			doc:  auth(`{"Effect":"Allow","Action":"*","Resource":"*","Principal":{"Service":"not a service","Federated":"a b","CanonicalUser":"abc"}}`),
			errs: []want{
				{"Statement[0].Principal.CanonicalUser", "expected 64 hexadecimal digits"},
				{"Statement[0].Principal.Federated", `invalid federated principal "a b"`},
				{"Statement[0].Principal.Service", `invalid service principal "not a service"`},
			},
		},

		// ---- actions and resources ----
		{
			name: "auth policy action of another service",
			doc:  auth(`{"Effect":"Allow","Principal":"*","Action":["vpc-lattice-svcs:Invoke","s3:GetObject"],"Resource":"*"}`),
			errs: []want{{"Statement[0].Action[1]", `action "s3:GetObject" is not allowed in an auth policy`}},
		},
		{
			name: "auth policy action with a wildcard service",
			doc:  auth(`{"Effect":"Allow","Principal":"*","Action":"vpc-lattice-*:Invoke","Resource":"*"}`),
			errs: []want{{"Statement[0].Action", `action "vpc-lattice-*:Invoke" is not allowed in an auth policy`}},
		},
		{
			name: "unknown lattice action",
			doc:  auth(`{"Effect":"Allow","Principal":"*","Action":["vpc-lattice-svcs:Get*","vpc-lattice-svcs:Invoked"],"Resource":"*"}`),
			errs: []want{{"Statement[0].Action[0]", `unknown action "vpc-lattice-svcs:Get*"`}, {"Statement[0].Action[1]", `unknown action "vpc-lattice-svcs:Invoked"`}},
		},
		{
			name: "malformed actions",
			kind: IdentityPolicy,
			doc:  `{"Statement":{"Effect":"Allow","Action":["Invoke","s3:","s3:Get:Object",":Get","s 3:Get"],"Resource":"*"}}`,
			errs: []want{
				{"Statement.Action[0]", `invalid action "Invoke": expected "service:Action"`},
				{"Statement.Action[1]", `invalid action "s3:"`},
				{"Statement.Action[2]", `invalid action "s3:Get:Object"`},
				{"Statement.Action[3]", `invalid action ":Get"`},
				{"Statement.Action[4]", `invalid action "s 3:Get"`},
			},
		},
		{
			name: "malformed resources",
			doc: auth(`{"Effect":"Allow","Principal":"*","Action":"*","Resource":["not-an-arn","arn:aws:s3","arn::s3:::b",
				"arn:aws:vpc-lattice:us-west-2:123456789012:","arn:${aws:a}:${aws:b}:c","x*"]}`),
			errs: []want{
				{"Statement[0].Resource[0]", `resource "not-an-arn" is not "*" or an ARN`},
				{"Statement[0].Resource[1]", "is not \"*\" or an ARN"},
				{"Statement[0].Resource[2]", "the ARN partition is empty"},
				{"Statement[0].Resource[3]", "the ARN resource part is empty"},
				{"Statement[0].Resource[4]", "is not \"*\" or an ARN"},
				{"Statement[0].Resource[5]", "is not \"*\" or an ARN"},
			},
		},
		{
			name: "leading-wildcard resources only in auth policies",
			kind: IdentityPolicy,
			doc:  `{"Statement":{"Effect":"Allow","Action":"vpc-lattice-svcs:Invoke","Resource":"*/rates"}}`,
			errs: []want{{"Statement.Resource", `resource "*/rates" is not "*" or an ARN`}},
		},

		// ---- policy variables ----
		{
			name: "unterminated policy variable",
			doc:  auth(`{"Effect":"Allow","Principal":"*","Action":"*","Resource":"` + svcARN + `/${aws:username"}`),
			errs: []want{{"Statement[0].Resource", "unterminated policy variable"}},
		},
		{
			name: "malformed policy variables",
			doc:  withCond(`{"StringEquals":{"aws:PrincipalTag/team":["${}","${team}","${aws:username, none}","${aws:x${y}"]}}`),
			errs: []want{
				{"Statement[0].Condition.StringEquals.aws:PrincipalTag/team[0]", `invalid policy variable "${}"`},
				{"Statement[0].Condition.StringEquals.aws:PrincipalTag/team[1]", `invalid policy variable "${team}"`},
				{"Statement[0].Condition.StringEquals.aws:PrincipalTag/team[2]", `invalid policy variable "${aws:username, none}"`},
				{"Statement[0].Condition.StringEquals.aws:PrincipalTag/team[3]", `invalid policy variable "${aws:x${y}"`},
			},
		},
		{
			name: "variables need Version 2012-10-17 in auth policies",
			doc: `{"Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*",
				"Condition":{"StringEquals":{"aws:PrincipalTag/team":"${aws:username}"}}}}`,
			errs: []want{{"Version", `policy variables (first at Statement.Condition.StringEquals.aws:PrincipalTag/team) require Version "2012-10-17"`}},
		},
		{
			name: "resource policy without Version treats ${ as text in ARN values",
			kind: ResourcePolicy,
			doc:  `{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"ArnEquals":{"aws:SourceArn":"${aws:PrincipalArn}"}}}}`,
			errs: []want{{"Statement.Condition.ArnEquals.aws:SourceArn", `value "${aws:PrincipalArn}" is not an ARN`}},
		},
		{
			name: "variables need Version 2012-10-17 in identity policies",
			kind: IdentityPolicy,
			doc:  `{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":["arn:aws:s3:::b","arn:aws:s3:::b/${aws:username}/*"]}}`,
			errs: []want{{"Version", "policy variables (first at Statement.Resource[1]) require"}},
		},

		// ---- conditions ----
		{
			name: "unknown condition operator",
			doc:  auth(allowAll("") + "," + allowAll(`,"Condition":{"StringEqualz":{"aws:PrincipalType":"User"}}`)),
			errs: []want{{"Statement[1].Condition.StringEqualz", "unknown condition operator"}},
		},
		{
			name: "operator names are case-sensitive",
			doc:  withCond(`{"forAnyValue:stringlikeifexists":{"aws:TagKeys":"x"}}`),
			errs: []want{{"Statement[0].Condition.forAnyValue:stringlikeifexists", `did you mean "ForAnyValue:StringLikeIfExists"?`}},
		},
		{name: "Null with IfExists", doc: withCond(`{"NullIfExists":{"aws:PrincipalTag/team":"true"}}`), errs: []want{{"Statement[0].Condition.NullIfExists", "the Null operator cannot take the IfExists suffix"}}},
		{name: "misspelled set prefix", doc: withCond(`{"ForAnyValues:StringLike":{"aws:TagKeys":"x"}}`), errs: []want{{"Statement[0].Condition.ForAnyValues:StringLike", "unknown condition operator"}}},
		{name: "bare IfExists", doc: withCond(`{"IfExists":{"aws:TagKeys":"x"}}`), errs: []want{{"Statement[0].Condition.IfExists", "unknown condition operator"}}},
		{name: "Condition not an object", doc: withCond(`[]`), errs: []want{{"Statement[0].Condition", "must be an object mapping condition operators to keys"}}},
		{name: "operator block not an object", doc: withCond(`{"StringEquals":"x"}`), errs: []want{{"Statement[0].Condition.StringEquals", "must be an object mapping condition keys to values"}}},
		{
			name: "condition value shapes",
			doc:  withCond(`{"StringEquals":{"aws:PrincipalType":[],"aws:PrincipalOrgID":null,"aws:userid":["a",{"b":1},["c"]]}}`),
			errs: []want{
				{"Statement[0].Condition.StringEquals.aws:PrincipalOrgID", "must be a string, number, boolean or an array of them, not null"},
				{"Statement[0].Condition.StringEquals.aws:PrincipalType", "must not be an empty array"},
				{"Statement[0].Condition.StringEquals.aws:userid[1]", "condition values must be strings, numbers or booleans, not an object"},
				{"Statement[0].Condition.StringEquals.aws:userid[2]", "not an array"},
			},
		},
		{name: "numeric value not a number", doc: withCond(`{"NumericEquals":{"vpc-lattice-svcs:Port":["80","eighty"]}}`), errs: []want{{"Statement[0].Condition.NumericEquals.vpc-lattice-svcs:Port[1]", `value "eighty" is not a number`}}},
		{
			name: "key of the wrong type",
			doc:  withCond(`{"NumericEquals":{"vpc-lattice-svcs:RequestMethod":"1"},"StringEquals":{"vpc-lattice-svcs:Port":"80"},"IpAddress":{"aws:PrincipalArn":"10.0.0.0/8"}}`),
			errs: []want{
				{"Statement[0].Condition.IpAddress.aws:PrincipalArn", "key of the wrong type: aws:PrincipalArn has type ARN, but IpAddress works on IPAddress keys"},
				{"Statement[0].Condition.NumericEquals.vpc-lattice-svcs:RequestMethod", "key of the wrong type: vpc-lattice-svcs:RequestMethod has type String, but NumericEquals works on Numeric keys"},
				{"Statement[0].Condition.StringEquals.vpc-lattice-svcs:Port", "key of the wrong type"},
			},
		},
		{
			name: "unknown lattice condition key",
			doc:  withCond(`{"StringEquals":{"vpc-lattice-svcs:RequestHost":"x","vpc-lattice-svcs:RequestCookie/a":"b"}}`),
			errs: []want{
				{"Statement[0].Condition.StringEquals.vpc-lattice-svcs:RequestCookie/a", `unknown condition key "vpc-lattice-svcs:RequestCookie/a"`},
				{"Statement[0].Condition.StringEquals.vpc-lattice-svcs:RequestHost", `unknown condition key "vpc-lattice-svcs:RequestHost"`},
			},
		},
		{
			name: "malformed condition keys",
			doc:  withCond(`{"StringEquals":{"PrincipalType":"x","aws:":"y","aws:PrincipalTag/":"z","aws:ResourceTag":"w"}}`),
			errs: []want{
				{"Statement[0].Condition.StringEquals.PrincipalType", "must have the form service:name"},
				{"Statement[0].Condition.StringEquals.aws:", "must have the form service:name"},
				{"Statement[0].Condition.StringEquals.aws:PrincipalTag/", `needs a name after the "/"`},
				{"Statement[0].Condition.StringEquals.aws:ResourceTag", `needs a name after the "/"`},
			},
		},
		{
			name: "path quoting for keys with dots",
			doc:  withCond(`{"NumericEquals":{"aws:PrincipalTag/a.b":"1"}}`),
			errs: []want{{`Statement[0].Condition.NumericEquals["aws:PrincipalTag/a.b"]`, "key of the wrong type"}},
		},
		{
			name: "several problems in one statement",
			doc:  auth(`{"Sid":"a b","Effect":"Permit","Principal":{"AWS":"bob"},"Action":"s3:*","Resource":"nope","Condition":{"Bool":{"aws:SecureTransport":"yes"}}}`),
			errs: []want{
				{"Statement[0].Action", `action "s3:*" is not allowed in an auth policy`},
				{"Statement[0].Condition.Bool.aws:SecureTransport", `value "yes" is not "true" or "false"`},
				{"Statement[0].Effect", `effect "Permit" must be`},
				{"Statement[0].Principal.AWS", `invalid AWS principal "bob"`},
				{"Statement[0].Resource", `resource "nope" is not`},
				{"Statement[0].Sid", `Sid "a b" must contain only letters and digits`},
			},
		},
	}
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases() {
		t.Run(tc.name, func(t *testing.T) {
			kind := tc.kind
			if kind == 0 {
				kind = AuthPolicy
			}
			p, err := Parse([]byte(tc.doc), ParseOptions{Kind: kind, MaxSize: tc.maxSize})
			if tc.errs == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if tc.check != nil {
					tc.check(t, p)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted the document: %+v", p)
			}
			if p != nil {
				t.Errorf("Parse returned a policy with an error")
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T %v is not a *ValidationError", err, err)
			}
			if len(ve.Problems) != len(tc.errs) {
				t.Fatalf("got %d problems, want %d:\n%s", len(ve.Problems), len(tc.errs), problemList(ve))
			}
			for i, w := range tc.errs {
				got := ve.Problems[i]
				if got.Path != w.path || !strings.Contains(got.Message, w.msg) {
					t.Errorf("problem %d = %q\nwant path %q, message containing %q\nall:\n%s", i, got, w.path, w.msg, problemList(ve))
				}
			}
		})
	}
}

func problemList(ve *ValidationError) string {
	var b strings.Builder
	for _, p := range ve.Problems {
		b.WriteString("  " + p.String() + "\n")
	}
	return b.String()
}

func TestParseOptions(t *testing.T) {
	doc := []byte(auth(allowAll("")))
	if _, err := Parse(doc, ParseOptions{}); err == nil || !strings.Contains(err.Error(), "unknown policy kind") {
		t.Errorf("zero Kind: err = %v", err)
	}
	if _, err := Parse(doc, ParseOptions{Kind: AuthPolicy, MaxSize: -1}); err == nil {
		t.Error("negative MaxSize accepted")
	}
	var ve *ValidationError
	if _, err := Parse(doc, ParseOptions{}); errors.As(err, &ve) {
		t.Error("an options error must not be a *ValidationError")
	}
}

func TestValidationErrorString(t *testing.T) {
	_, err := Parse([]byte(`{"Version":"1","Statement":[]}`), ParseOptions{Kind: AuthPolicy})
	const want = `invalid policy: Statement: must contain at least one statement; Version: unsupported version "1"; use "2012-10-17"`
	if err == nil || err.Error() != want {
		t.Errorf("Error() = %q\nwant      %q", err, want)
	}
	if got := (Problem{Message: "policy document is empty"}).String(); got != "policy document is empty" {
		t.Errorf("Problem.String() = %q", got)
	}
}

func TestKindAndOperatorStrings(t *testing.T) {
	if AuthPolicy.String() != "AuthPolicy" || Kind(9).String() != "Kind(9)" {
		t.Error("Kind.String")
	}
	if StringLike.String() != "StringLike" || Null.String() != "Null" || Operator(0).String() != "Operator(0)" {
		t.Error("Operator.String")
	}
	if ForAnyValue.String() != "ForAnyValue" || SetOpNone.String() != "" {
		t.Error("SetOp.String")
	}
}
