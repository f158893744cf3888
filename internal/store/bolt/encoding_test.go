package bolt

import (
	"errors"
	"testing"

	"github.com/trellis-mesh/trellis/internal/store"
)

func TestKVRoundTrip(t *testing.T) {
	for _, v := range [][]byte{nil, {}, []byte("value"), make([]byte, 4096)} {
		rec, off := encodeKV(3, 1<<40, v)
		if string(rec[off:]) != string(v) {
			t.Fatalf("value at offset %d = %q", off, rec[off:])
		}
		kv, err := decodeKV([]byte("key"), rec)
		if err != nil {
			t.Fatal(err)
		}
		if kv.Key != "key" || string(kv.Value) != string(v) || kv.CreateRevision != 3 || kv.ModRevision != 1<<40 {
			t.Fatalf("round trip = %+v", kv)
		}
	}
	if len(mustEncode(1, 1, nil)) != 2 {
		t.Fatal("small revisions should take one byte each")
	}
	for _, bad := range [][]byte{nil, {0x80}, {0x01, 0x80}} {
		if _, err := decodeKV([]byte("k"), bad); !errors.Is(err, errCorrupt) {
			t.Errorf("decodeKV(%x) = %v, want errCorrupt", bad, err)
		}
	}
}

func mustEncode(create, mod int64, v []byte) []byte {
	rec, _ := encodeKV(create, mod, v)
	return rec
}

func TestLogRoundTrip(t *testing.T) {
	events := []store.Event{
		{Type: store.EventPut, KV: store.KV{Key: "a", Value: []byte("1"), CreateRevision: 7}},
		{Type: store.EventDelete, KV: store.KV{Key: "b", CreateRevision: 3}},
		{Type: store.EventPut, KV: store.KV{Key: "c", Value: []byte{}, CreateRevision: 9}},
	}
	rec := encodeLog(events)
	got, err := decodeLog(9, rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(events) {
		t.Fatalf("decoded %d events", len(got))
	}
	for i, ev := range got {
		want := events[i]
		if ev.Type != want.Type || ev.KV.Key != want.KV.Key || string(ev.KV.Value) != string(want.KV.Value) ||
			ev.KV.CreateRevision != want.KV.CreateRevision || ev.KV.ModRevision != 9 || ev.Revision != 9 {
			t.Errorf("event %d = %+v, want %+v at 9", i, ev, want)
		}
	}
	if got[1].KV.Value != nil {
		t.Error("delete event has a value")
	}
	// Every truncation is detected rather than misread.
	for n := range len(rec) {
		if _, err := decodeLog(9, rec[:n]); !errors.Is(err, errCorrupt) {
			t.Errorf("truncated to %d bytes: %v", n, err)
		}
	}
}

func FuzzDecodeLog(f *testing.F) {
	f.Add(encodeLog([]store.Event{{Type: store.EventPut, KV: store.KV{Key: "k", Value: []byte("v"), CreateRevision: 1}}}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, rec []byte) {
		events, err := decodeLog(1, rec)
		if err != nil {
			return
		}
		// Whatever decodes survives an encode/decode round trip (the
		// bytes may differ: varints have non-minimal spellings).
		again, err := decodeLog(1, encodeLog(events))
		if err != nil || len(again) != len(events) {
			t.Fatalf("round trip of %x: %d events, %v", rec, len(again), err)
		}
		for i := range events {
			a, b := events[i], again[i]
			if a.Type != b.Type || a.KV.Key != b.KV.Key || string(a.KV.Value) != string(b.KV.Value) ||
				a.KV.CreateRevision != b.KV.CreateRevision {
				t.Fatalf("round trip of %x: event %d %+v became %+v", rec, i, a, b)
			}
		}
	})
}
