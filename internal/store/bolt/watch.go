package bolt

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"

	"go.etcd.io/bbolt"

	"github.com/trellis-mesh/trellis/internal/store"
)

// How a Watch works.
//
// A watcher is registered with the hub before its history is read, and the
// hub records the last revision it published at that moment (P) under the
// same lock that publish takes. Every revision after P therefore reaches the
// watcher's live queue, and every revision up to P is committed and in the
// log. The watch goroutine replays (afterRev, P] from the log, then forwards
// the live queue, dropping anything at or below what it already sent: no gap
// and no duplicate, whatever the interleaving with writers.
//
// Writers never wait for readers: publish does a non-blocking send of the
// whole transaction to each live queue. A queue that is full means the
// reader has fallen WatchBuffer transactions behind; the hub drops the
// watcher and closes its queue. The goroutine still delivers what was queued
// (whole transactions, so a reader never sees half a revision) and then
// closes the channel, and the reader resumes with a new Watch from the last
// revision it saw.

const (
	// replayChunk bounds how many revisions one read transaction decodes:
	// a bbolt read transaction must not stay open while a slow reader
	// drains, because it would hold back the writer's remapping of the file.
	replayChunk = 256
	// outBuffer is the capacity of the channel handed to the caller; it only
	// smooths hand-offs, the real backlog is the live queue.
	outBuffer = 64
)

// batch is the events of one committed revision, in key order.
type batch struct {
	rev    int64
	events []store.Event
	// shared marks a live batch, whose events every watcher receives: their
	// values are copied on delivery so that one reader modifying a value
	// cannot change what another reader sees. Replayed batches are decoded
	// per watcher and need no copy.
	shared bool
}

type watcher struct {
	prefix string
	live   chan batch // closed by the hub when the watcher is dropped
}

// hub fans committed batches out to the registered watchers.
type hub struct {
	mu       sync.Mutex
	rev      int64 // last published revision
	watchers map[*watcher]struct{}
}

func (h *hub) init(rev int64) {
	h.rev = rev
	h.watchers = make(map[*watcher]struct{})
}

// add registers a watcher and returns the last revision published before
// it, from which on the watcher receives every batch.
func (h *hub) add(prefix string, size int) (*watcher, int64) {
	w := &watcher{prefix: prefix, live: make(chan batch, size)}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.watchers[w] = struct{}{}
	return w, h.rev
}

// remove drops w if it is still registered.
func (h *hub) remove(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.watchers[w]; ok {
		delete(h.watchers, w)
		close(w.live)
	}
}

// publish hands b to every interested watcher without blocking.
func (h *hub) publish(b batch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rev = b.rev
	for w := range h.watchers {
		if !touches(b.events, w.prefix) {
			continue
		}
		select {
		case w.live <- b:
		default:
			// Too far behind: better to end this watch than to block
			// every writer or to buffer without bound.
			delete(h.watchers, w)
			close(w.live)
		}
	}
}

// close drops every watcher; called once, by Store.Close.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		delete(h.watchers, w)
		close(w.live)
	}
}

func touches(events []store.Event, prefix string) bool {
	for _, ev := range events {
		if strings.HasPrefix(ev.KV.Key, prefix) {
			return true
		}
	}
	return false
}

// Watch implements store.Store.
func (s *Store) Watch(ctx context.Context, prefix string, afterRev int64) (<-chan store.Event, error) {
	end, err := s.begin(ctx, "watch")
	if err != nil {
		return nil, err
	}
	defer end()
	afterRev = max(afterRev, 0)

	w, published := s.hub.add(prefix, s.opts.WatchBuffer)
	var compacted int64
	err = s.db.View(func(tx *bbolt.Tx) error {
		compacted = getInt(tx.Bucket([]byte(bucketMeta)), metaCompacted)
		return nil
	})
	if err != nil {
		s.hub.remove(w)
		return nil, fmt.Errorf("bolt: watch %q: %w", prefix, err)
	}
	if afterRev < compacted {
		s.hub.remove(w)
		return nil, fmt.Errorf("bolt: watch %q after revision %d: history starts after %d: %w",
			prefix, afterRev, compacted, store.ErrCompacted)
	}

	out := make(chan store.Event, outBuffer)
	// Add happens under closeMu held shared with closed false, so it always
	// precedes Close's Wait.
	s.wg.Add(1)
	go s.runWatch(ctx, w, out, afterRev, published)
	return out, nil
}

// runWatch feeds out: history in (after, published], then the live queue.
func (s *Store) runWatch(ctx context.Context, w *watcher, out chan<- store.Event, after, published int64) {
	defer s.wg.Done()
	defer close(out)
	defer s.hub.remove(w)

	sent := after // highest revision delivered
	for sent < published {
		batches, err := s.readLog(sent, published)
		if err != nil {
			// Compacted meanwhile or store closed: ending the channel
			// makes the reader Watch again, which reports the reason.
			return
		}
		for _, b := range batches {
			if !s.send(ctx, out, w.prefix, b) {
				return
			}
			sent = b.rev
		}
	}
	for {
		select {
		case b, ok := <-w.live:
			if !ok {
				return
			}
			if b.rev <= sent {
				continue // already replayed, or at or before afterRev
			}
			if !s.send(ctx, out, w.prefix, b) {
				return
			}
			sent = b.rev
		case <-ctx.Done():
			return
		case <-s.done:
			return
		}
	}
}

// send delivers the events of b under prefix; false means stop.
func (s *Store) send(ctx context.Context, out chan<- store.Event, prefix string, b batch) bool {
	for _, ev := range b.events {
		if !strings.HasPrefix(ev.KV.Key, prefix) {
			continue
		}
		if b.shared {
			ev.KV.Value = bytes.Clone(ev.KV.Value)
		}
		select {
		case out <- ev:
		case <-ctx.Done():
			return false
		case <-s.done:
			return false
		}
	}
	return true
}

// readLog returns the batches of up to replayChunk revisions after `after`
// and no later than upTo.
func (s *Store) readLog(after, upTo int64) ([]batch, error) {
	end, err := s.begin(context.Background(), "watch")
	if err != nil {
		return nil, err
	}
	defer end()
	var out []batch
	err = s.db.View(func(tx *bbolt.Tx) error {
		if compacted := getInt(tx.Bucket([]byte(bucketMeta)), metaCompacted); after < compacted {
			return store.ErrCompacted
		}
		last := min(upTo, after+replayChunk)
		c := tx.Bucket([]byte(bucketLog)).Cursor()
		want := after + 1
		for k, v := c.Seek(revKey(want)); k != nil && want <= last; k, v = c.Next() {
			rev, err := parseRevKey(k)
			if err != nil {
				return err
			}
			if rev != want {
				break
			}
			events, err := decodeLog(rev, v)
			if err != nil {
				return err
			}
			out = append(out, batch{rev: rev, events: events})
			want++
		}
		if want <= last {
			return fmt.Errorf("log revision %d missing: %w", want, errCorrupt)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: watch replay: %w", err)
	}
	return out, nil
}
