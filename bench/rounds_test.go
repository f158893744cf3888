package main

import (
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
