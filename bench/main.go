// Command bench measures Trellis's gateway side by side with nginx, HAProxy
// and Caddy in front of the same backend, and the backend alone ("direct"):
//
//   - HTTP/1.1 keep-alive throughput (wrk, fixed threads, connections, duration);
//   - HTTP/2 throughput (h2load, h2c with prior knowledge);
//   - HTTPS throughput, HTTP/1.1 and HTTP/2 by ALPN (h2load; https.go);
//   - latency at a fixed moderate rate, corrected for coordinated omission
//     (bench/loadgen), p50/p99/p99.9 and what each proxy adds over direct;
//   - the resident memory of each proxy after the load (VmRSS).
//
// A last column runs a pair of Trellis's namespace-mode agents (client
// agent → server agent → backend) in a namespace of 100 services, and
// also reports each agent's memory idle and under load (agent.go).
//
// Run it from the repository root: bash bench/run.sh installs the tools
// and runs it; go run ./bench runs it alone. Settings come from BENCH_*
// variables (see config and bench/README.md). The Markdown report goes to
// standard output and to bench/results/<date>.md; progress to standard error.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trellis-mesh/trellis/bench/loadgen"
)

// Port offsets from BENCH_BASE_PORT (default 18080).
const (
	portBackend = iota
	portNginx
	portHAProxy
	portCaddy
	portTrellisListener
	portTrellisAPI
	portTrellisAdmin
	portTrellisDNS
	portAgentsAPI   // the agent pair's own 'trellis up'
	portAgentsAdmin // and its admin listener
	portAgentAdmin  // each agent's admin listener, on the agent's address
	portNginxH2     = 11
	portNginxTLS    = 12
	portHAProxyTLS  = 13
	portCaddyTLS    = 14
	portTrellisTLS  = 15
)

type config struct {
	duration, warmup time.Duration // per measurement
	rounds           int           // of the throughput runs (rounds.go)
	conns, threads   int           // wrk and h2load
	h2Streams        int           // h2load -m
	rate             float64       // latency run, requests per second
	rateConns        int           // latency run connections
	targets          []string
	basePort         int
	cores            int
	results          string // directory of the reports
	trellisHost      string // where the Trellis gateway serves listeners
	trellisWait      time.Duration
	agentServices    int // services in the agent pair's namespace, payments included
	// peerHeaders makes nginx, HAProxy and Caddy send the target the five
	// headers Trellis adds to every request (peerHeaderNote).
	peerHeaders bool
	work        string
	peerCert    peerCert // made on first use (peerCertFor)
	backend     *proc
	// trellisBin is the built binary; trellisBuild why it did not build.
	trellisBin   string
	trellisBuild error
}

func (c *config) port(offset int) int    { return c.basePort + offset }
func (c *config) addr(offset int) string { return "127.0.0.1:" + strconv.Itoa(c.port(offset)) }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return def
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func loadConfig() *config {
	cores := runtime.NumCPU()
	return &config{
		duration:    envDuration("BENCH_DURATION", 5*time.Second).Round(time.Second),
		warmup:      envDuration("BENCH_WARMUP", time.Second).Round(time.Second),
		rounds:      envInt("BENCH_ROUNDS", 1),
		conns:       envInt("BENCH_CONNECTIONS", 64),
		threads:     envInt("BENCH_THREADS", cores),
		h2Streams:   envInt("BENCH_H2_STREAMS", 10),
		rate:        float64(envInt("BENCH_RATE", 1000)),
		rateConns:   envInt("BENCH_RATE_CONNECTIONS", 16),
		targets:     strings.Split(envString("BENCH_TARGETS", "direct,nginx,haproxy,caddy,trellis,agents"), ","),
		basePort:    envInt("BENCH_BASE_PORT", 18080),
		cores:       cores,
		results:     envString("BENCH_RESULTS", filepath.Join("bench", "results")),
		trellisHost: envString("BENCH_TRELLIS_ADDR", "127.0.0.1"),
		trellisWait: envDuration("BENCH_TRELLIS_WAIT", 30*time.Second),
		// 100: the scenario of issue 5.
		agentServices: envInt("BENCH_AGENT_SERVICES", 100),
		peerHeaders:   os.Getenv("BENCH_PEER_HEADERS") != "0",
	}
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, loadConfig(), log); err != nil {
		log.Error("bench failed", "error", err)
		os.Exit(1)
	}
}

// row is one target's measurements; a field is nil/zero when not measured.
type row struct {
	t       *target
	skip    string
	h1, h2  *throughput
	h2Skip  string
	s1, s2  *throughput // HTTPS: HTTP/1.1 and HTTP/2
	lat     *loadgen.Result
	latSkip string
	rssKB   int
	// mem is the memory of each of t.parts (the agent pair), rss its
	// sampling under load.
	mem []memUse
	rss *rssWatch
	// has says which throughput columns the target has; runs are each
	// round's (rounds.go), of which h1, h2, s1 and s2 are the medians.
	has  [numColumns]bool
	runs [numColumns][]throughput
}

func run(ctx context.Context, cfg *config, log *slog.Logger) error {
	if _, err := os.Stat(filepath.Join("bench", "trellis.yaml")); err != nil {
		return errors.New("run from the repository root (bench/trellis.yaml not found)")
	}
	for _, tool := range []string{"wrk", "h2load"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed; bash bench/run.sh installs it (apt-get install wrk nghttp2-client)", tool)
		}
	}
	for _, off := range []int{portBackend, portNginx, portHAProxy, portCaddy, portTrellisListener, portTrellisAPI, portTrellisAdmin,
		portAgentsAPI, portAgentsAdmin, portNginxH2, portNginxTLS, portHAProxyTLS, portCaddyTLS, portTrellisTLS} {
		if !portFree(cfg.addr(off)) {
			return fmt.Errorf("port %s is in use; set BENCH_BASE_PORT to move the bench's ports", cfg.addr(off))
		}
	}
	work, err := os.MkdirTemp("", "trellis-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	cfg.work = work

	log.Info("building the backend")
	backendBin := filepath.Join(work, "backend")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", backendBin, "./bench/backend").CombinedOutput(); err != nil {
		return fmt.Errorf("building bench/backend: %w: %s", err, out)
	}
	cmd := exec.Command(backendBin, "-addr", cfg.addr(portBackend))
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(cfg.cores))
	if cfg.backend, err = start(work, "backend", cmd); err != nil {
		return err
	}
	defer cfg.backend.stop()
	if err := waitBackend(ctx, "http://"+cfg.addr(portBackend)+"/", "", cfg.backend, 10*time.Second); err != nil {
		return err
	}

	starters := map[string]func(context.Context, *config) (*target, error){
		"direct": startDirect, "nginx": startNginx, "haproxy": startHAProxy, "caddy": startCaddy, "trellis": startTrellis,
		"agents": startAgents,
	}
	began := time.Now()
	var rows []*row
	// Every target runs until the end; they are measured in turn.
	defer func() {
		for _, r := range rows {
			r.t.stop(cfg)
		}
	}()
	for _, name := range cfg.targets {
		name = strings.TrimSpace(name)
		startFn, ok := starters[name]
		if !ok {
			return fmt.Errorf("BENCH_TARGETS: unknown target %q (want direct, nginx, haproxy, caddy, trellis, agents)", name)
		}
		log.Info("starting", "target", name)
		t, err := startFn(ctx, cfg)
		r := &row{t: t}
		if t == nil {
			r.t = &target{name: name}
		}
		rows = append(rows, r)
		var skip skipError
		switch {
		case errors.As(err, &skip):
			r.skip = string(skip)
			log.Warn("skipping", "target", name, "reason", r.skip)
			r.t.stop(cfg) // what did start must not run beside the others
		case err != nil:
			r.skip = "did not start: " + err.Error()
			log.Warn("skipping", "target", name, "reason", r.skip)
			r.t.stop(cfg)
		default:
			prepare(ctx, r, log)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	measureRounds(ctx, cfg, rows, log)
	for _, r := range rows {
		if r.skip == "" && ctx.Err() == nil {
			settleRuns(r)
			measureLatency(ctx, cfg, r, log)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	report := render(cfg, rows, began)
	fmt.Print(report)
	if err := os.MkdirAll(cfg.results, 0o755); err != nil {
		return err
	}
	path := filepath.Join(cfg.results, began.Format("2006-01-02-150405")+".md")
	if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
		return err
	}
	log.Info("report written", "path", path)
	return nil
}

// measureLatency runs the latency measurement of a target, then reads
// its RSS (the agent pair's parts: sampled during the load until now).
func measureLatency(ctx context.Context, cfg *config, r *row, log *slog.Logger) {
	t := r.t
	log.Info("latency at a constant rate", "target", t.name, "rate", cfg.rate, "connections", cfg.rateConns)
	res, err := loadgen.Run(ctx, loadgen.Config{URL: t.h1URL, Host: t.host, Rate: cfg.rate, Duration: cfg.duration,
		Warmup: cfg.warmup, Connections: cfg.rateConns})
	if err != nil {
		r.latSkip = err.Error()
	} else {
		r.lat = res
	}
	// Not the backend's (direct): it serves every target, and holds their
	// connections until the end.
	if t.proc != nil && t.proc != cfg.backend {
		if kb, err := rssKB(t.proc.cmd.Process.Pid); err == nil {
			r.rssKB = kb
		}
	}
	if r.rss != nil {
		r.rss.finish(r.mem)
	}
}

// measureCPU runs a throughput measurement and adds the CPU time t's
// processes spent on each request meanwhile.
func measureCPU(t *target, run func() (throughput, error)) (throughput, error) {
	pids := t.cpuPids()
	before := treeTicks(pids)
	res, err := run()
	if err == nil && len(pids) > 0 && res.requests > 0 {
		var used int64
		for pid, after := range treeTicks(pids) {
			used += after - before[pid] // a process started meanwhile counts whole
		}
		res.cpuUS = float64(used) * 1e6 / userHZ / float64(res.requests)
	}
	return res, err
}

func goVersion() string { return strings.TrimPrefix(runtime.Version(), "go") }
