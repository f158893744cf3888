package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Optimistic transactions.
//
// Update runs fn against a Tx that reads straight from the Store and buffers
// writes. Every read leaves a precondition behind: Get a key Compare on the
// ModRevision it saw (0 if the key was absent), List a prefix Compare at the
// revision of the listing. The buffered writes are then committed in one Txn
// guarded by those compares; if anything fn read has changed in the meantime
// the Txn fails with ErrConflict and fn runs again on fresh data. The effect
// is that fn behaves as if it ran alone at its commit revision.
//
// Reads inside one attempt are not a snapshot (each is a separate call), so
// fn can observe a mix of old and new state. That is harmless for the writes,
// which the compares reject, but not for fn's own error: a "not found" or
// "quota exceeded" could be an artefact of such a mix. So when fn fails, its
// reads are validated with a compare-only Txn (no writes, no fsync) and fn is
// retried if they were stale; only an error computed from consistent reads is
// returned. Read-only attempts are validated the same way.
//
// A prefix Compare sees keys created or modified under the prefix but not
// keys deleted there (a deleted key leaves nothing to compare). For the
// intended uses (quotas of the form "at most N keys", uniqueness checks) a
// missed deletion only makes a decision more conservative; code that must
// notice a listed key disappearing should Get it, which does record it.

const (
	// maxAttempts bounds how often Update re-runs fn on conflicts. It is
	// generous because contention on one hot key is normal (every create
	// under a quota'd prefix conflicts with its siblings) and giving up
	// surfaces as a retryable API error.
	maxAttempts = 100
	// backoffBase and backoffMax shape the randomised pause between
	// attempts: without it the goroutine that just won tends to win again,
	// starving the others.
	backoffBase = 200 * time.Microsecond
	backoffMax  = 20 * time.Millisecond
)

// Tx is the view fn gets inside Update. It is not safe for concurrent use,
// and must not be used after fn returns.
type Tx struct {
	ctx   context.Context
	store Store

	reads    map[string]readEntry // key -> what Get first saw
	prefixes map[string]int64     // prefix -> lowest revision it was listed at
	writes   map[string]write     // buffered puts and deletes
}

type readEntry struct {
	kv    KV
	found bool
}

type write struct {
	value   []byte
	deleted bool
}

// Update runs fn in a Tx and commits its writes atomically, returning the
// revision of the commit (or the current revision if fn wrote nothing). On
// ErrConflict it re-runs fn, with a short randomised backoff, up to a bounded
// number of attempts, then returns an error wrapping ErrConflict. If fn
// returns an error, nothing is written and that error is returned unchanged.
func Update(ctx context.Context, s Store, fn func(tx *Tx) error) (int64, error) {
	var conflict error
	for attempt := range maxAttempts {
		if attempt > 0 {
			if err := pause(ctx, attempt); err != nil {
				return 0, fmt.Errorf("store: update: %w (after %v)", err, conflict)
			}
		}
		tx := &Tx{ctx: ctx, store: s}
		if err := fn(tx); err != nil {
			if len(tx.reads) > 0 || len(tx.prefixes) > 0 {
				if _, verr := s.Txn(ctx, tx.compares(), nil); errors.Is(verr, ErrConflict) {
					conflict = verr
					continue
				}
			}
			return 0, err
		}
		rev, err := s.Txn(ctx, tx.compares(), tx.ops())
		if err == nil {
			return rev, nil
		}
		if !errors.Is(err, ErrConflict) {
			return 0, err
		}
		conflict = err
	}
	return 0, fmt.Errorf("store: update gave up after %d attempts: %w", maxAttempts, conflict)
}

// pause sleeps a random time that grows with attempt, or until ctx ends.
func pause(ctx context.Context, attempt int) error {
	ceiling := backoffMax
	if attempt < 16 && backoffBase<<attempt < backoffMax {
		ceiling = backoffBase << attempt
	}
	t := time.NewTimer(rand.N(ceiling) + 1)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Context returns the context Update was called with.
func (tx *Tx) Context() context.Context { return tx.ctx }

// Get returns key as this transaction sees it: its own buffered write if
// there is one, else the stored value. The first read of a key from the
// store makes the commit conditional on the key's ModRevision being
// unchanged (or on it still being absent). A KV from a buffered put has zero
// revisions, since they are not known before the commit. The returned Value
// must not be modified.
func (tx *Tx) Get(key string) (KV, error) {
	if w, ok := tx.writes[key]; ok {
		if w.deleted {
			return KV{}, fmt.Errorf("store: get %q: deleted in this transaction: %w", key, ErrNotFound)
		}
		return KV{Key: key, Value: w.value}, nil
	}
	if r, ok := tx.reads[key]; ok {
		if !r.found {
			return KV{}, fmt.Errorf("store: get %q: %w", key, ErrNotFound)
		}
		return r.kv, nil
	}
	kv, err := tx.store.Get(tx.ctx, key)
	found := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return KV{}, err
	}
	if tx.reads == nil {
		tx.reads = make(map[string]readEntry)
	}
	tx.reads[key] = readEntry{kv: kv, found: found}
	return kv, err
}

// List returns every key under prefix, in key order, as this transaction
// sees it: the stored keys with the buffered puts and deletes applied. The
// commit becomes conditional on no key under prefix being created or
// modified after the listing (see the deletion caveat in the file comment).
func (tx *Tx) List(prefix string) ([]KV, error) {
	res, err := tx.store.List(tx.ctx, prefix, ListOptions{})
	if err != nil {
		return nil, err
	}
	if tx.prefixes == nil {
		tx.prefixes = make(map[string]int64)
	}
	if rev, ok := tx.prefixes[prefix]; !ok || res.Revision < rev {
		tx.prefixes[prefix] = res.Revision
	}

	items := res.Items
	var pending []KV
	for key, w := range tx.writes {
		if strings.HasPrefix(key, prefix) {
			pending = append(pending, KV{Key: key, Value: w.value})
		}
	}
	if len(pending) == 0 {
		return items, nil
	}
	// Merge the two sorted lists; a pending write replaces the stored key,
	// a pending delete (nil Value with deleted set) removes it.
	slices.SortFunc(pending, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
	merged := make([]KV, 0, len(items)+len(pending))
	i, j := 0, 0
	for i < len(items) || j < len(pending) {
		switch {
		case j == len(pending) || (i < len(items) && items[i].Key < pending[j].Key):
			merged = append(merged, items[i])
			i++
		default:
			if i < len(items) && items[i].Key == pending[j].Key {
				i++
			}
			if !tx.writes[pending[j].Key].deleted {
				merged = append(merged, pending[j])
			}
			j++
		}
	}
	return merged, nil
}

// Put buffers a write of value at key. The value is not copied: it must not
// be modified until Update returns.
func (tx *Tx) Put(key string, value []byte) {
	if tx.writes == nil {
		tx.writes = make(map[string]write)
	}
	tx.writes[key] = write{value: value}
}

// Delete buffers the removal of key (a no-op at commit if it does not exist).
func (tx *Tx) Delete(key string) {
	if tx.writes == nil {
		tx.writes = make(map[string]write)
	}
	tx.writes[key] = write{deleted: true}
}

// compares returns the preconditions recorded by the reads, in a stable
// order so that identical transactions produce identical Txns.
func (tx *Tx) compares() []Compare {
	cmps := make([]Compare, 0, len(tx.reads)+len(tx.prefixes))
	for key, r := range tx.reads {
		cmps = append(cmps, Compare{Key: key, Revision: r.kv.ModRevision})
	}
	for prefix, rev := range tx.prefixes {
		cmps = append(cmps, Compare{Key: prefix, Prefix: true, Revision: rev})
	}
	slices.SortFunc(cmps, func(a, b Compare) int {
		if a.Prefix != b.Prefix {
			if a.Prefix {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Key, b.Key)
	})
	return cmps
}

// ops returns the buffered writes sorted by key.
func (tx *Tx) ops() []Op {
	ops := make([]Op, 0, len(tx.writes))
	for key, w := range tx.writes {
		if w.deleted {
			ops = append(ops, Delete(key))
		} else {
			ops = append(ops, Put(key, w.value))
		}
	}
	slices.SortFunc(ops, func(a, b Op) int { return strings.Compare(a.Key, b.Key) })
	return ops
}
