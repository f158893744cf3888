package snapshot_test

import (
	"bytes"
	"context"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/metrics"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/snapshot"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/bolt"
)

const waitLimit = 10 * time.Second

// recv waits for the next snapshot on ch.
func recv(t *testing.T, ch <-chan *snapshot.Snapshot) *snapshot.Snapshot {
	t.Helper()
	select {
	case s, ok := <-ch:
		if !ok {
			t.Fatal("subscription ended")
		}
		return s
	case <-time.After(waitLimit):
		t.Fatal("no snapshot within the wait limit")
	}
	return nil
}

// recvVersion waits for a snapshot of at least version v (a slow reader
// may see an older one first).
func recvVersion(t *testing.T, ch <-chan *snapshot.Snapshot, v int64) *snapshot.Snapshot {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if s := recv(t, ch); s.Version >= v {
			return s
		}
	}
	t.Fatalf("no snapshot of version %d or later", v)
	return nil
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) rev() int64 {
	e.t.Helper()
	r, err := e.st.Revision(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) tgID(name string) string {
	e.t.Helper()
	for _, it := range e.call("GET", "/targetgroups", nil)["items"].([]any) {
		if m := it.(map[string]any); m["name"] == name {
			return m["id"].(string)
		}
	}
	e.t.Fatalf("no target group %s", name)
	return ""
}

// register adds an IP target to the named group and returns the revision.
func (e *env) register(tg, ip string) int64 {
	e.t.Helper()
	e.call("POST", "/targetgroups/"+e.tgID(tg)+"/registertargets", map[string]any{"targets": []map[string]any{{"id": ip}}})
	return e.rev()
}

func hasTarget(s *snapshot.Snapshot, ip string) bool {
	for _, g := range s.TargetGroups {
		for _, t := range g.Targets {
			if t.ID == ip {
				return true
			}
		}
	}
	return false
}

func newBroker(t *testing.T, e *env, cfg snapshot.BrokerConfig) *snapshot.Broker {
	t.Helper()
	cfg.Store, cfg.Region = e.st, region
	b := snapshot.NewBroker(context.Background(), cfg)
	t.Cleanup(b.Close)
	return b
}

func TestBrokerPublishesOnlyChanges(t *testing.T) {
	e := newEnv(t)
	client, backend := e.world()
	reg := metrics.NewRegistry()
	b := newBroker(t, e, snapshot.BrokerConfig{Metrics: reg})
	ctx := context.Background()
	chA, cancelA := b.Subscribe(ctx, client)
	defer cancelA()
	chB, cancelB := b.Subscribe(ctx, backend)
	defer cancelB()

	first := recv(t, chA)
	if rev := e.rev(); first.Version != rev || b.Latest(client) != rev {
		t.Fatalf("first snapshot version %d, Latest %d; want the store revision %d", first.Version, b.Latest(client), rev)
	}
	recv(t, chB)

	// A write that concerns the client VPC reaches its subscriber.
	rev := e.register("orders-v1", "10.1.0.50")
	if s := recvVersion(t, chA, rev); s.Version != rev || !hasTarget(s, "10.1.0.50") {
		t.Fatalf("after registering a target: version %d (want %d), target present %v", s.Version, rev, hasTarget(s, "10.1.0.50"))
	}
	recvVersion(t, chB, rev) // orders-v1 lives in the backend VPC too
	clientVersion := b.Latest(client)

	// Writes that concern only the backend VPC. Every rebuild covers both
	// VPCs, so once the second has reached the backend subscriber, the
	// rebuild of the first is over too.
	recvVersion(t, chB, e.register("elsewhere", "10.1.0.60"))
	recvVersion(t, chB, e.register("elsewhere", "10.1.0.61"))
	select {
	case s := <-chA:
		t.Errorf("the client VPC got snapshot %d for a change that does not concern it", s.Version)
	default:
	}
	if got := b.Latest(client); got != clientVersion {
		t.Errorf("Latest(client) moved from %d to %d without a content change", clientVersion, got)
	}

	// A new subscriber of a served VPC gets the current snapshot at once.
	ch2, cancel2 := b.Subscribe(ctx, client)
	defer cancel2()
	if s := recv(t, ch2); s.Version != clientVersion {
		t.Errorf("new subscriber got %d, want %d", s.Version, clientVersion)
	}

	// Published: each VPC's first, the change of both, the two of the backend.
	if got := metric(t, reg, "trellis_snapshots_published_total"); got != 6 {
		t.Errorf("trellis_snapshots_published_total = %v, want 6", got)
	}
	if got := metric(t, reg, "trellis_snapshot_subscribers"); got != 3 {
		t.Errorf("trellis_snapshot_subscribers = %v, want 3", got)
	}
	cancel2()
	if got := metric(t, reg, "trellis_snapshot_subscribers"); got != 2 {
		t.Errorf("trellis_snapshot_subscribers after a cancel = %v, want 2", got)
	}
}

func TestBrokerSlowSubscriberGetsOnlyTheLatest(t *testing.T) {
	e := newEnv(t)
	client, _ := e.world()
	b := newBroker(t, e, snapshot.BrokerConfig{})
	ch, cancel := b.Subscribe(context.Background(), client)
	defer cancel()
	waitFor(t, "the first build", func() bool { return b.Latest(client) > 0 })
	// The subscriber reads nothing while five versions are published.
	var last int64
	for i := range 5 {
		last = e.register("orders-v1", "10.1.0."+strconv.Itoa(100+i))
		waitFor(t, "a publish", func() bool { return b.Latest(client) == last })
	}
	if s := recv(t, ch); s.Version != last {
		t.Errorf("slow subscriber got version %d, want only the latest, %d", s.Version, last)
	}
	select {
	case s := <-ch:
		t.Errorf("an intermediate version %d was queued", s.Version)
	default:
	}
}

// blockingCerts lets a test hold the broker inside a build.
type blockingCerts struct {
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
	calls   atomic.Int64
}

func (c *blockingCerts) ServiceCertificate(context.Context, *model.Service) (*snapshot.Certificate, error) {
	c.calls.Add(1)
	if c.armed.CompareAndSwap(true, false) {
		c.entered <- struct{}{}
		<-c.release
	}
	return &snapshot.Certificate{CertPEM: "CERT", KeyPEM: "KEY"}, nil
}

func TestBrokerRebuildsAfterCompaction(t *testing.T) {
	// A store that keeps two revisions of history and drops a watcher two
	// transactions behind.
	e := newEnvWith(t, bolt.Options{HistoryLimit: 2, WatchBuffer: 1})
	client, _ := e.world()
	var logs syncBuffer
	certs := &blockingCerts{entered: make(chan struct{}), release: make(chan struct{})}
	b := newBroker(t, e, snapshot.BrokerConfig{Certs: certs, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ch, cancel := b.Subscribe(context.Background(), client)
	defer cancel()
	recv(t, ch)

	// Hold the broker in a build while the store moves far ahead.
	certs.armed.Store(true)
	e.register("orders-v1", "10.1.0.70")
	<-certs.entered
	// More transactions than the watch buffers (its queue and its
	// channel) while the broker is stuck.
	for i := range 100 {
		if _, err := e.st.Txn(context.Background(), nil, []store.Op{store.Put("/test/"+strconv.Itoa(i), []byte("x"))}); err != nil {
			t.Fatal(err)
		}
	}
	last := e.register("orders-v1", "10.1.0.99")
	close(certs.release)

	s := recvVersion(t, ch, last)
	if s.Version != last || !hasTarget(s, "10.1.0.99") {
		t.Errorf("after compaction: version %d (want %d), last target present %v", s.Version, last, hasTarget(s, "10.1.0.99"))
	}
	if !strings.Contains(logs.String(), "rebuilding from scratch") {
		t.Errorf("the broker did not report falling behind the history; logs:\n%s", logs.String())
	}
}

func TestBrokerDebouncesBursts(t *testing.T) {
	e := newEnv(t)
	client, _ := e.world()
	certs := &blockingCerts{}
	const debounce = 100 * time.Millisecond
	b := newBroker(t, e, snapshot.BrokerConfig{Certs: certs, Debounce: debounce})
	ch, cancel := b.Subscribe(context.Background(), client)
	defer cancel()
	recv(t, ch)
	before := certs.calls.Load() // one call per build: one HTTPS service
	start := time.Now()
	var last int64
	for i := range 20 {
		last = e.register("orders-v1", "10.1.1."+strconv.Itoa(i))
	}
	elapsed := time.Since(start)
	recvVersion(t, ch, last)
	builds := certs.calls.Load() - before
	// At most one build per debounce window while the burst lasted, plus
	// the one that picks up its end.
	if limit := int64(elapsed/debounce) + 2; builds > limit {
		t.Errorf("%d builds for 20 writes in %v; want at most %d with a %v debounce", builds, elapsed, limit, debounce)
	}
}

func TestBrokerEndsSubscriptions(t *testing.T) {
	e := newEnv(t)
	client, _ := e.world()
	b := newBroker(t, e, snapshot.BrokerConfig{})

	// A cancelled subscription's channel closes, as does one whose
	// context ends.
	ch, cancel := b.Subscribe(context.Background(), client)
	recv(t, ch)
	cancel()
	cancel()
	expectClosed(t, ch)
	ctx, stop := context.WithCancel(context.Background())
	ch, cancel = b.Subscribe(ctx, client)
	defer cancel()
	stop()
	expectClosed(t, ch)

	// An unknown VPC, or one that is deleted, ends its subscriptions.
	ch, cancel = b.Subscribe(context.Background(), "vpc-0000000000000000f")
	defer cancel()
	expectClosed(t, ch)
	other := e.id("POST", "/trellis/v1/vpcs", map[string]any{"name": "short-lived", "cidrs": []string{"10.5.0.0/16"}})
	ch, cancel = b.Subscribe(context.Background(), other)
	defer cancel()
	recv(t, ch)
	e.call("DELETE", "/trellis/v1/vpcs/"+other, nil)
	expectClosed(t, ch)
}

// expectClosed drains ch until it closes.
func expectClosed(t *testing.T, ch <-chan *snapshot.Snapshot) {
	t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("subscription channel did not close")
		}
	}
}

func TestBrokerCloseLeaksNothing(t *testing.T) {
	for _, stopBy := range []string{"Close", "context"} {
		t.Run(stopBy, func(t *testing.T) {
			e := newEnv(t)
			client, backend := e.world()
			base := runtime.NumGoroutine()
			ctx, cancel := context.WithCancel(context.Background())
			b := snapshot.NewBroker(ctx, snapshot.BrokerConfig{Store: e.st, Region: region})
			chs := []<-chan *snapshot.Snapshot{}
			for _, vpc := range []string{client, backend, client} {
				ch, _ := b.Subscribe(context.Background(), vpc)
				chs = append(chs, ch)
			}
			recv(t, chs[0])
			e.register("orders-v1", "10.1.0.80")
			if stopBy == "Close" {
				b.Close()
			} else {
				cancel()
			}
			for _, ch := range chs {
				expectClosed(t, ch)
			}
			b.Close() // after a context stop, Close still returns at once
			cancel()
			waitFor(t, "the broker's goroutines to exit", func() bool { return runtime.NumGoroutine() <= base })
			// A subscription after Close ends at once.
			ch, _ := b.Subscribe(context.Background(), client)
			expectClosed(t, ch)
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// renewingCerts hands out generation 1 until renewAt, then generation 2.
type renewingCerts struct {
	mu      sync.Mutex
	renewAt time.Time
	gen     int
}

func (c *renewingCerts) ServiceCertificate(context.Context, *model.Service) (*snapshot.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !time.Now().Before(c.renewAt) {
		c.gen, c.renewAt = c.gen+1, time.Now().Add(time.Hour)
	}
	return &snapshot.Certificate{CertPEM: "generation " + strconv.Itoa(c.gen), KeyPEM: "KEY"}, nil
}

func (c *renewingCerts) NextRenewal() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.renewAt
}

func TestBrokerRebuildsForCertificateRenewal(t *testing.T) {
	e := newEnv(t)
	client, _ := e.world()
	certs := &renewingCerts{gen: 1, renewAt: time.Now().Add(300 * time.Millisecond)}
	b := newBroker(t, e, snapshot.BrokerConfig{Certs: certs})
	ch, cancel := b.Subscribe(context.Background(), client)
	defer cancel()
	cert := func(s *snapshot.Snapshot) string {
		for _, svc := range s.Services {
			if svc.Certificate != nil {
				return svc.Certificate.CertPEM
			}
		}
		return ""
	}
	first := recv(t, ch)
	if cert(first) != "generation 1" {
		t.Fatalf("first snapshot's certificate: %q", cert(first))
	}
	// No store change: the renewal alone brings a new snapshot, with a
	// higher version although the store revision is the same.
	second := recv(t, ch)
	if cert(second) != "generation 2" || second.Version != first.Version+1 || e.rev() != first.Version {
		t.Errorf("after the renewal: %q at version %d (first %d, store at %d)", cert(second), second.Version, first.Version, e.rev())
	}
}

// metric is the value of an unlabelled counter or gauge in reg.
func metric(t *testing.T, reg *metrics.Registry, name string) float64 {
	t.Helper()
	v, ok := reg.Samples()[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	return v
}
