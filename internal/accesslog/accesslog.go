// Package accesslog writes Lattice access logs: one JSON object per line,
// with the field names of VPC Lattice's VpcLatticeAccessLogs, to files that
// stand in for the CloudWatch Logs, S3 and Firehose destinations of the
// access-log subscriptions (see Destination and docs/access-logs.md).
//
// Flow: the proxy calls Observe on the request's goroutine with the
// destination ARNs resolved at compile time (Record.AccessLogs). Observe
// encodes the record once into a pooled buffer and offers it to the bounded
// queue of each destination without blocking; when a queue is full the
// record is dropped for that destination and counted (Dropped). One
// goroutine per destination appends to its file, opened on first use, and
// flushes whenever its queue runs empty and at least every FlushInterval.
// Close drains the queues, flushes and closes the files.
package accesslog

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trellis-mesh/trellis/internal/metrics"
	"github.com/trellis-mesh/trellis/internal/proxy"
)

// Config configures a Writer.
type Config struct {
	// LogDir is the directory the destination files live under (see
	// Destination). Required unless every subscription uses the
	// StdoutLogGroup.
	LogDir string
	// Stdout receives the records of the StdoutLogGroup. Default
	// os.Stdout.
	Stdout io.Writer
	// Logger receives file errors (once per destination until it
	// recovers). Default: discard.
	Logger *slog.Logger
	// VPCArn and VPCID are the node's VPC: the sourceVpcArn and sourceVpcId
	// of every record (a gateway serves the clients of one VPC).
	VPCArn, VPCID string
	// DestinationVPC, when set, gives the VPC ID of a target group
	// (destinationVpcId); the gateway looks it up in its current snapshot.
	// Called on the request's goroutine: must be fast and safe for
	// concurrent use. Default: destinationVpcId is "-".
	DestinationVPC func(targetGroupID string) string
	// QueueSize is the number of records each destination buffers before
	// dropping. Default 4096: a burst of that many lines rides out a slow
	// disk at the cost of up to QueueSize pooled buffers per destination.
	QueueSize int
	// FlushInterval bounds how long a written record may sit in memory.
	// Default 1 s.
	FlushInterval time.Duration
	// Registry, when set, receives trellis_accesslog_dropped_records_total
	// and trellis_accesslog_errors_total.
	Registry *metrics.Registry
}

// Writer is a proxy.Observer that writes access logs. Safe for concurrent
// use; Observe never blocks on I/O.
type Writer struct {
	cfg  Config
	log  *slog.Logger
	pool sync.Pool

	sinks  sync.Map // destination ARN → *sink, or nil for an unusable ARN
	mu     sync.Mutex
	byPath map[string]*sink // one sink per file: ARNs may share one
	stdout *sink

	done      chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once
	wg        sync.WaitGroup

	dropped atomic.Uint64
	errors  atomic.Uint64
}

var _ proxy.Observer = (*Writer)(nil)

// New returns a Writer. It fails only when the metrics cannot be
// registered.
func New(cfg Config) (*Writer, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	w := &Writer{cfg: cfg, log: cfg.Logger, byPath: map[string]*sink{}, done: make(chan struct{})}
	w.pool.New = func() any { return &line{b: make([]byte, 0, 1024), pool: &w.pool} }
	if cfg.Registry != nil {
		err := cfg.Registry.Register(
			metrics.NewCounterFunc("trellis_accesslog_dropped_records_total",
				"Access-log records dropped because a destination's queue was full.",
				func() float64 { return float64(w.dropped.Load()) }),
			metrics.NewCounterFunc("trellis_accesslog_errors_total",
				"Access-log records lost to an unusable destination or a file error.",
				func() float64 { return float64(w.errors.Load()) }))
		if err != nil {
			return nil, fmt.Errorf("register access-log metrics: %w", err)
		}
	}
	return w, nil
}

// Observe logs rec to each of rec.AccessLogs. It copies what it needs and
// returns without waiting for I/O.
func (w *Writer) Observe(rec *proxy.Record) {
	if len(rec.AccessLogs) == 0 || w.closed.Load() {
		return
	}
	l := w.pool.Get().(*line)
	l.b = w.appendRecord(l.b[:0], rec)
	l.refs.Store(1) // Observe's own reference, released below
	for _, arn := range rec.AccessLogs {
		s := w.sink(arn)
		if s == nil {
			w.errors.Add(1)
			continue
		}
		l.refs.Add(1)
		select {
		case s.q <- l:
		default:
			l.refs.Add(-1)
			w.dropped.Add(1)
		}
	}
	l.release()
}

// sink returns the sink of a destination ARN, creating it (and its
// goroutine) on first use; nil for an ARN that maps nowhere.
func (w *Writer) sink(arn string) *sink {
	if v, ok := w.sinks.Load(arn); ok {
		s, _ := v.(*sink)
		return s
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if v, ok := w.sinks.Load(arn); ok {
		s, _ := v.(*sink)
		return s
	}
	if w.closed.Load() {
		return nil
	}
	path, stdout, err := Destination(w.cfg.LogDir, arn)
	if err == nil && !stdout && w.cfg.LogDir == "" {
		err = errors.New("no log directory configured")
	}
	var s *sink
	switch {
	case err != nil:
		w.log.Warn("access-log destination ignored", "destination", arn, "err", err)
	case stdout:
		if w.stdout == nil {
			w.stdout = w.start(newSink(w, "", w.cfg.Stdout))
		}
		s = w.stdout
	default:
		if s = w.byPath[path]; s == nil {
			s = w.start(newSink(w, path, nil))
			w.byPath[path] = s
		}
	}
	if s == nil {
		w.sinks.Store(arn, (*sink)(nil))
	} else {
		w.sinks.Store(arn, s)
	}
	return s
}

func (w *Writer) start(s *sink) *sink {
	w.wg.Go(func() { s.run(w.done) })
	return s
}

// Dropped is the number of records dropped because a destination's queue
// was full.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Errors is the number of records lost to unusable destinations and file
// errors.
func (w *Writer) Errors() uint64 { return w.errors.Load() }

// Close writes what is queued, flushes, closes the files and returns the
// first close error. Records observed after Close are ignored. Close is
// idempotent.
func (w *Writer) Close() error {
	var err error
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed.Store(true)
		w.mu.Unlock()
		close(w.done)
		w.wg.Wait()
		for _, s := range w.byPath {
			err = errors.Join(err, s.err)
		}
	})
	return err
}
