package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// throughput is one closed-loop measurement.
type throughput struct {
	rps      float64
	requests int
	errors   int // non-2xx answers and socket errors
	// cpuUS is the CPU time the target's processes spent per request
	// during the run, in µs (0: not measured).
	cpuUS float64
	// failed marks a round whose run failed (rounds.go).
	failed bool
}

var (
	wrkRPS      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkRequests = regexp.MustCompile(`(\d+) requests in`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSocket   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)

	h2Finished = regexp.MustCompile(`finished in [0-9.]+\w*, ([0-9.]+) req/s`)
	h2Requests = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2Status   = regexp.MustCompile(`status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
)

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// runWrk measures HTTP/1.1 keep-alive throughput with wrk.
func runWrk(ctx context.Context, cfg *config, url, host string, seconds int) (throughput, error) {
	args := []string{"-t", strconv.Itoa(cfg.threads), "-c", strconv.Itoa(cfg.conns), "-d", strconv.Itoa(seconds) + "s"}
	if host != "" {
		args = append(args, "-H", "Host: "+host)
	}
	out, err := exec.CommandContext(ctx, "wrk", append(args, url)...).CombinedOutput()
	if err != nil {
		return throughput{}, fmt.Errorf("wrk: %w: %s", err, lastLine(out))
	}
	return parseWrk(string(out))
}

func parseWrk(out string) (throughput, error) {
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return throughput{}, fmt.Errorf("wrk: no Requests/sec in its output: %s", lastLine([]byte(out)))
	}
	t := throughput{}
	t.rps, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkRequests.FindStringSubmatch(out); m != nil {
		t.requests = atoi(m[1])
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		t.errors += atoi(m[1])
	}
	if m := wrkSocket.FindStringSubmatch(out); m != nil {
		t.errors += atoi(m[1]) + atoi(m[2]) + atoi(m[3]) + atoi(m[4])
	}
	return t, nil
}

// runH2load measures HTTP/2 throughput with h2load: h2c with prior
// knowledge for http:// URLs.
func runH2load(ctx context.Context, cfg *config, url, host string, seconds int) (throughput, error) {
	args := []string{"-c", strconv.Itoa(cfg.conns), "-m", strconv.Itoa(cfg.h2Streams), "-t", strconv.Itoa(cfg.threads),
		"-D", strconv.Itoa(seconds)}
	return h2load(ctx, args, url, host)
}

// probeH2 sends a few HTTP/2 requests; it fails unless all of them get 2xx.
func probeH2(ctx context.Context, url, host string) error {
	t, err := h2load(ctx, []string{"-n", "20", "-c", "1"}, url, host)
	if err != nil {
		return err
	}
	if t.requests != 20 || t.errors != 0 {
		return fmt.Errorf("HTTP/2 probe: %d of 20 requests done, %d failed or not 2xx", t.requests, t.errors)
	}
	return nil
}

func h2load(ctx context.Context, args []string, url, host string) (throughput, error) {
	if host != "" {
		args = append(args, "-H", ":authority: "+host)
	}
	out, err := exec.CommandContext(ctx, "h2load", append(args, url)...).CombinedOutput()
	if err != nil {
		return throughput{}, fmt.Errorf("h2load: %w: %s", err, lastLine(out))
	}
	return parseH2load(string(out))
}

func parseH2load(out string) (throughput, error) {
	m := h2Requests.FindStringSubmatch(out)
	if m == nil {
		return throughput{}, fmt.Errorf("h2load: no request counts in its output: %s", lastLine([]byte(out)))
	}
	// "failed" includes "errored" (network errors); answers that are not
	// 2xx count as "succeeded" in h2load but are errors here (the backend
	// only answers 200).
	t := throughput{requests: atoi(m[3]), errors: atoi(m[5])}
	if s := h2Status.FindStringSubmatch(out); s != nil {
		t.errors += atoi(s[2]) + atoi(s[3]) + atoi(s[4])
	}
	if f := h2Finished.FindStringSubmatch(out); f != nil {
		t.rps, _ = strconv.ParseFloat(f[1], 64)
	}
	return t, nil
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// version runs a tool's version command and returns the first match of re.
func version(re *regexp.Regexp, name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "?"
	}
	if m := re.FindStringSubmatch(string(out)); m != nil {
		return m[1]
	}
	return strings.TrimSpace(lastLine(out))
}
