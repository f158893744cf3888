package server_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
	"github.com/trellis-mesh/trellis/internal/server"
)

// testServer is a real server on loopback ports with a fresh data dir.
type testServer struct {
	srv      *server.Server
	boot     *server.Bootstrap
	endpoint string
	dataDir  string
	secret   string
	stop     func()
}

func startServer(t testing.TB, dataDir string, quotas lattice.Quotas) *testServer {
	t.Helper()
	return startServerWith(t, server.Config{DataDir: dataDir, Quotas: quotas})
}

// startServerWith starts a server with cfg on loopback ports.
func startServerWith(t testing.TB, cfg server.Config) *testServer {
	t.Helper()
	dataDir := cfg.DataDir
	ctx, cancel := context.WithCancel(context.Background())
	cfg.APIAddr, cfg.AdminAddr, cfg.Logger = "127.0.0.1:0", "127.0.0.1:0", slog.New(slog.DiscardHandler)
	srv, err := server.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Listen(); err != nil {
		cancel()
		t.Fatalf("Listen: %v", err)
	}
	endpoint := server.Endpoint(srv.APIAddr())
	boot, err := srv.EnsureBootstrap(ctx, endpoint)
	if err != nil {
		cancel()
		t.Fatalf("EnsureBootstrap: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	ts := &testServer{srv: srv, boot: boot, endpoint: endpoint, dataDir: dataDir}
	ts.secret = readSecret(t, boot.CredentialsPath)
	stopped := false
	ts.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("server did not stop")
		}
	}
	t.Cleanup(ts.stop)
	return ts
}

// client returns a vpclattice client signing with the given key.
func (ts *testServer) client(keyID, secret string) *vpclattice.Client {
	return vpclattice.New(vpclattice.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(ts.endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		HTTPClient:       &http.Client{Timeout: 10 * time.Second},
		RetryMaxAttempts: 1,
	})
}

func (ts *testServer) admin() *vpclattice.Client { return ts.client(ts.boot.AccessKeyID, ts.secret) }

// apiErr asserts err is an API error with the given code and returns it.
func apiErr[T error](t *testing.T, err error) T {
	t.Helper()
	var target T
	if err == nil {
		t.Fatalf("expected %T, got success", target)
	}
	if !errors.As(err, &target) {
		t.Fatalf("expected %T, got %T: %v", target, err, err)
	}
	return target
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return v
	}
}

func readSecret(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "aws_secret_access_key = "); ok {
			return v
		}
	}
	t.Fatalf("no secret in %s", path)
	return ""
}

func errorsAs(err error, target any) bool { return err != nil && errors.As(err, target) }
