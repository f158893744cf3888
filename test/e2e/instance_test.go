package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate and key for name into dir.
func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestGatewayInstanceTargetAndImportedCertificate: a custom domain served
// over HTTPS with an imported certificate (certificateArn), forwarding to
// an INSTANCE target whose address comes from Trellis's instance registry.
func TestGatewayInstanceTargetAndImportedCertificate(t *testing.T) {
	e := startUp(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	web := newBackend(t, "instance")
	env := dataEnv(e.data)
	var inst map[string]any
	mustJSON(t, run(t, env, e.bin, "create", "instance", "--vpc", "default", "--address", "127.0.0.1", "--name", "web-1", "-o", "json"), &inst)
	instID, _ := inst["id"].(string)
	if !strings.HasPrefix(instID, "i-") {
		t.Fatalf("create instance: %v", inst)
	}
	certFile, keyFile := selfSigned(t, t.TempDir(), "shop.example.com")
	var cert map[string]any
	mustJSON(t, run(t, env, e.bin, "create", "certificate", "--cert", certFile, "--key", keyFile, "-o", "json"), &cert)
	arn, _ := cert["certificateArn"].(string)
	if !strings.HasPrefix(arn, "arn:aws:acm:") {
		t.Fatalf("create certificate: %v", cert)
	}
	applyYAML(t, e.bin, e.data, fmt.Sprintf(`kind: ServiceNetwork
name: inst
---
kind: ServiceNetworkVpcAssociation
serviceNetwork: inst
vpc: default
---
kind: Service
name: shop
customDomainName: shop.example.com
certificateArn: %[1]s
---
kind: ServiceNetworkServiceAssociation
serviceNetwork: inst
service: shop
---
kind: TargetGroup
name: shop-instances
type: INSTANCE
config:
  port: %[2]s
  protocol: HTTP
  vpc: default
targets:
  - id: %[3]s
---
kind: Listener
service: shop
name: https
protocol: HTTPS
port: %[4]s
defaultAction:
  forward:
    targetGroups:
      - targetGroup: shop-instances
`, arn, web.port(), instID, e.listenerPort))
	url := "https://shop.example.com:" + e.listenerPort + "/inst"
	eventually(t, 15*time.Second, func() error {
		out, err := exec.Command("curl", "-sS", "--cacert", certFile, "--resolve", "shop.example.com:"+e.listenerPort+":127.0.0.1", url).CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"backend":"instance"`) {
			return fmt.Errorf("curl %s: %v %s", url, err, out)
		}
		return nil
	})
	e.p.stop()
}
