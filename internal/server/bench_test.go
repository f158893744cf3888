package server_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
)

// Benchmarks of the whole request path: AWS SDK client (SigV4 signing,
// serialisation) → loopback HTTP → authentication → Lattice handler →
// bolt store (an fsync per write) and back. Client and server share the
// process, so allocs/op counts both sides.

// benchClient is ts.admin() with its own connection pool, large enough
// that parallel benchmarks reuse keep-alive connections instead of
// opening (and leaving in TIME_WAIT) one per request.
func benchClient(tb testing.TB, ts *testServer) *vpclattice.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 256, 256
	tb.Cleanup(tr.CloseIdleConnections)
	return vpclattice.New(vpclattice.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(ts.endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider(ts.boot.AccessKeyID, ts.secret, ""),
		HTTPClient:       &http.Client{Timeout: 10 * time.Second, Transport: tr},
		RetryMaxAttempts: 1,
	})
}

func reportOpsPerSec(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "ops/s")
	}
}

func BenchmarkAPICreateServiceNetwork(b *testing.B) {
	// Lift the quota of 50 networks: every iteration creates one more.
	ts := startServer(b, b.TempDir(), lattice.Quotas{ServiceNetworks: 1 << 30})
	c := benchClient(b, ts)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		out, err := c.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{Name: aws.String(fmt.Sprintf("bench-sn-%d", i))})
		if err != nil {
			b.Fatalf("CreateServiceNetwork %d: %v", i, err)
		}
		if out.Id == nil {
			b.Fatal("no id")
		}
		i++
	}
	reportOpsPerSec(b)
}

func BenchmarkAPIGetServiceNetwork(b *testing.B) {
	ts := startServer(b, b.TempDir(), lattice.Quotas{})
	c := benchClient(b, ts)
	ctx := context.Background()
	sn, err := c.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{Name: aws.String("bench-get")})
	if err != nil {
		b.Fatal(err)
	}
	in := &vpclattice.GetServiceNetworkInput{ServiceNetworkIdentifier: sn.Id}
	b.ReportAllocs()
	for b.Loop() {
		out, err := c.GetServiceNetwork(ctx, in)
		if err != nil {
			b.Fatal(err)
		}
		if aws.ToString(out.Name) != "bench-get" {
			b.Fatalf("name %q", aws.ToString(out.Name))
		}
	}
	reportOpsPerSec(b)
}

func BenchmarkAPIListServices(b *testing.B) {
	ts := startServer(b, b.TempDir(), lattice.Quotas{})
	c := benchClient(b, ts)
	ctx := context.Background()
	for i := range 100 {
		if _, err := c.CreateService(ctx, &vpclattice.CreateServiceInput{Name: aws.String(fmt.Sprintf("bench-svc-%03d", i))}); err != nil {
			b.Fatal(err)
		}
	}
	in := &vpclattice.ListServicesInput{MaxResults: aws.Int32(50)}
	b.ReportAllocs()
	for b.Loop() {
		out, err := c.ListServices(ctx, in)
		if err != nil {
			b.Fatal(err)
		}
		if len(out.Items) != 50 || out.NextToken == nil {
			b.Fatalf("page of %d items (next %v), want 50 and a next token", len(out.Items), out.NextToken != nil)
		}
	}
	reportOpsPerSec(b)
}

func BenchmarkAPIParallelGet(b *testing.B) {
	ts := startServer(b, b.TempDir(), lattice.Quotas{})
	c := benchClient(b, ts)
	ctx := context.Background()
	var ids []*string
	for i := range 8 {
		sn, err := c.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{Name: aws.String(fmt.Sprintf("bench-par-%d", i))})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, sn.Id)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			id := ids[i%len(ids)]
			i++
			out, err := c.GetServiceNetwork(ctx, &vpclattice.GetServiceNetworkInput{ServiceNetworkIdentifier: id})
			if err != nil {
				b.Error(err)
				return
			}
			if aws.ToString(out.Id) != aws.ToString(id) {
				b.Errorf("got %s, want %s", aws.ToString(out.Id), aws.ToString(id))
				return
			}
		}
	})
	b.StopTimer()
	reportOpsPerSec(b)
}
