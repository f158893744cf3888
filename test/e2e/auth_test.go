package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// authConfig is issue 4's scenario: network and service with AWS_IAM; the
// network lets any signed caller through, the service lets role web GET
// /orders/*.
func authConfig(port string, a *backend, account string) string {
	return fmt.Sprintf(`kind: ServiceNetwork
name: shop
authType: AWS_IAM
---
kind: ServiceNetworkVpcAssociation
serviceNetwork: shop
vpc: default
---
kind: Service
name: orders
authType: AWS_IAM
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
---
kind: AuthPolicy
serviceNetwork: shop
policy:
  Version: "2012-10-17"
  Statement:
    - Sid: SignedCallersOnly
      Effect: Allow
      Principal: "*"
      Action: vpc-lattice-svcs:Invoke
      Resource: "*"
      Condition:
        StringNotEquals:
          aws:PrincipalType: Anonymous
---
kind: AuthPolicy
service: orders
policy:
  Version: "2012-10-17"
  Statement:
    - Sid: WebReadsOrders
      Effect: Allow
      Principal: {AWS: "arn:aws:iam::%[3]s:role/web"}
      Action: vpc-lattice-svcs:Invoke
      Resource: "*/orders/*"
      Condition:
        StringEquals:
          vpc-lattice-svcs:RequestMethod: GET
`, port, a.port(), account)
}

// TestGatewayAuth is issue 4's user story with the real binary and curl:
// a request signed with role web's key (curl --aws-sigv4) reaches the
// target, which learns who called; an unsigned or other-role request gets
// Lattice's 403; explain agrees with the gateway.
func TestGatewayAuth(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	e := startUp(t)
	a := newBackend(t, "a")
	env := dataEnv(e.data)
	var who struct{ Account string }
	mustJSON(t, run(t, env, e.bin, "whoami", "-o", "json"), &who)
	applyYAML(t, e.bin, e.data, authConfig(e.listenerPort, a, who.Account))

	identity := filepath.Join(t.TempDir(), "identity.json")
	if err := os.WriteFile(identity, []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"vpc-lattice-svcs:Invoke","Resource":"*"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	type accessKey struct{ AccessKeyId, SecretAccessKey string }
	keys := map[string]accessKey{}
	for _, role := range []string{"web", "intern"} {
		run(t, env, e.bin, "create", "principal", role, "--type", "role", "--tag", "team="+role, "--policy", identity)
		var k accessKey
		mustJSON(t, run(t, env, e.bin, "create", "access-key", "role/"+role, "-o", "json"), &k)
		keys[role] = k
	}

	host, svcID := serviceDNS(t, e.lc, "orders")
	target := "http://" + host + ":" + e.listenerPort
	resolve := host + ":" + e.listenerPort + ":127.0.0.1"
	region := "us-east-1"
	curl := func(key string, path string, extra ...string) (code, body string) {
		args := []string{"-sS", "--resolve", resolve, "-o", "-", "-w", "\n%{http_code}"}
		if key != "" {
			k := keys[key]
			args = append(args, "--aws-sigv4", "aws:amz:"+region+":vpc-lattice-svcs", "--user", k.AccessKeyId+":"+k.SecretAccessKey,
				"-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD")
		}
		args = append(args, extra...)
		out := run(t, nil, "curl", append(args, target+path)...)
		i := strings.LastIndexByte(out, '\n')
		return out[i+1:], out[:i]
	}

	// The gateway has the service once an unsigned request is refused
	// by the gateway itself (not 404 for an unknown host).
	eventually(t, 10*time.Second, func() error {
		if code, body := curl("", "/orders/1"); code != "403" {
			return fmt.Errorf("unsigned: %s %s", code, body)
		}
		return nil
	})

	code, body := curl("web", "/orders/1", "-H", "x-amzn-lattice-identity: Principal=arn:aws:iam::999999999999:role/admin")
	if code != "200" || !strings.Contains(body, `"backend":"a"`) {
		t.Fatalf("signed by web: %s %s, want 200 from the target", code, body)
	}
	id := a.lastHeaders().Get("X-Amzn-Lattice-Identity")
	if !strings.HasPrefix(id, "Principal=arn:aws:iam::"+who.Account+":role/web;") || strings.Contains(id, "999999999999") {
		t.Errorf("target saw x-amzn-lattice-identity %q, want role web and nothing forged", id)
	}
	if tags := a.lastHeaders().Get("X-Amzn-Lattice-Identity-Tags"); !strings.Contains(tags, "team=web") {
		t.Errorf("target saw x-amzn-lattice-identity-tags %q, want team=web", tags)
	}

	svcARN := "arn:aws:vpc-lattice:" + region + ":" + who.Account + ":service/" + svcID
	for _, tc := range []struct{ who, path, want string }{
		{"", "/orders/1", "AccessDeniedException: User: anonymous is not authorized to perform: vpc-lattice-svcs:Invoke on resource: " +
			svcARN + "/orders/1 because no network-based policy allows the vpc-lattice-svcs:Invoke action"},
		{"intern", "/orders/1", "AccessDeniedException: User: arn:aws:iam::" + who.Account + ":role/intern is not authorized to perform: " +
			"vpc-lattice-svcs:Invoke on resource: " + svcARN + "/orders/1 because no service-based policy allows the vpc-lattice-svcs:Invoke action"},
		{"web", "/payments/1", "because no service-based policy allows"},
		{"web", "/orders/../payments/1", "on resource: " + svcARN + "/payments/1 because"},
	} {
		code, body := curl(tc.who, tc.path, "--path-as-is")
		if code != "403" || !strings.Contains(body, tc.want) {
			t.Errorf("%q %s: %s %q, want 403 with %q", tc.who, tc.path, code, body, tc.want)
		}
	}

	// A bad signature is refused, not taken for anonymous.
	k := keys["web"]
	keys["forged"] = accessKey{k.AccessKeyId, strings.Repeat("x", len(k.SecretAccessKey))}
	if code, body := curl("forged", "/orders/1"); code != "403" || !strings.Contains(body, "InvalidSignatureException") {
		t.Errorf("wrong secret: %s %q, want 403 InvalidSignatureException", code, body)
	}

	// explain agrees with the gateway, and says why.
	out := run(t, env, e.bin, "policy", "explain", "--service", "orders", "--principal", "role/intern", "--path", "/orders/1")
	if !strings.Contains(out, "DENY") || !strings.Contains(out, "Service") {
		t.Errorf("explain for intern:\n%s", out)
	}

	// Denials are counted as Lattice-generated 403s.
	resp, err := http.Get("http://" + e.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(m), `code="403"`) {
		t.Errorf("/metrics has no 403 series")
	}
}
