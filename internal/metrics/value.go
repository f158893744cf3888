package metrics

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync/atomic"
)

// Counter is a count that only goes up. A Counter made by NewCounter is
// also a Collector; one from a vector is a series of it.
type Counter struct {
	v atomic.Uint64
	d *desc // nil for a vector's series
}

// NewCounter returns an unlabelled counter. By convention its name ends
// in _total.
func NewCounter(name, help string) *Counter {
	d := newDesc(name, help, "counter", nil)
	return &Counter{d: &d}
}

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Value is the count.
func (c *Counter) Value() uint64 { return c.v.Load() }

func (c *Counter) names() []string { return c.d.names() }

func (c *Counter) appendTo(b []byte) []byte {
	return c.appendSamples(c.d.appendHeader(b), c.d.name, nil, nil)
}

func (c *Counter) appendSamples(b []byte, name string, labels, values []string) []byte {
	b = appendSeries(b, name, "", labels, values, "", "")
	b = append(b, ' ')
	b = strconv.AppendUint(b, c.v.Load(), 10)
	return append(b, '\n')
}

// Gauge is a value that goes up and down.
type Gauge struct {
	v atomic.Int64
	d *desc
}

// NewGauge returns an unlabelled gauge.
func NewGauge(name, help string) *Gauge {
	d := newDesc(name, help, "gauge", nil)
	return &Gauge{d: &d}
}

// Set sets the value.
func (g *Gauge) Set(v int64) { g.v.Store(v) }

// Add adds n, which may be negative.
func (g *Gauge) Add(n int64) { g.v.Add(n) }

// Inc adds one.
func (g *Gauge) Inc() { g.v.Add(1) }

// Dec subtracts one.
func (g *Gauge) Dec() { g.v.Add(-1) }

// Value is the value.
func (g *Gauge) Value() int64 { return g.v.Load() }

func (g *Gauge) names() []string { return g.d.names() }

func (g *Gauge) appendTo(b []byte) []byte {
	return g.appendSamples(g.d.appendHeader(b), g.d.name, nil, nil)
}

func (g *Gauge) appendSamples(b []byte, name string, labels, values []string) []byte {
	b = appendSeries(b, name, "", labels, values, "", "")
	b = append(b, ' ')
	return append(strconv.AppendInt(b, g.v.Load(), 10), '\n')
}

// Histogram counts observations into buckets with inclusive upper bounds,
// and keeps their sum. Observe takes no lock: a scrape running beside it
// may see an observation in the buckets before it is in the sum.
type Histogram struct {
	upper  []float64       // shared by a vector's series
	counts []atomic.Uint64 // len(upper)+1: the last is +Inf
	sum    atomic.Uint64   // float64 bits
	d      *desc
}

// NewHistogram returns an unlabelled histogram with the given bucket
// upper bounds, which must increase; +Inf is always added.
func NewHistogram(name, help string, buckets []float64) *Histogram {
	d := newDesc(name, help, "histogram", nil)
	h := newHistogram(checkBuckets(name, buckets))
	h.d = &d
	return h
}

func newHistogram(upper []float64) *Histogram {
	return &Histogram{upper: upper, counts: make([]atomic.Uint64, len(upper)+1)}
}

// checkBuckets returns the bounds without a final +Inf; bounds that do not
// increase are a programming error.
func checkBuckets(name string, buckets []float64) []float64 {
	b := slices.Clone(buckets)
	if n := len(b); n > 0 && math.IsInf(b[n-1], 1) {
		b = b[:n-1]
	}
	for i, v := range b {
		if math.IsNaN(v) || math.IsInf(v, 0) || i > 0 && v <= b[i-1] {
			panic(fmt.Sprintf("metrics: %s: buckets must be finite and increasing: %v", name, buckets))
		}
	}
	return b
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	i := 0
	for i < len(h.upper) && !(v <= h.upper[i]) {
		i++
	}
	h.counts[i].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Count is the number of observations.
func (h *Histogram) Count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// Sum is the sum of the observations.
func (h *Histogram) Sum() float64 { return math.Float64frombits(h.sum.Load()) }

func (h *Histogram) names() []string { return h.d.names() }

func (h *Histogram) appendTo(b []byte) []byte {
	return h.appendSamples(h.d.appendHeader(b), h.d.name, nil, nil)
}

func (h *Histogram) appendSamples(b []byte, name string, labels, values []string) []byte {
	var cum uint64
	var le [32]byte
	for i, u := range h.upper {
		cum += h.counts[i].Load()
		b = appendSeries(b, name, "_bucket", labels, values, "le", string(appendFloat(le[:0], u)))
		b = append(b, ' ')
		b = append(strconv.AppendUint(b, cum, 10), '\n')
	}
	cum += h.counts[len(h.upper)].Load()
	b = appendSeries(b, name, "_bucket", labels, values, "le", "+Inf")
	b = append(b, ' ')
	b = append(strconv.AppendUint(b, cum, 10), '\n')
	b = appendSeries(b, name, "_sum", labels, values, "", "")
	b = append(b, ' ')
	b = append(appendFloat(b, h.Sum()), '\n')
	b = appendSeries(b, name, "_count", labels, values, "", "")
	b = append(b, ' ')
	return append(strconv.AppendUint(b, cum, 10), '\n')
}

// funcMetric is a counter or gauge whose value a function gives at
// scrape time.
type funcMetric struct {
	d desc
	f func() float64
}

// NewCounterFunc returns a counter whose value is f's, read at each
// scrape. f must never decrease.
func NewCounterFunc(name, help string, f func() float64) Collector {
	return &funcMetric{d: newDesc(name, help, "counter", nil), f: f}
}

// NewGaugeFunc returns a gauge whose value is f's, read at each scrape.
func NewGaugeFunc(name, help string, f func() float64) Collector {
	return &funcMetric{d: newDesc(name, help, "gauge", nil), f: f}
}

func (m *funcMetric) names() []string { return m.d.names() }

func (m *funcMetric) appendTo(b []byte) []byte {
	b = m.d.appendHeader(b)
	b = append(b, m.d.name...)
	b = append(b, ' ')
	return append(appendFloat(b, m.f()), '\n')
}
