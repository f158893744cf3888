// Package storetest is the conformance suite for store.Store
// implementations. It tests only the interface contract, so every backend
// (bolt today, etcd later) runs the same suite from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... })
//	}
//
// open must return a new, empty store each time it is called. The suite
// closes every store it gets (through t.Cleanup, and some subtests call Close
// themselves), so cleanups that open registers run after the store is
// closed, which makes them the place for leak checks and file removal; a
// Close there must tolerate store.ErrClosed. Subtests run sequentially.
//
// Behaviour the suite pins beyond the interface comments:
//   - A Txn that changes nothing (no ops, or only deletes of missing keys)
//     checks its compares but does not advance the revision; it returns the
//     current revision.
//   - Calls with an already-cancelled context fail with an error wrapping
//     context.Canceled and write nothing.
//   - Values are copied: changing a slice passed to Put or returned by Get
//     does not change the stored value.
//   - A Watch channel, when it closes early because the reader is slow, has
//     delivered a gap-free prefix of the events.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/store"
)

// waitTimeout bounds every wait for an event, so a missing event fails the
// test instead of hanging it.
const waitTimeout = 10 * time.Second

// Run runs the conformance suite.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"GetMissing", testGetMissing},
		{"PutGet", testPutGet},
		{"EmptyValue", testEmptyValue},
		{"ValuesAreCopied", testValuesAreCopied},
		{"Revisions", testRevisions},
		{"TxnWithoutChange", testTxnWithoutChange},
		{"TxnAtomic", testTxnAtomic},
		{"CompareKey", testCompareKey},
		{"ComparePrefix", testComparePrefix},
		{"ListOrder", testListOrder},
		{"ListPrefixIsolation", testListPrefixIsolation},
		{"ListPagination", testListPagination},
		{"Delete", testDelete},
		{"CancelledContext", testCancelledContext},
		{"WatchReplayThenLive", testWatchReplayThenLive},
		{"WatchFromRevision", testWatchFromRevision},
		{"WatchFutureRevision", testWatchFutureRevision},
		{"WatchTxnEventsTogether", testWatchTxnEventsTogether},
		{"WatchPrefix", testWatchPrefix},
		{"WatchDelete", testWatchDelete},
		{"WatchCancel", testWatchCancel},
		{"WatchDuringWrites", testWatchDuringWrites},
		{"WatchSlowReader", testWatchSlowReader},
		{"ConcurrentCAS", testConcurrentCAS},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, openStore(t, open))
		})
	}
}

// openStore opens a store and makes sure it is closed when t ends.
func openStore(t *testing.T, open func(t *testing.T) store.Store) store.Store {
	t.Helper()
	s := open(t)
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// --- helpers -----------------------------------------------------------

func txn(t *testing.T, s store.Store, cmps []store.Compare, ops ...store.Op) int64 {
	t.Helper()
	rev, err := s.Txn(context.Background(), cmps, ops)
	if err != nil {
		t.Fatalf("Txn(%v, %v): %v", cmps, ops, err)
	}
	return rev
}

// put writes key/value pairs in one Txn and returns its revision.
func put(t *testing.T, s store.Store, kv ...string) int64 {
	t.Helper()
	var ops []store.Op
	for i := 0; i+1 < len(kv); i += 2 {
		ops = append(ops, store.Put(kv[i], []byte(kv[i+1])))
	}
	return txn(t, s, nil, ops...)
}

func get(t *testing.T, s store.Store, key string) store.KV {
	t.Helper()
	kv, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return kv
}

func revision(t *testing.T, s store.Store) int64 {
	t.Helper()
	rev, err := s.Revision(context.Background())
	if err != nil {
		t.Fatalf("Revision: %v", err)
	}
	return rev
}

func list(t *testing.T, s store.Store, prefix string, opts store.ListOptions) store.ListResult {
	t.Helper()
	res, err := s.List(context.Background(), prefix, opts)
	if err != nil {
		t.Fatalf("List(%q, %+v): %v", prefix, opts, err)
	}
	return res
}

func keys(items []store.KV) []string {
	out := make([]string, len(items))
	for i, kv := range items {
		out[i] = kv.Key
	}
	return out
}

func expectNotFound(t *testing.T, s store.Store, key string) {
	t.Helper()
	if kv, err := s.Get(context.Background(), key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) = %+v, %v; want ErrNotFound", key, kv, err)
	}
}

func expectConflict(t *testing.T, s store.Store, cmps []store.Compare, ops ...store.Op) {
	t.Helper()
	before := revision(t, s)
	if rev, err := s.Txn(context.Background(), cmps, ops); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Txn(%v) = %d, %v; want ErrConflict", cmps, rev, err)
	}
	if after := revision(t, s); after != before {
		t.Fatalf("failed Txn moved the revision from %d to %d", before, after)
	}
}

// --- basic key-value behaviour -------------------------------------------

func testGetMissing(t *testing.T, s store.Store) {
	expectNotFound(t, s, "missing")
	put(t, s, "a", "1")
	expectNotFound(t, s, "missing")
	expectNotFound(t, s, "a/") // neither a prefix match nor a near miss counts
}

func testPutGet(t *testing.T, s store.Store) {
	rev := put(t, s, "svc/one", "hello")
	kv := get(t, s, "svc/one")
	want := store.KV{Key: "svc/one", Value: []byte("hello"), CreateRevision: rev, ModRevision: rev}
	if !equalKV(kv, want) {
		t.Fatalf("Get = %+v, want %+v", kv, want)
	}
}

func testEmptyValue(t *testing.T, s store.Store) {
	txn(t, s, nil, store.Put("empty", nil), store.Put("zero", []byte{}))
	for _, k := range []string{"empty", "zero"} {
		if kv := get(t, s, k); len(kv.Value) != 0 {
			t.Errorf("Get(%q).Value = %q, want empty", k, kv.Value)
		}
	}
}

func testValuesAreCopied(t *testing.T, s store.Store) {
	w1, w2 := watch(t, s, "", 0), watch(t, s, "", 0)
	buf := []byte("original")
	txn(t, s, nil, store.Put("k", buf))
	// Two watchers get independent values.
	ev := next(t, w1)
	copy(ev.KV.Value, "ZZZZZZZZ")
	if ev := next(t, w2); string(ev.KV.Value) != "original" {
		t.Fatalf("a watcher's event value changed with another's: %q", ev.KV.Value)
	}
	copy(buf, "XXXXXXXX")
	kv := get(t, s, "k")
	if string(kv.Value) != "original" {
		t.Fatalf("stored value changed with the caller's slice: %q", kv.Value)
	}
	copy(kv.Value, "YYYYYYYY")
	if kv := get(t, s, "k"); string(kv.Value) != "original" {
		t.Fatalf("stored value changed with a returned slice: %q", kv.Value)
	}
}

func testRevisions(t *testing.T, s store.Store) {
	if rev := revision(t, s); rev != 0 {
		t.Fatalf("empty store revision = %d, want 0", rev)
	}
	r1 := put(t, s, "a", "1")
	r2 := put(t, s, "b", "1")
	r3 := put(t, s, "a", "2")
	if r1 != 1 || r2 != 2 || r3 != 3 {
		t.Fatalf("revisions = %d, %d, %d; want 1, 2, 3", r1, r2, r3)
	}
	if rev := revision(t, s); rev != r3 {
		t.Fatalf("Revision = %d, want %d", rev, r3)
	}
	a := get(t, s, "a")
	if a.CreateRevision != r1 || a.ModRevision != r3 {
		t.Fatalf("a revisions = create %d mod %d; want %d, %d", a.CreateRevision, a.ModRevision, r1, r3)
	}
	b := get(t, s, "b")
	if b.CreateRevision != r2 || b.ModRevision != r2 {
		t.Fatalf("b revisions = create %d mod %d; want %d, %d", b.CreateRevision, b.ModRevision, r2, r2)
	}
	// Rewriting the same value is still a change.
	if r4 := put(t, s, "a", "2"); r4 != 4 || get(t, s, "a").ModRevision != 4 {
		t.Fatalf("identical put: revision %d, mod %d; want 4, 4", r4, get(t, s, "a").ModRevision)
	}
}

func testTxnWithoutChange(t *testing.T, s store.Store) {
	rev := put(t, s, "a", "1")
	if got := txn(t, s, nil); got != rev {
		t.Fatalf("empty Txn = %d, want current revision %d", got, rev)
	}
	if got := txn(t, s, nil, store.Delete("missing")); got != rev {
		t.Fatalf("Txn deleting a missing key = %d, want current revision %d", got, rev)
	}
	if got := txn(t, s, []store.Compare{{Key: "a", Revision: rev}}); got != rev {
		t.Fatalf("compare-only Txn = %d, want %d", got, rev)
	}
	// A Txn without ops still checks its compares.
	expectConflict(t, s, []store.Compare{{Key: "a", Revision: rev + 7}})
	expectConflict(t, s, []store.Compare{{Key: "a"}}, store.Delete("missing"))
	if got := revision(t, s); got != rev {
		t.Fatalf("revision moved to %d by Txns that changed nothing, want %d", got, rev)
	}
	if next := put(t, s, "b", "1"); next != rev+1 {
		t.Fatalf("next change got revision %d, want %d", next, rev+1)
	}
}

func testTxnAtomic(t *testing.T, s store.Store) {
	put(t, s, "x/old", "gone soon", "x/keep", "1")
	rev := txn(t, s, nil,
		store.Put("x/c", []byte("3")),
		store.Put("x/a", []byte("1")),
		store.Delete("x/old"),
		store.Put("x/b", []byte("2")),
	)
	for _, k := range []string{"x/a", "x/b", "x/c"} {
		if kv := get(t, s, k); kv.ModRevision != rev || kv.CreateRevision != rev {
			t.Errorf("%s revisions = %d/%d, want %d", k, kv.CreateRevision, kv.ModRevision, rev)
		}
	}
	expectNotFound(t, s, "x/old")

	// A failing compare anywhere in the list leaves every op unapplied.
	expectConflict(t, s,
		[]store.Compare{{Key: "x/a", Revision: rev}, {Key: "x/keep", Revision: rev}},
		store.Put("x/a", []byte("changed")), store.Put("x/new", []byte("1")), store.Delete("x/b"))
	if kv := get(t, s, "x/a"); string(kv.Value) != "1" {
		t.Errorf("x/a = %q after failed Txn", kv.Value)
	}
	get(t, s, "x/b")
	expectNotFound(t, s, "x/new")
}

func testCompareKey(t *testing.T, s store.Store) {
	// Revision 0: the key must not exist.
	r1 := txn(t, s, []store.Compare{{Key: "k"}}, store.Put("k", []byte("1")))
	expectConflict(t, s, []store.Compare{{Key: "k"}}, store.Put("k", []byte("again")))

	// Equal ModRevision holds, anything else conflicts.
	r2 := txn(t, s, []store.Compare{{Key: "k", Revision: r1}}, store.Put("k", []byte("2")))
	expectConflict(t, s, []store.Compare{{Key: "k", Revision: r1}}, store.Put("k", []byte("stale")))
	expectConflict(t, s, []store.Compare{{Key: "k", Revision: r2 + 1}}, store.Put("k", []byte("future")))
	if kv := get(t, s, "k"); string(kv.Value) != "2" || kv.ModRevision != r2 {
		t.Fatalf("k = %q@%d, want 2@%d", kv.Value, kv.ModRevision, r2)
	}

	// A missing key has ModRevision 0 only: comparing it with a real
	// revision conflicts, and after a delete 0 holds again.
	expectConflict(t, s, []store.Compare{{Key: "other", Revision: r2}}, store.Put("other", nil))
	txn(t, s, []store.Compare{{Key: "k", Revision: r2}}, store.Delete("k"))
	txn(t, s, []store.Compare{{Key: "k"}}, store.Put("k", []byte("3")))
}

func testComparePrefix(t *testing.T, s store.Store) {
	put(t, s, "svc/a", "1", "svc/b", "1")
	res := list(t, s, "svc/", store.ListOptions{})
	at := res.Revision
	onPrefix := []store.Compare{{Key: "svc/", Prefix: true, Revision: at}}

	// Unchanged prefix: holds.
	txn(t, s, onPrefix)

	// Changes outside the prefix, including keys that share its first
	// bytes, do not matter.
	put(t, s, "svc", "1", "svcx", "1", "other/a", "1")
	txn(t, s, onPrefix)

	// A create under the prefix is detected.
	created := put(t, s, "svc/new", "1")
	expectConflict(t, s, onPrefix, store.Put("marker", nil))
	// ... but not by a compare taken after it.
	txn(t, s, []store.Compare{{Key: "svc/", Prefix: true, Revision: created}})

	// A modify under the prefix is detected.
	modified := put(t, s, "svc/a", "2")
	expectConflict(t, s, []store.Compare{{Key: "svc/", Prefix: true, Revision: created}}, store.Put("marker", nil))
	marked := txn(t, s, []store.Compare{{Key: "svc/", Prefix: true, Revision: modified}}, store.Put("marker", nil))
	if kv := get(t, s, "marker"); kv.ModRevision != marked {
		t.Fatalf("marker mod revision %d, want %d", kv.ModRevision, marked)
	}
	// An empty prefix covers every key.
	expectConflict(t, s, []store.Compare{{Key: "", Prefix: true, Revision: modified}})
}

// --- listing -------------------------------------------------------------

func testListOrder(t *testing.T, s store.Store) {
	want := []string{"l/a", "l/a/b", "l/b", "l/ba", "l/c", "l/z"}
	shuffled := slices.Clone(want)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, k := range shuffled {
		put(t, s, k, "v:"+k)
	}
	rev := revision(t, s)
	res := list(t, s, "l/", store.ListOptions{})
	if got := keys(res.Items); !slices.Equal(got, want) {
		t.Fatalf("List keys = %q, want %q", got, want)
	}
	if res.More || res.Revision != rev {
		t.Fatalf("List More=%v Revision=%d; want false, %d", res.More, res.Revision, rev)
	}
	for _, kv := range res.Items {
		if string(kv.Value) != "v:"+kv.Key || kv.ModRevision == 0 || kv.CreateRevision == 0 {
			t.Errorf("List item %+v lacks value or revisions", kv)
		}
	}
	if all := list(t, s, "", store.ListOptions{}); len(all.Items) != len(want) {
		t.Fatalf("List(\"\") has %d items, want %d", len(all.Items), len(want))
	}
	if none := list(t, s, "nothing/", store.ListOptions{}); len(none.Items) != 0 || none.More {
		t.Fatalf("List of an empty prefix = %+v", none)
	}
}

func testListPrefixIsolation(t *testing.T, s store.Store) {
	put(t, s, "a", "1", "a/", "1", "a/x", "1", "a/x/y", "1", "ab", "1", "a0", "1", "b/x", "1")
	got := keys(list(t, s, "a/", store.ListOptions{}).Items)
	if want := []string{"a/", "a/x", "a/x/y"}; !slices.Equal(got, want) {
		t.Fatalf("List(a/) = %q, want %q", got, want)
	}
	if got := keys(list(t, s, "a/x/", store.ListOptions{}).Items); !slices.Equal(got, []string{"a/x/y"}) {
		t.Fatalf("List(a/x/) = %q", got)
	}
	// Pagination stays inside the prefix too.
	res := list(t, s, "a/", store.ListOptions{After: "a/x", Limit: 5})
	if got := keys(res.Items); !slices.Equal(got, []string{"a/x/y"}) || res.More {
		t.Fatalf("List(a/, after a/x) = %q more=%v", got, res.More)
	}
}

func testListPagination(t *testing.T, s store.Store) {
	const n = 23
	var want []string
	for i := range n {
		k := fmt.Sprintf("p/%02d", i)
		want = append(want, k)
		put(t, s, k, "v")
	}
	put(t, s, "p0", "outside", "o/1", "outside")
	rev := revision(t, s)

	for _, limit := range []int{1, 5, 7, 23, 24} {
		var got []string
		var pages int
		after := ""
		for {
			res := list(t, s, "p/", store.ListOptions{After: after, Limit: limit})
			pages++
			if len(res.Items) > limit {
				t.Fatalf("limit %d: page of %d items", limit, len(res.Items))
			}
			if res.Revision != rev {
				t.Fatalf("limit %d: page revision %d, want %d", limit, res.Revision, rev)
			}
			got = append(got, keys(res.Items)...)
			remaining := n - len(got)
			if res.More != (remaining > 0) {
				t.Fatalf("limit %d: More=%v with %d keys left", limit, res.More, remaining)
			}
			if !res.More {
				break
			}
			after = res.Items[len(res.Items)-1].Key
		}
		if !slices.Equal(got, want) {
			t.Fatalf("limit %d: paged keys = %q, want %q", limit, got, want)
		}
		if wantPages := (n + limit - 1) / limit; pages != wantPages {
			t.Fatalf("limit %d: %d pages, want %d", limit, pages, wantPages)
		}
	}

	// After need not be an existing key.
	res := list(t, s, "p/", store.ListOptions{After: "p/10x", Limit: 2})
	if got := keys(res.Items); !slices.Equal(got, []string{"p/11", "p/12"}) || !res.More {
		t.Fatalf("after a non-key: %q more=%v", got, res.More)
	}
	// After the last key: an empty, final page.
	res = list(t, s, "p/", store.ListOptions{After: "p/22", Limit: 2})
	if len(res.Items) != 0 || res.More {
		t.Fatalf("after the last key: %q more=%v", keys(res.Items), res.More)
	}
}

func testDelete(t *testing.T, s store.Store) {
	r1 := put(t, s, "d/a", "1", "d/b", "1")
	r2 := txn(t, s, nil, store.Delete("d/a"))
	if r2 != r1+1 {
		t.Fatalf("delete revision %d, want %d", r2, r1+1)
	}
	expectNotFound(t, s, "d/a")
	if got := keys(list(t, s, "d/", store.ListOptions{}).Items); !slices.Equal(got, []string{"d/b"}) {
		t.Fatalf("after delete List = %q", got)
	}
	// Recreating starts a new life: new CreateRevision.
	r3 := put(t, s, "d/a", "2")
	if kv := get(t, s, "d/a"); kv.CreateRevision != r3 || string(kv.Value) != "2" {
		t.Fatalf("recreated key = %+v, want CreateRevision %d", kv, r3)
	}
}

func testCancelledContext(t *testing.T, s store.Store) {
	rev := put(t, s, "c", "1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Get(ctx, "c"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get: %v, want context.Canceled", err)
	}
	if _, err := s.List(ctx, "", store.ListOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("List: %v, want context.Canceled", err)
	}
	if _, err := s.Txn(ctx, nil, []store.Op{store.Put("c", []byte("2"))}); !errors.Is(err, context.Canceled) {
		t.Errorf("Txn: %v, want context.Canceled", err)
	}
	if _, err := s.Watch(ctx, "", 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Watch: %v, want context.Canceled", err)
	}
	if kv := get(t, s, "c"); string(kv.Value) != "1" || revision(t, s) != rev {
		t.Errorf("cancelled Txn wrote: %+v", kv)
	}
}

// --- concurrency and lifecycle ---------------------------------------------

func testConcurrentCAS(t *testing.T, s store.Store) {
	const workers, increments = 8, 25
	ctx := context.Background()
	start := revision(t, s)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < increments; {
				var n int
				var mod int64
				kv, err := s.Get(ctx, "counter")
				switch {
				case errors.Is(err, store.ErrNotFound):
				case err != nil:
					errs <- err
					return
				default:
					if _, err := fmt.Sscan(string(kv.Value), &n); err != nil {
						errs <- err
						return
					}
					mod = kv.ModRevision
				}
				_, err = s.Txn(ctx, []store.Compare{{Key: "counter", Revision: mod}},
					[]store.Op{store.Put("counter", []byte(fmt.Sprint(n+1)))})
				if errors.Is(err, store.ErrConflict) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				done++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if kv := get(t, s, "counter"); string(kv.Value) != fmt.Sprint(workers*increments) {
		t.Fatalf("counter = %s, want %d", kv.Value, workers*increments)
	}
	// Only successful Txns advance the revision.
	if rev := revision(t, s); rev != start+workers*increments {
		t.Fatalf("revision = %d, want %d", rev, start+workers*increments)
	}
}

func testClose(t *testing.T, s store.Store) {
	put(t, s, "k", "v")
	ctx := context.Background()
	ch, err := s.Watch(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	expectClosed(t, ch)

	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", what, err)
		}
	}
	_, err = s.Get(ctx, "k")
	check("Get", err)
	_, err = s.List(ctx, "", store.ListOptions{})
	check("List", err)
	_, err = s.Txn(ctx, nil, []store.Op{store.Put("k", nil)})
	check("Txn", err)
	_, err = s.Revision(ctx)
	check("Revision", err)
	_, err = s.Watch(ctx, "", 0)
	check("Watch", err)
	check("Close", s.Close())
}

func equalKV(a, b store.KV) bool {
	return a.Key == b.Key && string(a.Value) == string(b.Value) &&
		a.CreateRevision == b.CreateRevision && a.ModRevision == b.ModRevision
}
