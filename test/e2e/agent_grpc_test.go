package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sd "github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	sdtypes "github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// serviceDoc writes an agent document with one service.
func serviceDoc(t *testing.T, discovery string, aliasPort, containerPort int, proto string, extra map[string]any) string {
	t.Helper()
	svc := map[string]any{"portName": "api", "discoveryName": discovery,
		"clientAliases": []any{map[string]any{"dnsName": discovery, "port": aliasPort}}}
	for k, v := range extra {
		svc[k] = v
	}
	doc := map[string]any{
		"serviceConnectConfiguration": map[string]any{"enabled": true, "namespace": "shop", "services": []any{svc}},
		"portMappings":                []any{map[string]any{"name": "api", "containerPort": containerPort, "appProtocol": proto}},
	}
	b, _ := json.Marshal(doc)
	f := filepath.Join(t.TempDir(), discovery+".json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestAgentGRPCRetriesTimeouts: gRPC through two agents (over mutual TLS)
// with grpc-go's client; a 503 from one instance retried on the other; a
// per-request timeout answered 504.
func TestAgentGRPCRetriesTimeouts(t *testing.T) {
	e := startUp(t)
	_, grpcPort := splitPort(grpcBackend(t))
	startAgent(t, e, serviceDoc(t, "ledger", 50051, mustAtoi(t, grpcPort), "grpc",
		map[string]any{"tls": map[string]any{"issuerCertificateAuthority": map[string]any{}}}), "127.0.0.61")
	good, bad := newBackend(t, "flaky-good"), newBackend(t, "flaky-bad")
	bad.status.Store(503)
	startAgent(t, e, serviceDoc(t, "flaky", 8080, mustAtoi(t, good.port()), "http", nil), "127.0.0.62")
	startAgent(t, e, serviceDoc(t, "flaky", 8080, mustAtoi(t, bad.port()), "http", nil), "127.0.0.63")
	slow := newBackend(t, "slow")
	slow.delay.Store(int64(3 * time.Second))
	startAgent(t, e, serviceDoc(t, "slow", 8080, mustAtoi(t, slow.port()), "http",
		map[string]any{"timeout": map[string]any{"perRequestTimeoutSeconds": 1}}), "127.0.0.64")
	_, webDir := startAgent(t, e, taskDoc(t, "", "", 0, ""), "127.0.0.65")
	vips := map[string]string{}
	eventually(t, 10*time.Second, func() error {
		for _, n := range []string{"ledger", "flaky", "slow"} {
			v, err := vip(t, webDir, n)
			if err != nil {
				return err
			}
			vips[n] = v
		}
		return nil
	})

	t.Run("gRPC through two agents", func(t *testing.T) {
		cc, err := grpc.NewClient(vips["ledger"]+":50051", grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		hc := healthpb.NewHealthClient(cc)
		eventually(t, 10*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "orders"})
			if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
				return fmt.Errorf("Check: %v %v", resp, err)
			}
			return nil
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: "orders"})
		if err != nil {
			t.Fatal(err)
		}
		if m, err := w.Recv(); err != nil || m.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Watch: %v %v", m, err)
		}
	})

	t.Run("a 503 is retried on the other instance", func(t *testing.T) {
		client := &http.Client{Timeout: 10 * time.Second}
		eventually(t, 10*time.Second, func() error {
			if good.hits.Load() == 0 || bad.hits.Load() == 0 {
				_, _, _ = call(client, "GET", "http://"+vips["flaky"]+":8080/x", "", nil)
				return fmt.Errorf("both instances not tried yet: good %d bad %d", good.hits.Load(), bad.hits.Load())
			}
			return nil
		})
		for i := range 30 {
			got, code, err := call(client, "GET", "http://"+vips["flaky"]+":8080/x", "", nil)
			if err != nil || code != 200 || got != "flaky-good" {
				t.Fatalf("request %d: %q %d %v, want 200 from flaky-good", i, got, code, err)
			}
		}
	})

	t.Run("per-request timeout", func(t *testing.T) {
		client := &http.Client{Timeout: 10 * time.Second}
		// The backend answers after 3 s; the service's 1 s timeout makes
		// the client agent answer 504 instead.
		_, code, err := call(client, "GET", "http://"+vips["slow"]+":8080/x", "", nil)
		if err != nil || code != 504 {
			t.Errorf("slow service: %d %v, want 504", code, err)
		}
	})
}

// TestAgentReadinessGating: with a readiness block the instance is
// registered UNHEALTHY, is not discovered as healthy while its app fails
// the check, and turns HEALTHY once the app answers.
func TestAgentReadinessGating(t *testing.T) {
	e := startUp(t)
	inv := newBackend(t, "inventory")
	inv.unready.Store(true)
	doc := map[string]any{
		"serviceConnectConfiguration": map[string]any{"enabled": true, "namespace": "shop", "services": []any{map[string]any{
			"portName": "api", "discoveryName": "inventory", "clientAliases": []any{map[string]any{"dnsName": "inventory", "port": 8080}}}}},
		"portMappings": []any{map[string]any{"name": "api", "containerPort": mustAtoi(t, inv.port()), "appProtocol": "http"}},
		"trellis": map[string]any{"services": []any{map[string]any{"discoveryName": "inventory",
			"readiness": map[string]any{"path": "/healthz", "intervalSeconds": 1}}}},
	}
	b, _ := json.Marshal(doc)
	f := filepath.Join(t.TempDir(), "inventory.json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	startAgent(t, e, f, "127.0.0.71")
	_, webDir := startAgent(t, e, taskDoc(t, "", "", 0, ""), "127.0.0.72")
	sdc := discoveryClient(t, e.data)
	healthy := func() (healthy, all int) {
		for _, filter := range []sdtypes.HealthStatusFilter{sdtypes.HealthStatusFilterHealthy, sdtypes.HealthStatusFilterAll} {
			out, err := sdc.DiscoverInstances(context.Background(), &sd.DiscoverInstancesInput{NamespaceName: aws.String("shop"),
				ServiceName: aws.String("inventory"), HealthStatus: filter})
			if err != nil {
				t.Fatalf("DiscoverInstances: %v", err)
			}
			if filter == sdtypes.HealthStatusFilterHealthy {
				healthy = len(out.Instances)
			} else {
				all = len(out.Instances)
			}
		}
		return healthy, all
	}
	eventually(t, 10*time.Second, func() error {
		if _, all := healthy(); all != 1 {
			return fmt.Errorf("inventory instances: %d", all)
		}
		return nil
	})
	// Three checks fail (interval 1 s): still not healthy.
	time.Sleep(3 * time.Second)
	if h, all := healthy(); h != 0 || all != 1 {
		t.Fatalf("while the app fails its check: %d healthy of %d, want 0 of 1", h, all)
	}
	// A client gets the agent's 503, and the app no request.
	var invVIP string
	eventually(t, 10*time.Second, func() (err error) {
		invVIP, err = vip(t, webDir, "inventory")
		return err
	})
	client := &http.Client{Timeout: 10 * time.Second}
	if _, code, err := call(client, "GET", "http://"+invVIP+":8080/stock", "", nil); err != nil || code != 503 || inv.hits.Load() != 0 {
		t.Errorf("calling an instance that is not ready: %d %v, %d requests reached it", code, err, inv.hits.Load())
	}
	inv.unready.Store(false)
	eventually(t, 10*time.Second, func() error {
		if h, _ := healthy(); h != 1 {
			return fmt.Errorf("healthy inventory instances: %d", h)
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		if got, code, err := call(client, "GET", "http://"+invVIP+":8080/stock", "", nil); err != nil || code != 200 || got != "inventory" {
			return fmt.Errorf("once ready: %q %d %v", got, code, err)
		}
		return nil
	})
}

// TestAgentAliasChangeAndDeletion: a running client agent follows a
// service's new alias port, and drops a deleted service's name and VIP.
func TestAgentAliasChangeAndDeletion(t *testing.T) {
	e := startUp(t)
	cat := newBackend(t, "catalog")
	p, _ := startAgent(t, e, serviceDoc(t, "catalog", 8080, mustAtoi(t, cat.port()), "http", nil), "127.0.0.81")
	_, webDir := startAgent(t, e, taskDoc(t, "", "", 0, ""), "127.0.0.82")
	var catVIP string
	eventually(t, 10*time.Second, func() (err error) {
		catVIP, err = vip(t, webDir, "catalog")
		return err
	})
	client := &http.Client{Timeout: 5 * time.Second}
	eventually(t, 10*time.Second, func() error {
		if got, code, err := call(client, "GET", "http://"+catVIP+":8080/x", "", nil); err != nil || code != 200 || got != "catalog" {
			return fmt.Errorf("catalog on 8080: %q %d %v", got, code, err)
		}
		return nil
	})

	// The owner publishes another port for the alias.
	sdc := discoveryClient(t, e.data)
	ctx := context.Background()
	ns, err := sdc.ListServices(ctx, &sd.ListServicesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var svcID string
	for _, s := range ns.Services {
		if aws.ToString(s.Name) == "catalog" {
			svcID = aws.ToString(s.Id)
		}
	}
	attrs, err := sdc.GetServiceAttributes(ctx, &sd.GetServiceAttributesInput{ServiceId: aws.String(svcID)})
	if err != nil {
		t.Fatal(err)
	}
	conn := strings.Replace(attrs.ServiceAttributes.Attributes["TRELLIS_CONNECT"], `"port":8080`, `"port":9090`, 1)
	if _, err := sdc.UpdateServiceAttributes(ctx, &sd.UpdateServiceAttributesInput{ServiceId: aws.String(svcID),
		Attributes: map[string]string{"TRELLIS_CONNECT": conn}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if got, code, err := call(client, "GET", "http://"+catVIP+":9090/x", "", nil); err != nil || code != 200 || got != "catalog" {
			return fmt.Errorf("catalog on 9090: %q %d %v", got, code, err)
		}
		if _, _, err := call(client, "GET", "http://"+catVIP+":8080/x", "", nil); err == nil {
			return fmt.Errorf("the old port 8080 still answers")
		}
		return nil
	})

	// The owner leaves and the service is deleted: the name goes away.
	p.stop()
	if _, err := sdc.DeleteService(ctx, &sd.DeleteServiceInput{Id: aws.String(svcID)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, func() error {
		if v, err := vip(t, webDir, "catalog"); err == nil {
			return fmt.Errorf("catalog still in the hosts file at %s", v)
		}
		if _, _, err := call(client, "GET", "http://"+catVIP+":9090/x", "", nil); err == nil {
			return fmt.Errorf("the deleted service's VIP still answers")
		}
		return nil
	})
}
