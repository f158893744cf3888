package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/bolt"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "trellis.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustPut(t *testing.T, s store.Store, key, value string) int64 {
	t.Helper()
	rev, err := s.Txn(context.Background(), nil, []store.Op{store.Put(key, []byte(value))})
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func value(t *testing.T, s store.Store, key string) string {
	t.Helper()
	kv, err := s.Get(context.Background(), key)
	if errors.Is(err, store.ErrNotFound) {
		return "<absent>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(kv.Value)
}

func revision(t *testing.T, s store.Store) int64 {
	t.Helper()
	rev, err := s.Revision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func keysOf(kvs []store.KV) []string {
	var out []string
	for _, kv := range kvs {
		out = append(out, kv.Key+"="+string(kv.Value))
	}
	return out
}

func TestUpdateCommitsAtomically(t *testing.T) {
	s := openStore(t)
	mustPut(t, s, "old", "x")
	rev, err := store.Update(context.Background(), s, func(tx *store.Tx) error {
		tx.Put("a", []byte("1"))
		tx.Put("b", []byte("2"))
		tx.Delete("old")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rev != 2 || revision(t, s) != 2 {
		t.Fatalf("Update revision %d, store revision %d; want 2, 2", rev, revision(t, s))
	}
	if value(t, s, "a") != "1" || value(t, s, "b") != "2" || value(t, s, "old") != "<absent>" {
		t.Fatal("writes not applied")
	}
}

func TestTxReadYourWrites(t *testing.T) {
	s := openStore(t)
	mustPut(t, s, "p/b", "stored-b")
	mustPut(t, s, "p/d", "stored-d")
	mustPut(t, s, "p/e", "stored-e")
	mustPut(t, s, "q/a", "outside")
	_, err := store.Update(context.Background(), s, func(tx *store.Tx) error {
		if _, err := tx.Get("p/a"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("Get missing: %v", err)
		}
		tx.Put("p/a", []byte("new-a"))
		if kv, err := tx.Get("p/a"); err != nil || string(kv.Value) != "new-a" {
			return fmt.Errorf("Get own put = %+v, %v", kv, err)
		}
		if kv, err := tx.Get("p/b"); err != nil || string(kv.Value) != "stored-b" || kv.ModRevision != 1 {
			return fmt.Errorf("Get stored = %+v, %v", kv, err)
		}
		tx.Delete("p/b")
		if _, err := tx.Get("p/b"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("Get own delete: %v", err)
		}
		tx.Put("p/c", []byte("new-c"))
		tx.Put("p/e", []byte("new-e"))
		tx.Delete("p/zz") // missing: no effect on the listing
		tx.Put("q/b", []byte("outside"))
		items, err := tx.List("p/")
		if err != nil {
			return err
		}
		want := []string{"p/a=new-a", "p/c=new-c", "p/d=stored-d", "p/e=new-e"}
		if got := keysOf(items); !slices.Equal(got, want) {
			return fmt.Errorf("List = %q, want %q", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.List(context.Background(), "p/", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keysOf(res.Items), []string{"p/a=new-a", "p/c=new-c", "p/d=stored-d", "p/e=new-e"}; !slices.Equal(got, want) {
		t.Fatalf("committed %q, want %q", got, want)
	}
}

func TestUpdateFnErrorWritesNothing(t *testing.T) {
	s := openStore(t)
	mustPut(t, s, "k", "v")
	errTyped := errors.New("typed api error")
	calls := 0
	_, err := store.Update(context.Background(), s, func(tx *store.Tx) error {
		calls++
		if _, err := tx.Get("k"); err != nil {
			return err
		}
		tx.Put("k", []byte("changed"))
		tx.Put("other", []byte("x"))
		return errTyped
	})
	if err != errTyped {
		t.Fatalf("Update error = %v, want the fn's error unchanged", err)
	}
	if calls != 1 || revision(t, s) != 1 || value(t, s, "k") != "v" || value(t, s, "other") != "<absent>" {
		t.Fatalf("failed Update wrote or retried: calls %d revision %d", calls, revision(t, s))
	}
}

func TestUpdateWithoutWrites(t *testing.T) {
	s := openStore(t)
	rev := mustPut(t, s, "k", "v")
	got, err := store.Update(context.Background(), s, func(tx *store.Tx) error { return nil })
	if err != nil || got != rev {
		t.Fatalf("empty Update = %d, %v; want %d", got, err, rev)
	}
	got, err = store.Update(context.Background(), s, func(tx *store.Tx) error {
		_, err := tx.Get("k")
		return err
	})
	if err != nil || got != rev || revision(t, s) != rev {
		t.Fatalf("read-only Update = %d, %v; want %d and no new revision", got, err, rev)
	}
}

// conflictOnce runs an Update whose first attempt is disturbed by an outside
// write after its reads, and returns how often fn ran.
func conflictOnce(t *testing.T, s store.Store, read func(tx *store.Tx) error, disturb func()) int {
	t.Helper()
	calls := 0
	_, err := store.Update(context.Background(), s, func(tx *store.Tx) error {
		calls++
		if err := read(tx); err != nil {
			return err
		}
		if calls == 1 {
			disturb()
		}
		tx.Put("result", []byte(strconv.Itoa(calls)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return calls
}

func TestUpdateRetriesOnConflict(t *testing.T) {
	s := openStore(t)
	mustPut(t, s, "k", "1")
	mustPut(t, s, "p/a", "1")
	// Reads tolerate absence: the retry sees the disturbed state.
	read := func(key string) func(tx *store.Tx) error {
		return func(tx *store.Tx) error {
			if _, err := tx.Get(key); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			return nil
		}
	}
	getK := read("k")
	listP := func(tx *store.Tx) error { _, err := tx.List("p/"); return err }
	cases := []struct {
		name    string
		read    func(tx *store.Tx) error
		disturb func()
		want    int
	}{
		{"KeyModified", getK, func() { mustPut(t, s, "k", "2") }, 2},
		{"KeyDeleted", getK, func() {
			if _, err := s.Txn(context.Background(), nil, []store.Op{store.Delete("k")}); err != nil {
				t.Error(err)
			}
		}, 2},
		{"MissingKeyCreated", read("missing"), func() { mustPut(t, s, "missing", "now") }, 2},
		{"PrefixCreate", listP, func() { mustPut(t, s, "p/new", "1") }, 2},
		{"PrefixModify", listP, func() { mustPut(t, s, "p/a", "2") }, 2},
		{"UnrelatedWrite", listP, func() { mustPut(t, s, "pa", "1"); mustPut(t, s, "x", "1") }, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := conflictOnce(t, s, tc.read, tc.disturb); got != tc.want {
				t.Fatalf("fn ran %d times, want %d", got, tc.want)
			}
		})
	}
}

// TestUpdateValidatesBeforeReturningError: an error fn computed from reads
// that went stale is not returned; fn runs again on fresh data.
func TestUpdateValidatesBeforeReturningError(t *testing.T) {
	s := openStore(t)
	mustPut(t, s, "parent", "exists")
	errNoParent := errors.New("parent missing")
	calls := 0
	_, err := store.Update(context.Background(), s, func(tx *store.Tx) error {
		calls++
		if _, err := tx.Get("parent"); err != nil {
			return errNoParent
		}
		if calls == 1 {
			// Stands in for fn reading a mix of old and new state.
			mustPut(t, s, "parent", "recreated")
			return errNoParent
		}
		tx.Put("parent/child", []byte("1"))
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("Update = %v after %d calls; want success on the second", err, calls)
	}
}

func TestUpdateGivesUp(t *testing.T) {
	s := openStore(t)
	mustPut(t, s, "hot", "0")
	calls := 0
	_, err := store.Update(context.Background(), s, func(tx *store.Tx) error {
		calls++
		if _, err := tx.Get("hot"); err != nil {
			return err
		}
		mustPut(t, s, "hot", strconv.Itoa(calls)) // always someone faster
		tx.Put("hot", []byte("mine"))
		return nil
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Update = %v, want ErrConflict", err)
	}
	if calls < 2 || value(t, s, "hot") == "mine" {
		t.Fatalf("fn ran %d times, hot = %q", calls, value(t, s, "hot"))
	}
	t.Logf("gave up after %d attempts: %v", calls, err)
}

func TestUpdateContext(t *testing.T) {
	s := openStore(t)
	type ctxKey struct{}
	ctx := context.WithValue(context.Background(), ctxKey{}, "v")
	_, err := store.Update(ctx, s, func(tx *store.Tx) error {
		if tx.Context().Value(ctxKey{}) != "v" {
			return errors.New("wrong context")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = store.Update(cancelled, s, func(tx *store.Tx) error {
		tx.Put("k", nil)
		return nil
	})
	if !errors.Is(err, context.Canceled) || value(t, s, "k") != "<absent>" {
		t.Fatalf("Update with cancelled ctx = %v", err)
	}
}

// TestUpdateConcurrentCounter races updaters on one key: no increment may
// be lost and none should give up.
func TestUpdateConcurrentCounter(t *testing.T) {
	s := openStore(t)
	const workers, increments = 8, 20
	var attempts, worst atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers*increments)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range increments {
				var mine int64
				_, err := store.Update(context.Background(), s, func(tx *store.Tx) error {
					attempts.Add(1)
					mine++
					n := 0
					kv, err := tx.Get("counter")
					switch {
					case errors.Is(err, store.ErrNotFound):
					case err != nil:
						return err
					default:
						if n, err = strconv.Atoi(string(kv.Value)); err != nil {
							return err
						}
					}
					tx.Put("counter", []byte(strconv.Itoa(n+1)))
					// A second key in the same Txn must move in lockstep.
					tx.Put("shadow", []byte(strconv.Itoa(n+1)))
					return nil
				})
				if err != nil {
					errs <- err
				}
				for w := worst.Load(); mine > w && !worst.CompareAndSwap(w, mine); w = worst.Load() {
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := strconv.Itoa(workers * increments)
	if c, sh := value(t, s, "counter"), value(t, s, "shadow"); c != want || sh != want {
		t.Fatalf("counter %s shadow %s, want %s", c, sh, want)
	}
	t.Logf("%d increments took %d attempts, at most %d for one", workers*increments, attempts.Load(), worst.Load())
}

// TestUpdateConcurrentQuota enforces "at most N keys under a prefix" with
// many creators racing: exactly N may win.
func TestUpdateConcurrentQuota(t *testing.T) {
	s := openStore(t)
	const quota, creators, rounds = 5, 16, 3
	errQuota := errors.New("quota exceeded")
	for round := range rounds {
		prefix := fmt.Sprintf("quota/%d/", round)
		var created, refused atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, creators)
		for i := range creators {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := store.Update(context.Background(), s, func(tx *store.Tx) error {
					items, err := tx.List(prefix)
					if err != nil {
						return err
					}
					if len(items) >= quota {
						return errQuota
					}
					tx.Put(fmt.Sprintf("%s%02d", prefix, i), []byte("1"))
					return nil
				})
				switch {
				case err == nil:
					created.Add(1)
				case err == errQuota: // returned unchanged, not wrapped
					refused.Add(1)
				default:
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		res, err := s.List(context.Background(), prefix, store.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if created.Load() != quota || refused.Load() != creators-quota || len(res.Items) != quota {
			t.Fatalf("round %d: created %d, refused %d, stored %d; want %d, %d, %d",
				round, created.Load(), refused.Load(), len(res.Items), quota, creators-quota, quota)
		}
	}
}

// TestUpdateConsistentReads moves money between accounts while read-only
// Updates check the total: a reader must never act on (return an error
// from, or succeed with) a total that mixes states.
func TestUpdateConsistentReads(t *testing.T) {
	s := openStore(t)
	accounts := []string{"acct/a", "acct/b", "acct/c"}
	for _, a := range accounts {
		mustPut(t, s, a, "100")
	}
	const total = 300
	errTorn := errors.New("torn read")
	balance := func(tx *store.Tx, key string) (int, error) {
		kv, err := tx.Get(key)
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(string(kv.Value))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	var writing atomic.Bool
	writing.Store(true)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w == 0 {
				defer writing.Store(false)
			}
			for i := range 30 {
				from, to := accounts[(w+i)%3], accounts[(w+i+1)%3]
				_, err := store.Update(context.Background(), s, func(tx *store.Tx) error {
					f, err := balance(tx, from)
					if err != nil {
						return err
					}
					g, err := balance(tx, to)
					if err != nil {
						return err
					}
					tx.Put(from, []byte(strconv.Itoa(f-7)))
					tx.Put(to, []byte(strconv.Itoa(g+7)))
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for writing.Load() {
				var seen int
				_, err := store.Update(context.Background(), s, func(tx *store.Tx) error {
					seen = 0
					for _, a := range accounts {
						b, err := balance(tx, a)
						if err != nil {
							return err
						}
						seen += b
					}
					if seen != total {
						return errTorn
					}
					return nil
				})
				if err != nil {
					errs <- fmt.Errorf("reader: %w (saw %d)", err, seen)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
