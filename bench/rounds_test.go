package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

func TestMedianRun(t *testing.T) {
	if medianRun(nil) != nil {
		t.Error("no runs gave a figure")
	}
	odd := medianRun([]throughput{{rps: 300, cpuUS: 10, requests: 3}, {rps: 100, cpuUS: 30, requests: 1, errors: 2}, {rps: 200, cpuUS: 20, requests: 2}})
	if odd.rps != 200 || odd.cpuUS != 20 || odd.requests != 6 || odd.errors != 2 {
		t.Errorf("three runs: %+v, want 200 req/s, 20 µs, 6 requests, 2 errors", *odd)
	}
	even := medianRun([]throughput{{rps: 100, cpuUS: 12}, {rps: 400, cpuUS: 0}, {rps: 200, cpuUS: 10}, {rps: 300, cpuUS: 14}})
	if even.rps != 250 || even.cpuUS != 12 {
		t.Errorf("four runs: %+v, want 250 req/s (mean of the middle two) and 12 µs (of the three measured)", *even)
	}
	if m := medianRun([]throughput{{failed: true}, {rps: 50, cpuUS: 5}, {failed: true}}); m == nil || m.rps != 50 || m.cpuUS != 5 {
		t.Errorf("one run of three: %+v, want the one that did not fail", m)
	}
	if m := medianRun([]throughput{{failed: true}}); m != nil {
		t.Errorf("only a failed run gave %+v", *m)
	}
}

func TestRenderRounds(t *testing.T) {
	rows := []*row{{t: &target{name: "nginx"}}, {t: &target{name: "trellis"}}}
	rows[0].runs[colH1] = []throughput{{rps: 100, cpuUS: 1}, {rps: 110, cpuUS: 1.5}}
	rows[1].runs[colS2] = []throughput{{rps: 90, cpuUS: 2}, {failed: true}, {rps: 95, cpuUS: 2.5}}
	var b strings.Builder
	renderRounds(&b, &config{rounds: 1}, rows)
	if b.Len() != 0 {
		t.Errorf("one round rendered a Rounds section:\n%s", b.String())
	}
	renderRounds(&b, &config{rounds: 2}, rows)
	for _, want := range []string{"median of 2 rounds", "| nginx | HTTP/1.1 | 100 (1.0), 110 (1.5) |", "| trellis | HTTPS HTTP/2 | 90 (2.0), failed, 95 (2.5) |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in:\n%s", want, b.String())
		}
	}
}

// TestEachRun: rounds go column by column over the targets in turn, each
// round starting one target further; skipped targets and columns a target
// does not have are left out.
func TestEachRun(t *testing.T) {
	rows := []*row{{t: &target{name: "a"}}, {t: &target{name: "b"}}, {t: &target{name: "x"}, skip: "did not start"}, {t: &target{name: "c"}}}
	for _, r := range rows {
		r.has[colH1] = true
	}
	rows[1].has[colH2] = true
	var got []string
	eachRun(context.Background(), 3, rows, func(r *row, col column, round int) {
		got = append(got, fmt.Sprintf("%d:%s:%s", round, col, r.t.name))
	})
	want := "0:HTTP/1.1:a 0:HTTP/1.1:b 0:HTTP/1.1:c 0:HTTP/2:b " +
		"1:HTTP/1.1:b 1:HTTP/1.1:c 1:HTTP/1.1:a 1:HTTP/2:b " +
		"2:HTTP/1.1:c 2:HTTP/1.1:a 2:HTTP/1.1:b 2:HTTP/2:b"
	if strings.Join(got, " ") != want {
		t.Errorf("runs\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	eachRun(ctx, 3, rows, func(*row, column, int) {
		n++
		cancel()
	})
	if n != 1 {
		t.Errorf("%d runs after the context ended, want 1", n)
	}
}
