package iam_test

import (
	"testing"

	"github.com/trellis-mesh/trellis/internal/iam"
)

func TestPrincipalForSPIFFE(t *testing.T) {
	const td = "trellis.local"
	for _, c := range []struct {
		name, uri            string
		account, typ, prinID string
	}{
		{"role", "spiffe://trellis.local/account/111122223333/role/orders", "111122223333", "role", "orders"},
		{"user", "spiffe://trellis.local/account/111122223333/user/ci.bot_1-x", "111122223333", "user", "ci.bot_1-x"},
		{"other-trust-domain", "spiffe://example.org/account/111122223333/role/orders", "", "", ""},
		{"trust-domain-prefix", "spiffe://trellis.localx/account/111122223333/role/orders", "", "", ""},
		{"trust-domain-suffix", "spiffe://x.trellis.local/account/111122223333/role/orders", "", "", ""},
		{"scheme", "https://trellis.local/account/111122223333/role/orders", "", "", ""},
		{"short-account", "spiffe://trellis.local/account/11112222333/role/orders", "", "", ""},
		{"type", "spiffe://trellis.local/account/111122223333/group/orders", "", "", ""},
		{"extra-segment", "spiffe://trellis.local/account/111122223333/role/orders/x", "", "", ""},
		{"no-name", "spiffe://trellis.local/account/111122223333/role/", "", "", ""},
		{"dot-dot", "spiffe://trellis.local/account/111122223333/role/..", "", "", ""},
		{"at-sign", "spiffe://trellis.local/account/111122223333/user/a@b", "", "", ""},
		{"query", "spiffe://trellis.local/account/111122223333/role/orders?x", "", "", ""},
		{"no-account-segment", "spiffe://trellis.local/111122223333/role/orders", "", "", ""},
		{"empty", "", "", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, typ, n, ok := iam.PrincipalForSPIFFE(td, c.uri)
			if ok != (c.account != "") || a != c.account || typ != c.typ || n != c.prinID {
				t.Errorf("PrincipalForSPIFFE(%q) = %q %q %q %v", c.uri, a, typ, n, ok)
			}
		})
	}
	if _, _, _, ok := iam.PrincipalForSPIFFE("", "spiffe:///account/111122223333/role/orders"); ok {
		t.Error("an empty trust domain matched")
	}
}

func TestSPIFFEIDRoundTrip(t *testing.T) {
	id := iam.SPIFFEID("mesh.example", "111122223333", "role", "orders")
	if id != "spiffe://mesh.example/account/111122223333/role/orders" {
		t.Fatalf("SPIFFEID = %s", id)
	}
	if a, typ, n, ok := iam.PrincipalForSPIFFE("mesh.example", id); !ok || a != "111122223333" || typ != "role" || n != "orders" {
		t.Errorf("round trip: %q %q %q %v", a, typ, n, ok)
	}
}

func TestCheckNames(t *testing.T) {
	for name, ok := range map[string]bool{"orders": true, "a.b-c_d": true, "a+b": false, "a=b": false, "a,b": false, "a@b": false,
		".": false, "..": false, "...": true, "": false, string(make([]byte, 65)): false} {
		if err := iam.CheckSPIFFEName(name); (err == nil) != ok {
			t.Errorf("CheckSPIFFEName(%q) = %v", name, err)
		}
	}
	for td, ok := range map[string]bool{"trellis.local": true, "a_b-c.d": true, "Trellis.local": false, "": false, "a/b": false, "a:1": false} {
		if err := iam.CheckTrustDomain(td); (err == nil) != ok {
			t.Errorf("CheckTrustDomain(%q) = %v", td, err)
		}
	}
}

// FuzzPrincipalForSPIFFE: whatever it accepts is exactly what SPIFFEID
// renders for the parts it returns.
func FuzzPrincipalForSPIFFE(f *testing.F) {
	f.Add("spiffe://trellis.local/account/111122223333/role/orders")
	f.Add("spiffe://trellis.local/account/111122223333/user/a/b")
	f.Add("spiffe://trellis.local/account//role/x")
	f.Fuzz(func(t *testing.T, uri string) {
		a, typ, n, ok := iam.PrincipalForSPIFFE("trellis.local", uri)
		if ok && iam.SPIFFEID("trellis.local", a, typ, n) != uri {
			t.Fatalf("%q parsed as %q %q %q", uri, a, typ, n)
		}
	})
}

func BenchmarkPrincipalForSPIFFE(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, ok := iam.PrincipalForSPIFFE("trellis.local", "spiffe://trellis.local/account/111122223333/role/orders"); !ok {
			b.Fatal("not parsed")
		}
	}
}
