package egress

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// BenchmarkProxyHTTP is one GET through the proxy to a local backend over
// kept-alive HTTP/1.1 connections, with ECS's default timeouts and
// retries. Allocations count the client, the proxy and the backend.
func BenchmarkProxyHTTP(b *testing.B) {
	be := newBackend(b, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	p := newProxy(b, Config{})
	p.SetEndpoints("svc", []Endpoint{be.endpoint("a")})
	addr := listen(b, p, "svc", Policy{
		Protocol: HTTP, IdleTimeout: 300 * time.Second, PerRequestTimeout: 15 * time.Second,
		Retry:   RetryPolicy{NumRetries: 2, On: Retry503 | RetryConnectFailure | RetryRefusedStream, BudgetPercent: 20},
		Outlier: OutlierPolicy{Consecutive5xx: 5, Interval: 10 * time.Second, BaseEjection: 30 * time.Second, MaxEjectionPercent: 10},
		Breaker: BreakerPolicy{MaxConnections: 1024, MaxPendingRequests: 1024, MaxRequests: 1024},
	})
	c := newClient(b)
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkBackendDirect is the same GET without the proxy, for
// comparison: the proxy's cost is the difference.
func BenchmarkBackendDirect(b *testing.B) {
	be := newBackend(b, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	c := newClient(b)
	req, _ := http.NewRequest(http.MethodGet, be.URL+"/", nil)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkPick is one least-request pick among 50 endpoints.
func BenchmarkPick(b *testing.B) {
	var eps []Endpoint
	for i := range 50 {
		eps = append(eps, Endpoint{Addr: string(rune('a'+i%26)) + string(rune('a'+i/26)) + ":80"})
	}
	set := buildSet(&endpointSet{}, eps)
	b.ReportAllocs()
	for b.Loop() {
		var tried triedSet
		set.pick(1, &tried)
	}
}

// BenchmarkGRPC is a unary gRPC call (the health service's Check) from
// grpc-go's client to grpc-go's server, through the proxy with ECS's
// default policy for a GRPC service, and without it for comparison.
// Calls run in parallel over one client connection, as a gRPC client's
// do. Allocations count the client, the proxy and the server.
func BenchmarkGRPC(b *testing.B) {
	ln := newLoopbackListener(b)
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("trellis.Bench", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(ln)
	b.Cleanup(gs.Stop)

	p := newProxy(b, Config{})
	p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: ln.Addr().String()}})
	addr := listen(b, p, "svc", Policy{
		Protocol: GRPC, IdleTimeout: 300 * time.Second, PerRequestTimeout: 15 * time.Second,
		Retry:   RetryPolicy{NumRetries: 2, On: Retry503 | RetryConnectFailure | RetryRefusedStream | RetryUnavailable, BudgetPercent: 20},
		Outlier: OutlierPolicy{Consecutive5xx: 5, Interval: 10 * time.Second, BaseEjection: 30 * time.Second, MaxEjectionPercent: 10},
		Breaker: BreakerPolicy{MaxConnections: 1024, MaxPendingRequests: 1024, MaxRequests: 1024},
	})
	for _, tc := range []struct{ name, addr string }{{"proxy", addr}, {"direct", ln.Addr().String()}} {
		b.Run(tc.name, func(b *testing.B) {
			conn, err := grpc.NewClient("passthrough:///"+tc.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			client := healthpb.NewHealthClient(conn)
			req := &healthpb.HealthCheckRequest{Service: "trellis.Bench"}
			b.ReportAllocs()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := client.Check(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
