package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/trellis-mesh/trellis/internal/agent/egress"
)

// attrEvery is how many polls pass between reads of a service's instances
// when its InstancesRevision does not move (health changes do not move
// it).
const attrEvery = 10

// discoverLoop reads the namespace every poll interval and keeps egress
// (VIPs, listeners, endpoints) and the hosts file in step with it. New
// instances are used from the next poll on, removed ones stop receiving
// requests then.
func (a *Agent) discoverLoop(ctx context.Context) {
	t := time.NewTicker(a.opts.PollInterval)
	defer t.Stop()
	first := true
	for {
		if err := a.discoverOnce(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("discovery", "namespace", a.nsName, "err", err)
		}
		if first {
			first = false
			close(a.ready) // even after an error: names appear on a later pass
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// discoverOnce is one poll: one call for every service of the namespace
// with its InstancesRevision and published policy, then DiscoverInstances
// for the services whose revision moved.
func (a *Agent) discoverOnce(ctx context.Context) error {
	states, err := a.reg.namespaceServices(ctx, a.nsID)
	if err != nil {
		return err
	}
	svcs := make(map[string]bool, len(states))
	hostsChanged := false
	var firstErr error
	for _, st := range states {
		name := st.Name
		svcs[name] = true
		rs := a.remote[name]
		if rs == nil {
			rs = &remoteService{id: st.ID}
			a.remote[name] = rs
		} else if rs.id != st.ID {
			// Deleted and created again: same name, same listener.
			rs.id, rs.rev = st.ID, 0
		}
		if raw := st.Attributes[attrConnect]; raw != rs.raw || rs.pub == nil {
			changed, err := a.refreshPolicy(name, rs, st.Attributes)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if err == nil {
				rs.raw = raw
			}
			hostsChanged = hostsChanged || changed
		}
		if !rs.listened {
			continue
		}
		// Health reports do not move InstancesRevision (as in Cloud Map),
		// so the instances are read again every attrEvery polls anyway.
		rs.checked++
		if st.InstancesRevision == rs.rev && rs.checked < attrEvery {
			continue
		}
		rs.checked = 0
		eps, rev, err := a.reg.discover(ctx, a.nsName, name)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("instances of %s: %w", name, err)
			}
			continue
		}
		out := make([]egress.Endpoint, len(eps))
		for i, e := range eps {
			out[i] = egress.Endpoint{ID: e.id, Addr: e.addr}
		}
		a.egress.SetEndpoints(name, out)
		rs.rev = rev
		a.log.Debug("endpoints", "service", name, "count", len(out), "revision", rev)
	}
	for name, rs := range a.remote {
		if svcs[name] {
			rs.missing = 0
			continue
		}
		if rs.missing++; rs.missing == 1 {
			a.egress.SetEndpoints(name, nil) // deleted: 503 while it may come back
			rs.rev = 0
		}
		if rs.missing >= attrEvery {
			// Gone for good: its name and address go away.
			a.unlisten(name, rs)
			delete(a.remote, name)
			hostsChanged = true
		}
	}
	if hostsChanged {
		if err := a.hosts.write(a.vips.byName); err != nil && firstErr == nil {
			firstErr = err
		}
		if a.dns != nil {
			recs := make(map[string][]netip.Addr, len(a.vips.byName))
			for n, v := range a.vips.byName {
				recs[n] = []netip.Addr{v}
			}
			a.dns.SetRecords(recs)
		}
	}
	return firstErr
}

// refreshPolicy reads what a service publishes for its clients and sets
// up (or updates) its egress listener. It reports whether the hosts file
// needs rewriting.
func (a *Agent) refreshPolicy(name string, rs *remoteService, attrs map[string]string) (bool, error) {
	pub, err := parsePublished(attrs)
	if err != nil {
		return false, fmt.Errorf("service %s: %w", name, err)
	}
	if pub == nil {
		return false, nil // not registered by an agent: no aliases to serve
	}
	pol := pub.egressPolicy()
	if pub.TLS {
		pol.TLS = a.clientTLS // one config for all: transports are kept across policy reads
	}
	changed := false
	if rs.listened {
		if rs.pub.Aliases[0] == pub.Aliases[0] {
			if !rs.pub.equal(pub) {
				if err := a.egress.SetPolicy(name, pol); err != nil {
					return false, fmt.Errorf("service %s: %w", name, err)
				}
				rs.pub = pub
			}
			return false, nil
		}
		// The alias changed: the old name and address go away.
		a.unlisten(name, rs)
		changed = true
	}
	// One listener per service: its first alias (ECS allows one).
	al := pub.Aliases[0]
	var addr string
	for try := 0; ; try++ {
		vip, err := a.vips.get(al.DNSName)
		if err != nil {
			return false, err
		}
		addr = net.JoinHostPort(vip.String(), strconv.Itoa(int(al.Port)))
		_, err = a.egress.Listen(name, addr, pol)
		if err == nil {
			break
		}
		if errors.Is(err, syscall.EADDRINUSE) && try < 16 {
			a.vips.block(al.DNSName, vip) // another agent on this machine holds it
			continue
		}
		a.vips.release(al.DNSName)
		return changed, fmt.Errorf("egress for %s on %s: %w", name, addr, err)
	}
	rs.pub, rs.listened, rs.aliases = pub, true, []string{al.DNSName}
	a.log.Info("egress", "service", name, "alias", al.DNSName, "listen", addr, "protocol", pub.Protocol)
	return true, nil
}

// heartbeatLoop renews the leases of the task's instances every third of
// the lease, and runs readiness checks until each instance is ready.
func (a *Agent) heartbeatLoop(ctx context.Context) {
	every := time.Duration(a.opts.LeaseSeconds) * time.Second / 3
	beat := time.NewTicker(every)
	defer beat.Stop()
	probe := time.NewTicker(a.readinessInterval())
	defer probe.Stop()
	passes := make([]int, len(a.own))
	client := &http.Client{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			for _, in := range a.own {
				err := a.reg.health(ctx, in.svcID, in.id, a.isHealthy(in))
				if isInstanceNotFound(err) {
					// The lease ran out (the server was unreachable for
					// longer): register again.
					a.log.Warn("instance was gone from the registry: registering again", "instance", in.id)
					if err = a.reg.register(ctx, in.svcID, in.id, in.attrs); err == nil {
						err = a.reg.health(ctx, in.svcID, in.id, a.isHealthy(in))
					}
				}
				if err != nil && ctx.Err() == nil {
					a.log.Warn("heartbeat", "instance", in.id, "err", err)
				}
			}
		case <-probe.C:
			for i, in := range a.own {
				r := in.svc.Readiness
				if r == nil || a.isHealthy(in) {
					continue
				}
				if !a.probe(ctx, client, in) {
					passes[i] = 0
					continue
				}
				if passes[i]++; passes[i] < r.HealthyThreshold {
					continue
				}
				a.mu.Lock()
				in.healthy = true
				a.mu.Unlock()
				if err := a.reg.health(ctx, in.svcID, in.id, true); err != nil {
					a.log.Warn("reporting ready", "instance", in.id, "err", err)
				}
				// A health report leaves InstancesRevision alone (as in
				// Cloud Map); registering again moves it, so clients
				// pick the instance up at their next poll.
				if err := a.reg.register(ctx, in.svcID, in.id, in.attrs); err != nil {
					a.log.Warn("re-registering when ready", "instance", in.id, "err", err)
				}
				a.log.Info("ready: registered HEALTHY", "service", in.svc.DiscoveryName, "instance", in.id)
			}
		}
	}
}

func (a *Agent) isHealthy(in *ownInstance) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return in.healthy
}

// readinessInterval is the shortest readiness interval (a second when
// none is configured).
func (a *Agent) readinessInterval() time.Duration {
	d := time.Duration(0)
	for _, in := range a.own {
		if r := in.svc.Readiness; r != nil && (d == 0 || r.Interval < d) {
			d = r.Interval
		}
	}
	if d <= 0 {
		d = time.Second
	}
	return d
}

// probe runs one readiness check: an HTTP GET of the path on the app's
// port (a TCP connect for TCP services) answered within the timeout with
// a status below 400.
func (a *Agent) probe(ctx context.Context, client *http.Client, in *ownInstance) bool {
	r := in.svc.Readiness
	port := r.Port
	if port == 0 {
		port = in.svc.ContainerPort
	}
	addr := net.JoinHostPort(netip.MustParseAddr("127.0.0.1").String(), strconv.Itoa(int(port)))
	pctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	if !in.svc.Protocol.IsHTTP() || r.Path == "" {
		var d net.Dialer
		c, err := d.DialContext(pctx, "tcp", addr)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, "http://"+addr+r.Path, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode < 400
}

// unlisten closes a service's egress listener and frees its alias and
// VIP; requests in flight on it finish within the drain time, in the
// background.
func (a *Agent) unlisten(name string, rs *remoteService) {
	if !rs.listened {
		return
	}
	drain := a.egress.Unlisten(name)
	for _, n := range rs.aliases {
		a.vips.release(n)
	}
	rs.listened, rs.aliases, rs.raw = false, nil, ""
	timeout := max(a.cfg.Drain, time.Second)
	a.drains.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := drain(ctx); err != nil {
			a.log.Warn("closing an egress listener", "service", name, "err", err)
		}
	})
	a.log.Info("egress closed", "service", name)
}
