// Package controlclient is the node side of the node protocol: it streams
// the snapshots of one VPC from the control plane, hands each to the node,
// persists the last one the node applied (its last-known-good copy),
// acknowledges versions, and reports target health.
//
// Lifecycle: New, then Persisted to start serving from disk before the
// server is reachable (static stability), then Run until the context ends.
// Run reconnects with jittered exponential back-off whenever the stream
// breaks or stays silent for three heartbeat intervals; the node keeps
// serving what it has in the meantime.
package controlclient

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/trellis-mesh/trellis/internal/snapshot"
)

// Config configures a Client.
type Config struct {
	// Endpoint is the control plane's API URL, e.g. http://127.0.0.1:7070.
	Endpoint string
	// Credentials sign every call (SigV4, signing name "trellis").
	Credentials aws.CredentialsProvider
	// Region is the SigV4 region; default us-east-1.
	Region string
	// NodeID names the node to the server: 1–128 of [A-Za-z0-9._-].
	NodeID string
	// VPCID is the VPC whose snapshots the node serves.
	VPCID string
	// StateDir keeps the last applied snapshot (StateDir/snapshot-VPC.json).
	// Empty disables persistence (the node then cannot restart without
	// the server).
	StateDir string
	// Address and Ports are reported with every ack (what `trellis get
	// nodes` shows); Ports may be updated with SetPorts.
	Address string
	Logger  *slog.Logger
	// HTTPClient defaults to a client without an overall timeout (the
	// stream is long-lived); requests other than the stream time out
	// after 10 s.
	HTTPClient *http.Client
	// MinBackoff and MaxBackoff bound reconnect delays; defaults 200 ms
	// and 10 s. Each failure doubles the delay, with ±25% jitter.
	MinBackoff, MaxBackoff time.Duration
	// OnConnect, when set, is called each time a stream opens (the
	// gateway re-sends all target health then, so a restarted server
	// learns it at once).
	OnConnect func()
	// SilenceTimeout is how long a stream may stay silent before the node
	// reconnects; default three heartbeat intervals.
	SilenceTimeout time.Duration
}

// ApplyFunc applies a snapshot; an error means the node kept its previous
// configuration (the version is acknowledged with the error, and not
// persisted).
type ApplyFunc func(*snapshot.Snapshot) error

// Client streams snapshots for one node. Safe for concurrent use.
type Client struct {
	cfg  Config
	log  *slog.Logger
	http *http.Client

	mu      sync.Mutex
	applied int64 // version of the last applied snapshot
	ports   []int32
	pending map[string]snapshot.TargetHealth // health not yet reported
	wake    chan struct{}
}

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("controlclient: an endpoint is required")
	}
	if _, err := url.Parse(cfg.Endpoint); err != nil {
		return nil, fmt.Errorf("controlclient: endpoint: %w", err)
	}
	if !validNodeID(cfg.NodeID) {
		return nil, fmt.Errorf("controlclient: node ID %q: want 1 to 128 characters of A-Z a-z 0-9 . _ -", cfg.NodeID)
	}
	if cfg.VPCID == "" {
		return nil, errors.New("controlclient: a VPC ID is required")
	}
	if cfg.Credentials == nil {
		return nil, errors.New("controlclient: credentials are required")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 200 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.SilenceTimeout <= 0 {
		cfg.SilenceTimeout = 3 * snapshot.HeartbeatInterval
	}
	cfg.Endpoint = strings.TrimSuffix(cfg.Endpoint, "/")
	return &Client{cfg: cfg, log: cfg.Logger, http: cfg.HTTPClient,
		pending: map[string]snapshot.TargetHealth{}, wake: make(chan struct{}, 1)}, nil
}

func validNodeID(s string) bool {
	if len(s) < 1 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (c *Client) statePath() string {
	return filepath.Join(c.cfg.StateDir, "snapshot-"+c.cfg.VPCID+".json")
}

// Persisted returns the last snapshot this node applied, from disk, or
// (nil, nil) when there is none.
func (c *Client) Persisted() (*snapshot.Snapshot, error) {
	if c.cfg.StateDir == "" {
		return nil, nil
	}
	b, err := os.ReadFile(c.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("controlclient: reading last-known-good snapshot: %w", err)
	}
	var s snapshot.Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("controlclient: last-known-good snapshot %s is corrupt: %w", c.statePath(), err)
	}
	if s.VPC.ID != c.cfg.VPCID {
		return nil, fmt.Errorf("controlclient: last-known-good snapshot %s is for %s, not %s", c.statePath(), s.VPC.ID, c.cfg.VPCID)
	}
	return &s, nil
}

// MarkApplied records that the node serves snap (for example one loaded by
// Persisted), so the stream asks only for newer versions.
func (c *Client) MarkApplied(snap *snapshot.Snapshot) {
	c.mu.Lock()
	c.applied = snap.Version
	c.mu.Unlock()
}

// SetPorts updates the listener ports reported with acks.
func (c *Client) SetPorts(ports []int32) {
	c.mu.Lock()
	c.ports = append([]int32(nil), ports...)
	c.mu.Unlock()
}

// persist writes snap atomically (temp file, fsync, rename), so a crash
// leaves the previous copy or the new one, never a torn file.
func (c *Client) persist(snap *snapshot.Snapshot) error {
	if c.cfg.StateDir == "" {
		return nil
	}
	if err := os.MkdirAll(c.cfg.StateDir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(snap)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(c.cfg.StateDir, ".snapshot-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, c.statePath())
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("controlclient: persisting snapshot: %w", err)
	}
	return nil
}

// Run streams snapshots and calls apply for each, until ctx ends. It also
// sends pending health reports. It returns ctx.Err().
func (c *Client) Run(ctx context.Context, apply ApplyFunc) error {
	go c.reportLoop(ctx)
	backoff := c.cfg.MinBackoff
	for {
		connected, err := c.stream(ctx, apply)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if connected {
			backoff = c.cfg.MinBackoff
		}
		c.log.Warn("control-plane stream ended; serving the last snapshot", "err", err, "retry_in", backoff)
		d := jitter(backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
		backoff = min(backoff*2, c.cfg.MaxBackoff)
	}
}

func jitter(d time.Duration) time.Duration {
	return d*3/4 + time.Duration(rand.Int64N(int64(d)/2+1))
}

// stream runs one stream; connected reports whether it got a 200.
func (c *Client) stream(ctx context.Context, apply ApplyFunc) (connected bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.mu.Lock()
	v := c.applied
	c.mu.Unlock()
	q := url.Values{"vpc": {c.cfg.VPCID}, "version": {strconv.FormatInt(v, 10)}}
	req, err := c.newRequest(ctx, http.MethodGet, "/nodes/"+c.cfg.NodeID+"/snapshots?"+q.Encode(), nil)
	if err != nil {
		return false, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, apiError(resp)
	}
	if c.cfg.OnConnect != nil {
		c.cfg.OnConnect()
	}
	c.log.Info("control-plane stream open", "endpoint", c.cfg.Endpoint, "vpc", c.cfg.VPCID, "from_version", v)
	// A watchdog cancels the stream when it stays silent too long.
	alive := make(chan struct{}, 1)
	go func() {
		t := time.NewTimer(c.cfg.SilenceTimeout)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-alive:
				t.Reset(c.cfg.SilenceTimeout)
			case <-t.C:
				c.log.Warn("control-plane stream silent; reconnecting", "after", c.cfg.SilenceTimeout)
				cancel()
				return
			}
		}
	}()
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			select {
			case alive <- struct{}{}:
			default:
			}
			var m snapshot.StreamMessage
			if jerr := json.Unmarshal(line, &m); jerr != nil {
				return true, fmt.Errorf("controlclient: bad stream message: %w", jerr)
			}
			if m.Snapshot != nil {
				c.handle(ctx, m.Snapshot, apply)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return true, err
		}
	}
}

func (c *Client) handle(ctx context.Context, snap *snapshot.Snapshot, apply ApplyFunc) {
	ack := snapshot.Ack{VPC: c.cfg.VPCID, Version: snap.Version, Address: c.cfg.Address}
	if snap.VPC.ID != c.cfg.VPCID {
		ack.Error = "snapshot is for " + snap.VPC.ID
	} else if err := apply(snap); err != nil {
		ack.Error = err.Error()
		c.log.Error("snapshot rejected; keeping the previous one", "version", snap.Version, "err", err)
	} else {
		c.mu.Lock()
		c.applied = snap.Version
		c.mu.Unlock()
		if err := c.persist(snap); err != nil {
			c.log.Error("cannot persist snapshot", "err", err)
		}
		c.log.Info("snapshot applied", "version", snap.Version, "services", len(snap.Services))
	}
	c.mu.Lock()
	ack.Ports = append([]int32(nil), c.ports...)
	c.mu.Unlock()
	if err := c.call(ctx, http.MethodPost, "/nodes/"+c.cfg.NodeID+"/ack", ack); err != nil {
		c.log.Warn("ack failed", "version", snap.Version, "err", err)
	}
}

// ReportHealth queues target health changes; they are sent in batches
// (the latest status per target wins) and retried until the server takes
// them.
func (c *Client) ReportHealth(h snapshot.TargetHealth) {
	c.mu.Lock()
	c.pending[snapshot.TargetKey(h.TargetGroupID, h.ID, h.Port)] = h
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Client) reportLoop(ctx context.Context) {
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-retry.C:
		}
		c.mu.Lock()
		if len(c.pending) == 0 {
			c.mu.Unlock()
			continue
		}
		batch := snapshot.HealthReport{VPC: c.cfg.VPCID}
		for _, h := range c.pending {
			batch.Targets = append(batch.Targets, h)
		}
		c.pending = map[string]snapshot.TargetHealth{}
		c.mu.Unlock()
		if err := c.call(ctx, http.MethodPost, "/nodes/"+c.cfg.NodeID+"/health", batch); err != nil {
			c.log.Warn("health report failed; will retry", "targets", len(batch.Targets), "err", err)
			c.mu.Lock()
			for _, h := range batch.Targets {
				k := snapshot.TargetKey(h.TargetGroupID, h.ID, h.Port)
				if _, newer := c.pending[k]; !newer {
					c.pending[k] = h
				}
			}
			c.mu.Unlock()
		}
	}
}

func (c *Client) call(ctx context.Context, method, path string, in any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return apiError(resp)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

func (c *Client) newRequest(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.Endpoint+"/trellis/v1"+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	creds, err := c.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("controlclient: credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "trellis", c.cfg.Region, time.Now()); err != nil {
		return nil, fmt.Errorf("controlclient: signing: %w", err)
	}
	return req, nil
}

// APIError is an error answer of the control plane.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("control plane answered %d %s: %s", e.Status, e.Code, e.Message)
}

func apiError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(raw, &e)
	return &APIError{Status: resp.StatusCode, Code: resp.Header.Get("x-amzn-ErrorType"), Message: e.Message}
}
