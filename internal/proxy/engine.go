package proxy

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trellis-mesh/trellis/internal/proxy/health"
	"github.com/trellis-mesh/trellis/internal/snapshot"
)

// Config configures an Engine. Zero values take the documented defaults.
type Config struct {
	// BindHost is the address listeners bind to. Default "127.0.0.1".
	BindHost string
	// Logger receives the engine's logs. Default: discard.
	Logger *slog.Logger
	// Observer receives one Record per request and per passthrough
	// connection. May be nil.
	Observer Observer
	// Health returns the live health of a target, keyed by
	// snapshot.TargetKey(tgID, id, port). It is called when a snapshot is
	// compiled, never per request, and must return the same pointer for
	// the same key. Nil: every target is routable.
	Health func(key string) *health.State

	// DialTimeout bounds connecting to a target (and the TLS handshake
	// with an HTTPS target). A timeout is answered 504, a refusal 502.
	// Default 5 s: long enough for a loaded target's accept queue, short
	// enough that a dead address fails before the client gives up.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a target's response
	// headers (answered 504). Default 0: the service's idle timeout, so an
	// upstream that is silent for as long as Lattice tolerates idleness
	// fails. On the HTTP/1 fast path it fires up to an eighth later
	// (deadlines are re-armed lazily, see h1wire.Buf.ArmRead).
	ResponseHeaderTimeout time.Duration
	// IdleTimeout is the idle timeout of a client connection until its
	// first request selects a service, and of services that do not set
	// IdleTimeoutSeconds. Default 60 s (Lattice's default).
	IdleTimeout time.Duration
	// HandshakeTimeout bounds reading a TLS ClientHello and completing the
	// TLS handshake of a new client connection. Default 10 s.
	HandshakeTimeout time.Duration
	// ReadHeaderTimeout bounds reading an HTTP/1 request's headers once
	// their first byte has arrived (the first request's: from the accept).
	// Default 10 s; lower it to shed slow-header clients sooner. On the
	// fast path it fires up to an eighth later.
	ReadHeaderTimeout time.Duration
	// MaxHeaderBytes bounds an HTTP/1 request head (request line and
	// headers); a larger head is answered 400. Default 64 KiB.
	MaxHeaderBytes int
	// MaxConnectionDuration caps a TLS_PASSTHROUGH connection, and an
	// HTTP/1 client connection is closed after the first response once it
	// is older. Default 10 min (Lattice's cap).
	MaxConnectionDuration time.Duration
	// MaxIdleConnsPerTarget bounds the idle keep-alive connections pooled
	// per target address (by each of the two request paths). Default 512:
	// HTTP/2 clients multiplex hundreds of requests on a few connections,
	// each of which holds a target connection while it waits, and a pool
	// smaller than that concurrency closes connections only to dial them
	// again (a 64-connection pool spent 15 % of the gateway's CPU dialing
	// under 640 streams). Idle connections close after the service's idle
	// timeout all the same.
	MaxIdleConnsPerTarget int
	// DrainTimeout is how long a port that a new snapshot drops keeps
	// serving the requests and connections already in flight before they
	// are closed. Default 30 s.
	DrainTimeout time.Duration
	// GoHTTP2 serves HTTP/2 client connections (h2c with prior knowledge,
	// and ALPN h2 over TLS) with net/http's HTTP/2 server rather than
	// internal/h2server, Trellis's own, which queues the frames of all
	// streams of a connection for one write and spends no goroutine on
	// writing: about 1.5 times the requests per CPU under h2load.
	GoHTTP2 bool
}

func (c *Config) setDefaults() {
	if c.BindHost == "" {
		c.BindHost = "127.0.0.1"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.DialTimeout, 5*time.Second)
	def(&c.IdleTimeout, 60*time.Second)
	def(&c.HandshakeTimeout, 10*time.Second)
	def(&c.ReadHeaderTimeout, 10*time.Second)
	def(&c.MaxConnectionDuration, 10*time.Minute)
	def(&c.DrainTimeout, 30*time.Second)
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = 64 << 10
	}
	if c.MaxIdleConnsPerTarget <= 0 {
		c.MaxIdleConnsPerTarget = 512
	}
}

// Engine is the data plane of one gateway: it serves the listeners of the
// snapshot last applied. Safe for concurrent use.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	errLog *log.Logger // net/http's own errors, at Debug
	epoch  time.Time   // monotonic base of clientConn timestamps

	table atomic.Pointer[table]

	mu        sync.Mutex // serialises Apply and Close
	ports     map[int32]*portServer
	upstreams map[upstreamKey]*upstream
	closed    bool
	drains    sync.WaitGroup // ports being drained after removal

	states  sync.Pool // *reqState
	buffers sync.Pool // *[]byte, copy buffers
	h1conns sync.Pool // *h1conn, the fast path's connection state
	directs sync.Pool // *direct, the HTTP/2 direct path's request state

	gen atomic.Uint64 // compilations, numbering the pools they use
	// h1fast serves HTTP/1.x connections with the fast path (h1conn.go);
	// tests turn it off to compare with the net/http path.
	h1fast bool
	// h2direct serves HTTP/2 requests without body on the direct path
	// (h2direct.go); tests turn it off to compare with ServeHTTP.
	h2direct bool
	// h2native serves HTTP/2 with internal/h2server rather than net/http
	// (Config.GoHTTP2 turns it off).
	h2native bool
}

// copyBufferSize is the size of pooled body copy buffers.
const copyBufferSize = 32 << 10

// New returns an engine serving nothing until Apply.
func New(cfg Config) *Engine {
	cfg.setDefaults()
	e := &Engine{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "proxy"),
		epoch:     time.Now(),
		ports:     make(map[int32]*portServer),
		upstreams: make(map[upstreamKey]*upstream),
	}
	e.errLog = slog.NewLogLogger(e.log.Handler(), slog.LevelDebug)
	e.h1fast = true
	e.h2direct = true
	e.h2native = !cfg.GoHTTP2
	e.states.New = func() any { return new(reqState) }
	e.h1conns.New = newH1conn
	e.directs.New = func() any { return newDirect(e) }
	e.buffers.New = func() any {
		b := make([]byte, copyBufferSize)
		return &b
	}
	e.table.Store(newTable(0, ""))
	return e
}

// Apply compiles snap into routing tables and swaps them in atomically,
// then opens listeners for new ports and drains ports no longer used.
// Requests and connections already in flight are never dropped on ports
// that stay: they finish on the table they started with.
//
// A problem with one object (listener, rule, target group) disables that
// object, logged at Warn, and the rest is served. Apply fails, keeping the
// previous table, only when the snapshot has listeners and none is usable,
// or when no listener port could be opened at all. Ports that fail to bind
// are logged and retried by the next Apply.
func (e *Engine) Apply(snap *snapshot.Snapshot) error {
	if snap == nil {
		return errors.New("apply: nil snapshot")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	t, ups, err := e.compile(snap)
	if err != nil {
		for k, u := range ups {
			if e.upstreams[k] != u {
				u.closeIdle()
			}
		}
		return fmt.Errorf("apply: %w", err)
	}
	e.table.Store(t)
	for k, u := range e.upstreams {
		if ups[k] != u {
			u.closeIdle()
		}
	}
	for _, u := range ups {
		u.prune(t.gen)
	}
	e.upstreams = ups

	var bindErrs []error
	for _, p := range t.portList {
		if e.ports[p] != nil {
			continue
		}
		ps, err := e.listen(p)
		if err != nil {
			e.log.Error("listener port not opened", "port", p, "err", err)
			bindErrs = append(bindErrs, err)
			continue
		}
		e.ports[p] = ps
		e.log.Info("listener port opened", "port", p, "tls", t.ports[p].tls)
	}
	for p, ps := range e.ports {
		if t.ports[p] != nil {
			continue
		}
		delete(e.ports, p)
		e.log.Info("listener port closing", "port", p)
		// Stop accepting now, so that a later Apply can bind the port
		// again while this one drains.
		_ = ps.ln.Close()
		e.drains.Add(1)
		go func() {
			defer e.drains.Done()
			ctx, cancel := context.WithTimeout(context.Background(), e.cfg.DrainTimeout)
			defer cancel()
			if err := ps.shutdown(ctx); err != nil {
				e.log.Info("listener port drain cut short", "port", p, "err", err)
			}
		}()
	}
	e.log.Info("snapshot applied", "version", snap.Version, "ports", len(t.portList))
	if len(t.portList) > 0 && len(e.ports) == 0 {
		return fmt.Errorf("apply: no listener port could be opened: %w", errors.Join(bindErrs...))
	}
	return nil
}

// listen opens a port and starts serving it.
func (e *Engine) listen(port int32) (*portServer, error) {
	addr := net.JoinHostPort(e.cfg.BindHost, strconv.Itoa(int(port)))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	ps := newPortServer(e, port, ln)
	ps.start()
	return ps, nil
}

// Ports returns the ports listening now, sorted.
func (e *Engine) Ports() []int32 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Sorted(maps.Keys(e.ports))
}

// Close stops accepting connections on every port and lets requests and
// connections in flight finish until ctx is done, then closes what is
// left and returns ctx's error. Apply fails after Close.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	ports := e.ports
	e.ports = map[int32]*portServer{}
	ups := e.upstreams
	e.upstreams = map[upstreamKey]*upstream{}
	e.mu.Unlock()

	var wg sync.WaitGroup
	errs := make([]error, 0, len(ports))
	var emu sync.Mutex
	for _, ps := range ports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ps.shutdown(ctx); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	drained := make(chan struct{})
	go func() { e.drains.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	for _, u := range ups {
		u.closeIdle()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// now is the engine's monotonic clock in nanoseconds since New.
func (e *Engine) now() int64 { return int64(time.Since(e.epoch)) }

// at is t on the engine's clock (t must carry a monotonic reading): a
// clock reading the caller already has, reused.
func (e *Engine) at(t time.Time) int64 { return int64(t.Sub(e.epoch)) }
