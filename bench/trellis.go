package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The Trellis column runs the real thing as a user would:
//
//	trellis up --data DIR --api-addr ... --admin-addr ... [--dns-addr ...]
//	trellis apply --data DIR -f bench/trellis.yaml
//	trellis get services --data DIR -o json      (the service's dnsEntry.domainName)
//
// then sends requests to the listener port with that name as Host. When
// the binary does not build, 'up' does not start, or nothing answers on
// the listener with the backend's response within BENCH_TRELLIS_WAIT, the
// column is skipped with the reason.
func startTrellis(ctx context.Context, cfg *config) (*target, error) {
	bin, err := trellisBinary(ctx, cfg)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(cfg.work, "trellis-data")
	args := []string{"up", "--data", data, "--api-addr", cfg.addr(portTrellisAPI), "--admin-addr", cfg.addr(portTrellisAdmin)}
	if upHasDNS(ctx, bin) {
		args = append(args, "--dns-addr", cfg.addr(portTrellisDNS))
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(cfg.cores))
	p, err := start(cfg.work, "trellis", cmd)
	if err != nil {
		return nil, err
	}
	t := &target{name: "trellis", version: trellisVersion(), proc: p,
		notes: []string{"trellis: one 'trellis up' process (control plane and gateway); its RSS includes the control plane"}}
	if err := waitReady(ctx, "http://"+cfg.addr(portTrellisAdmin)+"/readyz", p, 20*time.Second); err != nil {
		return t, errSkip("trellis up did not become ready: %v", err)
	}

	yaml, err := os.ReadFile(filepath.Join("bench", "trellis.yaml"))
	if err != nil {
		return t, err
	}
	doc := strings.NewReplacer("18080", strconv.Itoa(cfg.port(portBackend)), "18084", strconv.Itoa(cfg.port(portTrellisListener)),
		"18095", strconv.Itoa(cfg.port(portTrellisTLS))).Replace(string(yaml))
	applied := filepath.Join(cfg.work, "trellis.yaml")
	if err := os.WriteFile(applied, []byte(doc), 0o644); err != nil {
		return t, err
	}
	if out, err := exec.CommandContext(ctx, bin, "apply", "--data", data, "-f", applied).CombinedOutput(); err != nil {
		return t, errSkip("trellis apply -f bench/trellis.yaml failed: %s", lastLine(out))
	}
	out, err := exec.CommandContext(ctx, bin, "get", "services", "--data", data, "-o", "json").Output()
	if err != nil {
		return t, errSkip("trellis get services failed: %v", err)
	}
	var services []struct {
		Name     string `json:"name"`
		DNSEntry struct {
			DomainName string `json:"domainName"`
		} `json:"dnsEntry"`
	}
	if err := json.Unmarshal(out, &services); err != nil {
		return t, fmt.Errorf("decoding trellis get services: %w", err)
	}
	for _, s := range services {
		if s.Name == "bench" {
			t.host = s.DNSEntry.DomainName
		}
	}
	if t.host == "" {
		return t, errSkip("trellis get services lists no service named bench")
	}
	gw := net.JoinHostPort(cfg.trellisHost, strconv.Itoa(cfg.port(portTrellisListener)))
	t.h1URL, t.h2URL = "http://"+gw+"/", "http://"+gw+"/"
	// HTTPS with the certificate Trellis's CA issued for the service's
	// name, which the gateway picks the listener by.
	t.setTLS(cfg, t.host, cfg.port(portTrellisTLS))
	if err := waitBackend(ctx, t.h1URL, t.host, p, cfg.trellisWait); err != nil {
		return t, errSkip("trellis up runs and the service is applied, but the gateway does not serve the listener yet: %v", err)
	}
	return t, nil
}

// trellisBinary is BENCH_TRELLIS_BIN, or trellis built from this tree
// into the work directory once per run (the gateway and the agent pair
// share it).
func trellisBinary(ctx context.Context, cfg *config) (string, error) {
	if bin := os.Getenv("BENCH_TRELLIS_BIN"); bin != "" {
		return bin, nil
	}
	if cfg.trellisBin == "" && cfg.trellisBuild == nil {
		bin := filepath.Join(cfg.work, "trellis")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/trellis")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // static, as the README builds it
		if out, err := cmd.CombinedOutput(); err != nil {
			cfg.trellisBuild = errSkip("trellis does not build from this tree (CGO_ENABLED=0 go build ./cmd/trellis: %s)", firstLine(out))
		} else {
			cfg.trellisBin = bin
		}
	}
	return cfg.trellisBin, cfg.trellisBuild
}

// upHasDNS reports whether this trellis's 'up' has --dns-addr.
func upHasDNS(ctx context.Context, bin string) bool {
	help, _ := exec.CommandContext(ctx, bin, "up", "--help").CombinedOutput()
	return strings.Contains(string(help), "--dns-addr")
}

// waitReady polls url until it answers 200.
func waitReady(ctx context.Context, url string, p *proc, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("it exited: %s", p.lastLog())
		}
		if resp, err := client.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("no 200 from " + url + " within " + timeout.String())
}

func trellisVersion() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "this tree"
	}
	return "git " + strings.TrimSpace(string(out))
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}
