package cli

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"
)

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// maskUUIDs numbers certificate IDs by first appearance, like mask does IDs.
func maskUUIDs(s string) string {
	seen := map[string]string{}
	return uuidRE.ReplaceAllStringFunc(s, func(m string) string {
		if p, ok := seen[m]; ok {
			return p
		}
		p := fmt.Sprintf("00000000-0000-4000-8000-c%011d", len(seen)+1) // not 12 digits: mask would take it for an account
		seen[m] = p
		return p
	})
}

// certFiles writes a self-signed RSA-2048 certificate for names and its
// key, and returns their paths.
func certFiles(t *testing.T, names ...string) (certPath, keyPath string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	return writeFile(t, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))),
		writeFile(t, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
}

func TestCertificatesCLI(t *testing.T) {
	e := newEnv(t)
	cert, key := certFiles(t, "*.example.com")
	out := e.ok("create", "certificate", "--cert", cert, "--key", key)
	arn := regexp.MustCompile(`arn:aws:acm:us-east-1:\d{12}:certificate/` + uuidRE.String()).FindString(out)
	if arn == "" || !strings.Contains(out, "imported (*.example.com, until ") {
		t.Fatalf("create certificate:\n%s", out)
	}
	id := arn[strings.LastIndex(arn, "/")+1:]

	// A service names it for its custom domain.
	e.stdin = "kind: Service\nname: parking\ncustomDomainName: parking.example.com\ncertificateArn: " + arn + "\n"
	e.ok("apply", "-f", "-")
	e.stdin = ""

	// Every flag has its environment twin.
	other, otherKey := certFiles(t, "api.example.org")
	t.Setenv("TRELLIS_CERT", other)
	t.Setenv("TRELLIS_KEY", otherKey)
	var created map[string]any
	if err := json.Unmarshal([]byte(e.ok("create", "certificate", "-o", "json")), &created); err != nil || created["keyAlgorithm"] != "RSA_2048" {
		t.Fatalf("create certificate from TRELLIS_CERT/TRELLIS_KEY: %v %v", err, created)
	}
	t.Setenv("TRELLIS_CERT", "")
	t.Setenv("TRELLIS_KEY", "")

	golden(t, "get_certificates", maskUUIDs(e.ok("get", "certificates")))

	for _, ref := range []string{id, arn} {
		got := e.ok("get", "certificate", ref, "-o", "json")
		var one map[string]any
		if err := json.Unmarshal([]byte(got), &one); err != nil || one["certificateArn"] != arn ||
			!strings.HasPrefix(fmt.Sprint(one["certificate"]), "-----BEGIN CERTIFICATE-----") || strings.Contains(got, "PRIVATE KEY") {
			t.Errorf("get certificate %s:\n%s", ref, got)
		}
	}

	if msg := e.fail("delete", "certificate", id); !strings.Contains(msg, "ConflictException") || !strings.Contains(msg, "in use by") {
		t.Errorf("delete in-use certificate: %s", msg)
	}
	e.ok("delete", "service", "parking")
	if got := e.ok("delete", "certificate", arn); got != "certificate/"+arn+" deleted\n" {
		t.Errorf("delete certificate: %q", got)
	}
	if msg := e.fail("get", "certificate", id); !strings.Contains(msg, `certificate "`+id+`" not found`) {
		t.Errorf("get deleted certificate: %s", msg)
	}
}

func TestCreateCertificateErrors(t *testing.T) {
	e := newEnv(t)
	cert, key := certFiles(t, "api.example.com")
	_, otherKey := certFiles(t, "other.example.com")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "certificate", "--cert", cert}, "--key FILE is required"},
		{[]string{"create", "certificate", "--key", key}, "--cert FILE is required"},
		{[]string{"create", "certificate", "--cert", cert, "--key", "/nonexistent/key.pem"}, "--key: open /nonexistent/key.pem"},
		{[]string{"create", "certificate", "--cert", cert, "--key", otherKey}, "privateKey: does not match the certificate's public key"},
		{[]string{"create", "certificate", "--cert", key, "--key", key}, `certificate: PEM block 1 is "PRIVATE KEY", want CERTIFICATE`},
		{[]string{"create", "certificate", "--cert", cert, "--key", key, "--tag", "novalue"}, `--tag "novalue": want KEY=VALUE`},
	} {
		if msg := e.fail(c.args...); !strings.Contains(msg, c.want) {
			t.Errorf("trellis %s:\n%s\nwant it to contain %q", strings.Join(c.args, " "), msg, c.want)
		}
	}
}
