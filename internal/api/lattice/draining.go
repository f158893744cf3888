package lattice

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Draining.
//
// DeregisterTargets does not remove a target at once: it marks it DRAINING
// until a deadline (now + Config.DeregistrationDelay) and adds an entry to
// the drain index, /lattice-drain/<deadline>/lattice/<account>/target/...,
// whose keys sort by deadline. Node snapshots leave draining targets out, so
// gateways send them no new requests while in-flight ones finish.
// RunDrainer removes each target when its deadline passes, reading only the
// head of the index. Registering the target again before then takes it
// back (INITIAL); its stale index entry is dropped when it comes due.

const drainPrefix = "/lattice-drain/"

// drainKey sorts by deadline: the Unix nanoseconds, zero-padded.
func drainKey(deadline time.Time, targetKey string) string {
	return drainPrefix + fmt.Sprintf("%020d", deadline.UnixNano()) + targetKey
}

// startDrain marks the target at k, of tg, DRAINING (or removes it when
// draining is off). A target that already drains keeps its first deadline.
// LAMBDA and ALB targets are removed at once: Lattice fails their in-flight
// requests on deregistration rather than draining them (§4.1).
func (a *API) startDrain(tx *store.Tx, tg *model.TargetGroup, k string, t *model.Target, deadline time.Time) error {
	if a.drain <= 0 || tg.Type == model.TargetGroupTypeLambda || tg.Type == model.TargetGroupTypeALB {
		tx.Delete(k)
		return nil
	}
	if t.Status == model.TargetStatusDraining {
		return nil
	}
	t.Status, t.ReasonCode, t.DrainUntil = model.TargetStatusDraining, "", &deadline
	if err := store.PutJSON(tx, k, t); err != nil {
		return err
	}
	tx.Put(drainKey(deadline, k), []byte(k))
	return nil
}

// ReapDrained removes every target whose drain deadline has passed and
// returns the deadline of the next one (zero when none is draining).
func (a *API) ReapDrained(ctx context.Context) (time.Time, error) {
	for {
		res, err := a.st.List(ctx, drainPrefix, store.ListOptions{Limit: 100})
		if err != nil {
			return time.Time{}, fmt.Errorf("lattice: reading the drain index: %w", err)
		}
		now := a.now()
		for _, kv := range res.Items {
			due, err := parseDrainKey(kv.Key)
			if err != nil {
				a.log.Error("dropping a malformed drain index entry", "key", kv.Key, "err", err)
			} else if due.After(now) {
				return due, nil
			}
			if err := a.finishDrain(ctx, kv.Key, string(kv.Value), due); err != nil {
				return time.Time{}, err
			}
		}
		if !res.More {
			return time.Time{}, nil
		}
	}
}

func parseDrainKey(k string) (time.Time, error) {
	rest := strings.TrimPrefix(k, drainPrefix)
	if len(rest) < 20 {
		return time.Time{}, fmt.Errorf("no deadline in %q", k)
	}
	ns, err := strconv.ParseInt(rest[:20], 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad deadline in %q: %w", k, err)
	}
	return time.Unix(0, ns), nil
}

// finishDrain removes the index entry and, if the target still drains
// towards this deadline, the target itself.
func (a *API) finishDrain(ctx context.Context, indexKey, targetKey string, due time.Time) error {
	return a.update(ctx, func(tx *store.Tx) error {
		tx.Delete(indexKey)
		t, ok, err := store.GetJSON[model.Target](tx, targetKey)
		if err != nil || !ok {
			return err
		}
		if t.Status == model.TargetStatusDraining && t.DrainUntil != nil && t.DrainUntil.Equal(due) {
			tx.Delete(targetKey)
			a.log.Debug("drained target removed", "target", targetKey)
		}
		return nil
	})
}

// RunDrainer removes drained targets as their deadlines pass, until ctx
// ends. It sleeps until the next deadline, or at most one deregistration
// delay (no target deregistered meanwhile can come due sooner), so it
// costs one short index read per deadline. Store errors are logged and
// retried after a second.
func (a *API) RunDrainer(ctx context.Context) {
	const retry = time.Second
	for {
		next, err := a.ReapDrained(ctx)
		wait := a.drain
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			a.log.Warn("removing drained targets failed; retrying", "err", err)
			wait = retry
		case !next.IsZero():
			wait = min(wait, next.Sub(a.now()))
		}
		if wait <= 0 {
			wait = retry
		}
		t := time.NewTimer(max(wait, 5*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
