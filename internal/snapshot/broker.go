package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/internal/metrics"
	"github.com/trellis-mesh/trellis/internal/store"
)

// How the Broker works.
//
// One goroutine watches the whole store from the revision at which it
// started. A change to a key a snapshot can depend on (see relevant) marks
// the snapshots stale and arms a timer of BrokerConfig.Debounce; when it
// fires, the broker reads the store once and builds the snapshot of every
// VPC that has a subscriber. A snapshot is published only when its content
// (everything but Version) differs from the last one published for that
// VPC, so writes that do not concern a VPC never reach its nodes, and
// Version stays the revision at which the content last changed.
//
// Delivery is latest-only: each subscriber has a channel of capacity one,
// and publishing replaces a snapshot the subscriber has not taken yet. A
// slow subscriber skips versions; the broker never waits for one.
//
// A VPC whose last subscriber leaves keeps its last snapshot (so a node
// that reconnects with that version is not sent it again) but is no longer
// rebuilt; the next subscriber gets a fresh build first.
//
// If the watch falls behind and the store has compacted the history it
// needs (ErrCompacted), the broker watches again from the current revision
// and rebuilds every subscribed VPC from scratch.
//
// Certificates expire without any store change: when the CertSource says
// when its next certificate needs renewal (NextRenewal, as pki.Issuer
// does), the broker also rebuilds then. A snapshot's Version is the store
// revision it was built at, except that new content built at the revision
// of the last published snapshot (a renewed certificate) gets that
// version plus one: the versions a VPC's nodes see always grow.
//
// Signing keys expire without any store change too: each snapshot holds
// keys for yesterday, today and tomorrow (auth.go), so the broker rebuilds
// at every UTC midnight of BrokerConfig.Auth's clock, and the window
// slides by a day with a new version.

// BrokerConfig configures a Broker.
type BrokerConfig struct {
	Store  store.Store
	Region string
	// Certs gives HTTPS services their certificates; may be nil.
	Certs  CertSource
	Logger *slog.Logger
	// Debounce is how long the broker collects changes before it rebuilds;
	// default 20 ms. A burst of writes (an apply) costs one build per VPC
	// per Debounce; longer saves builds, shorter saves latency.
	Debounce time.Duration
	// RetryInterval is the first wait before retrying a failed build (store
	// error, certificate failure); it doubles up to 30 s. Default 1 s.
	RetryInterval time.Duration
	// Metrics, if set, receives the broker's metrics (metrics.go).
	Metrics *metrics.Registry
	// Auth says how snapshots' auth material is made: the client CA, the
	// trust domain, and the clock whose UTC date picks the signing keys'
	// dates (and at whose midnight the broker rebuilds).
	Auth AuthOptions
}

// Broker builds the snapshots of the VPCs that have subscribers and
// delivers the latest to each. Safe for concurrent use.
type Broker struct {
	cfg    BrokerConfig
	log    *slog.Logger
	m      *brokerMetrics
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{} // a VPC needs its first build

	mu     sync.Mutex
	closed bool
	vpcs   map[string]*vpcState

	auth *authCache // auth material across rebuilds (auth.go)
}

type vpcState struct {
	latest *Snapshot // last published, nil before the first build
	// content is latest's JSON without Version and Auth, for comparison;
	// Auth is compared by pointer (the authCache keeps it while its
	// inputs are unchanged), so the material, the same in every VPC and
	// large in big installations, is not encoded once per VPC.
	content []byte
	// fresh: latest was built, or confirmed, while the VPC had
	// subscribers all along, so a new subscriber may have it at once.
	fresh bool
	subs  map[*subscriber]struct{}
}

type subscriber struct {
	ch   chan *Snapshot // capacity 1; closed when the subscription ends
	sent bool           // has been offered a snapshot
}

// offer hands snap to the subscriber, replacing one it has not taken.
// Called with Broker.mu held (the only sender), so it cannot block.
func (s *subscriber) offer(snap *Snapshot) {
	s.sent = true
	for {
		select {
		case s.ch <- snap:
			return
		default:
		}
		select {
		case <-s.ch:
		default:
		}
	}
}

const maxRetry = 30 * time.Second

// renewer is a CertSource whose certificates must be replaced over time.
type renewer interface {
	// NextRenewal is when the next certificate handed out should be
	// replaced; zero when none was handed out.
	NextRenewal() time.Time
}

// NewBroker starts a broker; it runs until ctx ends or Close.
func NewBroker(ctx context.Context, cfg BrokerConfig) *Broker {
	if cfg.Debounce <= 0 {
		cfg.Debounce = 20 * time.Millisecond
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	b := &Broker{cfg: cfg, log: cfg.Logger, m: newBrokerMetrics(cfg.Metrics), cancel: cancel, done: make(chan struct{}),
		wake: make(chan struct{}, 1), vpcs: map[string]*vpcState{}, auth: &authCache{}}
	go b.run(ctx)
	return b
}

// Close stops the broker, ends every subscription (their channels close)
// and waits for its goroutine to exit.
func (b *Broker) Close() {
	b.cancel()
	<-b.done
}

// Subscribe returns a channel that receives the snapshots of vpcID: the
// current one as soon as it is built (at once if the VPC is already being
// served), then each newer one. The channel holds only the latest: a
// subscriber that does not keep up skips versions. It is closed when
// cancel is called, ctx ends, the broker closes, or the VPC is deleted.
// cancel may be called more than once.
func (b *Broker) Subscribe(ctx context.Context, vpcID string) (<-chan *Snapshot, func()) {
	sub := &subscriber{ch: make(chan *Snapshot, 1)}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		close(sub.ch)
		return sub.ch, func() {}
	}
	st := b.vpcs[vpcID]
	if st == nil {
		st = &vpcState{}
		b.vpcs[vpcID] = st
	}
	if st.subs == nil {
		st.subs = map[*subscriber]struct{}{}
	}
	st.subs[sub] = struct{}{}
	b.m.subscribed(1)
	fresh := st.fresh
	if fresh {
		sub.offer(st.latest)
	}
	b.mu.Unlock()
	if !fresh {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	unsubscribe := func() { b.unsubscribe(vpcID, sub) }
	stop := context.AfterFunc(ctx, unsubscribe)
	return sub.ch, func() {
		stop()
		unsubscribe()
	}
}

func (b *Broker) unsubscribe(vpcID string, sub *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.vpcs[vpcID]
	if st == nil {
		return
	}
	if _, ok := st.subs[sub]; !ok {
		return
	}
	delete(st.subs, sub)
	close(sub.ch)
	b.m.subscribed(-1)
	if len(st.subs) == 0 {
		st.fresh = false
	}
}

// Latest is the version of the last snapshot published for vpcID (0 when
// none was): what a node of the VPC should have applied. For a VPC without
// subscribers it may be stale, since such VPCs are not rebuilt.
func (b *Broker) Latest(vpcID string) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if st := b.vpcs[vpcID]; st != nil && st.latest != nil {
		return st.latest.Version
	}
	return 0
}

// run is the broker's goroutine.
func (b *Broker) run(ctx context.Context) {
	defer close(b.done)
	defer b.shutdown()
	st := b.cfg.Store
	rev := int64(-1) // last revision seen; -1: take the current one
	var events <-chan store.Event
	timer := time.NewTimer(0)
	<-timer.C
	dirty := false // a rebuild of every subscribed VPC is due when timer fires
	retry := b.cfg.RetryInterval
	schedule := func(d time.Duration) {
		dirty = true
		timer.Reset(d)
	}
	renewal := time.NewTimer(0) // fires when a certificate needs renewal
	<-renewal.C
	renewer, _ := b.cfg.Certs.(renewer)
	// newDay fires at the next UTC midnight: the signing keys' window
	// slides. At least a second, so that a clock pinned just before
	// midnight (tests) does not spin.
	newDay := time.NewTimer(0)
	<-newDay.C
	defer newDay.Stop()
	built := func() {
		retry = b.cfg.RetryInterval
		now := b.cfg.Auth.now()
		newDay.Reset(max(nextUTCDay(now).Sub(now), time.Second))
		if renewer == nil {
			return
		}
		if next := renewer.NextRenewal(); !next.IsZero() {
			renewal.Reset(max(time.Until(next), time.Second))
		}
	}
	for {
		if events == nil {
			if rev < 0 {
				r, err := st.Revision(ctx)
				if err != nil {
					if b.fatal(ctx, err) {
						return
					}
					b.log.Warn("snapshot broker cannot read the store revision; retrying", "err", err)
					if !sleep(ctx, b.cfg.RetryInterval) {
						return
					}
					continue
				}
				// Changes before r were not watched: rebuild everything.
				rev = r
				schedule(0)
			}
			ch, err := st.Watch(ctx, "/", rev)
			switch {
			case errors.Is(err, store.ErrCompacted):
				b.log.Warn("snapshot broker fell behind the store's history; rebuilding from scratch", "revision", rev)
				rev = -1
				continue
			case err != nil:
				if b.fatal(ctx, err) {
					return
				}
				b.log.Warn("snapshot broker cannot watch the store; retrying", "err", err)
				if !sleep(ctx, b.cfg.RetryInterval) {
					return
				}
				continue
			}
			events = ch
		}
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				// The store dropped this (slow) watch or is closing:
				// resume after the last revision seen.
				events = nil
				continue
			}
			rev = ev.Revision
			if !dirty && relevant(ev.KV.Key) {
				schedule(b.cfg.Debounce)
			}
		case <-b.wake:
			if err := b.rebuild(ctx, true); err == nil {
				built()
			} else if !dirty {
				schedule(retry)
				retry = min(2*retry, maxRetry)
			}
		case <-timer.C:
			dirty = false
			if err := b.rebuild(ctx, false); err == nil {
				built()
			} else {
				schedule(retry)
				retry = min(2*retry, maxRetry)
			}
		case <-renewal.C:
			if !dirty {
				schedule(0)
			}
		case <-newDay.C:
			if !dirty {
				schedule(0)
			}
		}
	}
}

// fatal reports whether err ends the broker (the store is closed or ctx
// ended).
func (b *Broker) fatal(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, store.ErrClosed)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// shutdown ends every subscription.
func (b *Broker) shutdown() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, st := range b.vpcs {
		for sub := range st.subs {
			close(sub.ch)
		}
		b.m.subscribed(-int64(len(st.subs)))
		st.subs = nil
	}
}

// rebuild builds the VPCs that have subscribers (only those still waiting
// for a fresh snapshot when onlyNew) from one read of the store, and
// publishes what changed. A non-nil error means a retry is due.
func (b *Broker) rebuild(ctx context.Context, onlyNew bool) error {
	b.mu.Lock()
	var vpcs []string
	for id, st := range b.vpcs {
		if len(st.subs) > 0 && (!onlyNew || !st.fresh) {
			vpcs = append(vpcs, id)
		}
	}
	b.mu.Unlock()
	if len(vpcs) == 0 {
		return nil
	}
	start := time.Now()
	s, err := load(ctx, b.cfg.Store)
	if err != nil {
		if ctx.Err() == nil {
			b.log.Error("snapshot build failed; nodes keep their current snapshot", "err", err)
			b.m.build(false, time.Since(start).Seconds())
		}
		return err
	}
	if len(s.dnsSkipped) > 0 {
		b.log.Warn("Cloud Map records that do not decode are left out of the DNS zones", "keys", s.dnsSkipped)
	}
	var failed error
	for _, id := range vpcs {
		snap, err := s.build(ctx, BuildOptions{VPCID: id, Region: b.cfg.Region, Certs: b.cfg.Certs, Auth: b.cfg.Auth, authCache: b.auth})
		switch {
		case errors.Is(err, ErrVPCNotFound):
			b.log.Info("VPC deleted; ending its snapshot subscriptions", "vpc", id)
			b.drop(id)
			continue
		case err != nil:
			// A certificate failure: publish the rest, retry for the
			// certificate.
			b.log.Error("snapshot built without some certificates; retrying", "vpc", id, "err", err)
			failed = err
		}
		if snap != nil {
			b.publish(id, snap)
		}
	}
	b.m.build(failed == nil, time.Since(start).Seconds())
	return failed
}

// publish makes snap the VPC's latest if its content changed, and offers
// it to every subscriber that needs it.
func (b *Broker) publish(vpcID string, snap *Snapshot) {
	unversioned := *snap
	unversioned.Version, unversioned.Auth = 0, nil
	content, err := json.Marshal(&unversioned)
	if err != nil {
		b.log.Error("encoding a snapshot failed", "vpc", vpcID, "err", err) // a bug: snapshots are plain data
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.vpcs[vpcID]
	if st == nil || b.closed {
		return
	}
	changed := st.latest == nil || st.latest.Auth != snap.Auth || !bytes.Equal(st.content, content)
	if changed {
		if st.latest != nil && snap.Version <= st.latest.Version {
			// New content at the same revision (a renewed certificate):
			// versions of a VPC must still grow, or nodes would take it
			// for the one they have.
			snap.Version = st.latest.Version + 1
		}
		st.latest, st.content = snap, content
		b.m.publish()
		b.log.Debug("snapshot published", "vpc", vpcID, "version", snap.Version, "subscribers", len(st.subs))
	}
	st.fresh = len(st.subs) > 0
	for sub := range st.subs {
		if changed || !sub.sent {
			sub.offer(st.latest)
		}
	}
}

// drop ends the subscriptions of a deleted VPC and forgets it.
func (b *Broker) drop(vpcID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if st := b.vpcs[vpcID]; st != nil {
		for sub := range st.subs {
			close(sub.ch)
		}
		b.m.subscribed(-int64(len(st.subs)))
		delete(b.vpcs, vpcID)
	}
}
