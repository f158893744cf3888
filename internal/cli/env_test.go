package cli

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/server"
)

// testEnv is a real Trellis server in this process, with the credentials
// and config files 'trellis up' writes, and a way to run CLI commands
// against it.
type testEnv struct {
	t     *testing.T
	data  string
	admin string
	boot  *server.Bootstrap
	stdin string
}

// newEnv starts a server on loopback ports with a fresh data directory.
func newEnv(t *testing.T) *testEnv {
	t.Helper()
	clearEnv(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Config{DataDir: dir, APIAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		cancel()
		_ = srv.Close()
		t.Fatal(err)
	}
	b, err := srv.EnsureBootstrap(ctx, server.Endpoint(srv.APIAddr()))
	if err != nil {
		cancel()
		_ = srv.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return &testEnv{t: t, data: dir, admin: srv.AdminAddr(), boot: b}
}

// clearEnv keeps the caller's AWS and TRELLIS variables from steering the CLI.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "TRELLIS_") {
			t.Setenv(k, "")
			_ = os.Unsetenv(k)
		}
	}
}

// run executes a trellis command line against the server.
func (e *testEnv) run(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	var out, errb bytes.Buffer
	in := strings.NewReader(e.stdin)
	code = Execute(context.Background(), append([]string{"--data", e.data}, args...), Streams{In: in, Out: &out, Err: &errb})
	return out.String(), errb.String(), code
}

// ok runs a command that must succeed and returns its standard output.
func (e *testEnv) ok(args ...string) string {
	e.t.Helper()
	out, errs, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("trellis %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// fail runs a command that must fail and returns its standard error.
func (e *testEnv) fail(args ...string) string {
	e.t.Helper()
	out, errs, code := e.run(args...)
	if code == 0 {
		e.t.Fatalf("trellis %s: succeeded, want an error\nstdout:\n%s", strings.Join(args, " "), out)
	}
	return errs
}

// writeCalls counts the Lattice API requests that are not reads (Get*,
// List*), from the server's own metrics.
func (e *testEnv) writeCalls() map[string]int {
	e.t.Helper()
	resp, err := http.Get("http://" + e.admin + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "trellis_api_requests_total{") || !strings.Contains(line, `api="lattice"`) {
			continue
		}
		_, rest, _ := strings.Cut(line, `operation="`)
		op, _, _ := strings.Cut(rest, `"`)
		if strings.HasPrefix(op, "Get") || strings.HasPrefix(op, "List") {
			continue
		}
		n, _ := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		out[op] += int(n)
	}
	return out
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := t.TempDir() + "/" + name
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
