// Package metrics holds Trellis's metrics and writes them in Prometheus's
// text exposition format (version 0.0.4) on /metrics.
//
// It is small on purpose. Counters, gauges and histograms are atomic words,
// so recording a value takes no lock and allocates nothing; a vector keeps
// its series in a map behind an atomic pointer, read without locks and
// copied on the rare insert. A Registry writes every registered family,
// sorted by name, with its series sorted by label values, and leaves out
// vectors that have no series yet, as Prometheus's own client does.
//
// Names and label names are checked when a metric is made: an invalid one
// is a programming error and panics. Label values are escaped as the format
// requires and made valid UTF-8.
package metrics

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ContentType is the media type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Collector is a metric, or a set of them, a Registry can write.
type Collector interface {
	// names are the family names the collector writes.
	names() []string
	// appendTo appends the collector's families to b.
	appendTo(b []byte) []byte
}

// Registry is a set of collectors served together. Safe for concurrent
// use.
type Registry struct {
	mu         sync.Mutex
	collectors []Collector // sorted by their first name
	taken      map[string]bool
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{taken: map[string]bool{}} }

// ErrDuplicate is returned by Register for a name already registered.
var ErrDuplicate = errors.New("metrics: name already registered")

// Register adds collectors. A name that is already registered, by this
// call or an earlier one, is an error, and then nothing is added.
func (r *Registry) Register(cs ...Collector) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	for _, c := range cs {
		if len(c.names()) == 0 {
			return errors.New("metrics: a series of a vector cannot be registered; register the vector")
		}
		for _, n := range c.names() {
			if r.taken[n] || seen[n] {
				return fmt.Errorf("%w: %s", ErrDuplicate, n)
			}
			seen[n] = true
		}
	}
	for n := range seen {
		r.taken[n] = true
	}
	r.collectors = append(r.collectors, cs...)
	slices.SortStableFunc(r.collectors, func(a, b Collector) int { return strings.Compare(a.names()[0], b.names()[0]) })
	return nil
}

// MustRegister is Register, panicking on error.
func (r *Registry) MustRegister(cs ...Collector) {
	if err := r.Register(cs...); err != nil {
		panic(err)
	}
}

// AppendText appends every family in the text format to b.
func (r *Registry) AppendText(b []byte) []byte {
	r.mu.Lock()
	cs := slices.Clone(r.collectors)
	r.mu.Unlock()
	for _, c := range cs {
		b = c.appendTo(b)
	}
	return b
}

// WriteTo writes every family in the text format to w.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(r.AppendText(nil))
	return int64(n), err
}

// ServeHTTP answers GET and HEAD with the text format, gzipped when the
// scraper accepts it (Prometheus does).
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body := r.AppendText(nil)
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Vary", "Accept-Encoding")
	if acceptsGzip(req.Header.Values("Accept-Encoding")) {
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		zw.Write(body) //nolint:errcheck // a bytes.Buffer does not fail
		zw.Close()     //nolint:errcheck
		body = zb.Bytes()
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if req.Method == http.MethodGet {
		w.Write(body) //nolint:errcheck // the scraper left
	}
}

// acceptsGzip reports whether Accept-Encoding lists gzip without q=0.
func acceptsGzip(fields []string) bool {
	for _, f := range fields {
		for part := range strings.SplitSeq(f, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
				continue
			}
			q, ok := strings.CutPrefix(strings.ReplaceAll(strings.ToLower(params), " ", ""), "q=")
			if !ok {
				return true
			}
			if v, err := strconv.ParseFloat(q, 64); err == nil && v > 0 {
				return true
			}
		}
	}
	return false
}

// Samples returns every sample as its series, `name{label="value",...}`
// exactly as written, mapped to its value. For tests and debugging.
func (r *Registry) Samples() map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(r.AppendText(nil))))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// desc is what a family says of itself.
type desc struct {
	name, help, typ string
	labels          []string // as declared: the order of With's values
	// sorted are the label names in the order they are written, sorted
	// as Prometheus's client writes them; sorted[i] is labels[perm[i]].
	sorted []string
	perm   []int
}

func newDesc(name, help, typ string, labels []string) desc {
	if !validName(name, true) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", name))
	}
	for _, l := range labels {
		if !validName(l, false) || strings.HasPrefix(l, "__") || (typ == "histogram" && l == "le") {
			panic(fmt.Sprintf("metrics: %s: invalid label name %q", name, l))
		}
	}
	if hasDuplicate(labels) {
		panic(fmt.Sprintf("metrics: %s: duplicate label names %q", name, labels))
	}
	d := desc{name: name, help: help, typ: typ, labels: slices.Clone(labels), perm: make([]int, len(labels))}
	for i := range d.perm {
		d.perm[i] = i
	}
	slices.SortFunc(d.perm, func(a, b int) int { return strings.Compare(labels[a], labels[b]) })
	for _, i := range d.perm {
		d.sorted = append(d.sorted, labels[i])
	}
	return d
}

// names are the family's name and, for a histogram, the names of its
// series, which no other family may take. A vector's series has no desc
// and no names: registering one is an error.
func (d *desc) names() []string {
	if d == nil {
		return nil
	}
	if d.typ == "histogram" {
		return []string{d.name, d.name + "_bucket", d.name + "_count", d.name + "_sum"}
	}
	return []string{d.name}
}

func hasDuplicate(ss []string) bool {
	for i, s := range ss {
		if slices.Contains(ss[i+1:], s) {
			return true
		}
	}
	return false
}

// validName reports whether s is a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)
// or, without colons, a label name.
func validName(s string, colon bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || colon && c == ':' || i > 0 && c >= '0' && c <= '9'
		if !ok {
			return false
		}
	}
	return true
}

// appendHeader appends the family's HELP and TYPE lines.
func (d *desc) appendHeader(b []byte) []byte {
	b = append(b, "# HELP "...)
	b = append(b, d.name...)
	b = append(b, ' ')
	for i := 0; i < len(d.help); i++ {
		switch c := d.help[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	b = append(b, "\n# TYPE "...)
	b = append(b, d.name...)
	b = append(b, ' ')
	b = append(b, d.typ...)
	return append(b, '\n')
}

// appendSeries appends name, suffix and the label set; extra is one more
// label (a histogram's le), or empty.
func appendSeries(b []byte, name, suffix string, labels, values []string, extraName, extraValue string) []byte {
	b = append(b, name...)
	b = append(b, suffix...)
	if len(labels) == 0 && extraName == "" {
		return b
	}
	b = append(b, '{')
	for i, l := range labels {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendLabel(b, l, values[i])
	}
	if extraName != "" {
		if len(labels) > 0 {
			b = append(b, ',')
		}
		b = appendLabel(b, extraName, extraValue)
	}
	return append(b, '}')
}

func appendLabel(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, `="`...)
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// appendFloat appends v as the format spells it.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case v != v:
		return append(b, "NaN"...)
	case v > maxFloat:
		return append(b, "+Inf"...)
	case v < -maxFloat:
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

const maxFloat = 1.7976931348623157e308
