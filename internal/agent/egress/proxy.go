package egress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Proxy.
type Config struct {
	// Logger receives the proxy's logs; nil discards them.
	Logger *slog.Logger
	// Observer receives a Record per request and per client connection
	// event; nil records nothing.
	Observer Observer
	// DialTimeout bounds each connection to an endpoint, TLS handshake
	// included; default 5 s (Envoy's connect_timeout). Shorter fails over
	// to another endpoint sooner when one is unreachable; too short fails
	// healthy endpoints across slow networks.
	DialTimeout time.Duration
}

// DefaultDialTimeout is Config.DialTimeout's default.
const DefaultDialTimeout = 5 * time.Second

// Proxy is the agent's outbound proxy. Its methods are safe for concurrent
// use.
type Proxy struct {
	log         *slog.Logger
	obs         Observer
	dialTimeout time.Duration
	epoch       time.Time // the monotonic clock's origin; see now
	bufs        sync.Pool // *[]byte of copyBufSize
	states      sync.Pool // *reqState
	// teTrailers and emptyUA are shared header values; capacity equals
	// length so that an append copies.
	teTrailers []string
	emptyUA    []string

	// ctx is cancelled when Close gives up waiting: dials in progress and
	// TCP streams end.
	ctx    context.Context
	cancel context.CancelFunc
	// hsCtx is cancelled when Close starts: TLS handshakes in progress
	// are cut (tlslisten.go).
	hsCtx    context.Context
	hsCancel context.CancelFunc
	// hsTimeout bounds a TLS client's handshake: TLSHandshakeTimeout,
	// shorter in tests (set before ListenTLS).
	hsTimeout time.Duration
	// retireSweep is the longest period between the sweeps of a retired
	// transport (retire): a minute, shorter in tests.
	retireSweep time.Duration

	mu        sync.Mutex
	closed    bool
	services  map[string]*service
	listeners []*listener
	// acceptWG counts accept loops and TLS handshakes of HTTP
	// connections; serveWG the HTTP/1 and HTTP/2 connections and TCP
	// streams.
	acceptWG sync.WaitGroup
	serveWG  sync.WaitGroup
	tcpMu    sync.Mutex
	tcp      map[*tcpStream]struct{}
	tcpGone  chan struct{} // closed when tcp becomes empty; nil when nobody waits
}

// copyBufSize is the size of the pooled buffers that copy bodies.
const copyBufSize = 32 << 10

// New returns a Proxy with no listeners.
func New(cfg Config) *Proxy {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	hsCtx, hsCancel := context.WithCancel(context.Background())
	p := &Proxy{
		log:         log.With("component", "egress"),
		obs:         cfg.Observer,
		dialTimeout: cfg.DialTimeout,
		epoch:       time.Now(),
		teTrailers:  []string{"trailers"},
		emptyUA:     []string{""},
		ctx:         ctx,
		cancel:      cancel,
		hsCtx:       hsCtx,
		hsCancel:    hsCancel,
		hsTimeout:   TLSHandshakeTimeout,
		retireSweep: time.Minute,
		services:    make(map[string]*service),
		tcp:         make(map[*tcpStream]struct{}),
	}
	p.bufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	p.states.New = func() any { return new(reqState) }
	return p
}

// now is the proxy's monotonic clock in nanoseconds, for ejections.
func (p *Proxy) now() int64 { return int64(time.Since(p.epoch)) }

// service is one service's state. Its policy, endpoints and transport are
// immutable values behind atomic pointers, replaced whole by the setters
// and read without locks by the data path.
type service struct {
	p    *Proxy
	name string
	log  *slog.Logger

	pol atomic.Pointer[policy]
	eps atomic.Pointer[endpointSet]
	up  atomic.Pointer[upstream] // nil until the first Listen or SetPolicy

	mu      sync.Mutex // serialises SetPolicy and SetEndpoints
	ejectMu sync.Mutex // serialises ejection decisions

	slots     slotGate     // HTTP/1.1 connection slots (breaker.go)
	connCount atomic.Int64 // open connections to endpoints

	active   atomic.Int64 // requests in flight
	retrying atomic.Int64 // requests holding a retry-budget slot
	conns    atomic.Int64 // open client connections

	requests, retries, overBudget atomic.Uint64
	overflows                     atomic.Uint64
	ejections, ejectionsSkipped   atomic.Uint64
	tlsFailures                   atomic.Uint64

	retired []*retiredUpstream // guarded by mu; see setPolicy
}

// retiredUpstream is a transport replaced by a policy change. Its
// connections still in use come back to its pools when their requests
// end, and nothing would take them again: sweep closes its idle
// connections every period until none of its connections is open. A
// request that took the transport before the change may still dial on it
// after the sweeps ended (a retry, a wait for a connection slot): the
// dial wakes them (wake).
type retiredUpstream struct {
	up     *upstream
	period time.Duration
	done   atomic.Bool
	ctx    context.Context // the proxy's: no sweep starts again once it ends

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

// retire starts sweeping up, the period after its first sweep being its
// per-request timeout (its requests have normally ended by then) or
// maxPeriod when that is shorter or there is none.
func retire(ctx context.Context, up *upstream, maxPeriod time.Duration) *retiredUpstream {
	period := up.pol.PerRequestTimeout
	if period <= 0 || period > maxPeriod {
		period = maxPeriod
	}
	r := &retiredUpstream{up: up, period: period, ctx: ctx}
	up.retired.Store(r)
	up.closeIdle()
	r.mu.Lock()
	r.timer = time.AfterFunc(period, r.sweep)
	r.mu.Unlock()
	return r
}

// sweep closes the idle connections, and comes again while some are open.
// The count is read under mu, so that a dial either is seen here or finds
// the sweeps done and wakes them.
func (r *retiredUpstream) sweep() {
	r.up.closeIdle()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.stopped:
	case r.up.open.Load() == 0:
		r.done.Store(true)
	default:
		r.timer.Reset(r.period)
	}
}

// wake starts the sweeps again after a dial on the retired transport,
// which has counted its connection first.
func (r *retiredUpstream) wake() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done.Load() && !r.stopped && r.ctx.Err() == nil {
		r.done.Store(false)
		r.timer.Reset(r.period)
	}
}

// stop ends the sweeps, closing the idle connections one last time.
func (r *retiredUpstream) stop() {
	r.mu.Lock()
	r.stopped = true
	r.timer.Stop()
	r.mu.Unlock()
	r.up.closeIdle()
	r.done.Store(true)
}

// serviceLocked returns the service called name, creating it (with no
// endpoints and an empty TCP policy) if needed. p.mu must be held.
func (p *Proxy) serviceLocked(name string) *service {
	if s, ok := p.services[name]; ok {
		return s
	}
	s := &service{p: p, name: name, log: p.log.With("service", name)}
	s.eps.Store(&endpointSet{})
	s.pol.Store(compile(Policy{}))
	p.services[name] = s
	return s
}

// Listen binds addr (for example 127.255.0.7:8080) and serves the service
// name there with pol, which also becomes the service's policy. A service
// may have several listeners. It returns the bound address (useful with
// port 0), an error wrapping ErrInvalidPolicy for an invalid policy,
// ErrClosed after Close, or the bind error.
func (p *Proxy) Listen(name, addr string, pol Policy) (net.Addr, error) {
	return p.listen(name, addr, pol, nil)
}

// listen is Listen, with TLS when srvTLS is set (ListenTLS).
func (p *Proxy) listen(name, addr string, pol Policy, srvTLS *tls.Config) (net.Addr, error) {
	if err := pol.Validate(); err != nil {
		return nil, fmt.Errorf("egress: listen for %q: %w", name, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("egress: listen for %q: %w", name, err)
	}
	s := p.serviceLocked(name)
	s.setPolicy(pol)
	l := newListener(s, ln.(*net.TCPListener), pol.IdleTimeout, srvTLS)
	p.listeners = append(p.listeners, l)
	p.acceptWG.Add(1)
	go func() {
		defer p.acceptWG.Done()
		l.acceptLoop()
	}()
	s.log.Info("listening", "addr", l.Addr().String(), "protocol", pol.Protocol.String(), "tls", srvTLS != nil)
	return l.Addr(), nil
}

// SetEndpoints replaces the endpoints of the service name. Requests
// already sent continue; new requests see only eps at once. Endpoints kept
// (same ID and address) keep their load and outlier state. A name without
// listener is remembered for a later Listen.
func (p *Proxy) SetEndpoints(name string, eps []Endpoint) {
	p.mu.Lock()
	s := p.serviceLocked(name)
	p.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eps.Store(buildSet(s.eps.Load(), eps))
}

// SetPolicy replaces the policy of the service name; requests that arrive
// afterwards use it, and a listener serves its next connections by its
// Protocol. The client-connection idle timeout of existing listeners does
// not change. An invalid policy is refused and the old one kept.
func (p *Proxy) SetPolicy(name string, pol Policy) error {
	if err := pol.Validate(); err != nil {
		return fmt.Errorf("egress: set policy of %q: %w", name, err)
	}
	p.mu.Lock()
	s := p.serviceLocked(name)
	p.mu.Unlock()
	s.setPolicy(pol)
	return nil
}

// setPolicy publishes pol and, when the HTTP transport it needs differs
// from the current one, a new transport. The old transport's idle
// connections are closed now, and again after the old per-request timeout
// (or a minute), by when its requests have normally ended, and so on
// while any of its connections is open: one still in use when a sweep
// comes is closed by the next after its request ends, whatever the idle
// timeout.
func (s *service) setPolicy(pol Policy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := compile(pol)
	old := s.up.Load()
	// A TCP policy keeps the transport it finds: HTTP connections accepted
	// before a switch to TCP finish their requests over it. A first policy
	// of TCP gets one too, so that such connections always have one.
	if old == nil || (pol.Protocol.isHTTP() && !sameTransport(old.pol, c)) {
		s.up.Store(newUpstream(s, c))
		if old != nil {
			r := retire(s.p.ctx, old, s.p.retireSweep)
			kept := s.retired[:0]
			for _, x := range s.retired {
				if !x.done.Load() {
					kept = append(kept, x)
				}
			}
			s.retired = append(kept, r)
		}
	}
	s.pol.Store(c)
}

// Stats returns the counters of the service name, and false for a name
// never used.
func (p *Proxy) Stats(name string) (Stats, bool) {
	p.mu.Lock()
	s, ok := p.services[name]
	p.mu.Unlock()
	if !ok {
		return Stats{}, false
	}
	set := s.eps.Load()
	return Stats{
		ActiveRequests:    s.active.Load(),
		ActiveConnections: s.conns.Load(),
		Requests:          s.requests.Load(),
		Retries:           s.retries.Load(),
		RetriesOverBudget: s.overBudget.Load(),
		Overflows:         s.overflows.Load(),
		Ejections:         s.ejections.Load(),
		EjectionsSkipped:  s.ejectionsSkipped.Load(),

		TLSHandshakeFailures: s.tlsFailures.Load(),
		Endpoints:            len(set.list),
		Ejected:              set.ejectedCount(p.now()),
	}, true
}

// Close stops every listener at once and lets requests and TCP streams in
// flight finish until ctx is done; then it cuts what is left and returns
// an error wrapping ctx's. Idle HTTP/1.1 client connections are closed at
// once; an HTTP/2 one gets a GOAWAY and up to a second to close first
// (net/http's graceful shutdown). TLS handshakes in progress are cut at
// once: their clients have sent nothing yet, and an agent retries such a
// connect failure on another endpoint. Close is idempotent; later calls
// return nil at once.
func (p *Proxy) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	listeners := p.listeners
	services := make([]*service, 0, len(p.services))
	for _, s := range p.services {
		services = append(services, s)
	}
	p.mu.Unlock()

	p.hsCancel()
	for _, l := range listeners {
		l.stopAccepting()
	}
	p.acceptWG.Wait() // no new connections from here on

	var wg sync.WaitGroup
	var forced atomic.Bool
	for _, l := range listeners {
		wg.Go(func() {
			if err := l.shutdown(ctx); err != nil {
				forced.Store(true)
			}
		})
	}
	wg.Go(func() {
		if !p.waitTCP(ctx) {
			forced.Store(true)
		}
	})
	wg.Wait()
	p.cancel()
	p.serveWG.Wait()

	for _, s := range services {
		s.mu.Lock()
		if up := s.up.Load(); up != nil {
			up.closeIdle()
		}
		for _, r := range s.retired {
			r.stop()
		}
		s.retired = nil
		s.mu.Unlock()
	}
	if forced.Load() {
		return fmt.Errorf("egress: close: requests cut: %w", context.Cause(ctx))
	}
	return nil
}

// Unlisten closes the listeners of service name at once: they accept no
// new connection, and their address can be bound again. The returned
// drain lets requests in flight on them finish until its ctx ends, then
// cuts them; call it (in its own goroutine if need be) after Unlisten.
// The service's endpoints and policy stay, for a later Listen. TCP streams
// already spliced are left to end on their own (or at Close).
func (p *Proxy) Unlisten(name string) (drain func(ctx context.Context) error) {
	p.mu.Lock()
	var mine []*listener
	keep := p.listeners[:0:0]
	for _, l := range p.listeners {
		if l.s.name == name {
			mine = append(mine, l)
		} else {
			keep = append(keep, l)
		}
	}
	p.listeners = keep
	p.mu.Unlock()
	for _, l := range mine {
		l.stopAccepting()
	}
	return func(ctx context.Context) error {
		var errs []error
		for _, l := range mine {
			if err := l.shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("egress: unlisten %q %s: requests cut: %w", name, l.Addr(), err))
			}
		}
		return errors.Join(errs...)
	}
}

// waitTCP waits for the TCP streams to end, and closes them when ctx ends
// first; it reports whether they ended on their own.
func (p *Proxy) waitTCP(ctx context.Context) bool {
	p.tcpMu.Lock()
	if len(p.tcp) == 0 {
		p.tcpMu.Unlock()
		return true
	}
	gone := make(chan struct{})
	p.tcpGone = gone
	p.tcpMu.Unlock()
	select {
	case <-gone:
		return true
	case <-ctx.Done():
		p.tcpMu.Lock()
		for t := range p.tcp {
			t.close()
		}
		p.tcpMu.Unlock()
		return false
	}
}

// addTCP registers a stream, which Close waits for (and cuts).
func (p *Proxy) addTCP(t *tcpStream) {
	p.tcpMu.Lock()
	p.tcp[t] = struct{}{}
	p.tcpMu.Unlock()
}

// removeTCP unregisters a finished stream.
func (p *Proxy) removeTCP(t *tcpStream) {
	p.tcpMu.Lock()
	delete(p.tcp, t)
	if len(p.tcp) == 0 && p.tcpGone != nil {
		close(p.tcpGone)
		p.tcpGone = nil
	}
	p.tcpMu.Unlock()
}
