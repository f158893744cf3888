// Package gateway is the service-network role of a data-plane node: it
// serves every service of every service network associated with its VPC.
//
// Flow: the gateway loads its last-known-good snapshot from disk (if any)
// and serves it at once; then it streams snapshots from the control plane
// (package controlclient). Each snapshot goes, in order, to the health
// checker (which starts and stops checks and keeps the health it learned),
// to the proxy engine (which compiles routing tables and swaps them in
// atomically, opening and closing listener ports), and to the DNS
// responder. Health transitions found by the checker are reported to the
// control plane, which shows them in ListTargets. Every request is handed
// to the access-log writer and the metrics.
//
// With the control plane down the gateway keeps serving; restarted while
// it is down, it serves from disk (static stability).
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trellis-mesh/trellis/internal/accesslog"
	"github.com/trellis-mesh/trellis/internal/controlclient"
	"github.com/trellis-mesh/trellis/internal/dns"
	"github.com/trellis-mesh/trellis/internal/gateway/telemetry"
	"github.com/trellis-mesh/trellis/internal/metrics"
	"github.com/trellis-mesh/trellis/internal/proxy"
	"github.com/trellis-mesh/trellis/internal/proxy/health"
	"github.com/trellis-mesh/trellis/internal/snapshot"
)

// Config configures a gateway.
type Config struct {
	// Control says how to reach the control plane and where to keep the
	// last-known-good snapshot (Control.StateDir).
	Control controlclient.Config
	// BindHost is the host listener ports bind; default 127.0.0.1.
	BindHost string
	// Address is the address DNS answers give for service names; default
	// BindHost, or 127.0.0.1 when BindHost is a wildcard.
	Address string
	// DNSAddr is the DNS responder's address; "" runs none.
	DNSAddr string
	// AdminAddr serves /metrics, /healthz and /readyz; "" runs none (as
	// inside `trellis up`, where the server's admin listener serves the
	// gateway's metrics through Registry).
	AdminAddr string
	// Registry receives the gateway's metrics; nil makes a new one.
	Registry *metrics.Registry
	// LogDir is where access logs go (see docs/access-logs.md); default
	// Control.StateDir/logs.
	LogDir string
	// Stdout receives access logs sent to the log group "stdout";
	// default os.Stdout.
	Stdout io.Writer
	Logger *slog.Logger
	// HealthCheckScale shortens health-check intervals and timeouts (tests
	// only; 0 or 1 = real time).
	HealthCheckScale float64
	// GoHTTP2 serves HTTP/2 clients with net/http's server rather than
	// Trellis's own (proxy.Config.GoHTTP2): a fallback.
	GoHTTP2 bool
}

// Gateway is a running gateway node.
type Gateway struct {
	cfg     Config
	log     *slog.Logger
	reg     *metrics.Registry
	client  *controlclient.Client
	checker *health.Checker
	engine  *proxy.Engine
	dns     *dns.Server
	metrics *telemetry.Metrics
	logs    atomic.Pointer[accesslog.Writer] // created at the first snapshot, which names the VPC's ARN
	tgVPC   atomic.Pointer[map[string]string]
	admin   net.Listener

	mu      sync.Mutex // serialises apply
	ready   atomic.Bool
	version atomic.Int64
}

// New builds a gateway and binds its DNS and admin addresses (so callers
// learn real ports before Run).
func New(cfg Config) (*Gateway, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.BindHost == "" {
		cfg.BindHost = "127.0.0.1"
	}
	if cfg.Address == "" {
		cfg.Address = cfg.BindHost
		if ip, err := netip.ParseAddr(cfg.BindHost); err != nil || ip.IsUnspecified() {
			cfg.Address = "127.0.0.1"
		}
	}
	if _, err := netip.ParseAddr(cfg.Address); err != nil {
		return nil, fmt.Errorf("gateway: address %q is not an IP address", cfg.Address)
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.LogDir == "" && cfg.Control.StateDir != "" {
		cfg.LogDir = cfg.Control.StateDir + string(os.PathSeparator) + "logs"
	}
	if cfg.Registry == nil {
		cfg.Registry = metrics.NewRegistry()
		cfg.Registry.MustRegister(metrics.NewProcessCollector())
	}
	cfg.Control.Address = cfg.Address
	cfg.Control.Logger = cfg.Logger.With("component", "controlclient")
	g := &Gateway{cfg: cfg, log: cfg.Logger, reg: cfg.Registry}
	cfg.Control.OnConnect = func() {
		for _, h := range g.checker.Report() {
			g.client.ReportHealth(h)
		}
	}
	var err error
	if g.client, err = controlclient.New(cfg.Control); err != nil {
		return nil, err
	}
	if g.metrics, err = telemetry.New(telemetry.Config{Registry: cfg.Registry}); err != nil {
		return nil, fmt.Errorf("gateway: metrics: %w", err)
	}
	g.checker = health.NewChecker(health.Config{Logger: cfg.Logger.With("component", "health"),
		OnChange: g.client.ReportHealth, IntervalScale: cfg.HealthCheckScale})
	g.engine = proxy.New(proxy.Config{BindHost: cfg.BindHost, Logger: cfg.Logger,
		Observer: proxy.ObserverFunc(g.observe), Health: g.checker.State, GoHTTP2: cfg.GoHTTP2})
	if cfg.DNSAddr != "" {
		g.dns = dns.New(dns.Config{Addr: cfg.DNSAddr, Logger: cfg.Logger.With("component", "dns")})
		if err := g.dns.Listen(); err != nil {
			g.closeParts()
			return nil, fmt.Errorf("gateway: DNS address: %w", err)
		}
	}
	if cfg.AdminAddr != "" {
		if g.admin, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
			g.closeParts()
			return nil, fmt.Errorf("gateway: admin address: %w", err)
		}
	}
	return g, nil
}

// observe hands a finished request to the metrics and the access logs.
func (g *Gateway) observe(r *proxy.Record) {
	g.metrics.Observe(r)
	if w := g.logs.Load(); w != nil && len(r.AccessLogs) > 0 {
		w.Observe(r)
	}
}

// destinationVPC is the VPC of a target group in the current snapshot.
func (g *Gateway) destinationVPC(tgID string) string {
	if m := g.tgVPC.Load(); m != nil {
		return (*m)[tgID]
	}
	return ""
}

// DNSAddr and AdminAddr are the bound addresses ("" when not run).
func (g *Gateway) DNSAddr() string {
	if g.dns == nil {
		return ""
	}
	return g.dns.Addr()
}

func (g *Gateway) AdminAddr() string {
	if g.admin == nil {
		return ""
	}
	return g.admin.Addr().String()
}

// Ports are the listener ports open now.
func (g *Gateway) Ports() []int32 { return g.engine.Ports() }

// Version is the snapshot version being served (0 before the first).
func (g *Gateway) Version() int64 { return g.version.Load() }

// Ready reports whether the gateway serves a snapshot.
func (g *Gateway) Ready() bool { return g.ready.Load() }

// Run serves until ctx ends: first the last-known-good snapshot from disk,
// then whatever the control plane streams. On return the listeners have
// been closed gracefully (in-flight requests get up to 10 s).
func (g *Gateway) Run(ctx context.Context) error {
	defer g.closeParts()
	if snap, err := g.client.Persisted(); err != nil {
		g.log.Warn("ignoring the last-known-good snapshot", "err", err)
	} else if snap != nil {
		if err := g.apply(snap); err != nil {
			g.log.Error("cannot serve the last-known-good snapshot", "version", snap.Version, "err", err)
		} else {
			g.client.MarkApplied(snap)
			g.log.Info("serving the last-known-good snapshot until the control plane answers", "version", snap.Version)
		}
	}
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	if g.dns != nil {
		wg.Add(1)
		go func() { defer wg.Done(); errc <- g.dns.Serve(ctx) }()
	}
	var adminSrv *http.Server
	if g.admin != nil {
		adminSrv = &http.Server{Handler: g.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = adminSrv.Serve(g.admin) }()
	}
	err := g.client.Run(ctx, g.apply)
	if adminSrv != nil {
		_ = adminSrv.Close()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if cerr := g.engine.Close(sctx); cerr != nil {
		g.log.Warn("closing listeners", "err", cerr)
	}
	wg.Wait()
	close(errc)
	for e := range errc {
		if e != nil && !errors.Is(e, context.Canceled) && err == nil {
			err = e
		}
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func (g *Gateway) closeParts() {
	if g.checker != nil {
		g.checker.Close()
	}
	if w := g.logs.Load(); w != nil {
		_ = w.Close()
	}
	if g.admin != nil {
		_ = g.admin.Close()
	}
}

// apply hands a snapshot to the checker, the engine and the DNS responder.
func (g *Gateway) apply(snap *snapshot.Snapshot) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.logs.Load() == nil {
		w, err := accesslog.New(accesslog.Config{LogDir: g.cfg.LogDir, Stdout: g.cfg.Stdout,
			Logger: g.log.With("component", "accesslog"), VPCArn: snap.VPC.ARN, VPCID: snap.VPC.ID,
			DestinationVPC: g.destinationVPC, Registry: g.reg})
		if err != nil {
			return fmt.Errorf("access logs: %w", err)
		}
		g.logs.Store(w)
	}
	tgVPC := make(map[string]string, len(snap.TargetGroups))
	tgIDs := make([]string, 0, len(snap.TargetGroups))
	for _, tg := range snap.TargetGroups {
		tgVPC[tg.ID] = tg.VpcID
		tgIDs = append(tgIDs, tg.ID)
	}
	g.tgVPC.Store(&tgVPC)
	g.checker.Update(snap.TargetGroups)
	if err := g.engine.Apply(snap); err != nil {
		return err
	}
	svcIDs := make([]string, 0, len(snap.Services))
	for _, s := range snap.Services {
		svcIDs = append(svcIDs, s.ID)
	}
	g.metrics.Retain(svcIDs, tgIDs)
	if g.dns != nil {
		g.dns.SetRecords(records(snap, g.cfg.Address), zones(snap)...)
	}
	g.client.SetPorts(g.engine.Ports())
	g.version.Store(snap.Version)
	g.ready.Store(true)
	return nil
}

// records maps every service name the VPC may call to the gateway's address.
func records(snap *snapshot.Snapshot, address string) map[string][]netip.Addr {
	addr := netip.MustParseAddr(address)
	out := make(map[string][]netip.Addr, 2*len(snap.Services))
	for _, s := range snap.Services {
		for _, n := range []string{s.DNSName, s.CustomDomain} {
			if n != "" {
				out[strings.ToLower(strings.TrimSuffix(n, "."))] = []netip.Addr{addr}
			}
		}
	}
	return out
}

// zones are the Cloud Map private DNS namespaces of the snapshot's VPC,
// which the DNS responder answers as their own zones.
func zones(snap *snapshot.Snapshot) []dns.Zone {
	out := make([]dns.Zone, 0, len(snap.DNS))
	for _, z := range snap.DNS {
		dz := dns.Zone{Apex: z.Apex, Names: make([]dns.Name, 0, len(z.Names))}
		for _, n := range z.Names {
			dn := dns.Name{Name: n.Name, A: n.A, ATTL: n.ATTL, AAAA: n.AAAA, AAAATTL: n.AAAATTL,
				Weighted: n.Weighted, SRVTTL: n.SRVTTL, CNAME: n.CNAME, CNAMETTL: n.CNAMETTL}
			for _, t := range n.SRV {
				dn.SRV = append(dn.SRV, dns.SRVTarget{Host: t.Host, Port: t.Port})
			}
			dz.Names = append(dz.Names, dn)
		}
		out = append(out, dz)
	}
	return out
}

// AdminHandler serves /metrics, /healthz and /readyz (ready once a snapshot
// is served).
func (g *Gateway) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", g.reg)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !g.Ready() {
			http.Error(w, "no snapshot yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "ready (version %d)\n", g.Version())
	})
	return mux
}
