package metrics

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parse reads the registry's output with Prometheus's own text parser, so
// a format mistake fails here as it would fail a scrape.
func parse(t testing.TB, r *Registry) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.AppendText(nil)))
	if err != nil {
		t.Fatalf("Prometheus's parser rejects the output: %v\n%s", err, r.AppendText(nil))
	}
	return fams
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestExposition(t *testing.T) {
	r := NewRegistry()
	reqs := NewCounterVec("demo_requests_total", "Requests.\nSecond line with a \\ backslash.", "service", "code")
	conns := NewGauge("demo_connections", "Open connections.")
	lat := NewHistogramVec("demo_duration_seconds", "Durations.", []float64{0.1, 0.5, 1}, "service")
	plain := NewHistogram("demo_plain_seconds", "Plain.", []float64{1, 2, math.Inf(1)})
	drops := NewCounterFunc("demo_dropped_total", "Dropped.", func() float64 { return 7 })
	empty := NewCounterVec("demo_empty_total", "Never used.", "x")
	r.MustRegister(reqs, conns, lat, plain, drops, empty)

	reqs.With("a", "200").Add(3)
	reqs.With("a", "500").Inc()
	odd := "q\"uo\\te\nnew\xffline"
	reqs.With(odd, "200").Inc()
	conns.Set(5)
	conns.Dec()
	for _, v := range []float64{0.05, 0.1, 0.3, 0.7, 2} {
		lat.With("a").Observe(v)
	}
	plain.Observe(1.5)
	plain.Observe(math.NaN())

	fams := parse(t, r)
	if _, ok := fams["demo_empty_total"]; ok {
		t.Error("a vector with no series is written")
	}
	f := fams["demo_requests_total"]
	if f.GetType() != dto.MetricType_COUNTER || f.GetHelp() != "Requests.\nSecond line with a \\ backslash." {
		t.Errorf("requests: type %v help %q", f.GetType(), f.GetHelp())
	}
	got := map[[2]string]float64{}
	for _, m := range f.GetMetric() {
		l := labelsOf(m)
		got[[2]string{l["service"], l["code"]}] = m.GetCounter().GetValue()
	}
	want := map[[2]string]float64{{"a", "200"}: 3, {"a", "500"}: 1, {strings.ToValidUTF8(odd, "\uFFFD"), "200"}: 1}
	if len(got) != len(want) {
		t.Errorf("requests: %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("requests%q = %v, want %v", k, got[k], v)
		}
	}
	if g := fams["demo_connections"].GetMetric()[0].GetGauge().GetValue(); g != 4 {
		t.Errorf("connections = %v, want 4", g)
	}
	if c := fams["demo_dropped_total"].GetMetric()[0].GetCounter().GetValue(); c != 7 {
		t.Errorf("dropped = %v, want 7", c)
	}

	h := fams["demo_duration_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 5 || math.Abs(h.GetSampleSum()-3.15) > 1e-9 {
		t.Errorf("duration: count %d sum %v, want 5 and 3.15", h.GetSampleCount(), h.GetSampleSum())
	}
	wantCum := map[float64]uint64{0.1: 2, 0.5: 3, 1: 4, math.Inf(1): 5} // le is inclusive
	if len(h.GetBucket()) != len(wantCum) {
		t.Errorf("duration: %d buckets, want %d", len(h.GetBucket()), len(wantCum))
	}
	for _, b := range h.GetBucket() {
		if w, ok := wantCum[b.GetUpperBound()]; !ok || b.GetCumulativeCount() != w {
			t.Errorf("bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), w)
		}
	}
	ph := fams["demo_plain_seconds"].GetMetric()[0].GetHistogram()
	if ph.GetSampleCount() != 2 || len(ph.GetBucket()) != 3 || ph.GetBucket()[1].GetCumulativeCount() != 1 ||
		ph.GetBucket()[2].GetCumulativeCount() != 2 {
		t.Errorf("plain histogram (a given +Inf bound is not doubled; NaN counts only in +Inf): %v", ph)
	}

	// Families come sorted by name, series by label values.
	text := string(r.AppendText(nil))
	if i, j := strings.Index(text, "# HELP demo_connections"), strings.Index(text, "# HELP demo_requests_total"); i < 0 || j < i {
		t.Errorf("families not sorted:\n%s", text)
	}
	if i, j := strings.Index(text, `code="200"`), strings.Index(text, `code="500"`); j < i {
		t.Errorf("series not sorted:\n%s", text)
	}
	if !strings.Contains(text, `demo_requests_total{code="200",service="q\"uo\\te\nnew`) {
		t.Errorf("label value not escaped:\n%s", text)
	}
}

func TestProcessCollector(t *testing.T) {
	r := NewRegistry()
	r.MustRegister(NewProcessCollector())
	fams := parse(t, r)
	for _, name := range []string{"go_goroutines", "go_threads", "go_memstats_alloc_bytes", "go_memstats_heap_alloc_bytes",
		"go_memstats_sys_bytes", "go_gc_cycles_total", "go_gc_gogc_percent", "go_gc_gomemlimit_bytes", "go_sched_gomaxprocs_threads",
		"process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds",
		"process_max_fds", "process_start_time_seconds"} {
		f, ok := fams[name]
		if !ok {
			t.Errorf("no %s", name)
			continue
		}
		m := f.GetMetric()[0]
		v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
		if name != "go_gc_cycles_total" && name != "process_cpu_seconds_total" && v <= 0 {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	if rss := fams["process_resident_memory_bytes"].GetMetric()[0].GetGauge().GetValue(); rss < 1<<20 || rss > 1<<34 {
		t.Errorf("process_resident_memory_bytes = %v, not a plausible RSS", rss)
	}
	if l := labelsOf(fams["go_info"].GetMetric()[0]); !strings.HasPrefix(l["version"], "go") {
		t.Errorf("go_info labels %v", l)
	}
	gauge := func(name string) float64 { return fams[name].GetMetric()[0].GetGauge().GetValue() }
	// This test binary started less than ten minutes ago.
	now := float64(time.Now().Unix())
	if start := gauge("process_start_time_seconds"); start > now+1 || start < now-600 {
		t.Errorf("process_start_time_seconds = %v, now is %v", start, now)
	}
	if got := gauge("go_sched_gomaxprocs_threads"); got != float64(runtime.GOMAXPROCS(0)) {
		t.Errorf("go_sched_gomaxprocs_threads = %v, GOMAXPROCS is %d", got, runtime.GOMAXPROCS(0))
	}
	if got := gauge("go_gc_gogc_percent"); got != 100 && os.Getenv("GOGC") == "" {
		t.Errorf("go_gc_gogc_percent = %v with GOGC unset", got)
	}
}

func TestParseStat(t *testing.T) {
	line := []byte("4242 (a) (b c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 12345 1000000 2048 18446744073709551615\n")
	s, ok := parseStat(line)
	if !ok || s.utime != 250 || s.stime != 50 || s.threads != 9 || s.start != 12345 || s.vsize != 1000000 || s.rss != 2048 {
		t.Errorf("parseStat = %+v, %v", s, ok)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 12 13 14 15 16 17 18 19 20 21 22"} {
		if _, ok := parseStat([]byte(bad)); ok {
			t.Errorf("parseStat(%q) accepted", bad)
		}
	}
}

func TestRegisterDuplicate(t *testing.T) {
	r := NewRegistry()
	r.MustRegister(NewCounter("a_total", "A."))
	err := r.Register(NewCounter("b_total", "B."), NewGauge("a_total", "Again."))
	if !errors.Is(err, ErrDuplicate) || !strings.Contains(err.Error(), "a_total") {
		t.Fatalf("Register of a taken name: %v", err)
	}
	// Nothing of the failed call was added: b_total is still free.
	if err := r.Register(NewCounter("b_total", "B.")); err != nil {
		t.Errorf("b_total after the failed call: %v", err)
	}
	if err := r.Register(NewProcessCollector(), NewGauge("go_goroutines", "x")); !errors.Is(err, ErrDuplicate) {
		t.Errorf("a name inside a collector is not checked: %v", err)
	}
	// A histogram's series names are taken too.
	r.MustRegister(NewHistogram("h_seconds", "H.", []float64{1}))
	if err := r.Register(NewCounter("h_seconds_count", "C.")); !errors.Is(err, ErrDuplicate) {
		t.Errorf("a counter named like a histogram's _count: %v", err)
	}
	// A series of a vector is not a family.
	v := NewCounterVec("v_total", "V.", "a")
	if err := r.Register(v.With("x")); err == nil || errors.Is(err, ErrDuplicate) {
		t.Errorf("registering a vector's series: %v", err)
	}
}

func TestInvalidDefinitionsPanic(t *testing.T) {
	for name, f := range map[string]func(){
		"metric name":       func() { NewCounter("bad-name", "") },
		"empty name":        func() { NewGauge("", "") },
		"digit first":       func() { NewCounter("1x", "") },
		"label name":        func() { NewCounterVec("x_total", "", "bad:label") },
		"reserved label":    func() { NewCounterVec("x_total", "", "__name") },
		"le on a histogram": func() { NewHistogramVec("x", "", []float64{1}, "le") },
		"duplicate labels":  func() { NewGaugeVec("x", "", "a", "a") },
		"buckets unsorted":  func() { NewHistogram("x", "", []float64{2, 1}) },
		"bucket NaN":        func() { NewHistogram("x", "", []float64{math.NaN()}) },
		"value count":       func() { NewCounterVec("x_total", "", "a", "b").With("only-one") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
	NewCounterVec("ok:name_total", "", "ok_label") // colons are allowed in metric names only
}

func TestDelete(t *testing.T) {
	v := NewCounterVec("x_total", "X.", "service", "code")
	v.With("a", "1").Inc()
	v.With("a", "2").Inc()
	v.With("b", "1").Inc()
	if n := v.Delete("service", "a"); n != 2 {
		t.Errorf("Delete removed %d, want 2", n)
	}
	if n := v.Delete("nope", "a"); n != 0 {
		t.Errorf("Delete on an unknown label removed %d", n)
	}
	r := NewRegistry()
	r.MustRegister(v)
	s := r.Samples()
	if len(s) != 1 || s[`x_total{code="1",service="b"}`] != 1 {
		t.Errorf("after Delete: %v", s)
	}
	// A deleted label set starts again from zero.
	v.With("a", "1").Inc()
	if got := r.Samples()[`x_total{code="1",service="a"}`]; got != 1 {
		t.Errorf("recreated series = %v, want 1", got)
	}
}

// Label values that differ only in invalid UTF-8 bytes are written alike,
// so they are one series.
func TestInvalidUTF8IsOneSeries(t *testing.T) {
	r := NewRegistry()
	v := NewCounterVec("x_total", "X.", "a")
	r.MustRegister(v)
	v.With("\xff").Add(5)
	v.With("\xfe").Inc()
	parse(t, r)
	if s := r.Samples(); len(s) != 1 || s["x_total{a=\"\uFFFD\"}"] != 6 {
		t.Errorf("samples %v, want one series of 6", s)
	}
}

// Label values that only differ in where one ends and the next starts are
// different series.
func TestLabelKeysUnambiguous(t *testing.T) {
	v := NewCounterVec("x_total", "X.", "a", "b")
	v.With("ab", "c").Inc()
	v.With("a", "bc").Add(2)
	if v.With("ab", "c").Value() != 1 || v.With("a", "bc").Value() != 2 {
		t.Error("label sets collide")
	}
}

func TestWithAllocatesNothing(t *testing.T) {
	c := NewCounterVec("x_total", "X.", "service", "class")
	h := NewHistogramVec("y_seconds", "Y.", []float64{.001, .01, .1, 1}, "service")
	g := NewGaugeVec("z", "Z.", "service")
	c.With("svc-0123456789abcdef0", "2xx").Inc()
	h.With("svc-0123456789abcdef0").Observe(0.002)
	g.With("svc-0123456789abcdef0").Inc()
	service := strings.Repeat("s", 20)
	if n := testing.AllocsPerRun(1000, func() {
		c.With(service[:20], "2xx").Inc()
		h.With("svc-0123456789abcdef0").Observe(0.002)
		g.With("svc-0123456789abcdef0").Dec()
	}); n > 0 {
		t.Errorf("With + record: %v allocations, want 0", n)
	}
}

// Writers and a scraper at once: run with -race. The totals come out
// exact.
func TestConcurrent(t *testing.T) {
	r := NewRegistry()
	c := NewCounterVec("x_total", "X.", "worker")
	h := NewHistogram("y_seconds", "Y.", []float64{1})
	r.MustRegister(c, h)
	const workers, each = 4, 2000
	var wg, scraper sync.WaitGroup
	stop := make(chan struct{})
	scraper.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			p := expfmt.NewTextParser(model.LegacyValidation)
			if _, err := p.TextToMetricFamilies(bytes.NewReader(r.AppendText(nil))); err != nil {
				t.Errorf("a scrape during writes: %v", err)
				return
			}
		}
	})
	for w := range workers {
		wg.Go(func() {
			for range each {
				c.With(string(rune('a' + w))).Inc()
				h.Observe(0.5)
			}
		})
	}
	wg.Wait()
	close(stop)
	scraper.Wait()
	s := r.Samples()
	for w := range workers {
		if got := s[`x_total{worker="`+string(rune('a'+w))+`"}`]; got != each {
			t.Errorf("worker %d: %v, want %d", w, got, each)
		}
	}
	if h.Count() != workers*each || h.Sum() != workers*each*0.5 {
		t.Errorf("histogram: count %d sum %v", h.Count(), h.Sum())
	}
}

func TestServeHTTP(t *testing.T) {
	r := NewRegistry()
	c := NewCounter("x_total", "X.")
	r.MustRegister(c)
	c.Add(41)
	c.Inc()
	srv := httptest.NewServer(r)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != ContentType {
		t.Errorf("Content-Type %q", ct)
	}
	if want := "# HELP x_total X.\n# TYPE x_total counter\nx_total 42\n"; string(body) != want {
		t.Errorf("body %q, want %q", body, want)
	}
	if format := expfmt.ResponseFormat(resp.Header); format.FormatType() != expfmt.TypeTextPlain {
		t.Errorf("Prometheus reads the answer as %v", format)
	}
	// Gzipped when asked, as Prometheus asks; not when q=0.
	for ae, gz := range map[string]bool{"gzip": true, "deflate, GZIP;q=0.5": true, "gzip;q=0": false, "identity": false} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set("Accept-Encoding", ae)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		var rd io.Reader = resp.Body
		if got := resp.Header.Get("Content-Encoding") == "gzip"; got != gz {
			t.Errorf("Accept-Encoding %q: gzipped %v, want %v", ae, got, gz)
		} else if gz {
			if rd, err = gzip.NewReader(resp.Body); err != nil {
				t.Fatal(err)
			}
		}
		b, err := io.ReadAll(rd)
		resp.Body.Close()
		if err != nil || !strings.Contains(string(b), "x_total 42\n") {
			t.Errorf("Accept-Encoding %q: body %q, %v", ae, b, err)
		}
	}
	resp, err = http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}

// FuzzExposition: whatever label values and help a metric gets, Prometheus
// parses the output and reads the values back.
func FuzzExposition(f *testing.F) {
	f.Add("svc-1", "2xx", "Help.", uint64(3))
	f.Add("q\"uo\\te", "new\nline", "back\\slash\nnewline", uint64(0))
	f.Add("\xff\xfe", "", "", uint64(math.MaxUint64))
	f.Fuzz(func(t *testing.T, a, b, help string, n uint64) {
		if !utf8.ValidString(help) {
			help = strings.ToValidUTF8(help, "?")
		}
		r := NewRegistry()
		v := NewCounterVec("x_total", help, "a", "b")
		r.MustRegister(v)
		v.With(a, b).Add(n)
		v.With(b, a).Add(1)
		fams := parse(t, r)
		f := fams["x_total"]
		// The parser skips the blanks between the name and the help.
		if want := strings.TrimLeft(help, " \t"); f.GetHelp() != want {
			t.Errorf("help %q, want %q", f.GetHelp(), want)
		}
		want := map[[2]string]uint64{} // counters wrap as uint64 does
		want[[2]string{strings.ToValidUTF8(a, "\uFFFD"), strings.ToValidUTF8(b, "\uFFFD")}] += n
		want[[2]string{strings.ToValidUTF8(b, "\uFFFD"), strings.ToValidUTF8(a, "\uFFFD")}] += 1
		got := map[[2]string]float64{}
		for _, m := range f.GetMetric() {
			l := labelsOf(m)
			k := [2]string{l["a"], l["b"]}
			if _, dup := got[k]; dup {
				t.Errorf("label set %q written twice: Prometheus would drop one", k)
			}
			got[k] = m.GetCounter().GetValue()
		}
		if len(got) != len(want) {
			t.Errorf("%d series, want %d: %v", len(got), len(want), got)
		}
		for k, w := range want {
			if got[k] != float64(w) {
				t.Errorf("%q = %v, want %v (all: %v)", k, got[k], w, got)
			}
		}
	})
}

func BenchmarkCounterVecWith(b *testing.B) {
	c := NewCounterVec("x_total", "X.", "service", "class")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.With("svc-0123456789abcdef0", "2xx").Inc()
		}
	})
}

func BenchmarkHistogramObserve(b *testing.B) {
	h := NewHistogramVec("y_seconds", "Y.", []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}, "service")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.With("svc-0123456789abcdef0").Observe(0.0042)
		}
	})
}

func BenchmarkScrape(b *testing.B) {
	r := NewRegistry()
	c := NewCounterVec("x_total", "X.", "service", "class")
	h := NewHistogramVec("y_seconds", "Y.", []float64{.001, .01, .1, 1}, "service")
	r.MustRegister(c, h, NewProcessCollector())
	for i := range 100 {
		s := "svc-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		c.With(s, "2xx").Inc()
		h.With(s).Observe(0.01)
	}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = r.AppendText(buf[:0])
	}
}

func FuzzAcceptsGzip(f *testing.F) {
	for _, s := range []string{"gzip", "gzip;q=0", "br, gzip;q=0.8", "GZIP ; Q=1", "gzip;q=abc", ";", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if acceptsGzip([]string{s}) && !strings.Contains(strings.ToLower(s), "gzip") {
			t.Errorf("acceptsGzip(%q) without gzip in it", s)
		}
	})
}
