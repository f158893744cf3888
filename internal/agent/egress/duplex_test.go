package egress

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/testnet"
)

// TestFullDuplex streams a body larger than the sockets hold through the
// agent, over HTTP/1.1 and h2c, to an endpoint that echoes it as it reads
// (testnet.ServeEcho): the agent reads the answer while the body still
// goes, as the gateway does, or both sides wait for each other.
func TestFullDuplex(t *testing.T) {
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: testnet.ServeEcho(t, nil)}})
	px := listen(t, p, "svc", httpPolicy())
	body := testnet.DuplexBody()
	for _, c := range []struct {
		name string
		cl   *http.Client
	}{{"HTTP/1.1", newClient(t)}, {"h2c", newH2CClient(t)}} {
		for _, known := range []bool{true, false} {
			var r io.Reader = bytes.NewReader(body)
			if !known {
				r = io.MultiReader(r) // the length hidden: the body goes chunked
			}
			req, _ := http.NewRequest("POST", "http://"+px+"/echo", r)
			done := make(chan error, 1)
			var got []byte
			go func() {
				resp, err := c.cl.Transport.RoundTrip(req)
				if err != nil {
					done <- err
					return
				}
				defer resp.Body.Close()
				got, err = io.ReadAll(resp.Body)
				done <- err
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%s, length known %v: %v", c.name, known, err)
				}
				if !bytes.Equal(got, body) {
					t.Fatalf("%s, length known %v: echo of %d bytes came back as %d bytes, or different", c.name, known, len(body), len(got))
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("%s, length known %v: no whole echo after 15 s", c.name, known)
			}
		}
	}
}
