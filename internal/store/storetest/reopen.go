package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/trellis-mesh/trellis/internal/store"
)

// Reopen checks that acknowledged writes, their revisions and the watch
// history survive closing the store and opening it again. open must return
// a store over the same underlying data (the same file, the same cluster)
// every time it is called; Reopen closes each store before the next call.
func Reopen(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := openStore(t, open)
	start := revision(t, s)

	// A mix of creates, updates, multi-key Txns and deletes.
	// Every op below changes a key, so revision revs[i] has len(ops) events.
	var revs []int64
	events := make(map[int64]int)
	for i := range 30 {
		var ops []store.Op
		switch i % 5 {
		case 3:
			ops = append(ops, store.Delete(fmt.Sprintf("r/%02d", i-1)))
		case 4:
			ops = append(ops,
				store.Put(fmt.Sprintf("r/%02d", i-4), []byte(fmt.Sprintf("updated %d", i))),
				store.Put(fmt.Sprintf("r/%02d", i), []byte("second")))
		default:
			ops = append(ops, store.Put(fmt.Sprintf("r/%02d", i), []byte(fmt.Sprintf("v%d", i))))
		}
		rev := txn(t, s, nil, ops...)
		revs = append(revs, rev)
		events[rev] = len(ops)
	}
	eventsAfter := func(from int64) int {
		n := 0
		for rev, c := range events {
			if rev > from {
				n += c
			}
		}
		return n
	}
	wantRev := revision(t, s)
	want := list(t, s, "", store.ListOptions{})
	history := collect(t, s, start, eventsAfter(start))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openStore(t, open)
	if got := revision(t, s); got != wantRev {
		t.Fatalf("revision after reopen = %d, want %d", got, wantRev)
	}
	got := list(t, s, "", store.ListOptions{})
	if len(got.Items) != len(want.Items) {
		t.Fatalf("after reopen %d keys, want %d", len(got.Items), len(want.Items))
	}
	for i := range want.Items {
		if !equalKV(got.Items[i], want.Items[i]) {
			t.Errorf("after reopen %+v, want %+v", got.Items[i], want.Items[i])
		}
		if kv := get(t, s, want.Items[i].Key); !equalKV(kv, want.Items[i]) {
			t.Errorf("Get after reopen %+v, want %+v", kv, want.Items[i])
		}
	}

	// History replays identically, from the start or from the middle.
	for _, from := range []int64{start, revs[len(revs)/2]} {
		replayed := collect(t, s, from, eventsAfter(from))
		var expected []store.Event
		for _, ev := range history {
			if ev.Revision > from {
				expected = append(expected, ev)
			}
		}
		if len(replayed) != len(expected) {
			t.Fatalf("replay from %d after reopen: %d events, want %d", from, len(replayed), len(expected))
		}
		for i := range expected {
			if !equalEvent(replayed[i], expected[i]) {
				t.Errorf("replay from %d: event %s, want %s", from, fmtEvent(replayed[i]), fmtEvent(expected[i]))
			}
		}
	}

	// The revision counter and creation revisions carry on.
	ch, err := s.Watch(ctx, "r/", wantRev)
	if err != nil {
		t.Fatal(err)
	}
	first := want.Items[0]
	r := put(t, s, first.Key, "after reopen")
	if r != wantRev+1 {
		t.Fatalf("first Txn after reopen got revision %d, want %d", r, wantRev+1)
	}
	ev := expectEvent(t, ch, store.EventPut, first.Key, "after reopen", r)
	if ev.KV.CreateRevision != first.CreateRevision {
		t.Fatalf("create revision after reopen %d, want %d", ev.KV.CreateRevision, first.CreateRevision)
	}
}

// collect returns the first n events after revision from.
func collect(t *testing.T, s store.Store, from int64, n int) []store.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := s.Watch(ctx, "", from)
	if err != nil {
		t.Fatalf("Watch(%d): %v", from, err)
	}
	out := make([]store.Event, 0, n)
	for len(out) < n {
		out = append(out, next(t, ch))
	}
	return out
}

func equalEvent(a, b store.Event) bool {
	if a.Type != b.Type || a.Revision != b.Revision || a.KV.Key != b.KV.Key || a.KV.ModRevision != b.KV.ModRevision {
		return false
	}
	if a.Type == store.EventDelete {
		return a.KV.Value == nil && b.KV.Value == nil
	}
	return equalKV(a.KV, b.KV)
}
