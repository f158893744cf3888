package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/snapshot"
)

// TestGRPC runs gRPC's health service through an HTTPS listener to an h2c
// target: a unary call, an error carried in trailers, and a server stream
// that receives an update while it is open; with the HTTP/2 server of
// internal/h2server (the default) and with net/http's (Config.GoHTTP2).
func TestGRPC(t *testing.T) {
	t.Run("h2server", func(t *testing.T) { testGRPC(t, false) })
	t.Run("net-http", func(t *testing.T) { testGRPC(t, true) })
}

func testGRPC(t *testing.T, goHTTP2 bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("trellis.Test", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)

	ca := newTestCA(t)
	port := freePort(t)
	rules := []snapshot.Rule{
		matchRule("r-health", 1, &model.HTTPMatch{
			Method:    ptr("POST"),
			PathMatch: &model.PathMatch{Match: model.PathMatchType{Prefix: ptr("/grpc.health.v1.Health/")}, CaseSensitive: ptr(true)},
		}, fwd(wtg{"tg-grpc", 1})),
		defaultRule(fixed(404)),
	}
	svc := testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTPS, port, rules...))
	svc.Certificate = ca.issue(t, "svc-1.example.on.aws")
	rec := &recorder{}
	e := newEngine(t, Config{Observer: rec, GoHTTP2: goHTTP2})
	mustApply(t, e, testSnapshot(1, []snapshot.Service{svc},
		testTG("tg-grpc", model.ProtocolHTTP, model.ProtocolVersionGRPC, ln.Addr().String())))

	creds := credentials.NewTLS(&tls.Config{RootCAs: ca.pool, ServerName: "svc-1.example.on.aws"})
	conn, err := grpc.NewClient(fmt.Sprintf("passthrough:///svc-1.example.on.aws:%d", port),
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return dialTo(port)(ctx, "tcp", "")
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check: %v", resp.Status)
	}
	_, err = client.Check(ctx, &healthpb.HealthCheckRequest{Service: "no.such.Service"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("Check of unknown service: %v, want NotFound from the target's trailers", err)
	}

	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "trellis.Test"})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	first, err := stream.Recv()
	if err != nil || first.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch first: %v %v", first, err)
	}
	// The update must arrive while the stream is open: responses are
	// flushed per message, not buffered to the end.
	hs.SetServingStatus("trellis.Test", healthpb.HealthCheckResponse_NOT_SERVING)
	second, err := stream.Recv()
	if err != nil || second.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Watch update: %v %v", second, err)
	}
	cancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Errorf("stream after cancel: %v", err)
	}
	waitFor(t, "records", func() bool { return len(rec.all()) >= 3 })
	r := rec.all()[0]
	if r.Proto != "HTTP/2.0" || r.Status != 200 || r.TargetGroupID != "tg-grpc" || r.Path != "/grpc.health.v1.Health/Check" {
		t.Errorf("record %q %d %q %q", r.Proto, r.Status, r.TargetGroupID, r.Path)
	}
}
