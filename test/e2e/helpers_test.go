package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"
)

// proc is a trellis process started by a test.
type proc struct {
	t   *testing.T
	cmd *exec.Cmd
	out *syncBuffer
}

// start runs bin with args and returns at once.
func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "TRELLIS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, out: out}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			p.t.Errorf("%s exited with %v:\n%s", p.cmd.Args[1], err, p.out.String())
		}
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		p.t.Errorf("%s did not stop on SIGTERM", p.cmd.Args[1])
	}
}

// waitReady polls url until it answers 200.
func waitReady(t *testing.T, url string, p *proc) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: %d", url, resp.StatusCode)
		}
		return nil
	})
}

// eventually retries fn until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %v: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// env is the environment that points client commands at a data dir.
func dataEnv(data string) []string {
	return []string{"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(data, "credentials"), "AWS_CONFIG_FILE=" + filepath.Join(data, "config")}
}

// latticeClient is the real SDK client configured from the files trellis wrote.
func latticeClient(t *testing.T, data string) *vpclattice.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithSharedCredentialsFiles([]string{filepath.Join(data, "credentials")}),
		config.WithSharedConfigFiles([]string{filepath.Join(data, "config")}))
	if err != nil {
		t.Fatal(err)
	}
	return vpclattice.NewFromConfig(cfg)
}

// applyYAML writes doc to a file and runs trellis apply on it.
func applyYAML(t *testing.T, bin, data, doc string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return run(t, dataEnv(data), bin, "apply", "-f", f)
}

// serviceDNS returns the generated DNS name of the service called name.
func serviceDNS(t *testing.T, lc *vpclattice.Client, name string) (dns, id string) {
	t.Helper()
	out, err := lc.ListServices(context.Background(), &vpclattice.ListServicesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range out.Items {
		if aws.ToString(s.Name) == name {
			return aws.ToString(s.DnsEntry.DomainName), aws.ToString(s.Id)
		}
	}
	t.Fatalf("no service %q", name)
	return "", ""
}

// backend is a real HTTP server that says who it is.
type backend struct {
	name string
	addr string
	hits atomic.Int64
	// status, when not 0, is what the backend answers (after counting).
	status atomic.Int32
	// unready makes /healthz answer 503.
	unready atomic.Bool
	// delay, when set, slows every request (for draining tests).
	delay atomic.Int64
	mu    sync.Mutex
	srv   *http.Server
	last  http.Header
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{name: name}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	b.serve(ln)
	t.Cleanup(b.kill)
	return b
}

func (b *backend) port() string { _, p, _ := net.SplitHostPort(b.addr); return p }

func (b *backend) serve(ln net.Listener) {
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if b.unready.Load() {
				http.Error(w, "not ready", http.StatusServiceUnavailable)
				return
			}
			_, _ = io.WriteString(w, "ok")
			return
		}
		b.hits.Add(1)
		b.mu.Lock()
		b.last = r.Header.Clone()
		b.mu.Unlock()
		if d := b.delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		if s := b.status.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"backend": b.name, "path": r.URL.Path, "method": r.Method})
	})}
	go func() { _ = b.srv.Serve(ln) }()
}

// kill closes the backend's listener and connections.
func (b *backend) kill() { _ = b.srv.Close() }

// revive listens again on the same port.
func (b *backend) revive(t *testing.T) {
	t.Helper()
	var ln net.Listener
	eventually(t, 5*time.Second, func() (err error) {
		ln, err = net.Listen("tcp", b.addr)
		return err
	})
	b.serve(ln)
}

func (b *backend) lastHeaders() http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// call sends one request through the gateway and returns the backend name
// (or "status N" when the gateway answered itself).
func call(client *http.Client, method, url, host string, hdr map[string]string) (string, int, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return "", 0, err
	}
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var got struct{ Backend string }
	if json.Unmarshal(body, &got) == nil && got.Backend != "" {
		return got.Backend, resp.StatusCode, nil
	}
	return "", resp.StatusCode, nil
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
}
