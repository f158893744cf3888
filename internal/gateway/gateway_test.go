package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice/types"

	"github.com/trellis-mesh/trellis/internal/controlclient"
	"github.com/trellis-mesh/trellis/internal/gateway"
	"github.com/trellis-mesh/trellis/internal/server"
	"github.com/trellis-mesh/trellis/internal/testnet"
)

type cp struct {
	srv    *server.Server
	boot   *server.Bootstrap
	url    string
	cancel context.CancelFunc
	done   chan error
}

func startServer(t testing.TB, dir, api string) *cp {
	t.Helper()
	srv, err := server.New(context.Background(), server.Config{DataDir: dir, APIAddr: api, AdminAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	url := server.Endpoint(srv.APIAddr())
	boot, err := srv.EnsureBootstrap(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &cp{srv: srv, boot: boot, url: url, cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- srv.Serve(ctx) }()
	t.Cleanup(c.stop)
	return c
}

func (c *cp) stop() {
	if c.cancel != nil {
		c.cancel()
		<-c.done
		c.cancel = nil
	}
}

func (c *cp) lattice() *vpclattice.Client {
	return vpclattice.New(vpclattice.Options{Region: "us-east-1", BaseEndpoint: aws.String(c.url),
		Credentials: credentials.NewStaticCredentialsProvider(c.boot.AccessKeyID, c.boot.SecretAccessKey, "")})
}

type gw struct {
	g      *gateway.Gateway
	cancel context.CancelFunc
	done   chan error
}

func startGateway(t testing.TB, c *cp, stateDir string) *gw {
	t.Helper()
	g, err := gateway.New(gateway.Config{
		Control: controlclient.Config{Endpoint: c.url, Region: "us-east-1", NodeID: "gw-test", VPCID: c.boot.VPCID, StateDir: stateDir,
			Credentials: credentials.NewStaticCredentialsProvider(c.boot.AccessKeyID, c.boot.SecretAccessKey, ""),
			MinBackoff:  20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond},
		AdminAddr: "127.0.0.1:0", HealthCheckScale: 0.02, Stdout: io.Discard,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := &gw{g: g, cancel: cancel, done: make(chan error, 1)}
	go func() { x.done <- g.Run(ctx) }()
	t.Cleanup(x.stop)
	return x
}

func (x *gw) stop() {
	if x.cancel != nil {
		x.cancel()
		<-x.done
		x.cancel = nil
	}
}

func eventually(t testing.TB, d time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a port nothing listens on right now and no earlier
// call returned.
func freePort(t testing.TB) int32 { return testnet.FreePort(t) }

// setup creates a network associated with the default VPC and a service
// whose HTTP listener forwards to backend.
func setup(t testing.TB, lc *vpclattice.Client, vpcID string, port int32, backend *httptest.Server) (host, tgID string) {
	t.Helper()
	ctx := context.Background()
	sn, err := lc.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{Name: aws.String("net")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lc.CreateServiceNetworkVpcAssociation(ctx, &vpclattice.CreateServiceNetworkVpcAssociationInput{
		ServiceNetworkIdentifier: sn.Id, VpcIdentifier: aws.String(vpcID)}); err != nil {
		t.Fatal(err)
	}
	svc, err := lc.CreateService(ctx, &vpclattice.CreateServiceInput{Name: aws.String("svc")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lc.CreateServiceNetworkServiceAssociation(ctx, &vpclattice.CreateServiceNetworkServiceAssociationInput{
		ServiceNetworkIdentifier: sn.Id, ServiceIdentifier: svc.Id}); err != nil {
		t.Fatal(err)
	}
	bport, _ := strconv.Atoi(backend.URL[strings.LastIndexByte(backend.URL, ':')+1:])
	tg, err := lc.CreateTargetGroup(ctx, &vpclattice.CreateTargetGroupInput{Name: aws.String("web"), Type: types.TargetGroupTypeIp,
		Config: &types.TargetGroupConfig{Port: aws.Int32(int32(bport)), Protocol: types.TargetGroupProtocolHttp, VpcIdentifier: aws.String(vpcID)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lc.RegisterTargets(ctx, &vpclattice.RegisterTargetsInput{TargetGroupIdentifier: tg.Id,
		Targets: []types.Target{{Id: aws.String("127.0.0.1")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.CreateListener(ctx, &vpclattice.CreateListenerInput{ServiceIdentifier: svc.Id, Name: aws.String("http"),
		Protocol: types.ListenerProtocolHttp, Port: aws.Int32(port),
		DefaultAction: &types.RuleActionMemberForward{Value: types.ForwardAction{TargetGroups: []types.WeightedTargetGroup{{TargetGroupIdentifier: tg.Id}}}}}); err != nil {
		t.Fatal(err)
	}
	return aws.ToString(svc.DnsEntry.DomainName), aws.ToString(tg.Id)
}

func get(port int32, host string) (int, string, error) {
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/p", port), nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestStaticStability: the gateway serves, reports health and acks; keeps
// serving with the control plane gone; restarted without it, serves from
// its persisted snapshot; and reconnects when it is back.
func TestStaticStability(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "backend") }))
	defer backend.Close()
	dir, state := t.TempDir(), t.TempDir()
	api := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c := startServer(t, dir, api)
	lc := c.lattice()
	port := freePort(t)
	host, tgID := setup(t, lc, c.boot.VPCID, port, backend)

	g := startGateway(t, c, state)
	eventually(t, 10*time.Second, func() error {
		code, body, err := get(port, host)
		if err != nil || code != 200 || body != "backend" {
			return fmt.Errorf("%d %q %v", code, body, err)
		}
		return nil
	})
	// Health found by the gateway reaches the API.
	eventually(t, 10*time.Second, func() error {
		out, err := lc.ListTargets(context.Background(), &vpclattice.ListTargetsInput{TargetGroupIdentifier: aws.String(tgID)})
		if err != nil || len(out.Items) != 1 || out.Items[0].Status != types.TargetStatusHealthy {
			return fmt.Errorf("targets %+v %v", out, err)
		}
		return nil
	})
	resp, err := http.Get("http://" + g.g.AdminAddr() + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, err := os.Stat(filepath.Join(state, "snapshot-"+c.boot.VPCID+".json")); err != nil {
		t.Fatalf("no persisted snapshot: %v", err)
	}

	c.stop()
	if code, _, err := get(port, host); err != nil || code != 200 {
		t.Fatalf("with the control plane stopped: %d %v", code, err)
	}
	g.stop()
	g = startGateway(t, c, state)
	eventually(t, 10*time.Second, func() error {
		code, body, err := get(port, host)
		if err != nil || code != 200 || body != "backend" {
			return fmt.Errorf("restarted gateway, control plane down: %d %q %v", code, body, err)
		}
		return nil
	})

	c = startServer(t, dir, api)
	eventually(t, 10*time.Second, func() error {
		code, body, err := get(port, host)
		if err != nil || code != 200 {
			return fmt.Errorf("%d %q %v", code, body, err)
		}
		if g.g.Version() == 0 {
			return fmt.Errorf("no version")
		}
		return nil
	})
	// A change made now reaches the reconnected gateway: deleting the
	// listener closes its port.
	ls, err := c.lattice().ListServices(context.Background(), &vpclattice.ListServicesInput{})
	if err != nil || len(ls.Items) != 1 {
		t.Fatal(err)
	}
	lis, _ := c.lattice().ListListeners(context.Background(), &vpclattice.ListListenersInput{ServiceIdentifier: ls.Items[0].Id})
	if _, err := c.lattice().DeleteListener(context.Background(), &vpclattice.DeleteListenerInput{ServiceIdentifier: ls.Items[0].Id, ListenerIdentifier: lis.Items[0].Id}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if len(g.g.Ports()) != 0 {
			return fmt.Errorf("ports still open: %v", g.g.Ports())
		}
		return nil
	})
}
