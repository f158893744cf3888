package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Throughput is measured in rounds (BENCH_ROUNDS). Every target runs from
// the start to the end of the bench, idle but for its own runs; a round
// measures each column (HTTP/1.1, HTTP/2, HTTPS HTTP/1.1, HTTPS HTTP/2)
// on every target in turn, one after the other, starting one target
// further on each round. The table shows, per column, the median of the
// rounds. The host's speed drifts over minutes (other tenants, the CPU's
// clock), so two targets measured minutes apart differ by more than
// their difference; measured side by side, several times, in changing
// order, they do not.

// column is one throughput measurement of the tables.
type column int

const (
	colH1 column = iota // HTTP/1.1, wrk
	colH2               // HTTP/2 without TLS, h2load
	colS1               // HTTPS, HTTP/1.1 by ALPN
	colS2               // HTTPS, HTTP/2 by ALPN
	numColumns
)

func (c column) String() string {
	return [...]string{"HTTP/1.1", "HTTP/2", "HTTPS HTTP/1.1", "HTTPS HTTP/2"}[c]
}

// prepare readies a started target for its runs: a target with parts
// (the agent pair) stays idle for a while and has its memory sampled
// from then on; the HTTP/2 and HTTPS probes decide which columns it has.
func prepare(ctx context.Context, r *row, log *slog.Logger) {
	t := r.t
	if len(t.parts) > 0 {
		log.Info("idle", "target", t.name, "seconds", int(idleWindow/time.Second))
		r.mem = idleUse(ctx, t.parts, idleWindow)
		r.rss = watchRSS(t.parts, 100*time.Millisecond)
	}
	r.has[colH1] = true
	switch {
	case t.h2URL == "":
		r.h2Skip = "n/a"
	default:
		if err := probeH2(ctx, t.h2URL, t.host); err != nil {
			r.h2Skip = "n/a"
			t.notes = append(t.notes, t.name+": no HTTP/2 without TLS (h2c prior knowledge): "+err.Error())
		} else {
			r.has[colH2] = true
		}
	}
	if t.tlsURL != "" {
		if err := probeTLS(ctx, t); err != nil {
			t.notes = append(t.notes, t.name+": HTTPS not measured: "+err.Error())
		} else {
			r.has[colS1], r.has[colS2] = true, true
		}
	}
}

// measureRounds runs cfg.rounds rounds of every column over rows.
func measureRounds(ctx context.Context, cfg *config, rows []*row, log *slog.Logger) {
	eachRun(ctx, cfg.rounds, rows, func(r *row, col column, round int) {
		measureColumn(ctx, cfg, r, col, round, log)
	})
}

// eachRun calls run for every round, column by column, on every row that
// was not skipped and has the column, one row after the other, starting
// one row further on each round; it stops when ctx ends.
func eachRun(ctx context.Context, rounds int, rows []*row, run func(r *row, col column, round int)) {
	var live []*row
	for _, r := range rows {
		if r.skip == "" {
			live = append(live, r)
		}
	}
	for round := range rounds {
		for col := range numColumns {
			for i := range live {
				if ctx.Err() != nil {
					return
				}
				r := live[(i+round)%len(live)]
				if r.has[col] {
					run(r, col, round)
				}
			}
		}
	}
}

// measureColumn makes one run of col on r, after a warm-up run.
func measureColumn(ctx context.Context, cfg *config, r *row, col column, round int, log *slog.Logger) {
	t := r.t
	secs, warm := int(cfg.duration/time.Second), int(cfg.warmup/time.Second)
	var run func(seconds int) (throughput, error)
	tool := "h2load"
	switch col {
	case colH1:
		tool = "wrk"
		run = func(s int) (throughput, error) { return runWrk(ctx, cfg, t.h1URL, t.host, s) }
	case colH2:
		run = func(s int) (throughput, error) { return runH2load(ctx, cfg, t.h2URL, t.host, s) }
	case colS1, colS2:
		h1 := col == colS1
		run = func(s int) (throughput, error) { return runH2loadTLS(ctx, cfg, t, h1, s) }
	}
	log.Info("throughput", "target", t.name, "column", col.String(), "tool", tool, "round", round+1, "of", cfg.rounds, "seconds", secs)
	if warm > 0 {
		_, _ = run(warm)
	}
	res, err := measureCPU(t, func() (throughput, error) { return run(secs) })
	if err != nil {
		t.notes = append(t.notes, fmt.Sprintf("%s: %s run %d failed (%s): %v", t.name, col, round+1, tool, err))
		res = throughput{failed: true} // keeps the rounds in place in the Rounds section
	}
	r.runs[col] = append(r.runs[col], res)
}

// settleRuns sets the table's figures of r from its runs: per column the
// median run.
func settleRuns(r *row) {
	r.h1, r.h2, r.s1, r.s2 = medianRun(r.runs[colH1]), medianRun(r.runs[colH2]), medianRun(r.runs[colS1]), medianRun(r.runs[colS2])
}

// medianRun summarizes the runs that did not fail: the median of their
// req/s and, apart, of their CPU per request (each the mean of the two
// middle values of an even count); requests and errors are summed, so
// that any error shows. nil without such runs.
func medianRun(runs []throughput) *throughput {
	var m throughput
	var rps, cpu []float64
	for _, r := range runs {
		if r.failed {
			continue
		}
		rps = append(rps, r.rps)
		if r.cpuUS > 0 {
			cpu = append(cpu, r.cpuUS)
		}
		m.requests += r.requests
		m.errors += r.errors
	}
	if len(rps) == 0 {
		return nil
	}
	m.rps, m.cpuUS = median(rps), median(cpu)
	return &m
}

// median of xs, 0 when empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.SortFunc(s, cmp.Compare[float64])
	if n := len(s); n%2 == 1 {
		return s[n/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// renderRounds writes every round's req/s and CPU per request, so that
// the spread behind each median shows.
func renderRounds(b *strings.Builder, cfg *config, rows []*row) {
	if cfg.rounds < 2 {
		return
	}
	fmt.Fprintf(b, "\n## Rounds\n\nThe tables show the median of %d rounds; in each, every column was measured on every target in\n"+
		"turn, the order starting one target further each round. Each round's req/s (CPU µs/req):\n\n", cfg.rounds)
	b.WriteString("| target | column | runs |\n|---|---|---|\n")
	for _, r := range rows {
		for col := range numColumns {
			if len(r.runs[col]) == 0 {
				continue
			}
			var cells []string
			for _, run := range r.runs[col] {
				if run.failed {
					cells = append(cells, "failed")
					continue
				}
				cells = append(cells, fmt.Sprintf("%.0f (%.1f)", run.rps, run.cpuUS))
			}
			fmt.Fprintf(b, "| %s | %s | %s |\n", r.t.name, col, strings.Join(cells, ", "))
		}
	}
}
