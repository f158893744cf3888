package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice/types"
)

// BenchmarkPropagation measures the time from an API write (UpdateListener
// changing the default action's fixed status) until the gateway answers
// with the new status: store commit, snapshot build, stream, compile and
// swap. It reports the median and the worst case as custom metrics.
func BenchmarkPropagation(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer backend.Close()
	dir, state := b.TempDir(), b.TempDir()
	c := startServer(b, dir, fmt.Sprintf("127.0.0.1:%d", freePort(b)))
	lc := c.lattice()
	port := freePort(b)
	host, _ := setup(b, lc, c.boot.VPCID, port, backend)
	startGateway(b, c, state)
	waitFor(b, func() bool { code, _, _ := get(port, host); return code == 200 })
	ctx := context.Background()
	svcs, _ := lc.ListServices(ctx, &vpclattice.ListServicesInput{})
	lis, _ := lc.ListListeners(ctx, &vpclattice.ListListenersInput{ServiceIdentifier: svcs.Items[0].Id})
	var ds []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		code := int32(404)
		if i%2 == 1 {
			code = 500
		}
		start := time.Now()
		if _, err := lc.UpdateListener(ctx, &vpclattice.UpdateListenerInput{ServiceIdentifier: svcs.Items[0].Id, ListenerIdentifier: lis.Items[0].Id,
			DefaultAction: &types.RuleActionMemberFixedResponse{Value: types.FixedResponseAction{StatusCode: aws.Int32(code)}}}); err != nil {
			b.Fatal(err)
		}
		waitFor(b, func() bool { got, _, _ := get(port, host); return got == int(code) })
		ds = append(ds, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, "max-ms")
}

func waitFor(b *testing.B, fn func() bool) {
	deadline := time.Now().Add(10 * time.Second)
	for !fn() {
		if time.Now().After(deadline) {
			b.Fatal("timed out")
		}
		time.Sleep(200 * time.Microsecond)
	}
}
