// Package server runs the Trellis control plane: it opens the store, builds
// the Lattice-compatible, Cloud Map–compatible, native and STS APIs behind
// one SigV4 authentication layer, and serves them on the API address, with
// /metrics, /healthz and /readyz on a separate admin address.
//
// Lifecycle: New opens the store (failing fast if another process holds
// it); Run listens, serves until ctx is cancelled, then drains in-flight
// requests and closes the store.
package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/internal/api/cloudmap"
	"github.com/trellis-mesh/trellis/internal/api/lattice"
	"github.com/trellis-mesh/trellis/internal/api/native"
	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/metrics"
	"github.com/trellis-mesh/trellis/internal/pki"
	"github.com/trellis-mesh/trellis/internal/snapshot"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/bolt"
)

// Config configures a server. Zero values take the documented defaults.
type Config struct {
	// DataDir holds the store (DataDir/trellis.db). Required.
	DataDir string
	// APIAddr is the API listen address; default 127.0.0.1:7070.
	APIAddr string
	// AdminAddr serves /metrics, /healthz, /readyz; default 127.0.0.1:7071.
	AdminAddr string
	// Region is the region of every ARN and the one SigV4 scopes must name; default us-east-1.
	Region string
	// Quotas override Lattice's default quotas.
	Quotas lattice.Quotas
	// RateLimit is the API requests per second allowed per account (burst
	// twice that); over it a request gets ThrottlingException (429) with
	// Retry-After. Zero, the default, means no limit.
	RateLimit float64
	// DeregistrationDelay is how long a deregistered target drains (no new
	// requests, in-flight ones finish) before it is removed; default 60 s,
	// Lattice's. Negative removes deregistered targets at once.
	DeregistrationDelay time.Duration
	// CertSource gives HTTPS services their certificates in node
	// snapshots; default: imported certificates for certificateArn, else
	// certificates issued by the installation's CA (package pki).
	CertSource snapshot.CertSource
	// TrustDomain is the SPIFFE trust domain of principals' client
	// certificates (spiffe://<domain>/account/...). It is an installation
	// property, kept in the store on the first start: empty takes the
	// stored one (trellis.local, iam.DefaultTrustDomain, on a new
	// installation); a value different from the stored one is refused,
	// since every client certificate issued before would stop working.
	TrustDomain string
	// NodeHeartbeat is the heartbeat interval of node snapshot streams;
	// default snapshot.HeartbeatInterval (tests shorten it).
	NodeHeartbeat time.Duration
	Logger        *slog.Logger
	// Now defaults to time.Now (tests pin the clock).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.APIAddr == "" {
		c.APIAddr = "127.0.0.1:7070"
	}
	if c.AdminAddr == "" {
		c.AdminAddr = "127.0.0.1:7071"
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	switch {
	case c.DeregistrationDelay == 0:
		c.DeregistrationDelay = DefaultDeregistrationDelay
	case c.DeregistrationDelay < 0:
		c.DeregistrationDelay = 0
	}
	return c
}

// DefaultDeregistrationDelay is Lattice's drain time of deregistered targets.
const DefaultDeregistrationDelay = 60 * time.Second

// Server is a running control plane.
type Server struct {
	cfg      Config
	st       store.Store
	log      *slog.Logger
	reg      *metrics.Registry
	handler  http.Handler
	lattice  *lattice.API
	cloudmap *cloudmap.API
	broker   *snapshot.Broker
	ca       *pki.CA
	td       string

	apiLn, adminLn net.Listener
}

// New opens the store in cfg.DataDir and builds the handlers.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if cfg.DataDir == "" {
		return nil, errors.New("server: a data directory is required (--data)")
	}
	st, err := bolt.Open(filepath.Join(cfg.DataDir, "trellis.db"), bolt.Options{})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{cfg: cfg, st: st, log: cfg.Logger, reg: metrics.NewRegistry()}
	s.reg.MustRegister(metrics.NewProcessCollector())
	partition, err := installationPartition(ctx, st)
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	if s.ca, err = pki.LoadOrCreate(ctx, st, cfg.Now); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("server: certificate authority: %w", err)
	}
	if s.td, err = installationTrustDomain(ctx, st, cfg.TrustDomain); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	if cfg.CertSource == nil {
		is, err := pki.NewIssuer(pki.IssuerConfig{Store: st, CA: s.ca, Now: cfg.Now, Logger: s.log.With("component", "pki")})
		if err != nil {
			_ = st.Close()
			return nil, fmt.Errorf("server: %w", err)
		}
		cfg.CertSource = is
	}
	m := newAPIMetrics(s.reg)
	la := lattice.New(lattice.Config{Store: st, Region: cfg.Region, DNSPartition: partition, Quotas: cfg.Quotas,
		Logger: s.log.With("api", "lattice"), Now: cfg.Now, Observe: m.observer("lattice"),
		DeregistrationDelay: cfg.DeregistrationDelay})
	// The broker lives as long as the server: Serve or Close stops it.
	s.broker = snapshot.NewBroker(context.WithoutCancel(ctx), snapshot.BrokerConfig{Store: st, Region: cfg.Region,
		Certs: cfg.CertSource, Logger: s.log.With("component", "snapshots"), Metrics: s.reg,
		Auth: snapshot.AuthOptions{ClientCAPEM: string(s.ca.CertPEM()), TrustDomain: s.td, Now: cfg.Now}})
	s.lattice = la
	cm := cloudmap.New(cloudmap.Config{Store: st, Region: cfg.Region, Logger: s.log.With("api", "cloudmap"),
		Now: cfg.Now, Observe: m.observer("cloudmap")})
	s.cloudmap = cm
	na := native.New(st, cfg.Region, s.log.With("api", "native"), m.observer("native"),
		native.WithNodes(native.NodeOptions{Broker: s.broker, Heartbeat: cfg.NodeHeartbeat}),
		native.WithClientCertificates(native.ClientCertOptions{CA: s.ca, TrustDomain: s.td}),
		native.WithServiceDiscovery(cm))
	auth := &authenticator{st: st, region: cfg.Region, now: cfg.Now, log: s.log, denied: m.authFailures,
		limit: newLimiter(cfg.RateLimit, cfg.Now), throttled: m.throttled}
	s.handler = auth.wrap(route(la, na, cm, &stsAPI{}, m.observer("sts")))
	return s, nil
}

// Registry is the registry /metrics serves; a gateway run in the same
// process (trellis up) registers its metrics here.
func (s *Server) Registry() *metrics.Registry { return s.reg }

// Region is the region of every ARN.
func (s *Server) Region() string { return s.cfg.Region }

// DataDir is the directory that holds the server's state.
func (s *Server) DataDir() string { return s.cfg.DataDir }

// CA is the installation's certificate authority.
func (s *Server) CA() *pki.CA { return s.ca }

// TrustDomain is the installation's SPIFFE trust domain.
func (s *Server) TrustDomain() string { return s.td }

// Store is the server's store (for bootstrap and tests).
func (s *Server) Store() store.Store { return s.st }

// Handler is the authenticated API handler (for in-process tests).
func (s *Server) Handler() http.Handler { return s.handler }

// Listen binds the API and admin addresses, so callers learn the real
// ports (":0" in tests) before Serve.
func (s *Server) Listen() error {
	var err error
	if s.apiLn, err = net.Listen("tcp", s.cfg.APIAddr); err != nil {
		return fmt.Errorf("server: API address: %w", err)
	}
	if s.adminLn, err = net.Listen("tcp", s.cfg.AdminAddr); err != nil {
		_ = s.apiLn.Close()
		return fmt.Errorf("server: admin address: %w", err)
	}
	return nil
}

// APIAddr and AdminAddr are the bound addresses after Listen.
func (s *Server) APIAddr() string   { return s.apiLn.Addr().String() }
func (s *Server) AdminAddr() string { return s.adminLn.Addr().String() }

// Serve serves until ctx is cancelled, then shuts down gracefully and
// closes the store. Listen must have been called.
func (s *Server) Serve(ctx context.Context) error {
	api := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	admin := &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- api.Serve(s.apiLn) }()
	go func() { errc <- admin.Serve(s.adminLn) }()
	drainCtx, stopDrain := context.WithCancel(ctx)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		var wg sync.WaitGroup
		wg.Go(func() { s.cloudmap.RunLeaseExpiry(drainCtx, time.Second) })
		s.lattice.RunDrainer(drainCtx)
		wg.Wait()
	}()
	s.log.Info("serving", "api", s.APIAddr(), "admin", s.AdminAddr(), "region", s.cfg.Region)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	stopDrain()
	<-drained
	// Closing the broker ends the node streams, which Shutdown would
	// otherwise wait for.
	s.broker.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = api.Shutdown(sctx)
	_ = admin.Shutdown(sctx)
	if cerr := s.st.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Close releases the store without serving (for callers that fail before Serve).
func (s *Server) Close() error {
	s.broker.Close()
	return s.st.Close()
}

func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.reg)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.st.Revision(r.Context()); err != nil {
			http.Error(w, "store unavailable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// installationPartition returns the 7-hex label of generated DNS names,
// created once per installation and kept in the store.
func installationPartition(ctx context.Context, st store.Store) (string, error) {
	const k = "/meta/dns-partition"
	var out string
	_, err := store.Update(ctx, st, func(tx *store.Tx) error {
		kv, err := tx.Get(k)
		if err == nil {
			out = string(kv.Value)
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		out = hex.EncodeToString(b[:])[:7]
		tx.Put(k, []byte(out))
		return nil
	})
	return out, err
}

// installationTrustDomain returns the SPIFFE trust domain kept in the
// store, storing configured (or the default) on the first start. A
// configured domain that differs from the stored one is an error.
func installationTrustDomain(ctx context.Context, st store.Store, configured string) (string, error) {
	const k = "/meta/trust-domain"
	if configured != "" {
		if err := iam.CheckTrustDomain(configured); err != nil {
			return "", fmt.Errorf("trust domain %q: %w", configured, err)
		}
	}
	var out string
	_, err := store.Update(ctx, st, func(tx *store.Tx) error {
		kv, err := tx.Get(k)
		switch {
		case err == nil:
			out = string(kv.Value)
			return nil
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		out = cmp.Or(configured, iam.DefaultTrustDomain)
		tx.Put(k, []byte(out))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("trust domain: %w", err)
	}
	if configured != "" && configured != out {
		return "", fmt.Errorf("trust domain %q: this installation's is %q; changing it would invalidate every client certificate it issued", configured, out)
	}
	return out, nil
}
