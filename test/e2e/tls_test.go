package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// grpcBackend serves the gRPC health service over h2c (prior knowledge).
func grpcBackend(t *testing.T) string {
	t.Helper()
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("orders", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	return ln.Addr().String()
}

// TestGatewayTLSAndGRPC: an HTTPS listener with a certificate from
// Trellis's CA chosen by SNI, gRPC end to end with grpc-go's client
// (unary and server streaming), HTTP/2 to an HTTP/1.1 target, and TLS
// passthrough routed by SNI to a TCP target group.
func TestGatewayTLSAndGRPC(t *testing.T) {
	e := startUp(t)
	web := newBackend(t, "web")
	_, grpcPort := splitPort(grpcBackend(t))
	tlsBackend := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "passthrough:"+r.TLS.ServerName)
	}))
	t.Cleanup(tlsBackend.Close)
	_, tlsPort := splitPort(tlsBackend.Listener.Addr().String())
	_, ptPort := splitPort(freeAddr(t))

	applyYAML(t, e.bin, e.data, fmt.Sprintf(`kind: ServiceNetwork
name: secure
---
kind: ServiceNetworkVpcAssociation
serviceNetwork: secure
vpc: default
---
kind: Service
name: api
---
kind: ServiceNetworkServiceAssociation
serviceNetwork: secure
service: api
---
kind: Service
name: vault
customDomainName: vault.example.com
---
kind: ServiceNetworkServiceAssociation
serviceNetwork: secure
service: vault
---
kind: TargetGroup
name: api-web
type: IP
config:
  port: %[2]s
  protocol: HTTP
  vpc: default
targets:
  - id: 127.0.0.1
---
kind: TargetGroup
name: api-grpc
type: IP
config:
  port: %[3]s
  protocol: HTTP
  protocolVersion: GRPC
  vpc: default
targets:
  - id: 127.0.0.1
---
kind: TargetGroup
name: vault-tcp
type: IP
config:
  port: %[4]s
  protocol: TCP
  vpc: default
targets:
  - id: 127.0.0.1
---
kind: Listener
service: api
name: https
protocol: HTTPS
port: %[1]s
defaultAction:
  forward:
    targetGroups:
      - targetGroup: api-web
rules:
  - name: grpc
    priority: 1
    match:
      httpMatch:
        method: POST
        pathMatch:
          match:
            prefix: /grpc.health.v1.Health/
    action:
      forward:
        targetGroups:
          - targetGroup: api-grpc
---
kind: Listener
service: vault
name: tls
protocol: TLS_PASSTHROUGH
port: %[5]s
defaultAction:
  forward:
    targetGroups:
      - targetGroup: vault-tcp
`, e.listenerPort, web.port(), grpcPort, tlsPort, ptPort))
	host, _ := serviceDNS(t, e.lc, "api")

	caPEM, err := os.ReadFile(filepath.Join(e.data, "ca.pem"))
	if err != nil {
		t.Fatalf("trellis up wrote no ca.pem: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	addr := "127.0.0.1:" + e.listenerPort
	h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: host}}}
	eventually(t, 15*time.Second, func() error {
		req, _ := http.NewRequest("GET", "https://"+addr+"/hello", nil)
		req.Host = host
		resp, err := h2.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 || !strings.Contains(string(body), `"backend":"web"`) {
			return fmt.Errorf("HTTPS h2: %s %d %s", resp.Proto, resp.StatusCode, body)
		}
		return nil
	})
	if h := web.lastHeaders(); h.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("x-forwarded-proto over HTTPS = %q", h.Get("X-Forwarded-Proto"))
	}

	t.Run("curl verifies the CA", func(t *testing.T) {
		if _, err := exec.LookPath("curl"); err != nil {
			t.Skip("curl not installed")
		}
		out := run(t, nil, "curl", "-sS", "--http1.1", "--cacert", filepath.Join(e.data, "ca.pem"),
			"--resolve", host+":"+e.listenerPort+":127.0.0.1", "https://"+host+":"+e.listenerPort+"/curl")
		if !strings.Contains(out, `"path":"/curl"`) {
			t.Errorf("curl over HTTPS = %s", out)
		}
	})
	t.Run("unknown SNI fails the handshake", func(t *testing.T) {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "nobody.example.com"})
		if err == nil {
			conn.Close()
			t.Fatal("handshake with an unknown SNI succeeded")
		}
	})
	t.Run("grpc", func(t *testing.T) {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: host})))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		hc := healthpb.NewHealthClient(cc)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "orders"})
		if err != nil || res.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check through the gateway = %v, %v", res, err)
		}
		// A gRPC error status and trailers cross the gateway intact.
		if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"}); err == nil || !strings.Contains(err.Error(), "NotFound") {
			t.Errorf("Check of an unknown service = %v, want NotFound", err)
		}
		stream, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: "orders"})
		if err != nil {
			t.Fatal(err)
		}
		if msg, err := stream.Recv(); err != nil || msg.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Watch through the gateway = %v, %v", msg, err)
		}
	})
	t.Run("tls passthrough", func(t *testing.T) {
		var conn *tls.Conn
		eventually(t, 10*time.Second, func() (err error) {
			conn, err = tls.Dial("tcp", "127.0.0.1:"+ptPort, &tls.Config{ServerName: "vault.example.com", InsecureSkipVerify: true})
			return err
		})
		defer conn.Close()
		// The certificate is the backend's own: the gateway did not terminate TLS.
		if got := conn.ConnectionState().PeerCertificates[0]; !got.Equal(tlsBackend.Certificate()) {
			t.Errorf("passthrough presented %s, not the backend's certificate", got.Subject)
		}
		_, _ = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: vault.example.com\r\nConnection: close\r\n\r\n")
		body, _ := io.ReadAll(conn)
		if !strings.Contains(string(body), "passthrough:vault.example.com") {
			t.Errorf("passthrough answer: %s", body)
		}
	})
	e.p.stop()
}
