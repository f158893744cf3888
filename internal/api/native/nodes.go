package native

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/snapshot"
	"github.com/trellis-mesh/trellis/internal/store"
)

// The control-plane side of the node protocol (package snapshot,
// protocol.go): the snapshot stream, acknowledgements, health reports and
// the node list.
//
// A node is known by the ID it chooses. Its record, /nodes/<id>, keeps
// what survives a restart: its VPC (and that VPC's account, which owns the
// node ID), the address and ports it reported, the version it applied or
// the error that kept it from applying one, and when it was last seen.
// Whether it is connected, and when it was last heard from while
// connected, is kept in memory: heartbeats are not store writes.
//
// Authorization: admin principals, and principals of the account that owns
// the VPC. A node ID belongs to the account of the VPC it last served;
// another account's principal cannot take it over.

// NodeOptions configure the node endpoints.
type NodeOptions struct {
	// Broker delivers snapshots to streams and tells the latest version of
	// each VPC. Without it the stream answers InternalServerException.
	Broker *snapshot.Broker
	// Heartbeat is the interval of heartbeat lines on a quiet stream;
	// default snapshot.HeartbeatInterval. Tests shorten it.
	Heartbeat time.Duration
}

// Option configures the API.
type Option func(*API)

// WithNodes enables the node protocol with o.
func WithNodes(o NodeOptions) Option {
	return func(a *API) {
		a.broker = o.Broker
		if o.Heartbeat > 0 {
			a.heartbeat = o.Heartbeat
		}
	}
}

func nodeKey(id string) string { return "/nodes/" + id }

const nodesPrefix = "/nodes/"

// nodeRecord is a node as stored.
type nodeRecord struct {
	ID             string    `json:"id"`
	VPC            string    `json:"vpc"`
	Account        string    `json:"account"`
	Address        string    `json:"address,omitempty"`
	Ports          []int32   `json:"ports,omitempty"`
	AppliedVersion int64     `json:"appliedVersion"`
	LastError      string    `json:"lastError,omitempty"`
	LastSeen       time.Time `json:"lastSeen"`
}

// liveNodes is what the server knows of nodes only while it runs.
type liveNodes struct {
	mu      sync.Mutex
	streams map[string]int       // open snapshot streams per node
	seen    map[string]time.Time // last contact per node
}

func (l *liveNodes) touch(id string, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string]time.Time{}
	}
	if t.After(l.seen[id]) {
		l.seen[id] = t
	}
}

func (l *liveNodes) connect(id string, delta int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.streams == nil {
		l.streams = map[string]int{}
	}
	l.streams[id] += delta
	if l.streams[id] <= 0 {
		delete(l.streams, id)
	}
}

func (l *liveNodes) status(id string) (connected bool, seen time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.streams[id] > 0, l.seen[id]
}

// Limits of node inputs.
const (
	maxNodeID     = 128
	maxAddress    = 255
	maxPorts      = 1000
	maxAckError   = 4096
	maxHealthList = 1000
	maxReason     = 256
)

// checkNodeID checks the {node} path label: 1–128 of [A-Za-z0-9._-].
func checkNodeID(id string) error {
	ok := len(id) >= 1 && len(id) <= maxNodeID
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
	}
	if !ok {
		return wire.Invalid("node", "must be 1 to %d characters of A-Z a-z 0-9 . _ -, got %q", maxNodeID, id)
	}
	return nil
}

// nodeVPC loads the VPC a node call names and checks that the caller may
// serve it.
func (a *API) nodeVPC(ctx context.Context, c iam.Caller, id string) (*model.VPC, error) {
	if id == "" {
		return nil, wire.Invalid("vpc", "is required")
	}
	kv, err := a.st.Get(ctx, lattice.VPCKey(id))
	if isNotFound(err) {
		return nil, wire.NotFound("VPC", id)
	}
	if err != nil {
		return nil, err
	}
	var v model.VPC
	if err := json.Unmarshal(kv.Value, &v); err != nil {
		return nil, fmt.Errorf("decoding VPC %s: %w", id, err)
	}
	if _, err := actingAccount(c, v.Account); err != nil {
		return nil, wire.AccessDenied("%s may serve only VPCs of its account %s; %s belongs to another account", c.ARN, c.Account, id)
	}
	return &v, nil
}

// updateNode changes the record of node id, serving vpc, with fn. A node
// ID that another account holds is a conflict unless the caller is admin.
func (a *API) updateNode(ctx context.Context, c iam.Caller, id string, vpc *model.VPC, fn func(*nodeRecord)) error {
	_, err := store.Update(ctx, a.st, func(tx *store.Tx) error {
		rec, ok, err := store.GetJSON[nodeRecord](tx, nodeKey(id))
		if err != nil {
			return err
		}
		if !ok {
			rec = &nodeRecord{ID: id}
		} else if rec.Account != vpc.Account && !c.Admin {
			return wire.Conflict("NODE", id, "node ID %s is in use in another account; choose another one", id)
		}
		if rec.VPC != vpc.ID {
			// A node that moves to another VPC starts over there.
			*rec = nodeRecord{ID: id}
		}
		rec.VPC, rec.Account, rec.LastSeen = vpc.ID, vpc.Account, a.timestamp()
		fn(rec)
		return store.PutJSON(tx, nodeKey(id), rec)
	})
	return err
}

// seenUntilNow records, when a stream ends, that the node was there until
// now, unless the record has meanwhile moved to another VPC (the node
// reconnected elsewhere before this stream noticed it was gone).
func (a *API) seenUntilNow(ctx context.Context, id, vpcID string) error {
	_, err := store.Update(ctx, a.st, func(tx *store.Tx) error {
		rec, ok, err := store.GetJSON[nodeRecord](tx, nodeKey(id))
		if err != nil || !ok || rec.VPC != vpcID {
			return err
		}
		rec.LastSeen = a.timestamp()
		return store.PutJSON(tx, nodeKey(id), rec)
	})
	return err
}

// streamSnapshotPath matches GET /trellis/v1/nodes/{node}/snapshots, which the
// router cannot serve (it writes whole responses); it returns the node.
func streamSnapshotPath(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet {
		return "", false
	}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), Prefix+"/nodes/")
	if !ok {
		return "", false
	}
	node, ok := strings.CutSuffix(rest, "/snapshots")
	if !ok || node == "" || strings.Contains(node, "/") {
		return "", false
	}
	node, err := url.PathUnescape(node)
	return node, err == nil
}

// serveSnapshots is the snapshot stream (GET .../nodes/{node}/snapshots).
func (a *API) serveSnapshots(w http.ResponseWriter, r *http.Request, node string) {
	start := time.Now()
	status, err := a.streamSnapshots(w, r, node)
	if err != nil {
		e, internal := wire.AsError(err, w.Header().Get("x-amzn-RequestId"))
		if internal {
			a.log.Error("snapshot stream failed", "node", node, "err", err)
		}
		wire.WriteError(w, e)
		status = e.Status
	}
	if a.observe != nil {
		a.observe("StreamSnapshots", status, time.Since(start))
	}
}

// streamSnapshots validates the request and, once it has answered 200,
// streams until the client goes, the broker closes or a write fails. An
// error is returned only before the 200.
func (a *API) streamSnapshots(w http.ResponseWriter, r *http.Request, node string) (int, error) {
	ctx := r.Context()
	c, err := caller(ctx)
	if err != nil {
		return 0, err
	}
	if err := checkNodeID(node); err != nil {
		return 0, err
	}
	q := r.URL.Query()
	var have int64
	if s := q.Get("version"); s != "" {
		if have, err = strconv.ParseInt(s, 10, 64); err != nil || have < 0 {
			return 0, wire.Invalid("version", "must be a non-negative integer (the version the node has, 0 for none), got %q", s)
		}
	}
	vpc, err := a.nodeVPC(ctx, c, q.Get("vpc"))
	if err != nil {
		return 0, err
	}
	if a.broker == nil {
		return 0, errors.New("the snapshot broker is not configured")
	}
	if err := a.updateNode(ctx, c, node, vpc, func(*nodeRecord) {}); err != nil {
		return 0, err
	}
	snaps, cancel := a.broker.Subscribe(ctx, vpc.ID)
	defer cancel()
	a.live.connect(node, 1)
	a.live.touch(node, a.now())
	defer func() {
		a.live.connect(node, -1)
		if err := a.seenUntilNow(context.WithoutCancel(ctx), node, vpc.ID); err != nil {
			a.log.Warn("recording the end of a node stream failed", "node", node, "err", err)
		}
	}()

	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// A node that stops reading would block a write forever; it counts a
	// server silent for three heartbeats as dead, so that is long enough.
	writeTimeout := max(3*a.heartbeat, 10*time.Second)
	send := func(m snapshot.StreamMessage) error {
		line, err := json.Marshal(m)
		if err != nil {
			return err
		}
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(append(line, '\n')); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := rc.Flush(); err != nil {
		return http.StatusOK, nil
	}
	beat := time.NewTimer(a.heartbeat)
	defer beat.Stop()
	sent := have
	for {
		var m snapshot.StreamMessage
		select {
		case <-ctx.Done():
			return http.StatusOK, nil
		case snap, ok := <-snaps:
			if !ok {
				return http.StatusOK, nil // the broker closed or the VPC is gone
			}
			if snap.Version == sent {
				continue
			}
			sent = snap.Version
			m.Snapshot = snap
		case <-beat.C:
			m.Heartbeat = a.now().UnixMilli()
		}
		if err := send(m); err != nil {
			a.log.Debug("snapshot stream ended", "node", node, "err", err)
			return http.StatusOK, nil
		}
		a.live.touch(node, a.now())
		beat.Reset(a.heartbeat)
	}
}

func (a *API) ackSnapshot(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	node := r.Params["node"]
	if err := checkNodeID(node); err != nil {
		return 0, nil, err
	}
	var in snapshot.Ack
	if err := wire.Decode(r.Body, &in); err != nil {
		return 0, nil, err
	}
	var ck model.Checker
	if in.VPC == "" {
		ck.Addf("vpc", "is required")
	}
	if in.Version < 0 {
		ck.Addf("version", "must not be negative, got %d", in.Version)
	}
	if len(in.Error) > maxAckError {
		ck.Addf("error", "must be at most %d bytes long", maxAckError)
	}
	checkText(&ck, "address", in.Address, maxAddress)
	if len(in.Ports) > maxPorts {
		ck.Addf("ports", "must list at most %d ports, got %d", maxPorts, len(in.Ports))
	}
	for i, p := range in.Ports {
		ck.Range("ports["+strconv.Itoa(i)+"]", int64(p), 1, 65535)
	}
	if err := ck.Err(); err != nil {
		return 0, nil, err
	}
	vpc, err := a.nodeVPC(ctx, c, in.VPC)
	if err != nil {
		return 0, nil, err
	}
	ports := slices.Compact(slices.Sorted(slices.Values(in.Ports)))
	err = a.updateNode(ctx, c, node, vpc, func(rec *nodeRecord) {
		rec.Address, rec.Ports = in.Address, ports
		if in.Error == "" {
			rec.AppliedVersion, rec.LastError = in.Version, ""
		} else {
			// The node kept serving what it had.
			rec.LastError = in.Error
		}
	})
	if err != nil {
		return 0, nil, err
	}
	a.live.touch(node, a.now())
	return http.StatusOK, struct{}{}, nil
}

// checkText checks an optional free-text member: at most max bytes, no
// control characters.
func checkText(ck *model.Checker, field, v string, max int) {
	if len(v) > max {
		ck.Addf(field, "must be at most %d characters long", max)
		return
	}
	for _, r := range v {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			ck.Addf(field, "must not contain spaces or control characters")
			return
		}
	}
}

var healthStatuses = []string{model.TargetStatusHealthy, model.TargetStatusUnhealthy, model.TargetStatusInitial, model.TargetStatusUnavailable}

// reportHealth records the target health a node's checks found. Only
// targets of groups in the node's VPC are taken (their gateways run the
// checks); entries for targets that are gone, draining or elsewhere are
// skipped, so a node retrying an old report cannot fail on them. Only
// changes are written.
func (a *API) reportHealth(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	node := r.Params["node"]
	if err := checkNodeID(node); err != nil {
		return 0, nil, err
	}
	var in snapshot.HealthReport
	if err := wire.Decode(r.Body, &in); err != nil {
		return 0, nil, err
	}
	var ck model.Checker
	if in.VPC == "" {
		ck.Addf("vpc", "is required")
	}
	if len(in.Targets) > maxHealthList {
		ck.Addf("targets", "must list at most %d targets, got %d", maxHealthList, len(in.Targets))
	}
	for i, t := range in.Targets {
		f := "targets[" + strconv.Itoa(i) + "]"
		if !model.IsID(t.TargetGroupID, model.PrefixTargetGroup) {
			ck.Addf(f+".targetGroupId", "must be a target group ID (tg-<17 characters>), got %q", t.TargetGroupID)
		}
		ck.Length(f+".id", t.ID, 1, 200)
		ck.Range(f+".port", int64(t.Port), 0, 65535)
		ck.Enum(f+".status", t.Status, healthStatuses...)
		checkText(&ck, f+".reason", t.Reason, maxReason)
	}
	if err := ck.Err(); err != nil {
		return 0, nil, err
	}
	vpc, err := a.nodeVPC(ctx, c, in.VPC)
	if err != nil {
		return 0, nil, err
	}
	_, err = store.Update(ctx, a.st, func(tx *store.Tx) error {
		for _, h := range in.Targets {
			// A group of the VPC belongs to the VPC's account.
			tg, ok, err := store.GetJSON[model.TargetGroup](tx, lattice.TargetGroupKey(vpc.Account, h.TargetGroupID))
			if err != nil {
				return err
			}
			if !ok || tg.Config == nil || tg.Config.VpcIdentifier != vpc.ID {
				continue
			}
			k := lattice.TargetKey(vpc.Account, h.TargetGroupID, h.ID, h.Port)
			t, ok, err := store.GetJSON[model.Target](tx, k)
			if err != nil {
				return err
			}
			if !ok || t.Status == model.TargetStatusDraining || (t.Status == h.Status && t.ReasonCode == h.Reason) {
				continue
			}
			t.Status, t.ReasonCode = h.Status, h.Reason
			if err := store.PutJSON(tx, k, t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	a.live.touch(node, a.now())
	return http.StatusOK, struct{}{}, nil
}

// listNodes lists the nodes the caller may see: admins all, others those
// of their account's VPCs; ?vpc= narrows to one VPC.
func (a *API) listNodes(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	recs, err := list[nodeRecord](ctx, a.st, nodesPrefix)
	if err != nil {
		return 0, nil, err
	}
	vpc := r.Query("vpc")
	items := []snapshot.NodeStatus{}
	for _, n := range recs {
		if (!c.Admin && n.Account != c.Account) || (vpc != "" && n.VPC != vpc) {
			continue
		}
		st := snapshot.NodeStatus{ID: n.ID, VPC: n.VPC, Address: n.Address, Ports: n.Ports,
			AppliedVersion: n.AppliedVersion, LastSeen: n.LastSeen, LastError: n.LastError}
		connected, seen := a.live.status(n.ID)
		st.Connected = connected
		if seen.After(st.LastSeen) {
			st.LastSeen = seen.UTC().Truncate(time.Millisecond)
		}
		if a.broker != nil {
			st.LatestVersion = a.broker.Latest(n.VPC)
		}
		st.Lag = max(0, st.LatestVersion-st.AppliedVersion)
		items = append(items, st)
	}
	return http.StatusOK, map[string]any{"items": items}, nil
}
