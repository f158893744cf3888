package cloudmap

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Leases are Trellis's answer to instances whose owner dies without
// deregistering them (a killed agent, a lost machine). Cloud Map keeps
// such an instance until someone deregisters it; an instance registered
// with the custom attribute TRELLIS_LEASE_SECONDS=N is instead removed
// once N seconds pass without a renewal. RegisterInstance (again, with
// the same ID) and UpdateInstanceCustomHealthStatus renew it, so the
// registry's own wire API carries the heartbeat and any Cloud Map client
// can use it.
//
// Leases are indexed by expiry, across accounts:
//
//	/cloudmap-lease/<unix-nanos, 20 digits>/<account>/<srv-id>/<instance-id>
//
// and ExpireLeases walks that index from the oldest.

// AttrLeaseSeconds is the instance attribute that asks for a lease.
const AttrLeaseSeconds = "TRELLIS_LEASE_SECONDS"

// Lease bounds: long enough for a heartbeat every few seconds to survive
// a server restart, short enough to matter.
const (
	minLeaseSeconds = 5
	maxLeaseSeconds = 3600
)

const leasePrefix = "/cloudmap-lease/"

// checkLease validates the lease attribute, when present.
func checkLease(c *model.Checker, attrs map[string]string) {
	v, ok := attrs[AttrLeaseSeconds]
	if !ok {
		return
	}
	if n, err := strconv.Atoi(v); err != nil || n < minLeaseSeconds || n > maxLeaseSeconds {
		c.Addf("Attributes."+AttrLeaseSeconds, "must be a whole number of seconds from %d to %d, got %q", minLeaseSeconds, maxLeaseSeconds, v)
	}
}

// renewLease moves inst's lease on from now, or drops it when inst no
// longer asks for one. inst is written by the caller.
func (a *API) renewLease(tx *store.Tx, account string, inst *instance) {
	if inst.LeaseKey != "" {
		tx.Delete(inst.LeaseKey)
		inst.LeaseKey, inst.LeaseUntil = "", time.Time{}
	}
	n, err := strconv.Atoi(inst.Attributes[AttrLeaseSeconds])
	if err != nil {
		return
	}
	until := a.now().Add(time.Duration(n) * time.Second)
	inst.LeaseUntil = until.UTC()
	inst.LeaseKey = fmt.Sprintf("%s%020d/%s/%s/%s", leasePrefix, until.UnixNano(), account, inst.ServiceID, inst.ID)
	tx.Put(inst.LeaseKey, nil)
}

// dropLease removes inst's index entry (the instance is going away).
func dropLease(tx *store.Tx, inst *instance) {
	if inst.LeaseKey != "" {
		tx.Delete(inst.LeaseKey)
	}
}

// leaseBatch bounds one ExpireLeases pass.
const leaseBatch = 100

// ExpireLeases deregisters the instances whose lease ran out, up to a
// batch, and returns how many it removed. The server calls it every
// second; an error only delays expiry.
func (a *API) ExpireLeases(ctx context.Context) (int, error) {
	res, err := a.st.List(ctx, leasePrefix, store.ListOptions{Limit: leaseBatch})
	if err != nil {
		return 0, fmt.Errorf("cloudmap: listing leases: %w", err)
	}
	now := a.now()
	removed := 0
	var firstErr error
	for _, kv := range res.Items {
		// Account and service IDs hold no '/'; instance IDs may.
		parts := strings.SplitN(strings.TrimPrefix(kv.Key, leasePrefix), "/", 4)
		ts, perr := int64(0), error(nil)
		if len(parts) == 4 {
			ts, perr = strconv.ParseInt(parts[0], 10, 64)
		}
		if len(parts) != 4 || perr != nil {
			// Never written by renewLease: drop it, or it would hold up
			// every entry behind it.
			a.log.Warn("dropping a malformed lease entry", "key", kv.Key)
			if err := a.update(ctx, func(tx *store.Tx) error { tx.Delete(kv.Key); return nil }); err != nil && firstErr == nil {
				firstErr = err
			}
			continue
		}
		if ts > now.UnixNano() {
			break // sorted: the rest expire later
		}
		account, svcID, instID := parts[1], parts[2], parts[3]
		gone := false
		err = a.update(ctx, func(tx *store.Tx) error {
			gone = false
			ik := key(account, "inst", svcID, instID)
			inst, ok, err := store.GetJSON[instance](tx, ik)
			if err != nil {
				return err
			}
			if !ok || inst.LeaseKey != kv.Key {
				tx.Delete(kv.Key)
				return nil // renewed or deregistered meanwhile: a stale entry
			}
			if !a.leaseGrace(inst, now) {
				return nil // the server was down: give the owner a lease to renew
			}
			tx.Delete(kv.Key)
			svc, err := a.loadService(tx, account, svcID)
			if err != nil {
				return err
			}
			tx.Delete(ik)
			svc.InstanceCount--
			touchRevision(tx, account, svcID)
			gone = true
			return store.PutJSON(tx, key(account, "svc", svcID), svc)
		})
		if err != nil {
			// One entry failing must not hold up the others.
			if firstErr == nil {
				firstErr = fmt.Errorf("cloudmap: expiring %s: %w", kv.Key, err)
			}
			continue
		}
		if gone {
			removed++
			a.log.Info("instance lease expired: deregistered", "account", account, "service", svcID, "instance", instID)
		}
	}
	return removed, firstErr
}

// leaseGrace reports whether inst may expire now: only once the server
// has been expiring leases for a whole lease of inst, so that instances
// whose leases ran out while the server was down get a lease's time to
// renew after it comes back.
func (a *API) leaseGrace(inst *instance, now time.Time) bool {
	n, err := strconv.Atoi(inst.Attributes[AttrLeaseSeconds])
	if err != nil {
		return true
	}
	started := a.leaseStart.Load()
	return started != nil && now.Sub(*started) >= time.Duration(n)*time.Second
}

// RunLeaseExpiry calls ExpireLeases every interval until ctx ends. A
// lease expires only once this has run for a whole lease (leaseGrace).
func (a *API) RunLeaseExpiry(ctx context.Context, interval time.Duration) {
	a.StartLeaseClock()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := a.ExpireLeases(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("expiring instance leases", "err", err)
			}
		}
	}
}

// StartLeaseClock marks the moment lease expiry begins (RunLeaseExpiry
// calls it; tests that call ExpireLeases directly call it themselves).
func (a *API) StartLeaseClock() {
	t := a.now()
	a.leaseStart.CompareAndSwap(nil, &t)
}
