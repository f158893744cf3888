package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCreateClientCertificate(t *testing.T) {
	e := newEnv(t)
	e.ok("create", "principal", "orders", "--type", "role")
	dir := filepath.Join(t.TempDir(), "orders-tls")
	out := e.ok("create", "client-certificate", "orders", "--type", "role", "--out-dir", dir)
	if !strings.Contains(out, "client certificate for arn:aws:iam::") || !strings.Contains(out, ":role/orders (spiffe://trellis.local/account/") ||
		!strings.Contains(out, filepath.Join(dir, "key.pem")) {
		t.Errorf("output:\n%s", out)
	}
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pair, err := tls.X509KeyPair(read("cert.pem"), read("key.pem"))
	if err != nil {
		t.Fatalf("cert.pem and key.pem: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(read("ca.pem")) {
		t.Fatal("ca.pem holds no certificate")
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("cert.pem does not verify with ca.pem for client auth: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key.pem mode %v, %v; want 0600", fi.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("%d files in the output directory, want 3 (no temporary files left)", len(entries))
	}

	// TYPE/NAME, JSON output, a lifetime; the files are replaced.
	before := string(read("cert.pem"))
	var meta map[string]string
	if err := json.Unmarshal([]byte(e.ok("create", "client-certificate", "role/orders", "--out-dir", dir, "--ttl-hours", "2", "-o", "json")), &meta); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(meta["spiffeId"], "/role/orders") || meta["privateKey"] != filepath.Join(dir, "key.pem") || meta["notAfter"] == "" {
		t.Errorf("json output %v", meta)
	}
	if string(read("cert.pem")) == before {
		t.Error("cert.pem was not replaced")
	}
	block, _ := pem.Decode(read("cert.pem"))
	if leaf, err := x509.ParseCertificate(block.Bytes); err != nil || leaf.NotAfter.Sub(leaf.NotBefore) > 2*time.Hour+10*time.Minute {
		t.Errorf("--ttl-hours 2: %v", err)
	}
}

func TestCreateClientCertificateErrors(t *testing.T) {
	e := newEnv(t)
	e.ok("create", "principal", "a@b", "--type", "user")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "client-certificate", "ghost", "--out-dir", t.TempDir()}, "role/ghost"},
		{[]string{"create", "client-certificate", "a@b", "--type", "user", "--out-dir", t.TempDir()}, "name: a SPIFFE ID allows only"},
		{[]string{"create", "client-certificate", "x", "--type", "group"}, "--type must be role or user"},
		{[]string{"create", "client-certificate", "role/x", "--type", "user"}, "names type role but --type is user"},
		{[]string{"create", "client-certificate", "a@b", "--type", "user", "--ttl-hours", "9000"}, "ttlHours: must be 1 to 8760 hours"},
	} {
		if msg := e.fail(c.args...); !strings.Contains(msg, c.want) {
			t.Errorf("trellis %s:\n%s\nwant it to contain %q", strings.Join(c.args, " "), msg, c.want)
		}
	}
}
