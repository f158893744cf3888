package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// render is the Markdown report: settings, one table, notes.
func render(cfg *config, rows []*row, began time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Proxy benchmark, %s\n\n", began.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Host: %s, %d cores (%s), Go %s. Load generators, proxy and backend share these cores, so\n",
		osName(), cfg.cores, cpuModel(), goVersion())
	b.WriteString("absolute numbers are far below what a dedicated host gives; compare the columns with each other.\n\n")
	fmt.Fprintf(&b, "- HTTP/1.1: `wrk -t%d -c%d -d%ds` (keep-alive) after a %s warm-up.\n", cfg.threads, cfg.conns, int(cfg.duration/time.Second), cfg.warmup)
	fmt.Fprintf(&b, "- HTTP/2: `h2load -c%d -m%d -t%d -D%d`, h2c with prior knowledge, after a %s warm-up.\n",
		cfg.conns, cfg.h2Streams, cfg.threads, int(cfg.duration/time.Second), cfg.warmup)
	fmt.Fprintf(&b, "- Latency: %.0f req/s over %d keep-alive connections for %s (after %s), HTTP/1.1, corrected for\n"+
		"  coordinated omission (bench/loadgen: measured from each request's scheduled start). +p50 etc. is the\n"+
		"  difference to direct.\n", cfg.rate, cfg.rateConns, cfg.duration, cfg.warmup)
	b.WriteString("- Backend: bench/backend, Go net/http, 1 KB response, HTTP/1.1 and h2c; proxies reach it over\n" +
		"  HTTP/1.1 keep-alive. RSS: VmRSS of the proxy's processes after the load.\n\n")

	b.WriteString("| target | version | HTTP/1.1 req/s | HTTP/2 req/s | p50 | p99 | p99.9 | +p50 | +p99 | +p99.9 | RSS |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	var direct *row
	for _, r := range rows {
		if r.t.name == "direct" && r.lat != nil && direct == nil {
			direct = r
		}
	}
	var notes []string
	for _, r := range rows {
		if r.skip != "" {
			fmt.Fprintf(&b, "| %s | %s | skipped | | | | | | | | |\n", r.t.name, orDash(r.t.version))
			notes = append(notes, r.t.name+": skipped: "+r.skip)
			continue
		}
		cells := []string{r.t.name, orDash(r.t.version), rps(r.h1), rps(r.h2), "", "", "", "", "", "", "-"}
		if r.h2 == nil && r.h2Skip != "" {
			cells[3] = r.h2Skip
		}
		qs := []float64{0.5, 0.99, 0.999}
		if r.lat != nil {
			for i, q := range qs {
				cells[4+i] = ms(r.lat.Percentile(q))
				if direct != nil && r != direct {
					cells[7+i] = signedMS(r.lat.Percentile(q) - direct.lat.Percentile(q))
				}
			}
			if r.lat.Errors > 0 {
				notes = append(notes, fmt.Sprintf("%s: %d of %d latency-run requests failed (not counted in the percentiles)", r.t.name, r.lat.Errors, r.lat.Sent))
			}
			if r.lat.Achieved < 0.95*cfg.rate {
				notes = append(notes, fmt.Sprintf("%s: completed only %.0f req/s of the %.0f scheduled; its percentiles include the backlog", r.t.name, r.lat.Achieved, cfg.rate))
			}
		} else if r.latSkip != "" {
			notes = append(notes, r.t.name+": latency run failed: "+r.latSkip)
		}
		if r.rssKB > 0 {
			cells[10] = fmt.Sprintf("%.1f MB", float64(r.rssKB)/1024)
		}
		for _, t := range []*throughput{r.h1, r.h2} {
			if t != nil && t.errors > 0 {
				notes = append(notes, fmt.Sprintf("%s: %d errors or non-2xx answers among %d requests in a throughput run", r.t.name, t.errors, t.requests))
			}
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
		notes = append(notes, r.t.notes...)
	}
	if len(notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range notes {
			b.WriteString("- " + n + "\n")
		}
	}
	return b.String()
}

func rps(t *throughput) string {
	if t == nil {
		return ""
	}
	return fmt.Sprintf("%.0f", t.rps)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }

func signedMS(d time.Duration) string {
	return fmt.Sprintf("%+.3f ms", float64(d)/float64(time.Millisecond))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return runtime.GOOS
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return runtime.GOOS
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
