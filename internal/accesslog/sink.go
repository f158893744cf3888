package accesslog

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// line is one encoded record, shared by every destination it goes to and
// returned to the pool by the last one to write it.
type line struct {
	b    []byte
	refs atomic.Int32
	pool *sync.Pool
}

// maxPooled keeps buffers grown by huge records out of the pool.
const maxPooled = 64 << 10

func (l *line) release() {
	if l.refs.Add(-1) != 0 {
		return
	}
	if cap(l.b) <= maxPooled {
		l.b = l.b[:0]
		l.pool.Put(l)
	}
}

// sink is one destination: a bounded queue and the goroutine that drains
// it into a file (opened lazily, appended) or into the stdout writer.
type sink struct {
	w      *Writer
	path   string // "" for stdout
	q      chan *line
	out    io.Writer
	file   *os.File
	bw     *bufio.Writer
	failed time.Time // last open failure; the next attempt waits a flush interval
	err    error     // first error closing
}

func newSink(w *Writer, path string, stdout io.Writer) *sink {
	s := &sink{w: w, path: path, q: make(chan *line, w.cfg.QueueSize)}
	if stdout != nil {
		s.out = stdout
		s.bw = bufio.NewWriterSize(stdout, 32<<10)
	}
	return s
}

// run drains the queue until the writer closes, flushing whenever the
// queue runs empty (so a quiet service's lines land at once) and at least
// every flush interval (so a busy one's land within it).
func (s *sink) run(done <-chan struct{}) {
	t := time.NewTicker(s.w.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case l := <-s.q:
			s.write(l)
			if len(s.q) == 0 {
				s.flush()
			}
		case <-t.C:
			s.flush()
		case <-done:
			for {
				select {
				case l := <-s.q:
					s.write(l)
				default:
					s.flush()
					s.close()
					return
				}
			}
		}
	}
}

func (s *sink) write(l *line) {
	defer l.release()
	if s.bw == nil && !s.open() {
		s.w.errors.Add(1)
		return
	}
	if _, err := s.bw.Write(l.b); err != nil {
		s.w.errors.Add(1)
	}
}

// open opens the file for appending, creating its directories; after a
// failure it retries at most once per flush interval.
func (s *sink) open() bool {
	if !s.failed.IsZero() && time.Since(s.failed) < s.w.cfg.FlushInterval {
		return false
	}
	f, err := openAppend(s.path)
	if err != nil {
		if s.failed.IsZero() {
			s.w.log.Warn("cannot open access log", "path", s.path, "err", err)
		}
		s.failed = time.Now()
		return false
	}
	s.failed = time.Time{}
	s.file, s.out = f, f
	s.bw = bufio.NewWriterSize(f, 64<<10)
	return true
}

func openAppend(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create access-log directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open access log: %w", err)
	}
	return f, nil
}

func (s *sink) flush() {
	if s.bw == nil || s.bw.Buffered() == 0 {
		return
	}
	if err := s.bw.Flush(); err != nil {
		s.w.log.Warn("cannot write access log", "path", s.path, "err", err)
		s.w.errors.Add(1)
		// bufio keeps failing after an error: start over with a new file.
		if s.file != nil {
			_ = s.file.Close()
			s.file, s.bw, s.out = nil, nil, nil
		} else {
			s.bw.Reset(s.out)
		}
	}
}

func (s *sink) close() {
	if s.file != nil {
		if err := s.file.Close(); err != nil {
			s.err = fmt.Errorf("close access log %s: %w", s.path, err)
		}
	}
}
