package bolt

import (
	"encoding/binary"
	"fmt"

	"github.com/trellis-mesh/trellis/internal/store"
)

// On-disk layout.
//
// A key's record in the kv bucket is
//
//	uvarint(CreateRevision) uvarint(ModRevision) value
//
// Varints keep the header at a few bytes for realistic revisions, and putting
// the value last lets the encoded buffer double as the event value without a
// second copy.
//
// A change-log record (log bucket, keyed by the 8-byte big-endian revision so
// that cursor order is revision order) holds every event of one Txn:
//
//	uvarint(count) { type(1) uvarint(len(key)) key uvarint(CreateRevision) [uvarint(len(value)) value] }
//
// The value part is present only for puts. ModRevision is the log key.

// constError is an error that can be declared const, so the package's
// sentinel errors cannot be reassigned and still work with errors.Is.
type constError string

func (e constError) Error() string { return string(e) }

// errCorrupt marks a record that does not decode; it means the file was
// damaged or written by an incompatible version.
const errCorrupt = constError("corrupt record")

const (
	logPut    byte = 1
	logDelete byte = 2
)

// revKey encodes a revision as a log key.
func revKey(rev int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(rev))
	return b[:]
}

func parseRevKey(k []byte) (int64, error) {
	if len(k) != 8 {
		return 0, fmt.Errorf("log key of %d bytes: %w", len(k), errCorrupt)
	}
	return int64(binary.BigEndian.Uint64(k)), nil
}

// encodeKV returns the record for a key and the offset of the value in it.
func encodeKV(create, mod int64, value []byte) ([]byte, int) {
	buf := make([]byte, 0, 2*binary.MaxVarintLen64+len(value))
	buf = binary.AppendUvarint(buf, uint64(create))
	buf = binary.AppendUvarint(buf, uint64(mod))
	off := len(buf)
	return append(buf, value...), off
}

// decodeHeader returns the revisions of a kv record and the offset of its value.
func decodeHeader(rec []byte) (create, mod int64, off int, err error) {
	c, n := binary.Uvarint(rec)
	if n <= 0 {
		return 0, 0, 0, errCorrupt
	}
	m, n2 := binary.Uvarint(rec[n:])
	if n2 <= 0 {
		return 0, 0, 0, errCorrupt
	}
	return int64(c), int64(m), n + n2, nil
}

// decodeKV decodes a kv record into a KV that owns its memory: bolt's slices
// are only valid inside the transaction, so key and value are copied.
func decodeKV(key, rec []byte) (store.KV, error) {
	create, mod, off, err := decodeHeader(rec)
	if err != nil {
		return store.KV{}, fmt.Errorf("key %q: %w", key, err)
	}
	return store.KV{
		Key:            string(key),
		Value:          append([]byte{}, rec[off:]...),
		CreateRevision: create,
		ModRevision:    mod,
	}, nil
}

// encodeLog encodes the events of one revision.
func encodeLog(events []store.Event) []byte {
	size := binary.MaxVarintLen64
	for _, ev := range events {
		size += 1 + 3*binary.MaxVarintLen64 + len(ev.KV.Key) + len(ev.KV.Value)
	}
	buf := make([]byte, 0, size)
	buf = binary.AppendUvarint(buf, uint64(len(events)))
	for _, ev := range events {
		t := logPut
		if ev.Type == store.EventDelete {
			t = logDelete
		}
		buf = append(buf, t)
		buf = binary.AppendUvarint(buf, uint64(len(ev.KV.Key)))
		buf = append(buf, ev.KV.Key...)
		buf = binary.AppendUvarint(buf, uint64(ev.KV.CreateRevision))
		if t == logPut {
			buf = binary.AppendUvarint(buf, uint64(len(ev.KV.Value)))
			buf = append(buf, ev.KV.Value...)
		}
	}
	return buf
}

// logReader walks an encoded log record.
type logReader struct {
	buf []byte
	err error
}

func (r *logReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *logReader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.buf)) {
		r.err = errCorrupt
		return nil
	}
	b := r.buf[:n]
	r.buf = r.buf[n:]
	return b
}

// decodeLog decodes the events of revision rev into memory owned by the
// caller (the record itself lives in bolt's mmap).
func decodeLog(rev int64, rec []byte) ([]store.Event, error) {
	r := logReader{buf: rec}
	count := r.uvarint()
	// Every event takes more than one byte, which bounds a corrupt count
	// before it turns into a huge allocation.
	if count > uint64(len(rec)) {
		return nil, fmt.Errorf("log revision %d: %w", rev, errCorrupt)
	}
	events := make([]store.Event, 0, count)
	for i := uint64(0); i < count && r.err == nil; i++ {
		t := r.bytes(1)
		if r.err != nil {
			break
		}
		key := string(r.bytes(r.uvarint()))
		ev := store.Event{Revision: rev, KV: store.KV{Key: key, ModRevision: rev}}
		ev.KV.CreateRevision = int64(r.uvarint())
		switch t[0] {
		case logPut:
			ev.Type = store.EventPut
			ev.KV.Value = append([]byte{}, r.bytes(r.uvarint())...)
		case logDelete:
			ev.Type = store.EventDelete
		default:
			r.err = errCorrupt
		}
		events = append(events, ev)
	}
	if r.err == nil && len(r.buf) != 0 {
		r.err = errCorrupt
	}
	if r.err != nil {
		return nil, fmt.Errorf("log revision %d: %w", rev, r.err)
	}
	return events, nil
}
