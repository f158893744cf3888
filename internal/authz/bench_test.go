package authz

import (
	"context"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkAuthorize measures one decision on the gateway's request path:
// anonymous (policies only) and SigV4-signed (verification, then
// policies with the caller's identity policy).
func BenchmarkAuthorize(b *testing.B) {
	now := time.Now().UTC().Truncate(time.Second)
	a := testAuthority(b, now)
	s := iamService(b, a, ordersPolicy)
	run := func(b *testing.B, r *http.Request, wantAllowed bool) {
		req := &Request{HTTP: r, Method: r.Method, Path: r.URL.Path, Port: 80, SourceIP: netip.MustParseAddr("10.0.0.9")}
		if res := a.Authorize(context.Background(), s, req); res.Allowed != wantAllowed {
			b.Fatalf("allowed %t, want %t: %+v", res.Allowed, wantAllowed, res)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			a.Authorize(context.Background(), s, req)
		}
	}
	b.Run("anonymous", func(b *testing.B) {
		r := newRequest(b, "GET", "/orders/42")
		r.Header.Set("User-Agent", "bench")
		run(b, r, false)
	})
	b.Run("sigv4", func(b *testing.B) {
		r := newRequest(b, "GET", "/orders/42")
		sign(b, r, reader, now)
		run(b, r, true)
	})
}
