package sigv4

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// curlWithSigV4 returns the curl binary if it supports --aws-sigv4, or
// skips the test.
func curlWithSigV4(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not found; skipping the curl --aws-sigv4 interoperability test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	help, err := exec.CommandContext(ctx, path, "--help", "all").CombinedOutput()
	if err != nil || !bytes.Contains(help, []byte("--aws-sigv4")) {
		ver, _ := exec.CommandContext(ctx, path, "--version").Output()
		first, _, _ := strings.Cut(string(ver), "\n")
		t.Skipf("curl (%s) lacks --aws-sigv4; skipping", first)
	}
	return path
}

func TestCurlSigV4(t *testing.T) {
	curl := curlWithSigV4(t)
	v := &Verifier{
		Lookup:                 staticLookup(longTermKey()),
		Region:                 "us-east-1",
		Services:               []string{"vpc-lattice-svcs"},
		RequireUnsignedPayload: true,
	}
	srv := newVerifyServer(t, v)
	for _, c := range []struct {
		name, path string
		args       []string
		user       string
		want       error
	}{
		{name: "get", path: "/"},
		{name: "get-path", path: "/orders/123"},
		{name: "get-query", path: "/orders?a=1&b=2"}, // curl 7.x does not sort the query itself
		// curl signs the escaped path as sent, encoded once (the suite's
		// form), where the AWS SDKs escape it twice.
		{name: "arn-path", path: arnPath},
		{name: "post", path: "/orders", args: []string{"--data-binary", `{"id":1}`, "-H", "Content-Type: application/json"}},
		{name: "wrong-secret", path: "/", user: longTermKey().AccessKeyID + ":wrong", want: ErrSignatureMismatch},
	} {
		t.Run(c.name, func(t *testing.T) {
			user := c.user
			if user == "" {
				user = longTermKey().AccessKeyID + ":" + longTermKey().SecretAccessKey
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			args := append([]string{"-sS", "-o", "/dev/null", "-w", "%{http_code}",
				"--aws-sigv4", "aws:amz:us-east-1:vpc-lattice-svcs",
				"--user", user,
				"-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"}, c.args...)
			args = append(args, srv.URL+c.path)
			out, err := exec.CommandContext(ctx, curl, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("curl: %v\n%s", err, out)
			}
			var o outcome
			select {
			case o = <-srv.outcomes:
			case <-time.After(5 * time.Second):
				t.Fatal("handler did not run")
			}
			if !errors.Is(o.err, c.want) {
				t.Fatalf("Verify: got %v, want %v (curl status %s)", o.err, c.want, out)
			}
			if wantStatus := map[bool]string{true: "200", false: "403"}[c.want == nil]; string(out) != wantStatus {
				t.Errorf("curl status %s, want %s", out, wantStatus)
			}
		})
	}
}
