// Package bolt is the embedded store.Store backend, kept in a single bbolt
// file.
//
// Lifecycle: Open takes an exclusive lock on the file (a second process, or a
// second Open in the same process, fails after Options.LockTimeout with an
// error wrapping ErrLocked), creates the buckets on first use and loads the
// current revision. The Store is then safe for concurrent use until Close,
// which ends every Watch (their channels close), waits for the watch
// goroutines to exit and releases the file. Every call after Close fails
// with store.ErrClosed.
//
// Durability: every Txn that changes something is one bbolt read-write
// transaction, fsynced before Txn returns, so an acknowledged write survives
// a crash. Writers are serialised, which both bbolt requires and makes
// revision order equal commit order.
//
// Revisions: a Txn advances the revision by exactly one when it changes at
// least one key. A Txn with no ops, or whose only ops delete keys that do not
// exist, changes nothing: it still checks its compares, but returns the
// current revision without advancing it (the same rule etcd applies). A Put
// always counts as a change, even with an identical value. Several ops on one
// key in a Txn collapse into the last one.
//
// History: each revision's events are appended to a change log that Watch
// replays from. Only the last Options.HistoryLimit revisions are kept; a
// Watch from an older revision fails with store.ErrCompacted.
package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/trellis-mesh/trellis/internal/store"
)

// ErrLocked is wrapped by Open when another process (or another Open in this
// process) holds the database file.
const ErrLocked = constError("data directory is in use by another trellis process")

// Options tune a Store. The zero value is valid.
type Options struct {
	// HistoryLimit is how many recent revisions the change log keeps for
	// Watch. Default 10000.
	HistoryLimit int
	// WatchBuffer is how many not-yet-delivered transactions a watcher may
	// have queued before it is considered too slow and its channel is
	// closed. Default 1024.
	WatchBuffer int
	// LockTimeout bounds how long Open waits for the file lock. Default 1s:
	// long enough to ride out a previous process that is just exiting,
	// short enough that a misconfigured second instance fails fast.
	LockTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.HistoryLimit <= 0 {
		o.HistoryLimit = 10000
	}
	if o.WatchBuffer <= 0 {
		o.WatchBuffer = 1024
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = time.Second
	}
	return o
}

// Bucket and meta key names. They are part of the file format.
const (
	bucketMeta = "meta"
	bucketKV   = "kv"
	bucketLog  = "log"

	metaVersion   = "version"
	metaRevision  = "revision"
	metaCompacted = "compacted" // highest revision whose log entry was removed

	formatVersion = 1
)

// Store is a store.Store over a bbolt file. Create it with Open.
type Store struct {
	db   *bbolt.DB
	opts Options

	// closeMu is held shared by every call that touches db and exclusively
	// by Close, so Close never pulls the file out from under a running call
	// and every call after it sees closed.
	closeMu sync.RWMutex
	closed  bool

	// writeMu serialises Txn from commit through publishing its events, so
	// watchers receive revisions in order.
	writeMu sync.Mutex

	rev  atomic.Int64   // last committed revision, for Revision without a read tx
	hub  hub            // live event fan-out to watchers
	done chan struct{}  // closed by Close; stops watch goroutines
	wg   sync.WaitGroup // watch goroutines, waited for by Close
}

// Open opens or creates the store at path (the bbolt file; its directory is
// created if missing).
func Open(path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      opts.LockTimeout,
		FreelistType: bbolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	s := &Store{db: db, opts: opts, done: make(chan struct{})}
	var rev int64
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range []string{bucketMeta, bucketKV, bucketLog} {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		meta := tx.Bucket([]byte(bucketMeta))
		switch v := meta.Get([]byte(metaVersion)); {
		case v == nil:
			if err := putInt(meta, metaVersion, formatVersion); err != nil {
				return err
			}
		case getInt(meta, metaVersion) != formatVersion:
			return fmt.Errorf("unsupported format version %d", getInt(meta, metaVersion))
		}
		rev = getInt(meta, metaRevision)
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	s.rev.Store(rev)
	s.hub.init(rev)
	return s, nil
}

// begin is the common entry of every call: it checks ctx and closed and, on
// success, holds closeMu shared until the returned func is called.
func (s *Store) begin(ctx context.Context, op string) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: %s: %w", op, err)
	}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return nil, fmt.Errorf("bolt: %s: %w", op, store.ErrClosed)
	}
	return s.closeMu.RUnlock, nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) (store.KV, error) {
	end, err := s.begin(ctx, "get")
	if err != nil {
		return store.KV{}, err
	}
	defer end()
	var kv store.KV
	err = s.db.View(func(tx *bbolt.Tx) error {
		rec := tx.Bucket([]byte(bucketKV)).Get([]byte(key))
		if rec == nil {
			return store.ErrNotFound
		}
		kv, err = decodeKV([]byte(key), rec)
		return err
	})
	if err != nil {
		return store.KV{}, fmt.Errorf("bolt: get %q: %w", key, err)
	}
	return kv, nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix string, opts store.ListOptions) (store.ListResult, error) {
	end, err := s.begin(ctx, "list")
	if err != nil {
		return store.ListResult{}, err
	}
	defer end()
	var res store.ListResult
	err = s.db.View(func(tx *bbolt.Tx) error {
		res.Revision = getInt(tx.Bucket([]byte(bucketMeta)), metaRevision)
		c := tx.Bucket([]byte(bucketKV)).Cursor()
		p := []byte(prefix)
		var k, v []byte
		if opts.After >= prefix {
			k, v = c.Seek([]byte(opts.After))
			if k != nil && string(k) == opts.After {
				k, v = c.Next()
			}
		} else {
			// An After that sorts before the prefix excludes nothing.
			k, v = c.Seek(p)
		}
		for ; k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if opts.Limit > 0 && len(res.Items) == opts.Limit {
				res.More = true
				break
			}
			kv, err := decodeKV(k, v)
			if err != nil {
				return err
			}
			res.Items = append(res.Items, kv)
		}
		return nil
	})
	if err != nil {
		return store.ListResult{}, fmt.Errorf("bolt: list %q: %w", prefix, err)
	}
	return res, nil
}

// Revision implements store.Store.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	end, err := s.begin(ctx, "revision")
	if err != nil {
		return 0, err
	}
	defer end()
	return s.rev.Load(), nil
}

// errNoChange rolls back a write transaction whose ops changed nothing, so
// that neither the revision nor the file changes (and no fsync is paid).
const errNoChange = constError("no change")

// Txn implements store.Store.
func (s *Store) Txn(ctx context.Context, cmps []store.Compare, ops []store.Op) (int64, error) {
	if err := validateOps(ops); err != nil {
		return 0, err
	}
	end, err := s.begin(ctx, "txn")
	if err != nil {
		return 0, err
	}
	defer end()

	if len(ops) == 0 {
		// Compare-only: a read transaction suffices and costs no fsync.
		var rev int64
		err := s.db.View(func(tx *bbolt.Tx) error {
			rev = getInt(tx.Bucket([]byte(bucketMeta)), metaRevision)
			return checkCompares(tx, rev, cmps)
		})
		if err != nil {
			return 0, fmt.Errorf("bolt: txn: %w", err)
		}
		return rev, nil
	}

	ops = lastOpPerKey(ops)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	// Waiting for writeMu may have taken a while; a caller that gave up
	// meanwhile should not get a write it no longer expects.
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("bolt: txn: %w", err)
	}
	var (
		rev    int64
		events []store.Event
	)
	err = s.db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket([]byte(bucketMeta))
		cur := getInt(meta, metaRevision)
		if err := checkCompares(tx, cur, cmps); err != nil {
			return err
		}
		rev = cur + 1
		var err error
		events, err = applyOps(tx.Bucket([]byte(bucketKV)), rev, ops)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			rev = cur
			return errNoChange
		}
		if err := tx.Bucket([]byte(bucketLog)).Put(revKey(rev), encodeLog(events)); err != nil {
			return err
		}
		if err := putInt(meta, metaRevision, rev); err != nil {
			return err
		}
		return compactLog(meta, tx.Bucket([]byte(bucketLog)), rev-int64(s.opts.HistoryLimit))
	})
	if errors.Is(err, errNoChange) {
		return rev, nil
	}
	if err != nil {
		return 0, fmt.Errorf("bolt: txn: %w", err)
	}
	s.rev.Store(rev)
	s.hub.publish(batch{rev: rev, events: events, shared: true})
	return rev, nil
}

func validateOps(ops []store.Op) error {
	for i, op := range ops {
		if op.Key == "" {
			return fmt.Errorf("bolt: txn: op %d: empty key", i)
		}
		if op.Type != store.OpPut && op.Type != store.OpDelete {
			return fmt.Errorf("bolt: txn: op %d on %q: unknown op type %d", i, op.Key, op.Type)
		}
	}
	return nil
}

// lastOpPerKey returns the ops sorted by key with only the last op of each
// key kept: events must come out in key order, and several ops on one key
// within a Txn amount to its last one.
func lastOpPerKey(ops []store.Op) []store.Op {
	if len(ops) == 1 {
		return ops
	}
	sorted := slices.Clone(ops)
	slices.SortStableFunc(sorted, func(a, b store.Op) int { return strings.Compare(a.Key, b.Key) })
	out := sorted[:0]
	for i, op := range sorted {
		if i+1 < len(sorted) && sorted[i+1].Key == op.Key {
			continue
		}
		out = append(out, op)
	}
	return out
}

// checkCompares evaluates cmps inside tx; cur is the revision tx reads at.
func checkCompares(tx *bbolt.Tx, cur int64, cmps []store.Compare) error {
	kvb := tx.Bucket([]byte(bucketKV))
	for _, c := range cmps {
		if !c.Prefix {
			var mod int64
			if rec := kvb.Get([]byte(c.Key)); rec != nil {
				var err error
				if _, mod, _, err = decodeHeader(rec); err != nil {
					return fmt.Errorf("key %q: %w", c.Key, err)
				}
			}
			if mod != c.Revision {
				return fmt.Errorf("compare %q: mod revision is %d, want %d: %w", c.Key, mod, c.Revision, store.ErrConflict)
			}
			continue
		}
		// Nothing can be newer than the current revision, so the scan is
		// only needed when the compare is older than it.
		if c.Revision >= cur {
			continue
		}
		csr := kvb.Cursor()
		p := []byte(c.Key)
		for k, v := csr.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = csr.Next() {
			_, mod, _, err := decodeHeader(v)
			if err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
			if mod > c.Revision {
				return fmt.Errorf("compare prefix %q: %q modified at revision %d after %d: %w",
					c.Key, k, mod, c.Revision, store.ErrConflict)
			}
		}
	}
	return nil
}

// applyOps writes ops (sorted, one per key) at rev and returns the events,
// in key order. Event values alias the encoded records, which nothing
// modifies afterwards; that saves a copy on the commit path, and each
// watcher copies on delivery.
func applyOps(kvb *bbolt.Bucket, rev int64, ops []store.Op) ([]store.Event, error) {
	events := make([]store.Event, 0, len(ops))
	for _, op := range ops {
		key := []byte(op.Key)
		old := kvb.Get(key)
		var create int64
		if old != nil {
			var err error
			if create, _, _, err = decodeHeader(old); err != nil {
				return nil, fmt.Errorf("key %q: %w", op.Key, err)
			}
		}
		if op.Type == store.OpDelete {
			if old == nil {
				continue // deleting a missing key is a no-op
			}
			if err := kvb.Delete(key); err != nil {
				return nil, fmt.Errorf("delete %q: %w", op.Key, err)
			}
			events = append(events, store.Event{
				Type:     store.EventDelete,
				KV:       store.KV{Key: op.Key, CreateRevision: create, ModRevision: rev},
				Revision: rev,
			})
			continue
		}
		if old == nil {
			create = rev
		}
		rec, off := encodeKV(create, rev, op.Value)
		if err := kvb.Put(key, rec); err != nil {
			return nil, fmt.Errorf("put %q: %w", op.Key, err)
		}
		events = append(events, store.Event{
			Type:     store.EventPut,
			KV:       store.KV{Key: op.Key, Value: rec[off:len(rec):len(rec)], CreateRevision: create, ModRevision: rev},
			Revision: rev,
		})
	}
	return events, nil
}

// compactLog removes log entries up to and including upTo. Revisions are
// dense (every revision has exactly one entry), so it deletes by number
// instead of iterating a cursor while deleting under it.
func compactLog(meta, logb *bbolt.Bucket, upTo int64) error {
	compacted := getInt(meta, metaCompacted)
	if upTo <= compacted {
		return nil
	}
	for r := compacted + 1; r <= upTo; r++ {
		if err := logb.Delete(revKey(r)); err != nil {
			return err
		}
	}
	return putInt(meta, metaCompacted, upTo)
}

func getInt(b *bbolt.Bucket, key string) int64 {
	v := b.Get([]byte(key))
	if len(v) != 8 {
		return 0
	}
	r, _ := parseRevKey(v)
	return r
}

func putInt(b *bbolt.Bucket, key string, v int64) error {
	return b.Put([]byte(key), revKey(v))
}

// Close implements store.Store. It ends every Watch and waits for their
// goroutines before releasing the file.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return fmt.Errorf("bolt: close: %w", store.ErrClosed)
	}
	s.closed = true
	s.closeMu.Unlock()

	close(s.done)
	s.hub.close()
	s.wg.Wait()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt: close: %w", err)
	}
	return nil
}
