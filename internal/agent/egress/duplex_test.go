package egress

import (
	"net/http"
	"testing"

	"github.com/trellis-mesh/trellis/internal/testnet"
)

// TestFullDuplex: through the agent, over HTTP/1.1 and h2c, an endpoint
// that echoes the body as it reads gets each piece while the echo of the
// one before is relayed (testnet.LockstepEcho), as through the gateway.
func TestFullDuplex(t *testing.T) {
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: testnet.ServeEcho(t, nil)}})
	px := listen(t, p, "svc", httpPolicy())
	for _, c := range []struct {
		name string
		cl   *http.Client
	}{{"HTTP/1.1", newClient(t)}, {"h2c", newH2CClient(t)}} {
		t.Run(c.name, func(t *testing.T) {
			for _, known := range []bool{true, false} {
				testnet.LockstepEcho(t, c.cl.Transport, "http://"+px+"/echo", known)
			}
		})
	}
}
