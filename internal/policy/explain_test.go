package policy

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestExplainString(t *testing.T) {
	const svc = "arn:aws:vpc-lattice:us-west-2:123456789012:service/svc-1"
	service := MustCompile(`{"Version":"2012-10-17","Statement":[
		{"Sid":"AllowOrders","Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"vpc-lattice-svcs:Invoke",
		 "Resource":"`+svc+`/orders/*","Condition":{"StringEquals":{"vpc-lattice-svcs:RequestMethod":"GET"}}},
		{"Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Invoke","Resource":"*/${aws:PrincipalTag/team}"}]}`, AuthPolicy)
	identity := MustCompile(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"vpc-lattice-svcs:*","Resource":"*"}]}`, IdentityPolicy)
	r := &Request{Action: ActionInvoke, Resource: svc + "/orders/1", Method: "POST",
		Principal: Principal{ARN: userARN, Account: acct, Type: "User", Tags: []KeyValue{{"team", "billing"}}}}
	e := Explain(ExplainInput{
		DecideInput: DecideInput{ServiceIAM: true, ServicePolicy: service, IdentityPolicies: []*Compiled{identity}, Request: r},
		ServiceName: "svc-1", IdentityNames: []string{"alice-inline"},
	})
	want := `denied by the Service layer (no Allow): AccessDeniedException: User: arn:aws:iam::123456789012:user/alice is not authorized to perform: vpc-lattice-svcs:Invoke on resource: arn:aws:vpc-lattice:us-west-2:123456789012:service/svc-1/orders/1 because no service-based policy allows the vpc-lattice-svcs:Invoke action
network layer: not evaluated: authType NONE
service layer: NoMatch
  service policy "svc-1", statement 0 (Sid AllowOrders): Allow — not matched: condition StringEquals vpc-lattice-svcs:RequestMethod: request ["POST"], policy ["GET"]
  service policy "svc-1", statement 1: Allow — not matched: resource: request ["arn:aws:vpc-lattice:us-west-2:123456789012:service/svc-1/orders/1"], policy ["*/${aws:PrincipalTag/team}"] = ["*/billing"]
identity layer: Allowed by "alice-inline" statement 0
  identity policy "alice-inline", statement 0: Allow — matched
`
	if got := e.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	r.Method = "GET"
	e = Explain(ExplainInput{DecideInput: DecideInput{ServiceIAM: true, ServicePolicy: service, IdentityPolicies: []*Compiled{identity}, Request: r}})
	want = `allowed
network layer: not evaluated: authType NONE
service layer: Allowed by "service auth policy" statement 0 (Sid AllowOrders)
  service policy "service auth policy", statement 0 (Sid AllowOrders): Allow — matched
  service policy "service auth policy", statement 1: Allow — not matched: resource: request ["arn:aws:vpc-lattice:us-west-2:123456789012:service/svc-1/orders/1"], policy ["*/${aws:PrincipalTag/team}"] = ["*/billing"]
identity layer: Allowed by "identity policy 0" statement 0
  identity policy "identity policy 0", statement 0: Allow — matched
`
	if got := e.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// explainOne explains a one-statement service policy and returns the
// statement's mismatch.
func explainOne(t *testing.T, stmt string, r *Request) *Mismatch {
	t.Helper()
	c := MustCompile(auth(stmt), AuthPolicy)
	e := Explain(ExplainInput{DecideInput: DecideInput{ServiceIAM: true, ServicePolicy: c, Request: r}})
	st := e.Layers[1].Policies[0].Statements[0]
	if st.Matched {
		t.Fatalf("statement matched: %s", e)
	}
	return st.Mismatch
}

func TestExplainMismatch(t *testing.T) {
	cond := func(c string) string {
		return `{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":` + c + `}`
	}
	cases := []struct {
		name string
		stmt string
		mut  func(*Request)
		want Mismatch
	}{
		{"principal", `{"Effect":"Allow","Principal":{"AWS":"210987654321"},"Action":"*","Resource":"*"}`, nil,
			Mismatch{Element: "principal", RequestValues: []string{session, roleARN, acct}, PolicyValues: []string{"210987654321"}}},
		{"anonymous principal", `{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"*","Resource":"*"}`, anonymous,
			Mismatch{Element: "principal", RequestValues: []string{"anonymous"}, PolicyValues: []string{acct}, Reason: `anonymous callers match only Principal "*"`}},
		{"notPrincipal", `{"Effect":"Deny","NotPrincipal":{"AWS":["` + session + `","` + roleARN + `","` + acct + `"]},"Action":"*","Resource":"*"}`, nil,
			Mismatch{Element: "notPrincipal", RequestValues: []string{session, roleARN, acct}, PolicyValues: []string{session, roleARN, acct}, Reason: "every identity of the caller is listed"}},
		{"action", `{"Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Connect","Resource":"*"}`, nil,
			Mismatch{Element: "action", RequestValues: []string{ActionInvoke}, PolicyValues: []string{ActionConnect}}},
		{"notAction", `{"Effect":"Allow","Principal":"*","NotAction":"vpc-lattice-svcs:Invoke","Resource":"*"}`, nil,
			Mismatch{Element: "notAction", RequestValues: []string{ActionInvoke}, PolicyValues: []string{ActionInvoke}}},
		{"notResource", `{"Effect":"Allow","Principal":"*","Action":"*","NotResource":"*/orders/*"}`, nil,
			Mismatch{Element: "notResource", RequestValues: []string{svcARN + "/orders/12"}, PolicyValues: []string{"*/orders/*"}}},
		{"unresolved resource variable", `{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*/${aws:username}/*"}`, nil,
			Mismatch{Element: "resource", RequestValues: []string{svcARN + "/orders/12"}, PolicyValues: []string{"*/${aws:username}/*"},
				ResolvedPolicyValues: []string{"*/${aws:username}/*"}, Reason: "a policy variable has no value in the request"}},
		{"absent key", cond(`{"StringEquals":{"aws:PrincipalTag/x":"y"}}`), nil,
			Mismatch{Element: "condition", Operator: "StringEquals", Key: "aws:PrincipalTag/x", RequestValues: []string{}, PolicyValues: []string{"y"}, Reason: "key absent from the request"}},
		{"unknown key", cond(`{"StringEquals":{"aws:SourceVpce":"vpce-1"}}`), nil,
			Mismatch{Element: "condition", Operator: "StringEquals", Key: "aws:SourceVpce", RequestValues: []string{}, PolicyValues: []string{"vpce-1"}, Reason: "key absent: Trellis does not provide this key"}},
		{"ambiguous", cond(`{"StringEquals":{"vpc-lattice-svcs:RequestQueryString/quux":"corge"}}`), nil,
			Mismatch{Element: "condition", Operator: "StringEquals", Key: "vpc-lattice-svcs:RequestQueryString/quux", RequestValues: []string{"corge", "grault"}, PolicyValues: []string{"corge"},
				Reason: "2 values without a ForAllValues:/ForAnyValue: prefix: ambiguous, fails closed"}},
		{"typed values", cond(`{"NumericLessThan":{"vpc-lattice-svcs:Port":"100"}}`), nil,
			Mismatch{Element: "condition", Operator: "NumericLessThan", Key: "vpc-lattice-svcs:Port", RequestValues: []string{"443"}, PolicyValues: []string{"100"}}},
		{"date", cond(`{"DateLessThan":{"aws:CurrentTime":"2020-01-01"}}`), nil,
			Mismatch{Element: "condition", Operator: "DateLessThan", Key: "aws:CurrentTime", RequestValues: []string{"2026-06-01T12:00:00Z"}, PolicyValues: []string{"2020-01-01"}}},
		{"ip and bool", cond(`{"Bool":{"aws:SecureTransport":"true"},"IpAddress":{"aws:SourceIp":"192.168.0.0/16"}}`), nil,
			Mismatch{Element: "condition", Operator: "IpAddress", Key: "aws:SourceIp", RequestValues: []string{"10.1.2.3"}, PolicyValues: []string{"192.168.0.0/16"}}},
		{"bool", cond(`{"Bool":{"aws:SecureTransport":"false"}}`), nil,
			Mismatch{Element: "condition", Operator: "Bool", Key: "aws:SecureTransport", RequestValues: []string{"true"}, PolicyValues: []string{"false"}}},
		{"null", cond(`{"Null":{"aws:PrincipalOrgID":"true"}}`), nil,
			Mismatch{Element: "condition", Operator: "Null", Key: "aws:PrincipalOrgID", RequestValues: []string{"o-abc"}, PolicyValues: []string{"true"}, Reason: "key present"}},
		{"unresolved condition variable", cond(`{"StringEquals":{"vpc-lattice-svcs:RequestMethod":"${aws:PrincipalTag/verb}"}}`), nil,
			Mismatch{Element: "condition", Operator: "StringEquals", Key: "vpc-lattice-svcs:RequestMethod", RequestValues: []string{"GET"}, PolicyValues: []string{"${aws:PrincipalTag/verb}"},
				ResolvedPolicyValues: []string{"${aws:PrincipalTag/verb}"}, Reason: "a policy variable has no value in the request"}},
		{"arn variable", cond(`{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::${aws:PrincipalAccount}:user/*"}}`), nil,
			Mismatch{Element: "condition", Operator: "ArnLike", Key: "aws:PrincipalArn", RequestValues: []string{roleARN}, PolicyValues: []string{"arn:aws:iam::${aws:PrincipalAccount}:user/*"},
				ResolvedPolicyValues: []string{"arn:aws:iam::123456789012:user/*"}}},
		{"arn of five parts", cond(`{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*"}}`), nil,
			Mismatch{Element: "condition", Operator: "ArnLike", Key: "aws:PrincipalArn", RequestValues: []string{roleARN}, PolicyValues: []string{"arn:aws:iam::*"},
				Reason: `policy value "arn:aws:iam::*" is not an ARN of six parts`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := baseRequest()
			if tc.mut != nil {
				tc.mut(r)
			}
			got := explainOne(t, tc.stmt, r)
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got  %#v\nwant %#v", *got, tc.want)
			}
			if s := got.String(); !strings.HasPrefix(s, tc.want.Element) {
				t.Errorf("String() = %q", s)
			}
		})
	}
}

func TestExplainLayerNotes(t *testing.T) {
	anon := MustCompile(anonymousDoc, AuthPolicy)
	asIdentity := MustCompile(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`, IdentityPolicy)
	cases := []struct {
		name  string
		in    DecideInput
		mut   func(*Request)
		notes [3]string
	}{
		{"NONE/NONE", DecideInput{}, nil, [3]string{"not evaluated: both authTypes are NONE", "not evaluated: both authTypes are NONE", "not evaluated: both authTypes are NONE"}},
		{"anonymous", DecideInput{ServiceIAM: true, ServicePolicy: anon}, anonymous,
			[3]string{"not evaluated: authType NONE", "", "not evaluated: anonymous caller (no identity-based policies)"}},
		{"AWS_IAM without policies", DecideInput{NetworkIAM: true, ServiceIAM: true, ServicePolicy: asIdentity, IdentityPolicies: []*Compiled{anon}}, nil,
			[3]string{"authType AWS_IAM with no auth policy denies every request", "the policy was compiled as an identity policy and is ignored", ""}},
		{"no identity policies", DecideInput{ServiceIAM: true, ServicePolicy: anon}, nil,
			[3]string{"not evaluated: authType NONE", "", "the caller has no identity-based policies"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := baseRequest()
			if tc.mut != nil {
				tc.mut(r)
			}
			in := tc.in
			in.Request = r
			e := Explain(ExplainInput{DecideInput: in})
			for i, l := range e.Layers {
				if l.Note != tc.notes[i] {
					t.Errorf("%s layer note %q, want %q", l.Layer, l.Note, tc.notes[i])
				}
			}
			if s := e.String(); !strings.Contains(s, "layer") {
				t.Errorf("String() = %q", s)
			}
		})
	}
	// A policy of the wrong kind among identity policies is listed as ignored.
	e := Explain(ExplainInput{DecideInput: DecideInput{ServiceIAM: true, ServicePolicy: anon, IdentityPolicies: []*Compiled{anon}, Request: baseRequest()}})
	if p := e.Layers[2].Policies[0]; p.Result != "ignored: not compiled as an identity policy" {
		t.Errorf("wrong-kind identity policy: %+v", p)
	}
	if !strings.Contains(e.String(), `identity policy "identity policy 0": ignored`) {
		t.Errorf("String():\n%s", e)
	}
}

func TestExplainJSON(t *testing.T) {
	in, r := benchInput(5)
	r.Resource = svcARN + "/admin/x"
	r.SourceVPC = "vpc-other"
	in.Request = r
	e := Explain(ExplainInput{DecideInput: in, NetworkName: "sn", ServiceName: "svc"})
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Allowed      bool   `json:"allowed"`
		DeniedBy     string `json:"deniedBy"`
		ExplicitDeny bool   `json:"explicitDeny"`
		Layers       []struct {
			Layer     string `json:"layer"`
			Result    string `json:"result"`
			Statement int    `json:"statement"`
			Sid       string `json:"sid"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Allowed || got.DeniedBy != "Service" || !got.ExplicitDeny || len(got.Layers) != 3 {
		t.Fatalf("got %s", b)
	}
	if l := got.Layers[1]; l.Layer != "service" || l.Result != "Denied" || l.Statement != 0 || l.Sid != "DenyAdminOutsideVpc" {
		t.Errorf("service layer %+v", l)
	}
	if l := got.Layers[2]; l.Result != "Denied" || l.Sid != "NoAdmin" {
		t.Errorf("identity layer %+v", l)
	}
}
