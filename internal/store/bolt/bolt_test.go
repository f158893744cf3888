package bolt_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/bolt"
	"github.com/trellis-mesh/trellis/internal/store/storetest"
)

// openAt opens a store at path and, when t ends, closes it and checks that
// it left no goroutine behind.
func openAt(t testing.TB, path string, opts bolt.Options) *bolt.Store {
	t.Helper()
	before := runtime.NumGoroutine()
	s, err := bolt.Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
		waitGoroutines(t, before)
	})
	return s
}

func openTemp(t testing.TB, opts bolt.Options) *bolt.Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "trellis.db"), opts)
}

// waitGoroutines polls until at most limit goroutines run. Goroutines that
// were told to stop need a moment to be scheduled and exit, so it waits for
// the count to settle instead of asserting it at one instant.
func waitGoroutines(t testing.TB, limit int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > limit {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("goroutine leak: %d running, want at most %d\n%s", runtime.NumGoroutine(), limit, buf)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// nextEvent receives one event, failing the test if none comes.
func nextEvent(t *testing.T, ch <-chan store.Event) (store.Event, bool) {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case ev, ok := <-ch:
		return ev, ok
	case <-timer.C:
		t.Fatal("timed out waiting for a watch event")
		return store.Event{}, false
	}
}

func TestConformance(t *testing.T) {
	var _ store.Store = (*bolt.Store)(nil)
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t, bolt.Options{}) })
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trellis.db")
	storetest.Reopen(t, func(t *testing.T) store.Store { return openAt(t, path, bolt.Options{}) })
}

// TestRestart writes acknowledged Txns, restarts, and expects every one
// with the revision it was acknowledged at.
func TestRestart(t *testing.T) {
	const n = 200
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nested", "dir", "trellis.db")
	s := openAt(t, path, bolt.Options{})
	acked := make([]int64, n)
	for i := range n {
		rev, err := s.Txn(ctx, nil, []store.Op{store.Put(fmt.Sprintf("k/%04d", i), []byte(fmt.Sprint(i)))})
		if err != nil {
			t.Fatal(err)
		}
		acked[i] = rev
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, path, bolt.Options{})
	if rev, _ := s.Revision(ctx); rev != acked[n-1] {
		t.Fatalf("revision after restart %d, want %d", rev, acked[n-1])
	}
	for i, rev := range acked {
		kv, err := s.Get(ctx, fmt.Sprintf("k/%04d", i))
		if err != nil {
			t.Fatal(err)
		}
		if kv.ModRevision != rev || kv.CreateRevision != rev || string(kv.Value) != fmt.Sprint(i) {
			t.Fatalf("after restart %+v, want value %d at revision %d", kv, i, rev)
		}
	}
	ch, err := s.Watch(ctx, "k/", acked[n/2])
	if err != nil {
		t.Fatal(err)
	}
	for i := n/2 + 1; i < n; i++ {
		ev, _ := nextEvent(t, ch)
		if ev.Revision != acked[i] || ev.KV.Key != fmt.Sprintf("k/%04d", i) {
			t.Fatalf("replay after restart: %+v, want k/%04d at %d", ev, i, acked[i])
		}
	}
}

// crashEnv names the database the helper process writes to.
const crashEnv = "TRELLIS_BOLT_CRASH_DB"

// TestHelperProcess is the child of TestCrash, not a test: it writes until
// it is killed, printing each write once Txn has acknowledged it.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for TestCrash")
	}
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	// Bounded so that an orphaned child ends on its own.
	for i := range 100000 {
		ops := []store.Op{store.Put(fmt.Sprintf("crash/%06d", i), []byte(fmt.Sprint(i)))}
		if i%3 == 0 {
			// Multi-key Txns, so a torn write would show up as a partial one.
			ops = append(ops, store.Put(fmt.Sprintf("crash/%06d/twin", i), []byte(fmt.Sprint(i))))
		}
		rev, err := s.Txn(ctx, nil, ops)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		// os.Stdout is unbuffered: once this returns, the parent can read it.
		fmt.Fprintf(os.Stdout, "ack %d %d\n", i, rev)
	}
	os.Exit(0)
}

// TestCrash kills a writing process with SIGKILL and checks that everything
// it acknowledged before dying is in the file.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	path := filepath.Join(t.TempDir(), "trellis.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const killAfter = 150
	acked := map[int]int64{}
	lines := bufio.NewScanner(stdout)
	killed := false
	for lines.Scan() {
		var i int
		var rev int64
		if _, err := fmt.Sscanf(lines.Text(), "ack %d %d", &i, &rev); err != nil {
			continue // test framework chatter
		}
		acked[i] = rev
		if len(acked) == killAfter && !killed {
			// Process.Kill is SIGKILL: no deferred code, no flush, no Close.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("helper exited before being killed: %v", err)
	}
	t.Logf("child acknowledged %d writes before SIGKILL (%v)", len(acked), err)

	s := openAt(t, path, bolt.Options{})
	ctx := context.Background()
	var maxRev int64
	for i, rev := range acked {
		keys := []string{fmt.Sprintf("crash/%06d", i)}
		if i%3 == 0 {
			keys = append(keys, keys[0]+"/twin")
		}
		for _, k := range keys {
			kv, err := s.Get(ctx, k)
			if err != nil {
				t.Fatalf("acknowledged write %s lost: %v", k, err)
			}
			if kv.ModRevision != rev || string(kv.Value) != fmt.Sprint(i) {
				t.Fatalf("acknowledged write %s = %+v, want %d at revision %d", k, kv, i, rev)
			}
		}
		maxRev = max(maxRev, rev)
	}
	rev, err := s.Revision(ctx)
	if err != nil || rev < maxRev {
		t.Fatalf("revision after crash %d (%v), want at least %d", rev, err, maxRev)
	}
	// The history survived too, and the store keeps working.
	ch, err := s.Watch(ctx, "crash/", maxRev-1)
	if err != nil {
		t.Fatal(err)
	}
	if ev, _ := nextEvent(t, ch); ev.Revision != maxRev {
		t.Fatalf("replay after crash starts at %d, want %d", ev.Revision, maxRev)
	}
	if _, err := s.Txn(ctx, nil, []store.Op{store.Put("after-crash", nil)}); err != nil {
		t.Fatal(err)
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trellis.db")
	first := openAt(t, path, bolt.Options{})

	start := time.Now()
	second, err := bolt.Open(path, bolt.Options{})
	elapsed := time.Since(start)
	if err == nil {
		second.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if !errors.Is(err, bolt.ErrLocked) || !strings.Contains(err.Error(), "data directory is in use by another trellis process") {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if elapsed > 5*time.Second {
		t.Fatalf("second Open took %v to fail", elapsed)
	}
	t.Logf("second Open failed after %v: %v", elapsed.Round(time.Millisecond), err)

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	openAt(t, path, bolt.Options{LockTimeout: 100 * time.Millisecond})
}

func TestCompaction(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "trellis.db")
	opts := bolt.Options{HistoryLimit: 10}
	s := openAt(t, path, opts)
	for i := range 30 {
		if _, err := s.Txn(ctx, nil, []store.Op{store.Put(fmt.Sprint(i), nil)}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(s store.Store) {
		t.Helper()
		for _, after := range []int64{0, 5, 19} {
			if _, err := s.Watch(ctx, "", after); !errors.Is(err, store.ErrCompacted) {
				t.Fatalf("Watch after %d: %v, want ErrCompacted", after, err)
			}
		}
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch, err := s.Watch(wctx, "", 20) // revisions 21..30 are the last 10
		if err != nil {
			t.Fatal(err)
		}
		for want := int64(21); want <= 30; want++ {
			if ev, _ := nextEvent(t, ch); ev.Revision != want {
				t.Fatalf("replay got %d, want %d", ev.Revision, want)
			}
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(openAt(t, path, opts))
}

// TestSlowWatcherDropped checks that a watcher that falls WatchBuffer
// transactions behind has its channel closed, after a gap-free prefix.
func TestSlowWatcherDropped(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, bolt.Options{WatchBuffer: 4})
	ch, err := s.Watch(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	const writes = 200
	for i := range writes {
		if _, err := s.Txn(ctx, nil, []store.Op{store.Put(fmt.Sprint(i), nil)}); err != nil {
			t.Fatal(err)
		}
	}
	var got int64
	for {
		ev, ok := nextEvent(t, ch)
		if !ok {
			break
		}
		got++
		if ev.Revision != got {
			t.Fatalf("got revision %d, want %d", ev.Revision, got)
		}
	}
	if got >= writes {
		t.Fatalf("watcher kept all %d events with a buffer of 4", got)
	}
	// Resuming from the last revision seen picks up the rest.
	ch, err = s.Watch(ctx, "", got)
	if err != nil {
		t.Fatal(err)
	}
	for want := got + 1; want <= writes; want++ {
		if ev, _ := nextEvent(t, ch); ev.Revision != want {
			t.Fatalf("resumed watch got %d, want %d", ev.Revision, want)
		}
	}
}

func TestInvalidOps(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, bolt.Options{})
	for _, ops := range [][]store.Op{
		{store.Put("", nil)},
		{store.Put("ok", nil), {Type: 99, Key: "k"}},
	} {
		if _, err := s.Txn(ctx, nil, ops); err == nil {
			t.Errorf("Txn(%v) succeeded", ops)
		}
	}
	if rev, _ := s.Revision(ctx); rev != 0 {
		t.Fatalf("invalid Txns moved the revision to %d", rev)
	}
	// The last op on a key wins.
	rev, err := s.Txn(ctx, nil, []store.Op{store.Put("k", []byte("1")), store.Delete("k"), store.Put("k", []byte("2"))})
	if err != nil {
		t.Fatal(err)
	}
	if kv, err := s.Get(ctx, "k"); err != nil || string(kv.Value) != "2" || kv.ModRevision != rev {
		t.Fatalf("Get = %+v, %v", kv, err)
	}
	// Put then delete of a new key nets to nothing.
	if got, err := s.Txn(ctx, nil, []store.Op{store.Put("n", nil), store.Delete("n")}); err != nil || got != rev {
		t.Fatalf("Txn = %d, %v; want %d", got, err, rev)
	}
}

// --- benchmarks ------------------------------------------------------------

func fill(b *testing.B, s store.Store, prefix string, n int) {
	b.Helper()
	ops := make([]store.Op, n)
	for i := range ops {
		ops[i] = store.Put(fmt.Sprintf("%s%04d", prefix, i), []byte(`{"name":"service","arn":"arn:aws:vpc-lattice:..."}`))
	}
	if _, err := s.Txn(context.Background(), nil, ops); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkGet(b *testing.B) {
	s := openTemp(b, bolt.Options{})
	fill(b, s, "svc/", 1000)
	ctx := context.Background()
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("svc/%04d", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Get(ctx, keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkList(b *testing.B) {
	s := openTemp(b, bolt.Options{})
	fill(b, s, "a/", 500)
	fill(b, s, "svc/", 100)
	fill(b, s, "z/", 500)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := s.List(ctx, "svc/", store.ListOptions{})
		if err != nil || len(res.Items) != 100 {
			b.Fatal(len(res.Items), err)
		}
	}
}

func BenchmarkTxnPut(b *testing.B) {
	s := openTemp(b, bolt.Options{})
	ctx := context.Background()
	value := []byte(`{"name":"service","arn":"arn:aws:vpc-lattice:..."}`)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Txn(ctx, nil, []store.Op{store.Put(fmt.Sprintf("svc/%d", i%1000), value)}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTxnPutParallel(b *testing.B) {
	s := openTemp(b, bolt.Options{})
	ctx := context.Background()
	value := []byte(`{"name":"service","arn":"arn:aws:vpc-lattice:..."}`)
	var worker atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := worker.Add(1)
		for i := 0; pb.Next(); i++ {
			key := fmt.Sprintf("svc/%d/%d", w, i%1000)
			if _, err := s.Txn(ctx, nil, []store.Op{store.Put(key, value)}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkUpdateSTM(b *testing.B) {
	s := openTemp(b, bolt.Options{})
	fill(b, s, "svc/", 100)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		key := fmt.Sprintf("svc/%04d", i%100)
		_, err := store.Update(ctx, s, func(tx *store.Tx) error {
			kv, err := tx.Get(key)
			if err != nil {
				return err
			}
			tx.Put(key, kv.Value)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
