package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	sd "github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	sdtypes "github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// taskDoc is an agent's document: one server service (or none, for a
// client-only task).
func taskDoc(t *testing.T, discovery, alias string, aliasPort int, containerPort string) string {
	t.Helper()
	doc := map[string]any{"serviceConnectConfiguration": map[string]any{"enabled": true, "namespace": "shop"}}
	if discovery != "" {
		doc["serviceConnectConfiguration"].(map[string]any)["services"] = []any{map[string]any{
			"portName": "api", "discoveryName": discovery,
			"clientAliases": []any{map[string]any{"dnsName": alias, "port": aliasPort}}}}
		var port int
		fmt.Sscan(containerPort, &port)
		doc["portMappings"] = []any{map[string]any{"name": "api", "containerPort": port, "appProtocol": "http"}}
	}
	b, _ := json.Marshal(doc)
	f := filepath.Join(t.TempDir(), "task.json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// startAgent runs `trellis agent` and returns it with its state dir.
func startAgent(t *testing.T, e *upEnv, doc, address string) (*proc, string) {
	t.Helper()
	dir := t.TempDir()
	p := start(t, e.bin, "agent", "--data", e.data, "--config", doc, "--address", address, "--state-dir", dir,
		"--poll-interval", "200ms", "--lease-seconds", "5", "--drain", "3s")
	eventually(t, 20*time.Second, func() error {
		if !strings.Contains(p.out.String(), "hosts file") {
			return fmt.Errorf("agent not started yet:\n%s", p.out.String())
		}
		return nil
	})
	return p, dir
}

// vip reads the address of name from an agent's hosts file.
func vip(t *testing.T, dir, name string) (string, error) {
	f, err := os.Open(filepath.Join(dir, "hosts"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 2 && fs[1] == name && strings.HasPrefix(fs[0], "127.255.") {
			return fs[0], nil
		}
	}
	return "", fmt.Errorf("%s not in %s/hosts", name, dir)
}

// discoveryClient is the real Cloud Map SDK client against trellis up.
func discoveryClient(t *testing.T, data string) *sd.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithSharedCredentialsFiles([]string{filepath.Join(data, "credentials")}),
		config.WithSharedConfigFiles([]string{filepath.Join(data, "config")}))
	if err != nil {
		t.Fatal(err)
	}
	return sd.NewFromConfig(cfg, func(o *sd.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("NoHostPrefix",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					return next.HandleInitialize(smithyhttp.DisableEndpointHostPrefix(ctx, true), in)
				}), middleware.Before)
		})
	})
}

func instanceIDs(t *testing.T, c *sd.Client, svc string) []string {
	t.Helper()
	out, err := c.DiscoverInstances(context.Background(), &sd.DiscoverInstancesInput{NamespaceName: aws.String("shop"),
		ServiceName: aws.String(svc), HealthStatus: sdtypes.HealthStatusFilterAll})
	if err != nil {
		t.Fatalf("DiscoverInstances %s: %v", svc, err)
	}
	var ids []string
	for _, in := range out.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
	}
	return ids
}

// TestAgentNamespace is issue 5's scenario: orders and payments servers,
// web a client, each with its own agent, in namespace shop.
func TestAgentNamespace(t *testing.T) {
	e := startUp(t)
	orders1, pay1, pay2 := newBackend(t, "orders-1"), newBackend(t, "payments-1"), newBackend(t, "payments-2")
	startAgent(t, e, taskDoc(t, "orders", "orders", 80, orders1.port()), "127.0.0.31")
	p1, _ := startAgent(t, e, taskDoc(t, "payments", "payments", 8080, pay1.port()), "127.0.0.32")
	p2, _ := startAgent(t, e, taskDoc(t, "payments", "payments", 8080, pay2.port()), "127.0.0.33")
	webDoc := taskDoc(t, "", "", 0, "")
	sdc := discoveryClient(t, e.data)
	eventually(t, 10*time.Second, func() error {
		if ids := instanceIDs(t, sdc, "payments"); len(ids) != 2 {
			return fmt.Errorf("payments instances %v", ids)
		}
		return nil
	})

	t.Run("trellis run: the app calls services by name", func(t *testing.T) {
		if _, err := exec.LookPath("curl"); err != nil {
			t.Skip("curl not installed")
		}
		if os.Geteuid() != 0 {
			t.Skip("a private /etc/hosts needs root (CI runs as root)")
		}
		out := run(t, dataEnv(e.data), e.bin, "run", "--config", webDoc, "--log-level", "warn", "--",
			"sh", "-c", "curl -sS http://payments:8080/charge && curl -sS http://orders/list")
		if !strings.Contains(out, `"path":"/charge"`) || !strings.Contains(out, `"backend":"payments-`) ||
			!strings.Contains(out, `"backend":"orders-1","method":"GET","path":"/list"`) {
			t.Fatalf("web through its agent:\n%s", out)
		}
		// The machine's /etc/hosts was not touched.
		if b, _ := os.ReadFile("/etc/hosts"); strings.Contains(string(b), "payments") {
			t.Errorf("/etc/hosts names payments:\n%s", b)
		}
	})

	t.Run("aws servicediscovery discover-instances", func(t *testing.T) {
		if _, err := exec.LookPath("aws"); err != nil {
			t.Skip("AWS CLI not installed")
		}
		out := run(t, dataEnv(e.data), "aws", "servicediscovery", "discover-instances", "--namespace-name", "shop", "--service-name", "payments")
		if !strings.Contains(out, "127.0.0.32") || !strings.Contains(out, "127.0.0.33") {
			t.Errorf("discover-instances:\n%s", out)
		}
	})

	// A long-running client: web's agent, called at its VIPs.
	_, webDir := startAgent(t, e, webDoc, "127.0.0.34")
	var payVIP, ordersVIP string
	eventually(t, 10*time.Second, func() (err error) {
		if payVIP, err = vip(t, webDir, "payments"); err != nil {
			return err
		}
		ordersVIP, err = vip(t, webDir, "orders")
		return err
	})
	client := &http.Client{Timeout: 20 * time.Second}
	get := func(url string) (string, int, error) { return call(client, "GET", url, "", nil) }
	payURL, ordersURL := "http://"+payVIP+":8080/charge", "http://"+ordersVIP+"/list"

	t.Run("load balancing over both payments instances", func(t *testing.T) {
		seen := map[string]int{}
		for range 40 {
			got, code, err := get(payURL)
			if err != nil || code != 200 {
				t.Fatalf("GET %s: %q %d %v", payURL, got, code, err)
			}
			seen[got]++
		}
		if seen["payments-1"] < 5 || seen["payments-2"] < 5 {
			t.Errorf("spread over payments: %v", seen)
		}
	})

	t.Run("a killed instance costs no request and leaves the registry", func(t *testing.T) {
		_ = p2.cmd.Process.Kill() // no deregistration: the lease must do it
		_ = p2.cmd.Wait()
		pay2.kill()
		for i := range 40 {
			if got, code, err := get(payURL); err != nil || code != 200 || got != "payments-1" {
				t.Fatalf("request %d after the kill: %q %d %v", i, got, code, err)
			}
		}
		eventually(t, 15*time.Second, func() error {
			if ids := instanceIDs(t, sdc, "payments"); len(ids) != 1 {
				return fmt.Errorf("payments instances %v", ids)
			}
			return nil
		})
	})

	t.Run("a new instance is used by running clients", func(t *testing.T) {
		orders2 := newBackend(t, "orders-2")
		startAgent(t, e, taskDoc(t, "orders", "orders", 80, orders2.port()), "127.0.0.35")
		eventually(t, 10*time.Second, func() error {
			seen := map[string]bool{}
			for range 20 {
				got, _, _ := get(ordersURL)
				seen[got] = true
			}
			if !seen["orders-1"] || !seen["orders-2"] {
				return fmt.Errorf("orders seen %v", seen)
			}
			return nil
		})
	})

	t.Run("draining on SIGTERM loses no in-flight request", func(t *testing.T) {
		pay1.delay.Store(int64(800 * time.Millisecond))
		var wg sync.WaitGroup
		errs := make(chan string, 20)
		for range 10 {
			wg.Go(func() {
				if got, code, err := get(payURL); err != nil || code != 200 {
					errs <- fmt.Sprintf("%q %d %v", got, code, err)
				}
			})
		}
		time.Sleep(200 * time.Millisecond) // the requests are at the backend
		p1.stop()
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Errorf("in-flight request failed during the drain: %s", e)
		}
		if ids := instanceIDs(t, sdc, "payments"); len(ids) != 0 {
			t.Errorf("payments instances after SIGTERM: %v", ids)
		}
		// No instance left: the agent answers 503 itself.
		if _, code, _ := get(payURL); code != 503 {
			t.Errorf("no payments instance: %d, want 503", code)
		}
	})
}
