package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice/types"
)

// upGateway runs `trellis up` with its gateway and DNS on free ports.
type upEnv struct {
	bin, data       string
	api, admin, dns string
	p               *proc
	lc              *vpclattice.Client
	listenerPort    string
	client          *http.Client
}

func startUp(t *testing.T) *upEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	e := &upEnv{bin: build(t), data: filepath.Join(t.TempDir(), "state"), api: freeAddr(t), admin: freeAddr(t), dns: freeAddr(t)}
	e.p = start(t, e.bin, "up", "--data", e.data, "--api-addr", e.api, "--admin-addr", e.admin, "--dns-addr", e.dns)
	waitReady(t, "http://"+e.admin+"/readyz", e.p)
	e.lc = latticeClient(t, e.data)
	_, e.listenerPort = splitPort(freeAddr(t))
	e.client = &http.Client{Timeout: 10 * time.Second}
	return e
}

func splitPort(addr string) (string, string) {
	i := strings.LastIndexByte(addr, ':')
	return addr[:i], addr[i+1:]
}

// shopConfig is a network with one service, "orders", whose HTTP listener
// routes by path, header and method to three target groups.
func shopConfig(port string, a, b, c *backend) string {
	return fmt.Sprintf(`kind: ServiceNetwork
name: shop
---
kind: ServiceNetworkVpcAssociation
serviceNetwork: shop
vpc: default
---
kind: Service
name: orders
---
kind: ServiceNetworkServiceAssociation
serviceNetwork: shop
service: orders
---
kind: TargetGroup
name: web
type: IP
config:
  port: %[2]s
  protocol: HTTP
  vpc: default
  healthCheck:
    path: /healthz
    healthCheckIntervalSeconds: 5
    healthyThresholdCount: 2
    unhealthyThresholdCount: 2
targets:
  - id: 127.0.0.1
    port: %[2]s
  - id: 127.0.0.1
    port: %[3]s
---
kind: TargetGroup
name: canary
type: IP
config:
  port: %[4]s
  protocol: HTTP
  vpc: default
  healthCheck:
    path: /healthz
    healthCheckIntervalSeconds: 5
targets:
  - id: 127.0.0.1
---
kind: Listener
service: orders
name: http
protocol: HTTP
port: %[1]s
defaultAction:
  forward:
    targetGroups:
      - targetGroup: web
rules:
  - name: canary-header
    priority: 10
    match:
      httpMatch:
        headerMatches:
          - name: X-Canary
            match:
              exact: "yes"
    action:
      forward:
        targetGroups:
          - targetGroup: canary
  - name: no-deletes
    priority: 20
    match:
      httpMatch:
        method: DELETE
    action:
      fixedResponse:
        statusCode: 404
  - name: split
    priority: 30
    match:
      httpMatch:
        pathMatch:
          match:
            prefix: /split
    action:
      forward:
        targetGroups:
          - targetGroup: web
            weight: 3
          - targetGroup: canary
            weight: 1
  - name: exact-v2
    priority: 40
    match:
      httpMatch:
        pathMatch:
          caseSensitive: true
          match:
            exact: /V2
    action:
      forward:
        targetGroups:
          - targetGroup: canary
---
kind: AccessLogSubscription
serviceNetwork: shop
destinationArn: arn:aws:logs:us-east-1:111122223333:log-group:shop/access
`, port, a.port(), b.port(), c.port())
}

// TestGatewayRoutesHealthAndObserves is the user story: trellis up,
// a configuration applied, and curl reaching the right target by Host.
func TestGatewayRoutesHealthAndObserves(t *testing.T) {
	e := startUp(t)
	a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	applyYAML(t, e.bin, e.data, shopConfig(e.listenerPort, a, b, c))
	host, svcID := serviceDNS(t, e.lc, "orders")
	url := "http://127.0.0.1:" + e.listenerPort

	// Within a second or so the listener serves the service.
	eventually(t, 10*time.Second, func() error {
		got, code, err := call(e.client, "GET", url+"/x", host, nil)
		if err != nil || code != 200 || (got != "a" && got != "b") {
			return fmt.Errorf("GET /x = %q %d %v", got, code, err)
		}
		return nil
	})

	t.Run("curl", func(t *testing.T) {
		if _, err := exec.LookPath("curl"); err != nil {
			t.Skip("curl not installed")
		}
		out := run(t, nil, "curl", "-sS", "-H", "Host: "+host, url+"/api/x")
		if !strings.Contains(out, `"path":"/api/x"`) {
			t.Errorf("curl through the gateway = %s", out)
		}
	})
	t.Run("routing", func(t *testing.T) {
		cases := []struct {
			name, method, path string
			hdr                map[string]string
			want               string
			code               int
		}{
			{"default rule", "GET", "/anything", nil, "a|b", 200},
			{"header match, value case-insensitive", "GET", "/x", map[string]string{"x-canary": "YES"}, "c", 200},
			{"header mismatch", "GET", "/x", map[string]string{"x-canary": "no"}, "a|b", 200},
			{"method fixed response", "DELETE", "/x", nil, "", 404},
			{"exact path, case-sensitive", "GET", "/V2", nil, "c", 200},
			{"exact path, other case", "GET", "/v2", nil, "a|b", 200},
		}
		for _, tc := range cases {
			got, code, err := call(e.client, tc.method, url+tc.path, host, tc.hdr)
			if err != nil || code != tc.code || (tc.want != "" && !strings.Contains("|"+tc.want+"|", "|"+got+"|")) || (tc.want == "" && got != "") {
				t.Errorf("%s: %s %s = %q %d %v, want %q %d", tc.name, tc.method, tc.path, got, code, err, tc.want, tc.code)
			}
		}
		if _, code, _ := call(e.client, "GET", url+"/x", "unknown.example.com", nil); code != 404 {
			t.Errorf("unknown host: %d, want 404 from the gateway", code)
		}
	})
	t.Run("weights", func(t *testing.T) {
		n := map[string]int{}
		for i := 0; i < 400; i++ {
			got, _, err := call(e.client, "GET", url+"/split", host, nil)
			if err != nil {
				t.Fatal(err)
			}
			n[got]++
		}
		web := n["a"] + n["b"]
		if web < 260 || web > 340 || n["c"] < 60 || n["c"] > 140 {
			t.Errorf("3:1 split over 400 requests gave web=%d canary=%d", web, n["c"])
		}
		if n["a"] < 100 || n["b"] < 100 {
			t.Errorf("round robin within web: a=%d b=%d", n["a"], n["b"])
		}
	})
	t.Run("headers", func(t *testing.T) {
		// X-Canary sends it to c, the only target of "canary".
		got, _, err := call(e.client, "GET", url+"/h", host, map[string]string{"X-Canary": "yes",
			"X-Forwarded-For": "6.6.6.6", "X-Amzn-Lattice-Identity": "Principal=forged", "x-amzn-lattice-network": "forged"})
		if err != nil || got != "c" {
			t.Fatalf("got %q %v", got, err)
		}
		h := c.lastHeaders()
		if got := h.Get("X-Forwarded-For"); got != "127.0.0.1" {
			t.Errorf("x-forwarded-for = %q, want the client's 127.0.0.1 only", got)
		}
		if got := h.Get("X-Forwarded-Port"); got != e.listenerPort {
			t.Errorf("x-forwarded-port = %q", got)
		}
		if got := h.Get("X-Forwarded-Proto"); got != "http" {
			t.Errorf("x-forwarded-proto = %q", got)
		}
		if got := h.Get("X-Amzn-Lattice-Identity"); got != "" {
			t.Errorf("client-sent x-amzn-lattice-identity reached the target: %q", got)
		}
		if got := h.Get("X-Amzn-Lattice-Network"); !strings.HasPrefix(got, "SourceVpcArn=arn:aws:ec2:") {
			t.Errorf("x-amzn-lattice-network = %q", got)
		}
		if got := h.Get("X-Amzn-Lattice-Target"); !strings.Contains(got, "ServiceArn=") || !strings.Contains(got, svcID) || !strings.Contains(got, "TargetGroupArn=") {
			t.Errorf("x-amzn-lattice-target = %q", got)
		}
	})
	t.Run("dns", func(t *testing.T) {
		if _, err := exec.LookPath("dig"); err != nil {
			t.Skip("dig not installed (CI installs dnsutils)")
		}
		_, port := splitPort(e.dns)
		if got := strings.TrimSpace(run(t, nil, "dig", "+short", "@127.0.0.1", "-p", port, host)); got != "127.0.0.1" {
			t.Errorf("dig %s = %q, want 127.0.0.1", host, got)
		}
		out := run(t, nil, "dig", "@127.0.0.1", "-p", port, "example.com")
		if strings.Contains(out, "ANSWER SECTION") || !(strings.Contains(out, "REFUSED") || strings.Contains(out, "NXDOMAIN")) {
			t.Errorf("dig example.com answered:\n%s", out)
		}
	})
	t.Run("health", func(t *testing.T) {
		ctx := context.Background()
		status := func() map[string]types.TargetStatus {
			out, err := e.lc.ListTargets(ctx, &vpclattice.ListTargetsInput{TargetGroupIdentifier: aws.String("web")})
			if err != nil {
				tgs, _ := e.lc.ListTargetGroups(ctx, &vpclattice.ListTargetGroupsInput{})
				for _, tg := range tgs.Items {
					if aws.ToString(tg.Name) == "web" {
						out, err = e.lc.ListTargets(ctx, &vpclattice.ListTargetsInput{TargetGroupIdentifier: tg.Id})
					}
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			m := map[string]types.TargetStatus{}
			for _, it := range out.Items {
				m[fmt.Sprint(aws.ToInt32(it.Port))] = it.Status
			}
			return m
		}
		eventually(t, 20*time.Second, func() error {
			if s := status(); s[a.port()] != types.TargetStatusHealthy || s[b.port()] != types.TargetStatusHealthy {
				return fmt.Errorf("targets %v, want both HEALTHY", s)
			}
			return nil
		})
		b.kill()
		eventually(t, 30*time.Second, func() error {
			if s := status(); s[b.port()] != types.TargetStatusUnhealthy {
				return fmt.Errorf("targets %v, want %s UNHEALTHY", s, b.port())
			}
			return nil
		})
		// An unhealthy target gets no traffic: every request succeeds on a.
		before := a.hits.Load()
		for i := 0; i < 20; i++ {
			if got, code, err := call(e.client, "GET", url+"/after-kill", host, nil); err != nil || code != 200 || got != "a" {
				t.Fatalf("with b down: %q %d %v", got, code, err)
			}
		}
		if a.hits.Load()-before != 20 {
			t.Errorf("a served %d of 20", a.hits.Load()-before)
		}
		b.revive(t)
		eventually(t, 30*time.Second, func() error {
			if s := status(); s[b.port()] != types.TargetStatusHealthy {
				return fmt.Errorf("targets %v, want %s HEALTHY again", s, b.port())
			}
			return nil
		})
	})
	t.Run("draining", func(t *testing.T) {
		ctx := context.Background()
		tgID := ""
		tgs, err := e.lc.ListTargetGroups(ctx, &vpclattice.ListTargetGroupsInput{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range tgs.Items {
			if aws.ToString(tg.Name) == "web" {
				tgID = aws.ToString(tg.Id)
			}
		}
		// Two slow requests in flight: round robin puts one on each target.
		a.delay.Store(int64(1500 * time.Millisecond))
		b.delay.Store(int64(1500 * time.Millisecond))
		results := make(chan string, 2)
		for i := 0; i < 2; i++ {
			go func() {
				got, code, err := call(e.client, "GET", url+"/slow", host, nil)
				results <- fmt.Sprintf("%s %d %v", got, code, err)
			}()
		}
		eventually(t, 5*time.Second, func() error {
			if a.hits.Load() == 0 {
				return fmt.Errorf("no request reached a yet")
			}
			return nil
		})
		time.Sleep(200 * time.Millisecond)
		port, _ := strconv.Atoi(a.port())
		if _, err := e.lc.DeregisterTargets(ctx, &vpclattice.DeregisterTargetsInput{TargetGroupIdentifier: aws.String(tgID),
			Targets: []types.Target{{Id: aws.String("127.0.0.1"), Port: aws.Int32(int32(port))}}}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if r := <-results; !strings.HasSuffix(r, " 200 <nil>") {
				t.Errorf("in-flight request during deregistration: %s", r)
			}
		}
		a.delay.Store(0)
		b.delay.Store(0)
		out, err := e.lc.ListTargets(ctx, &vpclattice.ListTargetsInput{TargetGroupIdentifier: aws.String(tgID)})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range out.Items {
			if aws.ToInt32(it.Port) == int32(port) && it.Status != types.TargetStatusDraining {
				t.Errorf("deregistered target is %s, want DRAINING", it.Status)
			}
		}
		// New requests go to b only, within a snapshot's propagation.
		eventually(t, 5*time.Second, func() error {
			for i := 0; i < 10; i++ {
				if got, code, err := call(e.client, "GET", url+"/after-drain", host, nil); err != nil || code != 200 || got != "b" {
					return fmt.Errorf("request %d went to %q (%d %v)", i, got, code, err)
				}
			}
			return nil
		})
	})
	t.Run("access log and metrics", func(t *testing.T) {
		logFile := filepath.Join(e.data, "gateway", "logs", "logs", "shop", "access.log")
		eventually(t, 5*time.Second, func() error {
			raw, err := os.ReadFile(logFile)
			if err != nil {
				return err
			}
			if !strings.Contains(string(raw), `"requestPath":"/split"`) || !strings.Contains(string(raw), `"serviceArn":"arn:aws:vpc-lattice:`) {
				return fmt.Errorf("access log lacks requests:\n%.500s", raw)
			}
			return nil
		})
		m := httpGet(t, "http://"+e.admin+"/metrics")
		if !strings.Contains(m, `vpclattice_service_requests_total{`) || !strings.Contains(m, svcID) {
			t.Errorf("/metrics has no per-service request count for %s", svcID)
		}
		nodes := run(t, dataEnv(e.data), e.bin, "get", "nodes")
		if !strings.Contains(nodes, "vpc-") {
			t.Errorf("get nodes:\n%s", nodes)
		}
	})
	e.p.stop()
}

// TestGatewayConfigChangeUnderLoad changes rules and weights while requests
// flow: none may fail.
func TestGatewayConfigChangeUnderLoad(t *testing.T) {
	e := startUp(t)
	a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	cfg := shopConfig(e.listenerPort, a, b, c)
	applyYAML(t, e.bin, e.data, cfg)
	host, _ := serviceDNS(t, e.lc, "orders")
	url := "http://127.0.0.1:" + e.listenerPort
	eventually(t, 10*time.Second, func() error {
		_, code, err := call(e.client, "GET", url+"/split", host, nil)
		if err != nil || code != 200 {
			return fmt.Errorf("%d %v", code, err)
		}
		return nil
	})
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, code, err := call(cl, "GET", url+"/split", host, nil)
				if err != nil || code != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %v", code, err))
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	for i := 0; i < 6; i++ {
		w := []string{"1", "5", "9"}[i%3]
		applyYAML(t, e.bin, e.data, strings.Replace(cfg, "weight: 3", "weight: "+w, 1))
		time.Sleep(300 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() < 100 {
		t.Errorf("during 6 config changes: %d ok, %d failed (first: %v)", ok.Load(), failed.Load(), firstErr.Load())
	}
	e.p.stop()
}
