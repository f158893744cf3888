package proxy

import (
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/snapshot"
)

// FuzzFastPath feeds random bytes to a connection served by the fast
// path (a Unix socket pair handed to the port's serveH1, so that
// iterations cost no TCP ports) in front of a real target: the engine
// must never panic, and must always finish with the connection once the
// client has sent everything and half-closed.
func FuzzFastPath(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: svc-1.example.on.aws\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: svc-1.example.on.aws\r\n\r\nPOST /b HTTP/1.1\r\nHost: svc-1.example.on.aws\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: svc-1.example.on.aws\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nT: 1\r\n\r\n",
		"PUT / HTTP/1.1\r\nHost: svc-1.example.on.aws\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\nabc",
		"GET /fixed HTTP/1.1\r\nHost: svc-1.example.on.aws\r\nConnection: close, X-A\r\nX-A: 1\r\n\r\n",
		"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\nHost: SVC-1.example.on.aws.:80\r\n\r\n",
		"GET http://svc-1.example.on.aws/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: svc-1.example.on.aws\r\nX: a\r\n b\r\n\r\n",
		"GET /%zz HTTP/1.1\r\nHost: svc-1.example.on.aws\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	a := newBackend(f, "a")
	port := freePort(f)
	rules := []snapshot.Rule{
		matchRule("r-fixed", 1, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Exact: ptr("/fixed")}}}, fixed(204)),
		defaultRule(fwd(wtg{"tg", 1})),
	}
	e := newEngine(f, Config{ReadHeaderTimeout: time.Second, MaxHeaderBytes: 4 << 10})
	mustApply(f, e, testSnapshot(1,
		[]snapshot.Service{testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, rules...))},
		testTG("tg", model.ProtocolHTTP, "", a.addr())))
	e.mu.Lock()
	ps := e.ports[port]
	e.mu.Unlock()
	ln, err := net.Listen("unix", filepath.Join(f.TempDir(), "fuzz.sock"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })

	f.Fuzz(func(t *testing.T, in []byte) {
		client, err := net.Dial("unix", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		server, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		ps.wg.Add(1)
		go ps.serveH1(server)
		go func() {
			_, _ = client.Write(in)
			_ = client.(*net.UnixConn).CloseWrite()
		}()
		_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, client); err != nil {
			t.Fatalf("the gateway did not finish with the connection: %v", err)
		}
	})
}
