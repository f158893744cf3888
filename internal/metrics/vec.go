package metrics

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// sample is what a vector's series are: something that appends its
// samples under a name and label set.
type sample interface {
	appendSamples(b []byte, name string, labels, values []string) []byte
}

// Vec is a family of series of one kind, one per set of label values.
// With reads the series without locks and without allocating once the
// series exists; the first use of a label set makes it.
type Vec[M any, PM interface {
	*M
	sample
}] struct {
	d      desc
	mk     func() *M
	mu     sync.Mutex // serialises inserts and deletes
	series atomic.Pointer[map[string]*entry[M]]
}

type entry[M any] struct {
	values []string // in the order of desc.sorted
	m      *M
}

// CounterVec is a family of counters.
type CounterVec = Vec[Counter, *Counter]

// GaugeVec is a family of gauges.
type GaugeVec = Vec[Gauge, *Gauge]

// HistogramVec is a family of histograms with the same buckets.
type HistogramVec = Vec[Histogram, *Histogram]

// NewCounterVec returns a family of counters with the given label names.
func NewCounterVec(name, help string, labels ...string) *CounterVec {
	return &CounterVec{d: newDesc(name, help, "counter", labels), mk: func() *Counter { return new(Counter) }}
}

// NewGaugeVec returns a family of gauges with the given label names.
func NewGaugeVec(name, help string, labels ...string) *GaugeVec {
	return &GaugeVec{d: newDesc(name, help, "gauge", labels), mk: func() *Gauge { return new(Gauge) }}
}

// NewHistogramVec returns a family of histograms with the given buckets
// (see NewHistogram) and label names.
func NewHistogramVec(name, help string, buckets []float64, labels ...string) *HistogramVec {
	upper := checkBuckets(name, buckets)
	return &HistogramVec{d: newDesc(name, help, "histogram", labels), mk: func() *Histogram { return newHistogram(upper) }}
}

// With returns the series of the given label values, one per label name
// in order, making it on first use. A wrong number of values is a
// programming error and panics.
func (v *Vec[M, PM]) With(values ...string) *M {
	if len(values) != len(v.d.labels) {
		panic(fmt.Sprintf("metrics: %s: %d label values for %d labels", v.d.name, len(values), len(v.d.labels)))
	}
	for i, s := range values {
		if !utf8.ValidString(s) {
			// Two values that differ only in invalid bytes are written
			// the same, so they must be one series.
			values = slices.Clone(values)
			values[i] = strings.ToValidUTF8(s, "\uFFFD")
		}
	}
	var buf [128]byte
	key := appendKey(buf[:0], values)
	if m := v.series.Load(); m != nil {
		if e, ok := (*m)[string(key)]; ok {
			return e.m
		}
	}
	return v.insert(string(key), values)
}

// appendKey encodes label values unambiguously: each is preceded by its
// length.
func appendKey(b []byte, values []string) []byte {
	for _, s := range values {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// insert adds a series. Each insert copies the map, so making n series
// costs O(n²) copies in all; series are made once per label set (a
// service, a target group), which keeps that small next to the lock-free
// reads it buys.
func (v *Vec[M, PM]) insert(key string, values []string) *M {
	v.mu.Lock()
	defer v.mu.Unlock()
	old := v.series.Load()
	if old != nil {
		if e, ok := (*old)[key]; ok {
			return e.m
		}
	}
	next := make(map[string]*entry[M], 1+lenOf(old))
	if old != nil {
		for k, e := range *old {
			next[k] = e
		}
	}
	sorted := make([]string, len(values))
	for i, j := range v.d.perm {
		sorted[i] = values[j]
	}
	e := &entry[M]{values: sorted, m: v.mk()}
	next[key] = e
	v.series.Store(&next)
	return e.m
}

func lenOf[K comparable, V any](m *map[K]V) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// Delete removes every series whose label named label has value, and
// returns how many it removed. A series still held by a caller keeps
// counting but is no longer written.
func (v *Vec[M, PM]) Delete(label, value string) int {
	i := slices.Index(v.d.sorted, label)
	if i < 0 {
		return 0
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	old := v.series.Load()
	if old == nil {
		return 0
	}
	next := make(map[string]*entry[M], len(*old))
	for k, e := range *old {
		if e.values[i] != value {
			next[k] = e
		}
	}
	n := len(*old) - len(next)
	if n > 0 {
		v.series.Store(&next)
	}
	return n
}

func (v *Vec[M, PM]) names() []string { return v.d.names() }

func (v *Vec[M, PM]) appendTo(b []byte) []byte {
	m := v.series.Load()
	if m == nil || len(*m) == 0 {
		return b
	}
	es := make([]*entry[M], 0, len(*m))
	for _, e := range *m {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b *entry[M]) int { return slices.Compare(a.values, b.values) })
	b = v.d.appendHeader(b)
	for _, e := range es {
		b = PM(e.m).appendSamples(b, v.d.name, v.d.sorted, e.values)
	}
	return b
}
