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
		"  HTTP/1.1 keep-alive. RSS: VmRSS of the proxy's processes after the load. CPU µs/req: user plus\n" +
		"  system time of the proxy's processes (direct: the backend's) during each throughput run, divided\n" +
		"  by its requests.\n")
	if cfg.rounds > 1 {
		fmt.Fprintf(&b, "- Throughput: the median of %d rounds, the targets measured side by side in each (see Rounds).\n", cfg.rounds)
	}
	if cfg.peerHeaders {
		b.WriteString("- nginx, HAProxy and Caddy send the backend the five headers Trellis adds, so that the backend\n" +
			"  parses the same request behind every proxy (bench/README.md, \"The same request for every proxy\").\n")
	}
	b.WriteString("\n")

	b.WriteString("| target | version | HTTP/1.1 req/s | HTTP/2 req/s | CPU µs/req (1.1, 2) | p50 | p99 | p99.9 | +p50 | +p99 | +p99.9 | RSS |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	var direct *row
	for _, r := range rows {
		if r.t.name == "direct" && r.lat != nil && direct == nil {
			direct = r
		}
	}
	var notes []string
	for _, r := range rows {
		if r.skip != "" {
			fmt.Fprintf(&b, "| %s | %s | skipped | | | | | | | | | |\n", r.t.name, orDash(r.t.version))
			notes = append(notes, r.t.name+": skipped: "+r.skip)
			continue
		}
		cells := []string{r.t.name, orDash(r.t.version), rps(r.h1), rps(r.h2), cpuCell(r.h1, r.h2), "", "", "", "", "", "", "-"}
		if r.h2 == nil && r.h2Skip != "" {
			cells[3] = r.h2Skip
		}
		qs := []float64{0.5, 0.99, 0.999}
		if r.lat != nil {
			for i, q := range qs {
				cells[5+i] = ms(r.lat.Percentile(q))
				if direct != nil && r != direct {
					cells[8+i] = signedMS(r.lat.Percentile(q) - direct.lat.Percentile(q))
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
			cells[11] = fmt.Sprintf("%.1f MB", float64(r.rssKB)/1024)
		}
		if s := partsRSS(r.mem); s != "" {
			cells[11] = s
		}
		for _, t := range []*throughput{r.h1, r.h2, r.s1, r.s2} {
			if t != nil && t.errors > 0 {
				notes = append(notes, fmt.Sprintf("%s: %d errors or non-2xx answers among %d requests of throughput runs", r.t.name, t.errors, t.requests))
			}
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
		notes = append(notes, r.t.notes...)
	}
	renderHTTPS(&b, cfg, rows)
	for _, r := range rows {
		if r.skip == "" && len(r.mem) > 0 {
			renderAgents(&b, cfg, r, direct)
		}
	}
	renderRounds(&b, cfg, rows)
	if len(notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range notes {
			b.WriteString("- " + n + "\n")
		}
	}
	return b.String()
}

// partsRSS is the RSS cell of a target with parts: each judged part's
// VmRSS after the load, "client + server".
func partsRSS(mem []memUse) string {
	var kb []string
	for _, m := range mem {
		if !m.aside && m.afterKB > 0 {
			kb = append(kb, fmt.Sprintf("%.1f", float64(m.afterKB)/1024))
		}
	}
	if len(kb) == 0 {
		return ""
	}
	return strings.Join(kb, " + ") + " MB"
}

// renderAgents is the agent pair's own section: each agent's memory idle
// and under load, and the pair against the targets of issue 5.
func renderAgents(b *strings.Builder, cfg *config, r *row, direct *row) {
	fmt.Fprintf(b, "\n## Agent pair (namespace mode), %d services in the namespace\n\n", cfg.agentServices)
	b.WriteString("Client agent → server agent → backend, each agent with a VIP listener for every service of the namespace.\n" +
		"Idle: after setup, " + idleWindow.String() + " without traffic (CPU: cores used meanwhile, by the registry polls).\n" +
		"Load: highest VmRSS sampled every 100 ms from the idle window's end to the pair's latency run (its throughput\n" +
		"runs among the rounds, then its latency run). VmHWM: the peak\n" +
		"over the process's life. RssFile is the binary's pages, shared by every agent of a machine; PSS counts\n" +
		"each shared page as a share among the processes mapping it (here the two agents and the registry).\n\n")
	b.WriteString("| process | RSS idle | RssAnon / RssFile idle | PSS idle | CPU idle | RSS under load (peak) | RSS after | VmHWM |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|\n")
	mb := func(kb int) string {
		if kb <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f MB", float64(kb)/1024)
	}
	for _, m := range r.mem {
		if m.err != "" && m.idleKB == 0 {
			fmt.Fprintf(b, "| %s | %s | | | | | | |\n", m.name, m.err)
			continue
		}
		fmt.Fprintf(b, "| %s | %s | %s / %s | %s | %.1f %% | %s | %s | %s |\n", m.name, mb(m.idleKB), mb(m.anonKB), mb(m.fileKB),
			mb(m.pssKB), 100*m.idleCPU, mb(m.peakKB), mb(m.afterKB), mb(m.hwmKB))
	}
	if cfg.agentServices != 100 {
		fmt.Fprintf(b, "\nIssue 5's targets are stated for 100 services; this run has %d (BENCH_AGENT_SERVICES).\n", cfg.agentServices)
	}
	b.WriteString("\n| target (issue 5) | measured | met |\n|---|--:|---|\n")
	if r.lat != nil && direct != nil {
		for _, g := range []struct {
			q    float64
			name string
			max  time.Duration
		}{{0.5, "p50", agentTargetP50}, {0.99, "p99", agentTargetP99}} {
			d := r.lat.Percentile(g.q) - direct.lat.Percentile(g.q)
			fmt.Fprintf(b, "| added %s of the pair ≤ %s | %s | %s |\n", g.name, ms(g.max), signedMS(d), yesNo(d <= g.max))
		}
	} else {
		b.WriteString("| added p50 / p99 of the pair ≤ 0.2 / 0.4 ms | no latency run (or no direct row) | - |\n")
	}
	for _, m := range r.mem {
		if m.aside {
			continue
		}
		if m.idleKB == 0 {
			fmt.Fprintf(b, "| %s RSS idle ≤ %s | - | - |\n", m.name, mb(agentTargetIdleKB))
			continue
		}
		fmt.Fprintf(b, "| %s RSS idle ≤ %s | %s | %s |\n", m.name, mb(agentTargetIdleKB), mb(m.idleKB), yesNo(m.idleKB <= agentTargetIdleKB))
	}
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// cpuCell is the CPU time per request of the two throughput runs.
func cpuCell(h1, h2 *throughput) string {
	if (h1 == nil || h1.cpuUS == 0) && (h2 == nil || h2.cpuUS == 0) {
		return ""
	}
	return cpuOf(h1) + ", " + cpuOf(h2)
}

// cpuOf is one throughput run's CPU per request, or "-".
func cpuOf(t *throughput) string {
	if t == nil || t.cpuUS <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", t.cpuUS)
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
