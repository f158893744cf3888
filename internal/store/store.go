// Package store defines the small key-value interface the control plane keeps
// its state in, and the helpers built on it.
//
// A Store is a sorted map from string keys to byte values with a single,
// monotonically increasing revision: every successful Txn that changes
// something advances the revision by exactly one, and every key remembers the
// revision of its last change (ModRevision) and of its creation
// (CreateRevision). Watches replay changes after a given revision, so a
// reader that remembers the revision it has seen can resume without gaps.
//
// Implementations: bolt (embedded, the default) and, later, etcd. Both must
// pass the suite in package storetest.
//
// All methods are safe for concurrent use. Txn blocks until the change is
// durable: when it returns nil, a crash or restart will not lose the write.
package store

import (
	"context"
	"errors"
)

// Sentinel errors. Implementations wrap them with %w; callers test with errors.Is.
var (
	// ErrNotFound: Get of a key that does not exist.
	ErrNotFound = errors.New("key not found")
	// ErrConflict: a Txn compare failed; nothing was written.
	ErrConflict = errors.New("revision conflict")
	// ErrCompacted: Watch from a revision whose history is gone.
	ErrCompacted = errors.New("revision compacted")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
)

// KV is one stored key with its value and revisions.
type KV struct {
	Key            string
	Value          []byte
	CreateRevision int64
	ModRevision    int64
}

// ListOptions bound a List.
type ListOptions struct {
	// After, when set, starts the listing strictly after this key (for
	// pagination: pass the last key of the previous page).
	After string
	// Limit is the maximum number of items; 0 means no limit.
	Limit int
}

// ListResult is one page of a List.
type ListResult struct {
	Items []KV
	// More reports whether keys under the prefix remain after the last item.
	More bool
	// Revision is the store revision the page was read at.
	Revision int64
}

// Compare is a precondition of a Txn.
//
// For a single key (Prefix false): the key's ModRevision must equal Revision,
// where Revision 0 means "the key must not exist".
// For a prefix (Prefix true): no key under Key may have a ModRevision greater
// than Revision. This detects keys created or changed under the prefix since
// a List read at Revision.
type Compare struct {
	Key      string
	Prefix   bool
	Revision int64
}

// OpType says what an Op does.
type OpType int

const (
	OpPut OpType = iota + 1
	OpDelete
)

// Op is one write of a Txn. Deleting a missing key is not an error.
type Op struct {
	Type  OpType
	Key   string
	Value []byte
}

// Put returns an Op that stores value at key.
func Put(key string, value []byte) Op { return Op{Type: OpPut, Key: key, Value: value} }

// Delete returns an Op that removes key.
func Delete(key string) Op { return Op{Type: OpDelete, Key: key} }

// EventType says what happened to a key.
type EventType int

const (
	EventPut EventType = iota + 1
	EventDelete
)

// Event is one change seen by a Watch. For EventDelete, KV.Value is nil and
// KV.ModRevision is the revision of the deletion.
type Event struct {
	Type     EventType
	KV       KV
	Revision int64
}

// Store is the interface every backend implements.
type Store interface {
	// Get returns the key, or an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) (KV, error)
	// List returns keys with the given prefix in ascending key order.
	List(ctx context.Context, prefix string, opts ListOptions) (ListResult, error)
	// Txn checks every compare and, only if all hold, applies every op
	// atomically as one new revision, which it returns. If a compare fails it
	// returns an error wrapping ErrConflict and writes nothing. A Txn with
	// no ops writes nothing and returns the current revision.
	Txn(ctx context.Context, cmps []Compare, ops []Op) (int64, error)
	// Revision returns the current store revision (0 for an empty store).
	Revision(ctx context.Context) (int64, error)
	// Watch streams every change to keys with the given prefix whose revision
	// is greater than afterRev, in revision order, until ctx ends or the store
	// closes, then closes the channel. Events of one Txn arrive together in
	// key order. A slow reader does not block writers: the implementation
	// buffers or, if it must drop, closes the channel so the reader resumes
	// with a new Watch from the last revision it saw. If history after
	// afterRev is gone it returns an error wrapping ErrCompacted.
	Watch(ctx context.Context, prefix string, afterRev int64) (<-chan Event, error)
	// Close releases the store. Calls after Close fail with ErrClosed.
	Close() error
}
