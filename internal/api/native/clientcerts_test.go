package native_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/api/native"
	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/pki"
	"github.com/trellis-mesh/trellis/internal/store/bolt"
)

// FuzzClientCertificateRequests sends arbitrary principal types, names and
// bodies to CreateClientCertificate: a client error or a certificate,
// never a server error or a panic.
func FuzzClientCertificateRequests(f *testing.F) {
	st, err := bolt.Open(filepath.Join(f.TempDir(), "trellis.db"), bolt.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	ca, err := pki.LoadOrCreate(context.Background(), st, nil)
	if err != nil {
		f.Fatal(err)
	}
	const acct = "111122223333"
	ctx := iam.WithCaller(context.Background(), iam.Caller{Account: acct, ARN: "arn:aws:iam::" + acct + ":user/admin", Admin: true})
	na := native.New(st, "us-east-1", nil, nil, native.WithClientCertificates(native.ClientCertOptions{CA: ca}))
	do := func(method, path, body string) (int, string) {
		rec := httptest.NewRecorder()
		na.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, method, native.Prefix+path, bytes.NewReader([]byte(body))))
		return rec.Code, rec.Body.String()
	}
	if code, out := do("POST", "/accounts", `{"name":"main","id":"`+acct+`"}`); code != 201 {
		f.Fatalf("create account: %d %s", code, out)
	}
	for _, p := range []string{`{"name":"orders","type":"role"}`, `{"name":"a@b","type":"user"}`} {
		if code, out := do("POST", "/principals", p); code != 201 {
			f.Fatalf("create principal: %d %s", code, out)
		}
	}
	f.Add("role", "orders", `{"ttlHours":1}`)
	f.Add("user", "a@b", `{}`)
	f.Add("role", "orders", `{"ttlHours":-5,"account":"999999999999"}`)
	f.Add("group", "..", `{"ttlHours":1e99}`)
	f.Add("role", "orders", `[]`)
	f.Fuzz(func(t *testing.T, typ, name, body string) {
		start := time.Now()
		code, out := do("POST", "/principals/"+url.PathEscape(typ)+"/"+url.PathEscape(name)+"/certificates", body)
		if code >= 500 || code < 200 {
			t.Fatalf("%s/%s %q: %d %s", typ, name, body, code, out)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%s/%s %q took %v", typ, name, body, time.Since(start))
		}
	})
}

// TestClientCertificateWithoutCA: a server that has no CA says so.
func TestClientCertificateWithoutCA(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "trellis.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := iam.WithCaller(context.Background(), iam.Caller{Account: "111122223333", Admin: true})
	rec := httptest.NewRecorder()
	native.New(st, "us-east-1", nil, nil).ServeHTTP(rec, httptest.NewRequestWithContext(ctx, "POST",
		native.Prefix+"/principals/role/orders/certificates", bytes.NewReader(nil)))
	if rec.Code != 500 || !bytes.Contains(rec.Body.Bytes(), []byte("not enabled on this server")) {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
}
