package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	doc := map[string]any{"serviceConnectConfiguration": map[string]any{"enabled": true, "namespace": "shop",
		"logConfiguration": map[string]any{"logDriver": "awslogs"}, "accessLogConfiguration": map[string]any{"format": "JSON"}}}
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
func startAgent(t *testing.T, e *upEnv, doc, address string, extra ...string) (*proc, string) {
	t.Helper()
	dir := t.TempDir()
	p := start(t, e.bin, append([]string{"agent", "--data", e.data, "--config", doc, "--address", address, "--state-dir", dir,
		"--poll-interval", "200ms", "--lease-seconds", "5", "--drain", "3s"}, extra...)...)
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
	_, webDir := startAgent(t, e, webDoc, "127.0.0.34", "--dns-addr", "127.0.0.34:5353")
	var payVIP, ordersVIP string
	eventually(t, 10*time.Second, func() (err error) {
		if payVIP, err = vip(t, webDir, "payments"); err != nil {
			return err
		}
		ordersVIP, err = vip(t, webDir, "orders")
		return err
	})
	t.Run("the agent's DNS answer", func(t *testing.T) {
		if _, err := exec.LookPath("dig"); err != nil {
			t.Skip("dig not installed")
		}
		if got := strings.TrimSpace(run(t, nil, "dig", "@127.0.0.34", "-p", "5353", "+short", "payments")); got != payVIP {
			t.Errorf("dig payments = %q, want %s", got, payVIP)
		}
		if got := run(t, nil, "dig", "@127.0.0.34", "-p", "5353", "example.com"); !strings.Contains(got, "REFUSED") {
			t.Errorf("dig example.com:\n%s\nwant REFUSED", got)
		}
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

	t.Run("ECS metrics and access logs", func(t *testing.T) {
		web := httpGet(t, "http://127.0.0.34:9901/metrics")
		for _, want := range []string{
			`ecs_service_connect_target_request_count_total{target_discovery_name="payments"}`,
			`ecs_service_connect_httpcode_target_count_total{code_class="2XX",target_discovery_name="payments"}`,
			`ecs_service_connect_target_response_time_seconds_count{target_discovery_name="payments"}`,
			"process_resident_memory_bytes ", "go_gc_gomemlimit_bytes ",
		} {
			if !strings.Contains(web, want) {
				t.Errorf("web agent's /metrics lacks %s", want)
			}
		}
		pay := httpGet(t, "http://127.0.0.32:9901/metrics")
		for _, want := range []string{
			`ecs_service_connect_request_count_total{discovery_name="payments"}`,
			`ecs_service_connect_new_connection_count_total{discovery_name="payments"}`,
			`ecs_service_connect_processed_bytes_total{discovery_name="payments"}`,
		} {
			if !strings.Contains(pay, want) {
				t.Errorf("payments agent's /metrics lacks %s", want)
			}
		}
		if !strings.Contains(p1.out.String(), `"direction":"inbound","service":"payments","method":"GET","path":"/charge"`) {
			t.Errorf("payments agent wrote no JSON access-log line:\n%s", p1.out.String())
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

// TestAgentMutualTLS: with tls set, payments' ingress speaks only TLS 1.3
// with a client certificate of the installation's CA; web's agent calls it
// that way, a plain client and one with a foreign certificate are refused.
func TestAgentMutualTLS(t *testing.T) {
	e := startUp(t)
	pay := newBackend(t, "payments-tls")
	doc := map[string]any{
		"serviceConnectConfiguration": map[string]any{"enabled": true, "namespace": "shop", "services": []any{map[string]any{
			"portName": "api", "discoveryName": "payments", "clientAliases": []any{map[string]any{"dnsName": "payments", "port": 8080}},
			"tls": map[string]any{"issuerCertificateAuthority": map[string]any{}}}}},
		"portMappings": []any{map[string]any{"name": "api", "containerPort": mustAtoi(t, pay.port()), "appProtocol": "http"}},
	}
	b, _ := json.Marshal(doc)
	payDoc := filepath.Join(t.TempDir(), "payments.json")
	if err := os.WriteFile(payDoc, b, 0o600); err != nil {
		t.Fatal(err)
	}
	startAgent(t, e, payDoc, "127.0.0.41")
	_, webDir := startAgent(t, e, taskDoc(t, "", "", 0, ""), "127.0.0.42")
	var payVIP string
	eventually(t, 10*time.Second, func() (err error) {
		payVIP, err = vip(t, webDir, "payments")
		return err
	})
	client := &http.Client{Timeout: 10 * time.Second}
	eventually(t, 10*time.Second, func() error {
		got, code, err := call(client, "GET", "http://"+payVIP+":8080/charge", "", nil)
		if err != nil || code != 200 || got != "payments-tls" {
			return fmt.Errorf("web → payments over mTLS: %q %d %v", got, code, err)
		}
		return nil
	})

	// Straight at payments' ingress: plain HTTP, TLS without a client
	// certificate, and a certificate of another CA are all refused, and
	// none reaches the application.
	sdc := discoveryClient(t, e.data)
	out, err := sdc.DiscoverInstances(context.Background(), &sd.DiscoverInstancesInput{NamespaceName: aws.String("shop"), ServiceName: aws.String("payments")})
	if err != nil || len(out.Instances) != 1 {
		t.Fatalf("payments instances: %v %v", out, err)
	}
	ingress := "127.0.0.41:" + out.Instances[0].Attributes["AWS_INSTANCE_PORT"]
	hits := pay.hits.Load()
	if _, code, err := call(client, "GET", "http://"+ingress+"/charge", "", nil); err == nil && code < 500 {
		t.Errorf("plain HTTP to the mTLS ingress: %d", code)
	}
	noCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if resp, err := noCert.Get("https://" + ingress + "/charge"); err == nil {
		resp.Body.Close()
		t.Errorf("TLS without a client certificate: %d, want a refused handshake", resp.StatusCode)
	}
	foreign := selfSignedClient(t)
	withForeign := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{foreign}}}}
	if resp, err := withForeign.Get("https://" + ingress + "/charge"); err == nil {
		resp.Body.Close()
		t.Errorf("TLS with a foreign certificate: %d, want a refused handshake", resp.StatusCode)
	}
	if n := pay.hits.Load(); n != hits {
		t.Errorf("%d refused requests reached the application", n-hits)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// selfSignedClient is a client certificate no Trellis CA issued, with a
// SPIFFE ID that would otherwise be accepted.
func selfSignedClient(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("spiffe://trellis.local/account/111122223333/role/web")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "intruder"}, URIs: []*url.URL{u},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
