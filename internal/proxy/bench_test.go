package proxy

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/snapshot"
)

// benchBackend answers every request with a 1 KiB body.
func benchBackend(b *testing.B) string {
	body := make([]byte, 1024)
	srv := httptestServer(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Length"] = []string{"1024"}
		_, _ = w.Write(body)
	}))
	return srv.Listener.Addr().String()
}

// benchGet sends GETs to url until b is done. Allocations counted are
// the whole process's: client, gateway and target.
func benchGet(b *testing.B, c *http.Client, url, host string) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Host = host
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

func benchClient(b *testing.B) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// BenchmarkProxyHTTP1 sends HTTP/1.1 keep-alive GETs (1 KiB answers)
// through a real listener to a real target. BenchmarkDirectHTTP1 is the
// same client against the target alone: the difference is the gateway's
// cost per request.
func BenchmarkProxyHTTP1(b *testing.B) {
	target := benchBackend(b)
	port := freePort(b)
	rules := []snapshot.Rule{
		matchRule("r-1", 1, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Prefix: ptr("/admin")}}}, fixed(404)),
		defaultRule(fwd(wtg{"tg", 1})),
	}
	e := newEngine(b, Config{})
	mustApply(b, e, testSnapshot(1,
		[]snapshot.Service{testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, rules...))},
		testTG("tg", model.ProtocolHTTP, "", target)))
	benchGet(b, benchClient(b), fmt.Sprintf("http://127.0.0.1:%d/api/items/42", port), "svc-1.example.on.aws")
}

func BenchmarkDirectHTTP1(b *testing.B) {
	target := benchBackend(b)
	benchGet(b, benchClient(b), "http://"+target+"/api/items/42", "svc-1.example.on.aws")
}

// BenchmarkProxyH2C is BenchmarkProxyHTTP1 with an HTTP/2 client (h2c
// with prior knowledge, streams multiplexed on one connection) toward an
// HTTP1 target group: the direct path (h2direct.go), and ServeHTTP with
// its HTTP/1.1 client.
func BenchmarkProxyH2C(b *testing.B) {
	b.Run("direct", func(b *testing.B) { benchProxyH2C(b, true) })
	b.Run("nethttp", func(b *testing.B) { benchProxyH2C(b, false) })
}

func benchProxyH2C(b *testing.B, direct bool) {
	target := benchBackend(b)
	port := freePort(b)
	e := newEngine(b, Config{})
	e.h2direct = direct
	mustApply(b, e, testSnapshot(1,
		[]snapshot.Service{testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg", 1}))))},
		testTG("tg", model.ProtocolHTTP, "", target)))
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	b.Cleanup(tr.CloseIdleConnections)
	b.SetParallelism(8)
	benchGet(b, &http.Client{Transport: tr}, fmt.Sprintf("http://127.0.0.1:%d/api/items/42", port), "svc-1.example.on.aws")
}
