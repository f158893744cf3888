package identity_test

import (
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"

	"github.com/trellis-mesh/trellis/internal/identity"
)

const roleARN = "arn:aws:iam::111122223333:role/orders"

func TestAppendIdentity(t *testing.T) {
	for _, c := range []struct {
		name   string
		caller *identity.Caller
		want   string
	}{
		{"anonymous", &identity.Caller{}, "Type=ANONYMOUS"},
		{"nil", nil, "Type=ANONYMOUS"},
		{"sigv4", &identity.Caller{Principal: roleARN, Tags: []identity.Tag{{"team", "orders"}}},
			"Principal=" + roleARN + "; PrincipalOrgID=; PrincipalOrgPaths=; SessionName=; Type=AWS_IAM"},
		{"session", &identity.Caller{Principal: "arn:aws:sts::123456789012:assumed-role/R/s", SessionName: "s"},
			"Principal=arn:aws:sts::123456789012:assumed-role/R/s; PrincipalOrgID=; PrincipalOrgPaths=; SessionName=s; Type=AWS_IAM"},
		{"organization", &identity.Caller{Principal: roleARN, OrgID: "o-a1b2c3d4e5", OrgPaths: "o-a1b2c3d4e5/r-ab12/"},
			"Principal=" + roleARN + "; PrincipalOrgID=o-a1b2c3d4e5; PrincipalOrgPaths=o-a1b2c3d4e5/r-ab12/; SessionName=; Type=AWS_IAM"},
		{"mtls", &identity.Caller{Principal: roleARN, X509: &identity.X509{
			SANURI: "spiffe://trellis.local/account/111122223333/role/orders", SubjectCN: "orders"}},
			"Principal=" + roleARN + "; PrincipalOrgID=; PrincipalOrgPaths=; SessionName=; Type=AWS_IAM" +
				"; X509SAN/URI=spiffe://trellis.local/account/111122223333/role/orders; X509Subject/CN=orders"},
		{"mtls-all-fields", &identity.Caller{Principal: roleARN, X509: &identity.X509{
			SANURI: "spiffe://td/x", SANDNS: "orders.internal", SubjectCN: "cn", IssuerOU: "mesh"}},
			"Principal=" + roleARN + "; PrincipalOrgID=; PrincipalOrgPaths=; SessionName=; Type=AWS_IAM" +
				"; X509SAN/URI=spiffe://td/x; X509SAN/DNS=orders.internal; X509Subject/CN=cn; X509Issuer/OU=mesh"},
		{"escaped-cn", &identity.Caller{Principal: roleARN, X509: &identity.X509{SubjectCN: "a; Type=ANONYMOUS\r\nX-Evil: 1\\"}},
			"Principal=" + roleARN + "; PrincipalOrgID=; PrincipalOrgPaths=; SessionName=; Type=AWS_IAM" +
				`; X509Subject/CN=a\; Type=ANONYMOUS\x0D\x0AX-Evil: 1\\`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := string(identity.AppendIdentity([]byte("prefix:"), c.caller))
			if got != "prefix:"+c.want {
				t.Errorf("got  %s\nwant prefix:%s", got, c.want)
			}
			if !httpguts.ValidHeaderFieldValue(got) {
				t.Errorf("%q is not a valid header value", got)
			}
		})
	}
}

func TestAppendTags(t *testing.T) {
	for _, c := range []struct {
		name   string
		caller *identity.Caller
		want   string
	}{
		{"anonymous", &identity.Caller{Tags: []identity.Tag{{"a", "b"}}}, ""},
		{"no-tags", &identity.Caller{Principal: roleARN}, "principal=" + roleARN + ";principalorgid="},
		{"tags", &identity.Caller{Principal: roleARN, Tags: []identity.Tag{{"env", "prod"}, {"team", "orders"}}},
			"principal=" + roleARN + ";principalorgid=;env=prod;team=orders"},
		{"organization", &identity.Caller{Principal: roleARN, OrgID: "o-1", OrgPaths: "o-1/r-1/", Tags: []identity.Tag{{"k", ""}}},
			"principal=" + roleARN + ";principalorgid=o-1;principalorgpath=o-1/r-1/;k="},
		{"semicolons", &identity.Caller{Principal: roleARN, Tags: []identity.Tag{{"list", "a;b;c"}, {"k;x", `back\slash`}}},
			"principal=" + roleARN + `;principalorgid=;list=a\;b\;c;k\;x=back\\slash`},
		{"control-characters", &identity.Caller{Principal: roleARN, Tags: []identity.Tag{{"nl", "a\nb\x00\x7f\tc"}}},
			"principal=" + roleARN + `;principalorgid=;nl=a\x0Ab\x00\x7F\x09c`},
		{"unicode-and-equals", &identity.Caller{Principal: roleARN, Tags: []identity.Tag{{"k=1", "ü=ö"}}},
			"principal=" + roleARN + ";principalorgid=;k=1=ü=ö"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := string(identity.AppendTags(nil, c.caller))
			if got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			if !httpguts.ValidHeaderFieldValue(got) {
				t.Errorf("%q is not a valid header value", got)
			}
		})
	}
}

// splitEntries undoes the tags header's format: entries split at
// unescaped ';', each at its first unescaped '=', escapes removed.
func splitEntries(t *testing.T, s string) [][2]string {
	var out [][2]string
	var cur [2][]byte
	part := 0
	flush := func() {
		out = append(out, [2]string{string(cur[0]), string(cur[1])})
		cur, part = [2][]byte{}, 0
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && s[i+1] == 'x':
			if i+3 >= len(s) {
				t.Fatalf("truncated escape in %q", s)
			}
			var b byte
			for _, h := range s[i+2 : i+4] {
				b = b<<4 | byte(strings.IndexRune("0123456789ABCDEF", h))
			}
			cur[part] = append(cur[part], b)
			i += 3
		case c == '\\' && i+1 < len(s):
			cur[part] = append(cur[part], s[i+1])
			i++
		case c == ';':
			flush()
		case c == '=' && part == 0:
			part = 1
		default:
			cur[part] = append(cur[part], c)
		}
	}
	flush()
	return out
}

// FuzzAppendTags: whatever the values, the header is a valid header
// value, and parsing it gives the tags back.
func FuzzAppendTags(f *testing.F) {
	f.Add("team", "orders", "a;b\\c")
	f.Add("k", "\r\n\x00", "")
	f.Fuzz(func(t *testing.T, key, v1, v2 string) {
		if strings.Contains(key, "=") || key == "" {
			key = "k"
		}
		c := &identity.Caller{Principal: roleARN, Tags: []identity.Tag{{key, v1}, {"second", v2}}}
		got := string(identity.AppendTags(nil, c))
		if !httpguts.ValidHeaderFieldValue(got) {
			t.Fatalf("%q is not a valid header value", got)
		}
		entries := splitEntries(t, got)
		want := [][2]string{{"principal", roleARN}, {"principalorgid", ""}, {key, v1}, {"second", v2}}
		if len(entries) != len(want) {
			t.Fatalf("%q parsed as %q", got, entries)
		}
		for i := range want {
			if entries[i] != want[i] {
				t.Fatalf("%q entry %d: %q, want %q", got, i, entries[i], want[i])
			}
		}
		h := http.Header{}
		h.Set(identity.TagsHeader, got)
		if h.Get(identity.TagsHeader) != got {
			t.Fatal("header value changed by net/http")
		}
	})
}

func TestAppendAllocatesNothing(t *testing.T) {
	c := &identity.Caller{Principal: roleARN, Tags: []identity.Tag{{"team", "orders"}, {"env", "a;b"}},
		X509: &identity.X509{SANURI: "spiffe://trellis.local/account/111122223333/role/orders"}}
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() {
		buf = identity.AppendIdentity(buf[:0], c)
		buf = identity.AppendTags(buf[:0], c)
		buf = identity.AppendIdentity(buf[:0], &identity.Caller{})
	}); n != 0 {
		t.Errorf("%v allocations per run, want 0", n)
	}
}

func BenchmarkAppend(b *testing.B) {
	c := &identity.Caller{Principal: roleARN, Tags: []identity.Tag{{"team", "orders"}, {"env", "prod"}, {"cost-center", "1234"}}}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = identity.AppendIdentity(buf[:0], c)
		buf = identity.AppendTags(buf, c)
	}
}
