package health

import (
	"cmp"
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/internal/snapshot"
)

// Config configures a Checker.
type Config struct {
	// Logger receives transitions (Info) and configuration problems
	// (Warn). Default: discard.
	Logger *slog.Logger
	// OnChange is called on every status or reason change of a target of
	// a checked group (one whose Checked is true), with the new health. It
	// is called from check goroutines and from Update, with the target's
	// lock held so calls for one target arrive in order: it must not
	// block long and must not call back into the Checker. Default: none.
	OnChange func(snapshot.TargetHealth)
	// Now is the clock used to time checks (for logs). Default time.Now.
	Now func() time.Time
	// DialTimeout bounds connection establishment of a check. Default and
	// maximum: the check's timeout. A shorter one tells an unreachable
	// target (Target.Timeout) apart sooner, at the cost of failing slow
	// but live networks.
	DialTimeout time.Duration
	// IntervalScale multiplies every check interval and timeout (and the
	// first check's jitter). For tests only, where 5 s intervals are too
	// slow: 0.01 turns a 5 s interval into 50 ms. Default (0) and 1 mean
	// real time.
	IntervalScale float64
	// MaxJitter bounds the random delay before a target's first check,
	// which spreads the checks of many targets registered at once.
	// Default: a tenth of the interval, at most 1 s (after scaling).
	MaxJitter time.Duration
}

// Checker runs the active health checks of the target groups this node
// checks and holds the live State of every target it serves.
//
// Lifecycle: NewChecker, then Update with each snapshot's target groups
// (before compiling the snapshot's routes, which call State), then Close.
// Every method is safe for concurrent use.
type Checker struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	entries map[string]*entry
	closed  bool
}

// entry is one target's live health and, for checked groups, its check.
type entry struct {
	state State // read by the router without locks

	tgID string // identity, set when seeded
	id   string
	port int32

	// seeded says Update has seen the target (State may create entries
	// before that).
	seeded bool
	// checked: the target's status comes from this node's checks.
	checked bool
	// probe is the config of the running check loop (valid when running).
	probe   probeConfig
	running bool
	stop    context.CancelFunc

	mu     sync.Mutex // guards gen, reason and emitting OnChange
	gen    uint64     // bumped whenever the loop is stopped or replaced
	reason string
}

// NewChecker returns a checker with no targets.
func NewChecker(cfg Config) *Checker {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Checker{cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel, entries: map[string]*entry{}}
}

// State returns the live State of the target with key (snapshot.TargetKey),
// creating it (INITIAL) when unknown. The pointer stays the same for as
// long as the target is in the groups given to Update.
func (c *Checker) State(key string) *State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &c.entry(key).state
}

// entry returns the entry of key, creating it; c.mu must be held.
func (c *Checker) entry(key string) *entry {
	e := c.entries[key]
	if e == nil {
		e = &entry{}
		c.entries[key] = e
	}
	return e
}

// Update synchronises the checks with the target groups of a snapshot:
//
//   - groups with Checked and an enabled health check: every target gets a
//     check loop; a new target starts INITIAL (or at the status the
//     snapshot recorded, so a restarted node keeps what it had learned);
//     a target whose check config changed restarts its loop and keeps its
//     status;
//   - groups with Checked and checks disabled (or none, LAMBDA/ALB):
//     targets are UNAVAILABLE, reason Target.HealthCheckDisabled;
//   - groups not Checked: targets take the snapshot's Status;
//   - targets in none of the groups are forgotten and their checks stop.
//
// Update never waits for a check to finish.
func (c *Checker) Update(groups []snapshot.TargetGroup) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	seen := make(map[string]struct{}, len(c.entries))
	for i := range groups {
		g := &groups[i]
		checks := g.Checked && g.HealthCheck != nil && g.HealthCheck.Enabled != nil && *g.HealthCheck.Enabled
		for _, t := range g.Targets {
			key := t.Key(g.ID)
			if _, dup := seen[key]; dup {
				continue
			}
			seen[key] = struct{}{}
			e := c.entry(key)
			if !e.seeded {
				// The identity never changes for a key; loops (which read
				// it under e.mu) exist only once the entry is seeded.
				e.mu.Lock()
				e.tgID, e.id, e.port = g.ID, t.ID, t.Port
				e.mu.Unlock()
			}
			switch {
			case !g.Checked:
				c.stopLoop(e)
				e.checked = false
				e.mu.Lock()
				e.state.Store(ParseStatus(t.Status))
				e.reason = t.Reason
				e.mu.Unlock()
			case !checks:
				c.stopLoop(e)
				e.checked = true
				c.set(e, verdict{Unavailable, ReasonHealthCheckDisabled}, t)
			default:
				p := newProbeConfig(g.HealthCheck, t.Address, c.cfg.IntervalScale)
				if e.running && e.probe == p {
					break
				}
				wasChecking := e.running
				c.stopLoop(e)
				if !wasChecking {
					// Newly checked: seed from the snapshot, except that a
					// target whose checks were off starts over.
					v := verdict{ParseStatus(t.Status), t.Reason}
					if e.checked && e.seeded {
						v = verdict{e.state.Load(), e.reasonLocked()}
					}
					if v.status == Unavailable || v.status == Initial {
						v = verdict{Initial, ReasonInitial}
					}
					e.checked = true
					c.set(e, v, t)
				}
				c.startLoop(e, p)
			}
			e.seeded = true
		}
	}
	for key, e := range c.entries {
		if _, ok := seen[key]; !ok {
			c.stopLoop(e)
			delete(c.entries, key)
		}
	}
}

func (e *entry) reasonLocked() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reason
}

// set records v for a checked target and reports it when it differs from
// what the node knew: its own last verdict, or for a target it sees for the
// first time the status in the snapshot.
func (c *Checker) set(e *entry, v verdict, t snapshot.Target) {
	e.mu.Lock()
	defer e.mu.Unlock()
	prev := verdict{e.state.Load(), e.reason}
	if !e.seeded {
		prev = verdict{ParseStatus(t.Status), t.Reason}
	}
	e.state.Store(v.status)
	e.reason = v.reason
	if prev != v {
		c.emit(e, v)
	}
}

// emit reports v; e.mu must be held.
func (c *Checker) emit(e *entry, v verdict) {
	c.log.Info("target health changed", "targetGroup", e.tgID, "target", e.id, "port", e.port,
		"status", v.status.String(), "reason", v.reason)
	if c.cfg.OnChange != nil {
		c.cfg.OnChange(snapshot.TargetHealth{TargetGroupID: e.tgID, ID: e.id, Port: e.port,
			Status: v.status.String(), Reason: v.reason})
	}
}

// stopLoop stops e's check loop, if any; c.mu must be held. The loop may
// still be finishing a check, but its result is dropped (gen changed).
func (c *Checker) stopLoop(e *entry) {
	if !e.running {
		return
	}
	e.stop()
	e.mu.Lock()
	e.gen++
	e.mu.Unlock()
	e.running, e.stop = false, nil
}

// startLoop starts a check loop for e with p; c.mu must be held.
func (c *Checker) startLoop(e *entry, p probeConfig) {
	pr, err := newProber(p, c.cfg.DialTimeout)
	if err != nil {
		// Validation makes this unreachable; fall back to the default
		// matcher rather than leave the target unchecked.
		c.log.Warn("bad health-check matcher; using 200", "targetGroup", e.tgID, "err", err)
		q := p
		q.matcher = "200"
		pr, _ = newProber(q, c.cfg.DialTimeout)
	}
	ctx, cancel := context.WithCancel(c.ctx)
	e.mu.Lock()
	e.gen++
	gen := e.gen
	e.mu.Unlock()
	e.probe, e.running, e.stop = p, true, cancel
	jitter := c.cfg.MaxJitter
	if jitter <= 0 {
		jitter = min(p.interval/10, time.Second)
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer cancel()
		c.run(ctx, e, gen, pr, time.Duration(rand.Int64N(int64(jitter)+1)))
	}()
}

// run is one target's check loop: a first check after delay, then one
// every interval, each bounded by the timeout (≤ interval) so the cadence
// does not depend on the target's response time.
func (c *Checker) run(ctx context.Context, e *entry, gen uint64, pr *prober, delay time.Duration) {
	defer pr.close()
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return
	case <-timer.C:
	}
	ticker := time.NewTicker(pr.cfg.interval)
	defer ticker.Stop()
	var cnt counters
	for {
		start := c.cfg.Now()
		ok, reason, code := pr.probe(ctx)
		if ctx.Err() != nil {
			return
		}
		c.log.Debug("health check", "targetGroup", e.tgID, "target", e.id, "port", e.port,
			"ok", ok, "reason", reason, "code", code, "elapsed", c.cfg.Now().Sub(start))
		c.record(e, gen, &cnt, ok, reason, pr.cfg)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// record applies one check result, unless the loop has been replaced.
func (c *Checker) record(e *entry, gen uint64, cnt *counters, ok bool, reason string, p probeConfig) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gen != gen {
		return
	}
	cur := verdict{e.state.Load(), e.reason}
	v := next(cur, cnt, ok, reason, p.healthyN, p.unhealthyN)
	if v == cur {
		return
	}
	e.state.Store(v.status)
	e.reason = v.reason
	c.emit(e, v)
}

// Report returns the health of every target of the checked groups, sorted
// by group, ID and port: what a node sends to resynchronise the control
// plane after reconnecting.
func (c *Checker) Report() []snapshot.TargetHealth {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]snapshot.TargetHealth, 0, len(c.entries))
	for _, e := range c.entries {
		if !e.checked || !e.seeded {
			continue
		}
		e.mu.Lock()
		out = append(out, snapshot.TargetHealth{TargetGroupID: e.tgID, ID: e.id, Port: e.port,
			Status: e.state.Load().String(), Reason: e.reason})
		e.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b snapshot.TargetHealth) int {
		return cmp.Or(cmp.Compare(a.TargetGroupID, b.TargetGroupID), cmp.Compare(a.ID, b.ID), cmp.Compare(a.Port, b.Port))
	})
	return out
}

// Close stops every check and waits for the check goroutines to exit.
// States keep their last value; Update after Close does nothing.
func (c *Checker) Close() {
	c.mu.Lock()
	c.closed = true
	for _, e := range c.entries {
		c.stopLoop(e)
	}
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}
