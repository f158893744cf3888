package cloudmap_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/api/cloudmap"
	"github.com/trellis-mesh/trellis/internal/api/native"
	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/bolt"
)

const (
	account = "111122223333"
	other   = "444455556666"
	region  = "us-east-1"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logBuffer collects what the API logs (only unexpected errors).
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.buf.String()
	l.buf.Reset()
	return s
}

type fixture struct {
	st    store.Store
	api   *cloudmap.API
	clock *clock
	logs  *logBuffer
	vpc   string
}

func newFixture(tb testing.TB, quotas cloudmap.Quotas) *fixture {
	tb.Helper()
	st, err := bolt.Open(filepath.Join(tb.TempDir(), "db"), bolt.Options{})
	if err != nil {
		tb.Fatalf("bolt.Open: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	fx := &fixture{st: st, clock: &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}, logs: &logBuffer{}}
	fx.api = cloudmap.New(cloudmap.Config{Store: st, Region: region, Quotas: quotas, Now: fx.clock.now,
		Logger: slog.New(slog.NewTextHandler(fx.logs, nil))})
	vpc, err := native.CreateVPC(context.Background(), st, region, account, "main", []string{"10.0.0.0/16"}, nil, fx.clock.now())
	if err != nil {
		tb.Fatalf("CreateVPC: %v", err)
	}
	fx.vpc = vpc.ID
	return fx
}

// call sends one operation as acct and returns the status and decoded body.
func (fx *fixture) call(acct, op, body string) (int, map[string]any) {
	rec := fx.raw(acct, http.MethodPost, cloudmap.TargetPrefix+op, []byte(body))
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func (fx *fixture) raw(acct, method, target string, body []byte) *httptest.ResponseRecorder {
	ctx := context.Background()
	if acct != "" {
		ctx = iam.WithCaller(ctx, iam.Caller{Account: acct, ARN: "arn:aws:iam::" + acct + ":user/admin", PrincipalType: "user", PrincipalName: "admin"})
	}
	r := httptest.NewRequestWithContext(ctx, method, "/", io.NopCloser(bytes.NewReader(body)))
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", target)
	rec := httptest.NewRecorder()
	fx.api.ServeHTTP(rec, r)
	return rec
}

// must runs op and fails the test unless it succeeds.
func (fx *fixture) must(tb testing.TB, op, body string) map[string]any {
	tb.Helper()
	code, out := fx.call(account, op, body)
	if code != http.StatusOK {
		tb.Fatalf("%s %s = %d %v", op, body, code, out)
	}
	return out
}

// created runs a namespace-creating operation and returns the namespace ID.
func (fx *fixture) created(tb testing.TB, op, body string) string {
	tb.Helper()
	out := fx.must(tb, op, body)
	got := fx.must(tb, "GetOperation", `{"OperationId":"`+out["OperationId"].(string)+`"}`)
	return got["Operation"].(map[string]any)["Targets"].(map[string]any)["NAMESPACE"].(string)
}

func wantError(tb testing.TB, code int, out map[string]any, status int, typ string) {
	tb.Helper()
	if code != status || out["__type"] != typ {
		tb.Errorf("got %d %v, want %d %s", code, out, status, typ)
	}
}

func TestQuotas(t *testing.T) {
	fx := newFixture(t, cloudmap.Quotas{Namespaces: 2, InstancesPerService: 2})
	ns := fx.created(t, "CreateHttpNamespace", `{"Name":"a"}`)
	fx.created(t, "CreatePrivateDnsNamespace", `{"Name":"b.internal","Vpc":"`+fx.vpc+`"}`)
	code, out := fx.call(account, "CreateHttpNamespace", `{"Name":"c"}`)
	wantError(t, code, out, 400, "ResourceLimitExceeded")
	// Quotas are per account.
	code, _ = fx.call(other, "CreateHttpNamespace", `{"Name":"c"}`)
	if code != 200 {
		t.Errorf("another account's namespace: %d", code)
	}
	svc := fx.must(t, "CreateService", `{"Name":"s","NamespaceId":"`+ns+`"}`)["Service"].(map[string]any)["Id"].(string)
	for _, id := range []string{"i-1", "i-2"} {
		fx.must(t, "RegisterInstance", `{"ServiceId":"`+svc+`","InstanceId":"`+id+`","Attributes":{"k":"v"}}`)
	}
	code, out = fx.call(account, "RegisterInstance", `{"ServiceId":"`+svc+`","InstanceId":"i-3","Attributes":{"k":"v"}}`)
	wantError(t, code, out, 400, "ResourceLimitExceeded")
	// Re-registering an instance is not a new one.
	fx.must(t, "RegisterInstance", `{"ServiceId":"`+svc+`","InstanceId":"i-2","Attributes":{"k":"w"}}`)
}

// TestOperationRetention: operations, and the request IDs that name them,
// are forgotten after the retention, as new operations arrive.
func TestOperationRetention(t *testing.T) {
	fx := newFixture(t, cloudmap.Quotas{})
	first := fx.must(t, "CreateHttpNamespace", `{"Name":"a","CreatorRequestId":"req"}`)["OperationId"].(string)
	code, out := fx.call(account, "CreateHttpNamespace", `{"Name":"b","CreatorRequestId":"req"}`)
	wantError(t, code, out, 409, "DuplicateRequest")
	if out["DuplicateOperationId"] != first {
		t.Errorf("DuplicateOperationId = %v, want %s", out["DuplicateOperationId"], first)
	}
	fx.clock.advance(cloudmap.DefaultOperationRetention - time.Minute)
	fx.must(t, "CreateHttpNamespace", `{"Name":"c"}`)
	fx.must(t, "GetOperation", `{"OperationId":"`+first+`"}`)
	fx.clock.advance(2 * time.Minute)
	fx.must(t, "CreateHttpNamespace", `{"Name":"d"}`) // prunes the first
	code, out = fx.call(account, "GetOperation", `{"OperationId":"`+first+`"}`)
	wantError(t, code, out, 404, "OperationNotFound")
	ops := fx.must(t, "ListOperations", `{}`)["Operations"].([]any)
	if len(ops) != 2 {
		t.Errorf("kept operations = %v, want 2", ops)
	}
	// The request ID is free again.
	fx.must(t, "CreateHttpNamespace", `{"Name":"b","CreatorRequestId":"req"}`)
	if logs := fx.logs.take(); logs != "" {
		t.Errorf("logged: %s", logs)
	}
}

// TestRevisionNeverGoesBack: a service created again under the same name
// starts above the revisions its predecessor reached.
func TestRevisionNeverGoesBack(t *testing.T) {
	fx := newFixture(t, cloudmap.Quotas{})
	ns := fx.created(t, "CreateHttpNamespace", `{"Name":"shop"}`)
	rev := func() float64 {
		return fx.must(t, "DiscoverInstancesRevision", `{"NamespaceName":"shop","ServiceName":"s"}`)["InstancesRevision"].(float64)
	}
	svc := fx.must(t, "CreateService", `{"Name":"s","NamespaceId":"`+ns+`"}`)["Service"].(map[string]any)["Id"].(string)
	for range 3 {
		fx.must(t, "RegisterInstance", `{"ServiceId":"`+svc+`","InstanceId":"i","Attributes":{"k":"v"}}`)
	}
	before := rev()
	fx.must(t, "DeregisterInstance", `{"ServiceId":"`+svc+`","InstanceId":"i"}`)
	fx.must(t, "DeleteService", `{"Id":"`+svc+`"}`)
	fx.must(t, "CreateService", `{"Name":"s","NamespaceId":"`+ns+`"}`)
	if after := rev(); after <= before {
		t.Errorf("revision of the new service %v <= %v of the old one", after, before)
	}
}

func TestUnauthenticated(t *testing.T) {
	fx := newFixture(t, cloudmap.Quotas{})
	rec := fx.raw("", http.MethodPost, cloudmap.TargetPrefix+"ListNamespaces", []byte(`{}`))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), `"__type":"AccessDeniedException"`) {
		t.Errorf("no caller: %d %s", rec.Code, rec.Body)
	}
}
