package policy

import (
	"fmt"
	"strings"
	"testing"
)

const (
	// networkDoc admits signed callers of the organization.
	networkDoc = `{"Version":"2012-10-17","Statement":[{"Sid":"OrgOnly","Effect":"Allow","Principal":"*",
		"Action":"vpc-lattice-svcs:Invoke","Resource":"*",
		"Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abc"},"StringNotEqualsIgnoreCase":{"aws:PrincipalType":"anonymous"}}}]}`

	// serviceDoc is a realistic service policy of five statements.
	serviceDoc = `{"Version":"2012-10-17","Statement":[
		{"Sid":"DenyAdminOutsideVpc","Effect":"Deny","Principal":"*","Action":"vpc-lattice-svcs:Invoke",
		 "Resource":"*/admin/*","Condition":{"StringNotEquals":{"vpc-lattice-svcs:SourceVpc":"vpc-admin"}}},
		{"Sid":"PublicHealth","Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Invoke",
		 "Resource":"*/healthz","Condition":{"StringEquals":{"vpc-lattice-svcs:RequestMethod":"GET"}}},
		{"Sid":"Writers","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:role/writer","arn:aws:iam::210987654321:root"]},
		 "Action":"vpc-lattice-svcs:Invoke","Resource":"*/orders/*",
		 "Condition":{"StringEquals":{"vpc-lattice-svcs:RequestMethod":["POST","PUT"]}}},
		{"Sid":"TeamReaders","Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"vpc-lattice-svcs:Invoke",
		 "Resource":"` + svcARN + `/${aws:PrincipalTag/team}/*",
		 "Condition":{"StringEquals":{"vpc-lattice-svcs:RequestMethod":["GET","HEAD"]},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}},
		{"Sid":"AllowOrders","Effect":"Allow","Principal":{"AWS":"` + roleARN + `"},"Action":"vpc-lattice-svcs:Invoke",
		 "Resource":"` + svcARN + `/orders/*",
		 "Condition":{"StringEquals":{"vpc-lattice-svcs:RequestMethod":"GET","aws:ResourceTag/env":"prod"},
		              "NumericEquals":{"vpc-lattice-svcs:Port":"443"},"Bool":{"aws:SecureTransport":"true"}}}]}`

	identityDoc = `{"Version":"2012-10-17","Statement":[
		{"Sid":"Invoke","Effect":"Allow","Action":"vpc-lattice-svcs:Invoke","Resource":"*"},
		{"Sid":"NoAdmin","Effect":"Deny","Action":"vpc-lattice-svcs:*","Resource":"arn:aws:vpc-lattice:*:*:service/*/admin/*"}]}`

	anonymousDoc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Invoke","Resource":"*"}]}`
	accountDoc   = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"vpc-lattice-svcs:Invoke","Resource":"*"}]}`
	denyAllDoc   = `{"Version":"2012-10-17","Statement":[{"Sid":"Nobody","Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}]}`
)

type decideCase struct {
	name     string
	in       DecideInput
	mut      func(*Request)
	allowed  bool
	deniedBy Layer
	explicit bool
	message  string // checked when not empty
}

func decideCases() []decideCase {
	network := MustCompile(networkDoc, AuthPolicy)
	service := MustCompile(serviceDoc, AuthPolicy)
	identity := []*Compiled{MustCompile(identityDoc, IdentityPolicy)}
	anon := MustCompile(anonymousDoc, AuthPolicy)
	account := MustCompile(accountDoc, AuthPolicy)
	denyAll := MustCompile(denyAllDoc, AuthPolicy)
	asIdentity := MustCompile(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`, IdentityPolicy)

	both := DecideInput{NetworkIAM: true, NetworkPolicy: network, ServiceIAM: true, ServicePolicy: service, IdentityPolicies: identity}
	const resource = svcARN + "/orders/12"
	return []decideCase{
		{name: "NONE/NONE allows anyone", in: DecideInput{NetworkPolicy: denyAll, ServicePolicy: denyAll}, mut: anonymous, allowed: true},
		{name: "NONE/NONE skips identity policies", in: DecideInput{}, allowed: true},
		{name: "network AWS_IAM without policy denies", in: DecideInput{NetworkIAM: true, IdentityPolicies: identity}, deniedBy: LayerNetwork,
			message: "AccessDeniedException: User: " + session + " is not authorized to perform: vpc-lattice-svcs:Invoke on resource: " + resource + " because no network-based policy allows the vpc-lattice-svcs:Invoke action"},
		{name: "service AWS_IAM without policy denies", in: DecideInput{ServiceIAM: true, IdentityPolicies: identity}, deniedBy: LayerService,
			message: "AccessDeniedException: User: " + session + " is not authorized to perform: vpc-lattice-svcs:Invoke on resource: " + resource + " because no service-based policy allows the vpc-lattice-svcs:Invoke action"},
		{name: "both layers and identity allow", in: both, allowed: true},
		{name: "network allows, service has no matching allow", in: both, mut: func(r *Request) { r.Method = "DELETE" }, deniedBy: LayerService},
		{name: "service allows, network does not", in: both, mut: func(r *Request) { r.Principal.OrgID = "o-other" }, deniedBy: LayerNetwork},
		{name: "service NONE: network alone decides", in: DecideInput{NetworkIAM: true, NetworkPolicy: network, ServicePolicy: denyAll, IdentityPolicies: identity}, mut: func(r *Request) { r.Method = "DELETE" }, allowed: true},
		{name: "no identity policy denies an authenticated caller", in: DecideInput{ServiceIAM: true, ServicePolicy: service}, deniedBy: LayerIdentity,
			message: "AccessDeniedException: User: " + session + " is not authorized to perform: vpc-lattice-svcs:Invoke on resource: " + resource + " because no identity-based policy allows the vpc-lattice-svcs:Invoke action"},
		{name: "identity policy without matching allow", in: DecideInput{ServiceIAM: true, ServicePolicy: anon, IdentityPolicies: []*Compiled{MustCompile(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"vpc-lattice-svcs:Connect","Resource":"*"}]}`, IdentityPolicy)}}, deniedBy: LayerIdentity},
		{name: "explicit deny in identity policy", in: DecideInput{ServiceIAM: true, ServicePolicy: anon, IdentityPolicies: identity}, mut: func(r *Request) { r.Resource = svcARN + "/admin/x" }, deniedBy: LayerIdentity, explicit: true,
			message: "AccessDeniedException: User: " + session + " is not authorized to perform: vpc-lattice-svcs:Invoke on resource: " + svcARN + "/admin/x with an explicit deny in an identity-based policy"},
		{name: "explicit deny in service beats missing network allow", in: both, mut: func(r *Request) { r.Principal.OrgID = ""; r.Resource = svcARN + "/admin/x" }, deniedBy: LayerService, explicit: true,
			message: "AccessDeniedException: User: " + session + " is not authorized to perform: vpc-lattice-svcs:Invoke on resource: " + svcARN + "/admin/x with an explicit deny in a service-based policy"},
		{name: "explicit deny in network", in: DecideInput{NetworkIAM: true, NetworkPolicy: denyAll, ServiceIAM: true, ServicePolicy: anon, IdentityPolicies: identity}, deniedBy: LayerNetwork, explicit: true,
			message: "AccessDeniedException: User: " + session + " is not authorized to perform: vpc-lattice-svcs:Invoke on resource: " + resource + " with an explicit deny in a network-based policy"},
		{name: "anonymous allowed by Principal *", in: DecideInput{ServiceIAM: true, ServicePolicy: anon}, mut: anonymous, allowed: true},
		{name: "anonymous needs no identity policy", in: DecideInput{NetworkIAM: true, NetworkPolicy: anon, ServiceIAM: true, ServicePolicy: anon}, mut: anonymous, allowed: true},
		{name: "anonymous identity policies are ignored", in: DecideInput{ServiceIAM: true, ServicePolicy: anon, IdentityPolicies: []*Compiled{MustCompile(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`, IdentityPolicy)}}, mut: anonymous, allowed: true},
		{name: "anonymous vs account principal", in: DecideInput{ServiceIAM: true, ServicePolicy: account}, mut: anonymous, deniedBy: LayerService,
			message: "AccessDeniedException: User: anonymous is not authorized to perform: vpc-lattice-svcs:Invoke on resource: " + resource + " because no service-based policy allows the vpc-lattice-svcs:Invoke action"},
		{name: "anonymous refused by the org network policy", in: both, mut: anonymous, deniedBy: LayerNetwork},
		{name: "account principal admits a signed caller", in: DecideInput{ServiceIAM: true, ServicePolicy: account, IdentityPolicies: identity}, allowed: true},
		{name: "other account refused by account principal", in: DecideInput{ServiceIAM: true, ServicePolicy: account, IdentityPolicies: identity},
			mut: func(r *Request) {
				r.Principal.Account = otherAcct
				r.Principal.ARN = "arn:aws:iam::210987654321:role/x"
				r.Principal.SessionARN = ""
			}, deniedBy: LayerService},
		{name: "identity-kind policy in the service layer is ignored", in: DecideInput{ServiceIAM: true, ServicePolicy: asIdentity, IdentityPolicies: identity}, deniedBy: LayerService},
		{name: "auth-kind policy in the identity layer is ignored", in: DecideInput{ServiceIAM: true, ServicePolicy: anon, IdentityPolicies: []*Compiled{anon, nil}}, deniedBy: LayerIdentity},
		{name: "Connect message", in: DecideInput{ServiceIAM: true, ServicePolicy: service, IdentityPolicies: identity},
			mut: func(r *Request) { r.Action = ActionConnect; r.Resource = svcARN }, deniedBy: LayerService,
			message: "AccessDeniedException: User: " + session + " is not authorized to perform: vpc-lattice-svcs:Connect on resource: " + svcARN + " because no service-based policy allows the vpc-lattice-svcs:Connect action"},
		{name: "tag variable statement", in: both, mut: func(r *Request) {
			r.Principal.ARN, r.Principal.SessionARN = "arn:aws:iam::123456789012:user/bob", ""
			r.Resource, r.Path, r.Method = svcARN+"/orders/12", "/orders/12", "HEAD"
		}, allowed: true},
	}
}

func TestDecide(t *testing.T) {
	for _, tc := range decideCases() {
		t.Run(tc.name, func(t *testing.T) {
			r := baseRequest()
			if tc.mut != nil {
				tc.mut(r)
			}
			in := tc.in
			in.Request = r
			d := Decide(in)
			if d.Allowed != tc.allowed || d.DeniedBy != tc.deniedBy || d.Explicit != tc.explicit {
				t.Fatalf("got allowed=%v deniedBy=%v explicit=%v, want %v %v %v (%s)",
					d.Allowed, d.DeniedBy, d.Explicit, tc.allowed, tc.deniedBy, tc.explicit, d.Message())
			}
			if d.Reason() != tc.deniedBy.String() {
				t.Errorf("Reason() = %q", d.Reason())
			}
			if tc.message != "" && d.Message() != tc.message {
				t.Errorf("message\n got %s\nwant %s", d.Message(), tc.message)
			}
			if d.Allowed && d.Message() != "" {
				t.Errorf("allowed with a message: %s", d.Message())
			}
			if d.Explicit == (d.Statement < 0) {
				t.Errorf("explicit=%v but statement %d", d.Explicit, d.Statement)
			}
			// Explain must reach the same verdict.
			e := Explain(ExplainInput{DecideInput: in})
			if e.Allowed != d.Allowed || e.DeniedBy != d.Reason() || e.Message != d.Message() {
				t.Errorf("Explain disagrees: %+v", e)
			}
		})
	}
}

// Compiled policies are shared by all requests of a node: evaluating them
// from many goroutines must not race (run with -race).
func TestDecideConcurrent(t *testing.T) {
	in, _ := benchInput(20)
	done := make(chan bool)
	for g := 0; g < 4; g++ {
		go func() {
			ok := true
			for i := 0; i < 500; i++ {
				r := baseRequest()
				r.Principal.Tags = []KeyValue{{"team", "billing"}}
				if i%2 == 1 {
					r.Method = "DELETE"
				}
				in := in
				in.Request = r
				d := Decide(in)
				ok = ok && d.Allowed == (i%2 == 0)
				_ = Explain(ExplainInput{DecideInput: in}).String()
			}
			done <- ok
		}()
	}
	for g := 0; g < 4; g++ {
		if !<-done {
			t.Error("wrong decision under concurrency")
		}
	}
}

func TestDecideNilRequest(t *testing.T) {
	d := Decide(DecideInput{ServiceIAM: true, ServicePolicy: MustCompile(anonymousDoc, AuthPolicy)})
	if d.Allowed || d.DeniedBy != LayerService {
		t.Errorf("empty request: %+v", d)
	}
	if want := "AccessDeniedException: User: anonymous is not authorized to perform:  on resource:  because no service-based policy allows the  action"; d.Message() != want {
		t.Errorf("message %q", d.Message())
	}
}

func TestDecisionIdentityPolicyIndex(t *testing.T) {
	ids := []*Compiled{
		MustCompile(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`, IdentityPolicy),
		MustCompile(identityDoc, IdentityPolicy),
	}
	r := baseRequest()
	r.Resource = svcARN + "/admin/x"
	d := Decide(DecideInput{ServiceIAM: true, ServicePolicy: MustCompile(anonymousDoc, AuthPolicy), IdentityPolicies: ids, Request: r})
	if d.Allowed || !d.Explicit || d.Policy != 1 || d.Statement != 1 {
		t.Errorf("got %+v, want explicit deny by policy 1 statement 1", d)
	}
}

func TestLayerString(t *testing.T) {
	for l, want := range map[Layer]string{LayerNone: "", LayerNetwork: "Network", LayerService: "Service", LayerIdentity: "Identity", 9: "Layer(9)"} {
		if got := l.String(); got != want {
			t.Errorf("%d: %q", l, got)
		}
	}
	for o, want := range map[Outcome]string{NoMatch: "NoMatch", Allowed: "Allowed", Denied: "Denied", 7: "Outcome(7)"} {
		if got := o.String(); got != want {
			t.Errorf("%d: %q", o, got)
		}
	}
}

func TestDecideAllocs(t *testing.T) {
	in, r := benchInput(5)
	var d Decision
	allocs := testing.AllocsPerRun(100, func() {
		in.Request = r
		d = Decide(in)
	})
	if !d.Allowed {
		t.Fatalf("benchmark request denied: %s", d.Message())
	}
	if allocs != 0 {
		t.Errorf("Decide allocates %v times per call", allocs)
	}
	buf := make([]byte, 0, 512)
	r.Method = "DELETE"
	allocs = testing.AllocsPerRun(100, func() {
		d = Decide(in)
		buf = d.AppendMessage(buf[:0])
	})
	if d.Allowed || allocs != 0 {
		t.Errorf("denied path: allowed=%v, %v allocs", d.Allowed, allocs)
	}
}

// benchInput is a realistic two-layer setup: an organization-wide network
// policy, a service policy of n statements (serviceDoc's five, padded with
// principals of other accounts that never match), one identity policy of
// two statements, and a request that only the last statement allows.
func benchInput(n int) (DecideInput, *Request) {
	in := DecideInput{
		NetworkIAM: true, NetworkPolicy: MustCompile(networkDoc, AuthPolicy),
		ServiceIAM: true, ServicePolicy: MustCompile(paddedServiceDoc(n), AuthPolicy),
		IdentityPolicies: []*Compiled{MustCompile(identityDoc, IdentityPolicy)},
	}
	if got := len(in.ServicePolicy.Policy().Statements); got != n {
		panic(fmt.Sprintf("service policy has %d statements, want %d", got, n))
	}
	r := baseRequest()
	r.Principal.Tags = []KeyValue{{"team", "billing"}}
	return in, r
}

// paddedServiceDoc is serviceDoc with statements for other accounts'
// roles put in front, to n statements in all.
func paddedServiceDoc(n int) string {
	return paddedDoc(n, func(i int) string { return fmt.Sprintf(`{"AWS":"arn:aws:iam::%012d:role/r%d"}`, 100000+i, i) })
}

// paddedDoc is serviceDoc with n-5 statements put in front, statement i
// for principal(i) and resource <service>/pad<i>/*.
func paddedDoc(n int, principal func(int) string) string {
	if n <= 5 {
		return serviceDoc
	}
	var b strings.Builder
	for i := 0; i < n-5; i++ {
		fmt.Fprintf(&b, `{"Sid":"Pad%d","Effect":"Allow","Principal":%s,"Action":"vpc-lattice-svcs:Invoke","Resource":"%s/pad%d/*","Condition":{"StringEquals":{"vpc-lattice-svcs:RequestMethod":"GET"}}},`, i, principal(i), svcARN, i)
	}
	return strings.Replace(serviceDoc, `"Statement":[`, `"Statement":[`+b.String(), 1)
}

func benchmarkDecide(b *testing.B, n int) {
	in, r := benchInput(n)
	in.Request = r
	if d := Decide(in); !d.Allowed {
		b.Fatalf("denied: %s", d.Message())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		Decide(in)
	}
}

func BenchmarkDecide5(b *testing.B)   { benchmarkDecide(b, 5) }
func BenchmarkDecide100(b *testing.B) { benchmarkDecide(b, 100) }

func BenchmarkDecideDenied(b *testing.B) {
	in, r := benchInput(5)
	r.Method = "DELETE"
	in.Request = r
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		d := Decide(in)
		buf = d.AppendMessage(buf[:0])
	}
}

// linearEvaluate is Evaluate without the principal index.
func linearEvaluate(c *Compiled, r *Request) (Outcome, int) {
	for i := range c.stmts {
		if out, st := c.try(i, r); out != NoMatch {
			return out, st
		}
	}
	return NoMatch, -1
}

// The principal index must not change any result.
func TestPrincipalIndex(t *testing.T) {
	principals := []string{`"*"`, `{"AWS":"123456789012"}`, `{"AWS":"210987654321"}`, `{"AWS":"` + roleARN + `"}`,
		`{"AWS":["` + session + `","123456789012"]}`, `{"AWS":"` + userARN + `"}`, `{"Service":"lambda.amazonaws.com"}`,
		`{"AWS":"arn:aws:iam::123456789012:root"}`}
	var stmts []string
	for i := 0; i < 40; i++ {
		eff, key := "Allow", "Principal"
		if i%7 == 3 {
			eff = "Deny"
		}
		if i%11 == 5 {
			key = "NotPrincipal"
		}
		stmts = append(stmts, fmt.Sprintf(`{"Effect":%q,%q:%s,"Action":"vpc-lattice-svcs:Invoke","Resource":"*/p%d/*"}`,
			eff, key, principals[i%len(principals)], i%9))
	}
	c := MustCompile(auth(strings.Join(stmts, ",")), AuthPolicy)
	if c.index == nil {
		t.Fatal("no index built")
	}
	callers := []Principal{
		{}, {ARN: roleARN, SessionARN: session, Account: acct}, {ARN: userARN, Account: acct},
		{ARN: "arn:aws:iam::210987654321:role/x", Account: otherAcct}, {Service: "lambda.amazonaws.com"},
		{ARN: "arn:aws:iam::123456789012:root", Account: acct}, {ARN: "arn:aws:iam::999999999999:user/z", Account: "999999999999"},
	}
	for _, p := range callers {
		for i := 0; i < 10; i++ {
			r := baseRequest()
			r.Principal = p
			r.Resource = fmt.Sprintf("%s/p%d/x", svcARN, i)
			o1, s1 := c.Evaluate(r)
			o2, s2 := linearEvaluate(c, r)
			if o1 != o2 || s1 != s2 {
				t.Errorf("caller %+v, resource %s: indexed %v %d, linear %v %d", p, r.Resource, o1, s1, o2, s2)
			}
		}
	}
}

// BenchmarkDecide100Wildcard is the principal index's worst case: 100
// statements for Principal "*" that differ only in resource.
func BenchmarkDecide100Wildcard(b *testing.B) {
	in, r := benchInput(5)
	in.ServicePolicy = MustCompile(paddedDoc(100, func(int) string { return `"*"` }), AuthPolicy)
	in.Request = r
	if d := Decide(in); !d.Allowed {
		b.Fatalf("denied: %s", d.Message())
	}
	b.ReportAllocs()
	for b.Loop() {
		Decide(in)
	}
}
