package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGatewayStaticStability runs the control plane and a gateway as two
// processes, stops the control plane while traffic flows (no request may
// fail), restarts the gateway while the control plane is still down (it
// serves from disk), and brings the control plane back (the gateway
// reconnects and picks up a change made meanwhile... once it is back).
func TestGatewayStaticStability(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := build(t)
	data := filepath.Join(t.TempDir(), "state")
	gwState := filepath.Join(t.TempDir(), "gw")
	api, admin, gwAdmin := freeAddr(t), freeAddr(t), freeAddr(t)
	_, port := splitPort(freeAddr(t))

	srv := start(t, bin, "server", "--data", data, "--api-addr", api, "--admin-addr", admin)
	waitReady(t, "http://"+admin+"/readyz", srv)
	var vpcs []map[string]any
	mustJSON(t, run(t, dataEnv(data), bin, "get", "vpcs", "-o", "json"), &vpcs)
	vpc := vpcs[0]["id"].(string)

	a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	applyYAML(t, bin, data, shopConfig(port, a, b, c))
	lc := latticeClient(t, data)
	host, _ := serviceDNS(t, lc, "orders")

	gwArgs := []string{"gateway", "--data", data, "--vpc", vpc, "--node-id", "gw-1", "--state-dir", gwState, "--admin-addr", gwAdmin}
	gw := start(t, bin, gwArgs...)
	url := "http://127.0.0.1:" + port
	client := &http.Client{Timeout: 10 * time.Second}
	eventually(t, 15*time.Second, func() error {
		got, code, err := call(client, "GET", url+"/x", host, nil)
		if err != nil || code != 200 || got == "" {
			return fmt.Errorf("%q %d %v", got, code, err)
		}
		return nil
	})
	nodes := run(t, dataEnv(data), bin, "get", "nodes", "-o", "json")
	if !strings.Contains(nodes, `"gw-1"`) || !strings.Contains(nodes, vpc) {
		t.Errorf("get nodes does not show gw-1:\n%s", nodes)
	}

	// Traffic flows while the control plane stops.
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, code, err := call(client, "GET", url+"/x", host, nil); err != nil || code != 200 {
				failed.Add(1)
			} else {
				ok.Add(1)
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	srv.stop()
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Errorf("with the control plane stopping: %d ok, %d failed", ok.Load(), failed.Load())
	}

	// A gateway restarted while the control plane is down serves from disk.
	gw.stop()
	gw = start(t, bin, gwArgs...)
	eventually(t, 15*time.Second, func() error {
		got, code, err := call(client, "GET", url+"/x", host, nil)
		if err != nil || code != 200 || got == "" {
			return fmt.Errorf("restarted gateway without control plane: %q %d %v", got, code, err)
		}
		return nil
	})

	// The control plane comes back; the gateway reconnects and acks.
	srv = start(t, bin, "server", "--data", data, "--api-addr", api, "--admin-addr", admin)
	waitReady(t, "http://"+admin+"/readyz", srv)
	eventually(t, 30*time.Second, func() error {
		out := run(t, dataEnv(data), bin, "get", "nodes", "-o", "json")
		var ns []map[string]any
		mustJSON(t, out, &ns)
		for _, n := range ns {
			if n["id"] == "gw-1" && n["connected"] == true {
				return nil
			}
		}
		return fmt.Errorf("gw-1 not connected again: %s", out)
	})
	gw.stop()
	srv.stop()
}
