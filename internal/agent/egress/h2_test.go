package egress

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// TestH2C: an HTTP2 service reaches its endpoints over h2c, whether the
// application speaks HTTP/1.1 or h2c to the proxy.
func TestH2C(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	})
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
	addr := listen(t, p, "svc", Policy{Protocol: HTTP2})
	for name, c := range map[string]*http.Client{"http1 client": newClient(t), "h2c client": newH2CClient(t)} {
		t.Run(name, func(t *testing.T) {
			if r := get(t, c, addr); r.status != 200 || r.body != "HTTP/2.0" {
				t.Fatalf("got %d %q, want the endpoint reached over HTTP/2", r.status, r.body)
			}
		})
	}
}

// grpcFrame is one length-prefixed gRPC message.
func grpcFrame(msg string) []byte {
	return append([]byte{0, 0, 0, 0, byte(len(msg))}, msg...)
}

// TestGRPCShaped: a gRPC-shaped exchange on a raw HTTP/2 handler: POST,
// application/grpc, te: trailers through, a streamed response, and
// trailers (announced and not) back to the client.
func TestGRPCShaped(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 || r.Method != "POST" || r.Header.Get("Te") != "trailers" ||
			r.Header.Get("Content-Type") != "application/grpc" {
			w.WriteHeader(400)
			return
		}
		in, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "X-Announced")
		w.WriteHeader(200)
		w.Write(in) // echo the request's messages
		w.(http.Flusher).Flush()
		w.Write(grpcFrame("done"))
		w.Header().Set("X-Announced", "yes")
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"Grpc-Message", "fine")
	})
	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
	addr := listen(t, p, "svc", Policy{Protocol: GRPC})

	body := append(grpcFrame("hello"), grpcFrame("world")...)
	req, _ := http.NewRequest("POST", "http://"+addr+"/pkg.Echo/Stream", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	resp, err := newH2CClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, %v", resp.StatusCode, err)
	}
	if want := append(body, grpcFrame("done")...); !bytes.Equal(got, want) {
		t.Fatalf("body %q, want %q", got, want)
	}
	if resp.Trailer.Get("Grpc-Status") != "0" || resp.Trailer.Get("Grpc-Message") != "fine" ||
		resp.Trailer.Get("X-Announced") != "yes" {
		t.Fatalf("trailers %v", resp.Trailer)
	}
	r := rec.waitRequests(t, 1)[0]
	if !r.IsGRPC() || r.GRPCStatus != 0 || r.BytesIn != int64(len(body)) || r.Proto != "HTTP/2.0" {
		t.Fatalf("record %+v", r)
	}
}

// TestGRPCUnavailableRetried: a trailers-only UNAVAILABLE answer is
// retried on another endpoint when "unavailable" is in On, although the
// call is a POST; an error in the trailers of a full answer is not.
func TestGRPCUnavailableRetried(t *testing.T) {
	trailersOnly := func(code string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", code)
			w.Header().Set("Grpc-Message", "going away")
			w.WriteHeader(200)
		}
	}
	for _, tc := range []struct {
		name  string
		on    RetryOn
		retry bool
	}{
		{"unavailable in On", RetryUnavailable, true},
		{"only 503 in On", Retry503, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := newBackend(t, trailersOnly("14"))
			good := newBackend(t, trailersOnly("0"))
			rec := &recorder{}
			p := newProxy(t, Config{Observer: rec})
			p.SetEndpoints("svc", []Endpoint{bad.endpoint("bad"), good.endpoint("good")})
			addr := listen(t, p, "svc", Policy{Protocol: GRPC, Retry: RetryPolicy{NumRetries: 2, On: tc.on}})
			c := newH2CClient(t)
			calls := 0
			for ; bad.hits.Load() == 0; calls++ {
				if calls == 200 {
					t.Fatal("the bad endpoint was never picked")
				}
				r := do(t, c, "POST", "http://"+addr+"/pkg.Svc/Call", string(grpcFrame("x")), "Content-Type", "application/grpc")
				if code := r.header.Get("Grpc-Status"); tc.retry && code != "0" {
					t.Fatalf("grpc-status %q, want the retry's 0", code)
				}
			}
			var hit *Record
			for _, r := range rec.waitRequests(t, calls) {
				if r.Retries > 0 || r.Endpoint == "bad" {
					hit = &r
				}
			}
			switch {
			case hit == nil:
				t.Fatal("no record of the call that reached the bad endpoint")
			case tc.retry && (hit.GRPCStatus != 0 || hit.Retries != 1 || hit.Endpoint != "good"):
				t.Fatalf("record %+v", hit)
			case !tc.retry && (hit.GRPCStatus != 14 || hit.Retries != 0):
				t.Fatalf("record %+v", hit)
			}
		})
	}
}

// TestGRPCHealth runs gRPC's own client and health service through the
// proxy: a unary call, an error status, a server stream with an update,
// and the proxy's own answer when the service has no endpoints.
func TestGRPCHealth(t *testing.T) {
	ln := newLoopbackListener(t)
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("trellis.Test", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)

	rec := &recorder{}
	p := newProxy(t, Config{Observer: rec})
	p.SetEndpoints("health", []Endpoint{{Addr: ln.Addr().String()}})
	pol := Policy{Protocol: GRPC, Retry: RetryPolicy{NumRetries: 2, On: RetryUnavailable | RetryConnectFailure}}
	addr := listen(t, p, "health", pol)

	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "trellis.Test"})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check: %v, %v", resp, err)
	}
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "no.such.Service"}); status.Code(err) != codes.NotFound {
		t.Fatalf("Check of an unknown service: %v, want NotFound", err)
	}
	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "trellis.Test"})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := stream.Recv(); err != nil || m.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch: %v, %v", m, err)
	}
	hs.SetServingStatus("trellis.Test", healthpb.HealthCheckResponse_NOT_SERVING)
	if m, err := stream.Recv(); err != nil || m.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Watch update: %v, %v", m, err)
	}

	p.SetEndpoints("health", nil)
	_, err = client.Check(ctx, &healthpb.HealthCheckRequest{Service: "trellis.Test"})
	if status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), `"health"`) {
		t.Fatalf("Check without endpoints: %v, want Unavailable naming the service", err)
	}
	recs := rec.waitRequests(t, 3)
	if r := recs[1]; r.GRPCStatus != int(codes.NotFound) || r.Status != 200 {
		t.Fatalf("record of the NotFound call: %+v", r)
	}
}

// TestGRPCPerRequestTimeout: a gRPC call past the per-request timeout gets
// DEADLINE_EXCEEDED from the proxy.
func TestGRPCPerRequestTimeout(t *testing.T) {
	var calls atomic.Int64
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		<-r.Context().Done()
	})
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("")})
	addr := listen(t, p, "svc", Policy{Protocol: GRPC, PerRequestTimeout: 100 * time.Millisecond})
	req, _ := http.NewRequest("POST", "http://"+addr+"/pkg.Svc/Call", bytes.NewReader(grpcFrame("x")))
	req.Header.Set("Content-Type", "application/grpc")
	resp, err := newH2CClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Grpc-Status") != "4" {
		t.Fatalf("got %d grpc-status %q", resp.StatusCode, resp.Header.Get("Grpc-Status"))
	}
}
