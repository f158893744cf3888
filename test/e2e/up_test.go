// Package e2e runs the trellis binary as a user would: a real process,
// real ports, the AWS CLI and curl as clients.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/testnet"
)

// build compiles ./cmd/trellis once per test binary run.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "trellis")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/trellis")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // static, as the README builds it
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address no earlier call returned: two of
// them are often one `trellis up`'s API and admin addresses.
func freeAddr(t *testing.T) string { return testnet.FreeAddr(t) }

// up starts `trellis up` and waits until /readyz answers.
func up(t *testing.T, bin, data, api, admin string) (stop func()) {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(bin, "up", "--data", data, "--api-addr", api, "--admin-addr", admin, "--dns-addr", freeAddr(t))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("trellis up did not become ready:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The banner names the API and the credential files.
	for _, want := range []string{"http://" + api, filepath.Join(data, "credentials"), filepath.Join(data, "config")} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("banner does not mention %s:\n%s", want, out.String())
		}
	}
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("trellis up exited with %v:\n%s", err, out.String())
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("trellis up did not stop on SIGTERM")
		}
	}
}

// syncBuffer is a bytes.Buffer the child's output goroutine and the test
// can use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	// Only the files trellis up wrote decide credentials, region and endpoint.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestUpAWSCLIAndRestart is the user story: trellis up, the AWS CLI
// with the files it wrote, the trellis CLI, and a restart that loses nothing.
func TestUpAWSCLIAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := build(t)
	data := filepath.Join(t.TempDir(), "state")
	api, admin := freeAddr(t), freeAddr(t)
	stop := up(t, bin, data, api, admin)
	env := []string{"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(data, "credentials"), "AWS_CONFIG_FILE=" + filepath.Join(data, "config")}

	var who struct{ Account, Arn string }
	if err := json.Unmarshal([]byte(run(t, env, bin, "whoami", "-o", "json")), &who); err != nil || len(who.Account) != 12 || !strings.HasSuffix(who.Arn, ":user/admin") {
		t.Fatalf("whoami = %+v (%v)", who, err)
	}
	var snID string
	if exec.Command("aws", "--version").Run() == nil {
		out := run(t, env, "aws", "vpc-lattice", "create-service-network", "--name", "shop", "--endpoint-url", "http://"+api, "--output", "json")
		var sn struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(out), &sn); err != nil || !strings.HasPrefix(sn.ID, "sn-") {
			t.Fatalf("aws vpc-lattice create-service-network: %s", out)
		}
		snID = sn.ID
		id := run(t, env, "aws", "sts", "get-caller-identity", "--endpoint-url", "http://"+api, "--output", "json")
		if !strings.Contains(id, who.Account) {
			t.Errorf("aws sts get-caller-identity = %s", id)
		}
	} else {
		t.Log("aws CLI not usable here; the AWS CLI steps are skipped")
	}

	var vpcs []map[string]any
	if err := json.Unmarshal([]byte(run(t, env, bin, "get", "vpcs", "-o", "json")), &vpcs); err != nil || len(vpcs) != 1 || vpcs[0]["name"] != "default" {
		t.Fatalf("get vpcs = %v (%v)", vpcs, err)
	}
	run(t, env, bin, "apply", "-f", "../../examples/quickstart.yaml")
	before := run(t, env, bin, "get", "services", "-o", "json")
	if !strings.Contains(before, `"orders"`) {
		t.Fatalf("get services after apply = %s", before)
	}
	stop()

	stop = up(t, bin, data, api, admin)
	defer stop()
	after := run(t, env, bin, "get", "services", "-o", "json")
	if after != before {
		t.Errorf("services changed across restart:\nbefore %s\nafter  %s", before, after)
	}
	second := run(t, env, bin, "apply", "-f", "../../examples/quickstart.yaml")
	for _, line := range strings.Split(strings.TrimSpace(second), "\n") {
		if !strings.HasSuffix(line, "unchanged") {
			t.Errorf("second apply changed something: %q", line)
		}
	}
	if snID != "" {
		got := run(t, env, bin, "get", "service-networks", "-o", "json")
		if !strings.Contains(got, snID) {
			t.Errorf("network %s created with the AWS CLI is gone after restart: %s", snID, got)
		}
	}
	metrics := httpGet(t, "http://"+admin+"/metrics")
	if !strings.Contains(metrics, `trellis_api_requests_total{api="lattice"`) {
		t.Errorf("/metrics has no API request counter")
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b.String())
	}
	return b.String()
}
