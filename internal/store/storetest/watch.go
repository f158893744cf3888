package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/store"
)

// recvError is what recv reports instead of an event. It is a string type
// so the values can be constants.
type recvError string

func (e recvError) Error() string { return string(e) }

const (
	errChannelClosed recvError = "watch channel closed"
	errTimeout       recvError = "timed out waiting for a watch event"
)

// recv waits for the next event. Unlike next it is usable from any
// goroutine.
func recv(ch <-chan store.Event) (store.Event, error) {
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case ev, ok := <-ch:
		if !ok {
			return store.Event{}, errChannelClosed
		}
		return ev, nil
	case <-timer.C:
		return store.Event{}, errTimeout
	}
}

func next(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	ev, err := recv(ch)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// expectEvent checks the next event. For deletes only Key, Value == nil,
// ModRevision and Revision are part of the contract.
func expectEvent(t *testing.T, ch <-chan store.Event, typ store.EventType, key, value string, rev int64) store.Event {
	t.Helper()
	ev := next(t, ch)
	ok := ev.Type == typ && ev.KV.Key == key && ev.Revision == rev && ev.KV.ModRevision == rev
	switch typ {
	case store.EventPut:
		ok = ok && string(ev.KV.Value) == value && ev.KV.CreateRevision > 0 && ev.KV.CreateRevision <= rev
	case store.EventDelete:
		ok = ok && ev.KV.Value == nil
	}
	if !ok {
		t.Fatalf("event = %s, want type %d %q=%q at %d", fmtEvent(ev), typ, key, value, rev)
	}
	return ev
}

// expectClosed drains ch until it closes; pending events are allowed.
func expectClosed(t *testing.T, ch <-chan store.Event) {
	t.Helper()
	for {
		if _, err := recv(ch); err != nil {
			if !errors.Is(err, errChannelClosed) {
				t.Fatalf("watch channel did not close: %v", err)
			}
			return
		}
	}
}

func fmtEvent(ev store.Event) string {
	return fmt.Sprintf("{type %d %q=%q create %d mod %d rev %d}",
		ev.Type, ev.KV.Key, ev.KV.Value, ev.KV.CreateRevision, ev.KV.ModRevision, ev.Revision)
}

func watch(t *testing.T, s store.Store, prefix string, after int64) <-chan store.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := s.Watch(ctx, prefix, after)
	if err != nil {
		t.Fatalf("Watch(%q, %d): %v", prefix, after, err)
	}
	return ch
}

func testWatchReplayThenLive(t *testing.T, s store.Store) {
	r1 := put(t, s, "a", "1")
	r2 := put(t, s, "b", "2")
	r3 := txn(t, s, nil, store.Delete("a"))
	ch := watch(t, s, "", 0)
	expectEvent(t, ch, store.EventPut, "a", "1", r1)
	ev := expectEvent(t, ch, store.EventPut, "b", "2", r2)
	if ev.KV.CreateRevision != r2 {
		t.Fatalf("replayed create revision %d, want %d", ev.KV.CreateRevision, r2)
	}
	expectEvent(t, ch, store.EventDelete, "a", "", r3)
	r4 := put(t, s, "b", "3")
	ev = expectEvent(t, ch, store.EventPut, "b", "3", r4)
	if ev.KV.CreateRevision != r2 {
		t.Fatalf("live create revision %d, want %d", ev.KV.CreateRevision, r2)
	}
	r5 := put(t, s, "c", "1")
	expectEvent(t, ch, store.EventPut, "c", "1", r5)
}

func testWatchFromRevision(t *testing.T, s store.Store) {
	var revs []int64
	for i := range 5 {
		revs = append(revs, put(t, s, fmt.Sprintf("k%d", i), "v"))
	}
	ch := watch(t, s, "", revs[1])
	for i := 2; i < 5; i++ {
		expectEvent(t, ch, store.EventPut, fmt.Sprintf("k%d", i), "v", revs[i])
	}
	r := put(t, s, "live", "v")
	expectEvent(t, ch, store.EventPut, "live", "v", r)

	// Watching from the current revision gets only what comes next.
	ch = watch(t, s, "", r)
	r2 := put(t, s, "later", "v")
	expectEvent(t, ch, store.EventPut, "later", "v", r2)
}

func testWatchFutureRevision(t *testing.T, s store.Store) {
	rev := put(t, s, "a", "1")
	ch := watch(t, s, "", rev+2)
	put(t, s, "skip1", "v")
	put(t, s, "skip2", "v")
	r := put(t, s, "seen", "v")
	expectEvent(t, ch, store.EventPut, "seen", "v", r)
}

func testWatchTxnEventsTogether(t *testing.T, s store.Store) {
	put(t, s, "t/b", "old")
	start := revision(t, s)
	live := watch(t, s, "t/", start)
	rev := txn(t, s, nil,
		store.Put("t/d", []byte("4")),
		store.Put("t/a", []byte("1")),
		store.Delete("t/b"),
		store.Put("t/c", []byte("3")),
	)
	replay := watch(t, s, "t/", start)
	for _, ch := range []<-chan store.Event{live, replay} {
		expectEvent(t, ch, store.EventPut, "t/a", "1", rev)
		expectEvent(t, ch, store.EventDelete, "t/b", "", rev)
		expectEvent(t, ch, store.EventPut, "t/c", "3", rev)
		expectEvent(t, ch, store.EventPut, "t/d", "4", rev)
	}

	// Concurrent multi-key Txns never interleave in the stream.
	const writers, txns, width = 3, 15, 3
	from := revision(t, s)
	ch := watch(t, s, "g/", from)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range txns {
				var ops []store.Op
				for k := width - 1; k >= 0; k-- {
					ops = append(ops, store.Put(fmt.Sprintf("g/%d/%02d/%d", w, i, k), []byte("v")))
				}
				if _, err := s.Txn(context.Background(), nil, ops); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	last := from
	for range writers * txns {
		group := make([]store.Event, width)
		for k := range group {
			group[k] = next(t, ch)
		}
		if group[0].Revision != last+1 {
			t.Fatalf("txn group at revision %d after %d", group[0].Revision, last)
		}
		last = group[0].Revision
		txnKey := strings.TrimSuffix(group[0].KV.Key, "/0")
		for k, ev := range group {
			if ev.Revision != last || ev.KV.Key != fmt.Sprintf("%s/%d", txnKey, k) {
				t.Fatalf("event %d of txn %d is %s, want key %s/%d", k, last, fmtEvent(ev), txnKey, k)
			}
		}
	}
}

func testWatchPrefix(t *testing.T, s store.Store) {
	before := put(t, s, "w/old", "1", "wx", "1")
	ch := watch(t, s, "w/", before)
	put(t, s, "wx", "2")
	put(t, s, "w", "1")
	put(t, s, "x/w/a", "1")
	r1 := put(t, s, "w/a", "1")
	r2 := put(t, s, "other", "1", "w/b", "1", "z", "1")
	expectEvent(t, ch, store.EventPut, "w/a", "1", r1)
	// Only the matching event of a mixed Txn is delivered.
	expectEvent(t, ch, store.EventPut, "w/b", "1", r2)
	put(t, s, "ww", "1")
	r3 := txn(t, s, nil, store.Delete("w/old"))
	expectEvent(t, ch, store.EventDelete, "w/old", "", r3)

	// Replay filters the same way.
	replay := watch(t, s, "w/", 0)
	expectEvent(t, replay, store.EventPut, "w/old", "1", before)
	expectEvent(t, replay, store.EventPut, "w/a", "1", r1)
	expectEvent(t, replay, store.EventPut, "w/b", "1", r2)
	expectEvent(t, replay, store.EventDelete, "w/old", "", r3)
}

func testWatchDelete(t *testing.T, s store.Store) {
	put(t, s, "k", "v")
	ch := watch(t, s, "k", revision(t, s))
	r := txn(t, s, nil, store.Delete("k"), store.Delete("k-missing"))
	expectEvent(t, ch, store.EventDelete, "k", "", r)
	// The missing key produced no event: the next one is the next write.
	r2 := put(t, s, "k", "again")
	expectEvent(t, ch, store.EventPut, "k", "again", r2)
}

func testWatchCancel(t *testing.T, s store.Store) {
	put(t, s, "a", "1")
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := s.Watch(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	next(t, ch)
	cancel()
	expectClosed(t, ch)

	// Cancelling a watch that never received anything ends it too, and
	// writes keep working.
	ctx, cancel = context.WithCancel(context.Background())
	ch, err = s.Watch(ctx, "", revision(t, s))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	expectClosed(t, ch)
	put(t, s, "b", "1")
}

// testWatchDuringWrites starts many watches while a writer is busy, from
// revisions a little in the past, so that history replay and the switch to
// live events race with commits. Every watch must see every revision exactly
// once, in order.
func testWatchDuringWrites(t *testing.T, s store.Store) {
	const writes, watchers = 120, 4
	base := put(t, s, "w/base", "v")
	final := base + writes
	var writing atomic.Bool
	writing.Store(true)
	var wg sync.WaitGroup
	errs := make(chan error, watchers+1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer writing.Store(false)
		for i := range writes {
			if _, err := s.Txn(context.Background(), nil,
				[]store.Op{store.Put(fmt.Sprintf("w/%03d", i), []byte("v"))}); err != nil {
				errs <- err
				return
			}
		}
	}()
	var rounds atomic.Int64
	for range watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for writing.Load() {
				rounds.Add(1)
				if err := watchOnce(s, base, final); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d watches raced with %d writes", rounds.Load(), writes)
}

// watchOnce watches from shortly before the current revision and checks the
// next few revisions arrive exactly once and in order.
func watchOnce(s store.Store, base, final int64) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cur, err := s.Revision(ctx)
	if err != nil {
		return err
	}
	after := max(base, cur-3)
	ch, err := s.Watch(ctx, "w/", after)
	if err != nil {
		return err
	}
	for want := after + 1; want <= min(after+8, final); want++ {
		ev, err := recv(ch)
		if err != nil {
			return fmt.Errorf("watch from %d, waiting for %d: %w", after, want, err)
		}
		if ev.Revision != want {
			return fmt.Errorf("watch from %d: got revision %d, want %d", after, ev.Revision, want)
		}
	}
	return nil
}

// testWatchSlowReader checks a reader that does not read cannot hold up
// writers, and that what it eventually reads has no gaps.
func testWatchSlowReader(t *testing.T, s store.Store) {
	const writes = 300
	ch := watch(t, s, "", 0)
	done := make(chan error, 1)
	go func() {
		for i := range writes {
			if _, err := s.Txn(context.Background(), nil,
				[]store.Op{store.Put(fmt.Sprintf("s/%03d", i), []byte("v"))}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-timer.C:
		t.Fatal("writes blocked behind a watcher that does not read")
	}
	// The backlog is either delivered in full or cut short by closing the
	// channel, never with a hole.
	for want := int64(1); want <= writes; want++ {
		ev, err := recv(ch)
		if errors.Is(err, errChannelClosed) {
			t.Logf("slow watcher dropped after revision %d", want-1)
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Revision != want {
			t.Fatalf("slow watcher got revision %d, want %d", ev.Revision, want)
		}
	}
}
