package policy

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGlob(t *testing.T) {
	cases := []struct {
		pat, s string
		fold   bool
		want   bool
	}{
		{"*", "", false, true},
		{"*", "anything", false, true},
		{"", "", false, true},
		{"", "x", false, false},
		{"abc", "abc", false, true},
		{"abc", "ABC", false, false},
		{"abc", "ABC", true, true},
		{"a*", "a", false, true},
		{"a*", "ba", false, false},
		{"*c", "abc", false, true},
		{"*c", "abC", true, true},
		{"*c", "abd", false, false},
		{"a*c", "ac", false, true},
		{"a*c", "abbbc", false, true},
		{"a*c", "abbbd", false, false},
		{"a?c", "abc", false, true},
		{"a?c", "ac", false, false},
		{"a?c", "aéc", false, true}, // ? is one character, not one byte
		{"a**c", "abc", false, true},
		{"*a*a*a*a*a*b", strings.Repeat("a", 200), false, false}, // linear, not exponential
		{"*ab*cd*", "xxabyycdzz", false, true},
		{"*ab*cd*", "xxcdyyabzz", false, false},
		{"vpc-lattice-svcs:*", "VPC-LATTICE-SVCS:Invoke", true, true},
		{"*:inv?ke", "vpc-lattice-svcs:Invoke", true, true},
		{"straße", "STRASSE", true, false}, // simple folding only, like strings.EqualFold
		{"k*", "\u212a", true, true},       // Kelvin sign folds to k
		{"*\u212a", "k", true, true},
	}
	for _, tc := range cases {
		p, err := compilePattern(tc.pat, true, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.match(tc.s, tc.fold, nil) == matched; got != tc.want {
			t.Errorf("match(%q, %q, fold=%v) = %v, want %v", tc.pat, tc.s, tc.fold, got, tc.want)
		}
	}
}

// evalDoc compiles a one-statement auth policy and evaluates r.
func evalDoc(t *testing.T, stmt string, r *Request) Outcome {
	t.Helper()
	c := MustCompile(auth(stmt), AuthPolicy)
	out, _ := c.Evaluate(r)
	return out
}

func TestPrincipals(t *testing.T) {
	roleSession := func(r *Request) {}
	user := func(r *Request) {
		r.Principal = Principal{ARN: userARN, Account: acct, Type: "User", Username: "alice"}
	}
	other := func(r *Request) {
		r.Principal = Principal{ARN: "arn:aws:iam::210987654321:role/rates-client", SessionARN: "arn:aws:sts::210987654321:assumed-role/rates-client/s1", Account: otherAcct, Type: "AssumedRole"}
	}
	root := func(r *Request) {
		r.Principal = Principal{ARN: "arn:aws:iam::123456789012:root", Account: acct, Type: "Account"}
	}
	service := func(r *Request) { r.Principal = Principal{Service: "lambda.amazonaws.com"} }
	allow := func(principal string) string {
		return `{"Effect":"Allow","Principal":` + principal + `,"Action":"vpc-lattice-svcs:Invoke","Resource":"*"}`
	}
	deny := func(notPrincipal string) string {
		return `{"Effect":"Deny","NotPrincipal":` + notPrincipal + `,"Action":"vpc-lattice-svcs:Invoke","Resource":"*"}`
	}
	cases := []struct {
		name   string
		stmt   string
		caller func(*Request)
		want   Outcome
	}{
		{"* matches a session", allow(`"*"`), roleSession, Allowed},
		{"* matches anonymous", allow(`"*"`), anonymous, Allowed},
		{"AWS * matches anonymous", allow(`{"AWS":"*"}`), anonymous, Allowed},
		{"account ID matches a session", allow(`{"AWS":"123456789012"}`), roleSession, Allowed},
		{"account ID matches a user", allow(`{"AWS":"123456789012"}`), user, Allowed},
		{"account ID matches the root user", allow(`{"AWS":"123456789012"}`), root, Allowed},
		{"account ID not another account", allow(`{"AWS":"123456789012"}`), other, NoMatch},
		{"account ID not anonymous", allow(`{"AWS":"123456789012"}`), anonymous, NoMatch},
		{"root ARN matches the account", allow(`{"AWS":"arn:aws:iam::123456789012:root"}`), roleSession, Allowed},
		{"root ARN not anonymous", allow(`{"AWS":"arn:aws:iam::123456789012:root"}`), anonymous, NoMatch},
		{"role ARN matches its session", allow(`{"AWS":"` + roleARN + `"}`), roleSession, Allowed},
		{"role ARN not another account's role", allow(`{"AWS":"` + roleARN + `"}`), other, NoMatch},
		{"role ARN not a user", allow(`{"AWS":"` + roleARN + `"}`), user, NoMatch},
		{"session ARN matches that session", allow(`{"AWS":"` + session + `"}`), roleSession, Allowed},
		{"session ARN not another session", allow(`{"AWS":"arn:aws:sts::123456789012:assumed-role/rates-client/s2"}`), roleSession, NoMatch},
		{"user ARN exact", allow(`{"AWS":"` + userARN + `"}`), user, Allowed},
		{"user ARN not a role", allow(`{"AWS":"` + userARN + `"}`), roleSession, NoMatch},
		{"list of principals", allow(`{"AWS":["arn:aws:iam::210987654321:root","` + userARN + `"]}`), other, Allowed},
		{"service principal", allow(`{"Service":"lambda.amazonaws.com"}`), service, Allowed},
		{"service principal not a role", allow(`{"Service":"lambda.amazonaws.com"}`), roleSession, NoMatch},
		{"NotPrincipal Deny: listed user and account", deny(`{"AWS":["` + userARN + `","arn:aws:iam::123456789012:root"]}`), user, NoMatch},
		{"NotPrincipal Deny: user without its account", deny(`{"AWS":["` + userARN + `"]}`), user, Denied},
		{"NotPrincipal Deny: other caller", deny(`{"AWS":["` + userARN + `","123456789012"]}`), other, Denied},
		{"NotPrincipal Deny: session, role and account", deny(`{"AWS":["` + session + `","` + roleARN + `","123456789012"]}`), roleSession, NoMatch},
		{"NotPrincipal Deny: role and account, not the session", deny(`{"AWS":["` + roleARN + `","123456789012"]}`), roleSession, Denied},
		{"NotPrincipal Deny: root user by account", deny(`{"AWS":"arn:aws:iam::123456789012:root"}`), root, NoMatch},
		{"NotPrincipal Deny: anonymous", deny(`{"AWS":["` + userARN + `","123456789012"]}`), anonymous, Denied},
		{"NotPrincipal Deny: * excludes everyone", deny(`{"AWS":"*"}`), anonymous, NoMatch},
		{"NotPrincipal Allow never admits anonymous", `{"Effect":"Allow","NotPrincipal":{"AWS":"` + userARN + `"},"Action":"*","Resource":"*"}`, anonymous, NoMatch},
		{"NotPrincipal Allow admits others", `{"Effect":"Allow","NotPrincipal":{"AWS":"` + userARN + `"},"Action":"*","Resource":"*"}`, roleSession, Allowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := baseRequest()
			tc.caller(r)
			if got := evalDoc(t, tc.stmt, r); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestActionsAndResources(t *testing.T) {
	stmt := func(action, resource string) string {
		return `{"Effect":"Allow","Principal":"*",` + action + `,` + resource + `}`
	}
	res := func(r ...string) string { return `"Resource":["` + strings.Join(r, `","`) + `"]` }
	act := func(a ...string) string { return `"Action":["` + strings.Join(a, `","`) + `"]` }
	cases := []struct {
		name string
		stmt string
		mut  func(*Request)
		want Outcome
	}{
		{"action exact", stmt(act("vpc-lattice-svcs:Invoke"), res("*")), nil, Allowed},
		{"action case-insensitive", stmt(act("VPC-LATTICE-SVCS:invoke"), res("*")), nil, Allowed},
		{"action service wildcard", stmt(act("vpc-lattice-svcs:*"), res("*")), nil, Allowed},
		{"action prefix wildcard", stmt(act("vpc-lattice-svcs:Inv*"), res("*")), nil, Allowed},
		{"action question mark", stmt(act("vpc-lattice-svcs:?nvoke"), res("*")), nil, Allowed},
		{"action star", stmt(`"Action":"*"`, res("*")), nil, Allowed},
		{"action other", stmt(act("vpc-lattice-svcs:Connect"), res("*")), nil, NoMatch},
		{"action Connect request", stmt(act("vpc-lattice-svcs:Connect"), res("*")), func(r *Request) { r.Action = ActionConnect; r.Resource = svcARN }, Allowed},
		{"NotAction excludes Connect", stmt(`"NotAction":"vpc-lattice-svcs:Connect"`, res("*")), nil, Allowed},
		{"NotAction excludes Invoke", stmt(`"NotAction":"vpc-lattice-svcs:Invoke"`, res("*")), nil, NoMatch},
		{"action not spelled like a constant", stmt(act("vpc-lattice-svcs:Invoke"), res("*")), func(r *Request) { r.Action = "VPC-Lattice-Svcs:Invoke" }, Allowed},
		{"unknown action", stmt(act("vpc-lattice-svcs:*"), res("*")), func(r *Request) { r.Action = "s3:GetObject" }, NoMatch},
		{"resource exact", stmt(act("vpc-lattice-svcs:Invoke"), res(svcARN+"/orders/12")), nil, Allowed},
		{"resource exact is case-sensitive", stmt(act("vpc-lattice-svcs:Invoke"), res(svcARN+"/Orders/12")), nil, NoMatch},
		{"resource service/*", stmt(act("vpc-lattice-svcs:Invoke"), res(svcARN+"/*")), nil, Allowed},
		{"resource */orders/*", stmt(act("vpc-lattice-svcs:Invoke"), res("*/orders/*")), nil, Allowed},
		{"resource */rates", stmt(act("vpc-lattice-svcs:Invoke"), res("*/rates")), nil, NoMatch},
		{"resource */*", stmt(act("vpc-lattice-svcs:Invoke"), res("*/*")), nil, Allowed},
		{"resource root path", stmt(act("vpc-lattice-svcs:Invoke"), res(svcARN+"/")), func(r *Request) { r.Resource = svcARN + "/" }, Allowed},
		{"resource other service", stmt(act("vpc-lattice-svcs:Invoke"), res("arn:aws:vpc-lattice:us-west-2:123456789012:service/svc-1/*")), nil, NoMatch},
		{"resource account wildcard", stmt(act("vpc-lattice-svcs:Invoke"), res("arn:aws:vpc-lattice:us-west-2:*:service/svc-0123456789abcdef0/*")), nil, Allowed},
		{"resource list", stmt(act("vpc-lattice-svcs:Invoke"), res("*/users/*", "*/orders/?2")), nil, Allowed},
		{"NotResource", stmt(act("vpc-lattice-svcs:Invoke"), `"NotResource":"*/admin/*"`), nil, Allowed},
		{"NotResource matching", stmt(act("vpc-lattice-svcs:Invoke"), `"NotResource":["*/admin/*","*/orders/*"]`), nil, NoMatch},
		{"resource variable", stmt(act("vpc-lattice-svcs:Invoke"), res(svcARN+"/${aws:PrincipalTag/team}/*")), nil, Allowed},
		{"resource variable mismatch", stmt(act("vpc-lattice-svcs:Invoke"), res(svcARN+"/${aws:PrincipalTag/team}/*")), func(r *Request) { r.Principal.Tags = []KeyValue{{"team", "users"}} }, NoMatch},
		{"resource variable unresolved", stmt(act("vpc-lattice-svcs:Invoke"), res(svcARN+"/${aws:PrincipalTag/team}/*")), anonymous, NoMatch},
		{"NotResource variable unresolved keeps the statement out", stmt(act("vpc-lattice-svcs:Invoke"), `"NotResource":"*/${aws:username}/*"`), nil, NoMatch},
		{"resource variable value is literal", stmt(act("vpc-lattice-svcs:Invoke"), res(svcARN+"/${aws:PrincipalTag/team}")), func(r *Request) { r.Principal.Tags = []KeyValue{{"team", "*"}} }, NoMatch},
		{"gRPC method resource", stmt(act("vpc-lattice-svcs:Invoke"), res(svcARN+"/pkg.Orders/*")), func(r *Request) { r.Resource = svcARN + "/pkg.Orders/Get" }, Allowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := baseRequest()
			if tc.mut != nil {
				tc.mut(r)
			}
			if got := evalDoc(t, tc.stmt, r); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// Variables are plain text under Version 2008-10-17.
func TestVariablesNeedVersion2012(t *testing.T) {
	doc := `{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"arn:aws:vpc-lattice:us-west-2:123456789012:service/svc-1/${aws:username}"}]}`
	c := MustCompile(doc, ResourcePolicy)
	r := baseRequest()
	r.Principal.Username = "alice"
	r.Resource = "arn:aws:vpc-lattice:us-west-2:123456789012:service/svc-1/alice"
	if out, _ := c.Evaluate(r); out != NoMatch {
		t.Errorf("variable substituted under 2008-10-17: %v", out)
	}
	r.Resource = "arn:aws:vpc-lattice:us-west-2:123456789012:service/svc-1/${aws:username}"
	if out, _ := c.Evaluate(r); out != Allowed {
		t.Errorf("literal text did not match: %v", out)
	}
}

func TestEvaluateOrder(t *testing.T) {
	c := MustCompile(auth(
		`{"Sid":"A","Effect":"Allow","Principal":"*","Action":"*","Resource":"*"},`+
			`{"Sid":"B","Effect":"Allow","Principal":"*","Action":"*","Resource":"*"},`+
			`{"Sid":"D","Effect":"Deny","Principal":"*","Action":"*","Resource":"*/admin/*"}`), AuthPolicy)
	r := baseRequest()
	if out, st := c.Evaluate(r); out != Allowed || st != 0 {
		t.Errorf("got %v %d, want Allowed 0", out, st)
	}
	r.Resource = svcARN + "/admin/x"
	if out, st := c.Evaluate(r); out != Denied || st != 2 {
		t.Errorf("got %v %d, want Denied 2", out, st)
	}
	var nilPolicy *Compiled
	if out, st := nilPolicy.Evaluate(r); out != NoMatch || st != -1 {
		t.Errorf("nil policy: %v %d", out, st)
	}
}

// globRef is a plain dynamic-programming wildcard matcher over runes, the
// reference for FuzzGlob.
func globRef(pat, s string) bool {
	p, r := []rune(pat), []rune(s)
	// ok[j]: p[:i] matches r[:j].
	ok := make([]bool, len(r)+1)
	ok[0] = true
	for i := range p {
		next := make([]bool, len(r)+1)
		for j := 0; j <= len(r); j++ {
			switch {
			case p[i] == '*':
				next[j] = ok[j] || j > 0 && next[j-1]
			case j > 0 && (p[i] == '?' || p[i] == r[j-1]):
				next[j] = ok[j-1]
			}
		}
		ok = next
	}
	return ok[len(r)]
}

func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{
		{"*/orders/*", "arn:x/orders/1"}, {"a*b*c", "aXbYbZc"}, {"*ab*cd*", "xxcdyyabzz"},
		{"?*?", "ab"}, {"*a?", "aaa"}, {"é*?", "éé"}, {"**", ""}, {"*a*a*b", "aaaaaaaaaaaa"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, s string) {
		if !utf8.ValidString(pat) || !utf8.ValidString(s) || len(pat) > 64 || len(s) > 256 {
			return
		}
		p, err := compilePattern(pat, true, false)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := p.match(s, false, nil) == matched, globRef(pat, s); got != want {
			t.Errorf("match(%q, %q) = %v, reference says %v", pat, s, got, want)
		}
	})
}
