// Package h1client is an HTTP/1.1 client for proxies: it writes a request
// and reads the response head on the calling goroutine, over keep-alive
// connections pooled per address.
//
// http.Transport runs a reader and a writer goroutine per connection and
// hands every request and response between them and the caller over
// channels; on a proxy hop that costs more scheduling than the exchange
// itself. This client does without them, at one price: it writes the
// whole request before it reads the answer, so it only takes requests
// whose body, if any, is small enough for the peer's socket buffers (Fits)
// and cannot deadlock against a peer that answers before reading.
// Requests with larger or streamed bodies belong to http.Transport.
//
// A request without body and with a plain head (the proxies' common case)
// is written by writeRequest, byte for byte what Request.Write writes but
// for the order of the fields; any other by Request.Write. The response
// is parsed by http.ReadResponse, the code http.Transport uses. The request's context
// cuts the connection (through its deadline) when it ends, so a timeout
// or a client that leaves never waits on the peer.
package h1client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trellis-mesh/trellis/internal/connprobe"
)

// MaxBody is the largest request body Fits takes: far below the socket
// buffers of any peer.
const MaxBody = 64 << 10

// Fits reports whether r may go through a Transport: no body, or a body
// of known length up to MaxBody without trailers.
func Fits(r *http.Request) bool {
	return r.Body == nil || r.Body == http.NoBody ||
		(r.ContentLength > 0 && r.ContentLength <= MaxBody && len(r.Trailer) == 0)
}

// Config configures a Transport.
type Config struct {
	// Dial opens a connection to addr (host:port), TLS included if need
	// be; ctx is the request's. Required.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// IdleTimeout closes pooled connections idle for this long; 0: no
	// limit.
	IdleTimeout time.Duration
	// MaxIdlePerAddr bounds the idle connections kept per address.
	MaxIdlePerAddr int
	// ResponseHeaderTimeout bounds the wait for the response head once
	// the request is written; 0: none. Its expiry is a net.Error whose
	// Timeout is true.
	ResponseHeaderTimeout time.Duration
}

// Transport is an http.RoundTripper for requests that Fits. Its methods
// are safe for concurrent use.
//
// No goroutine reads an idle connection, so every reuse is probed first
// (connprobe: one non-blocking peek): a peer that closed the connection,
// or sent bytes nobody asked for (a stray response, a body after a HEAD
// answer), leaves something to read, and the connection is dropped rather
// than have those bytes taken for the next request's answer. One limit:
// bytes a *tls.Conn has already read into its own buffer (a close_notify
// that came with the last record) are not visible to the probe.
type Transport struct {
	cfg Config

	mu     sync.Mutex
	idle   map[string][]*conn // per address, least recently used first
	reaper *time.Timer        // closes connections idle for IdleTimeout; nil until needed
	armed  bool
}

// conn is one pooled connection.
type conn struct {
	t      *Transport
	addr   string
	c      net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	probe  *connprobe.Prober
	idleAt time.Time // when it was put back
}

const (
	readBuf  = 4 << 10
	writeBuf = 4 << 10
	// max1xx bounds the informational responses skipped before the final
	// one, as Go's client does.
	max1xx = 5
)

// New returns a Transport with cfg.
func New(cfg Config) *Transport {
	return &Transport{cfg: cfg, idle: make(map[string][]*conn)}
}

// RoundTrip sends r (its URL's Host is the peer's address) and returns the
// response once its head has arrived. A reused connection that turns out
// to be closed before any byte of the response came is replaced by a new
// one, for an idempotent request without body (the peer most likely
// closed it idle as the request went out, after the probe; Go's client
// and nginx assume so too). As a RoundTripper must, it closes r's body,
// errors included.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx := r.Context()
	addr := r.URL.Host
	again := (r.Body == nil || r.Body == http.NoBody) && idempotent(r.Method)
	for {
		pc, reused := t.get(addr), true
		if pc == nil {
			reused = false
			c, err := t.cfg.Dial(ctx, addr)
			if err != nil {
				if r.Body != nil {
					_ = r.Body.Close()
				}
				return nil, err
			}
			pc = &conn{t: t, addr: addr, c: c, probe: connprobe.New(c),
				br: bufio.NewReaderSize(c, readBuf), bw: bufio.NewWriterSize(c, writeBuf)}
		}
		resp, fresh, err := pc.roundTrip(ctx, r)
		if err != nil && reused && fresh && again && ctx.Err() == nil {
			continue
		}
		return resp, err
	}
}

// idempotent methods (RFC 9110 §9.2.2) may be sent twice.
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// get takes the most recently used idle connection to addr, dropping
// those idle for the idle timeout and those the probe finds done.
func (t *Transport) get(addr string) *conn {
	now := time.Now()
	for {
		t.mu.Lock()
		list := t.idle[addr]
		n := len(list)
		if n == 0 {
			t.mu.Unlock()
			return nil
		}
		pc := list[n-1]
		list[n-1] = nil
		if n == 1 {
			delete(t.idle, addr)
		} else {
			t.idle[addr] = list[:n-1]
		}
		t.mu.Unlock()
		if (t.cfg.IdleTimeout <= 0 || now.Sub(pc.idleAt) < t.cfg.IdleTimeout) && pc.alive() {
			return pc
		}
		pc.c.Close()
	}
}

// put keeps a connection whose response was read to its end.
func (t *Transport) put(pc *conn) {
	pc.idleAt = time.Now()
	t.mu.Lock()
	list := t.idle[pc.addr]
	if len(list) >= t.cfg.MaxIdlePerAddr {
		t.mu.Unlock()
		pc.c.Close()
		return
	}
	t.idle[pc.addr] = append(list, pc)
	if t.cfg.IdleTimeout > 0 && !t.armed {
		t.armed = true
		if t.reaper == nil {
			t.reaper = time.AfterFunc(t.cfg.IdleTimeout, t.reap)
		} else {
			t.reaper.Reset(t.cfg.IdleTimeout)
		}
	}
	t.mu.Unlock()
}

// reap closes the connections idle for the idle timeout, forgets
// addresses left with none, and re-arms for the next to expire.
func (t *Transport) reap() {
	now := time.Now()
	var expired []*conn
	t.mu.Lock()
	next := time.Duration(-1)
	for addr, list := range t.idle {
		i := 0
		for i < len(list) && now.Sub(list[i].idleAt) >= t.cfg.IdleTimeout {
			i++
		}
		expired = append(expired, list[:i]...)
		if i == len(list) {
			delete(t.idle, addr)
			continue
		}
		n := copy(list, list[i:])
		clear(list[n:])
		t.idle[addr] = list[:n]
		if d := t.cfg.IdleTimeout - now.Sub(list[0].idleAt); next < 0 || d < next {
			next = d
		}
	}
	if next >= 0 {
		t.reaper.Reset(next)
	} else {
		t.armed = false
	}
	t.mu.Unlock()
	for _, pc := range expired {
		pc.c.Close()
	}
}

// Idle returns the number of idle connections to addr.
func (t *Transport) Idle(addr string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.idle[addr])
}

// CloseIdleConnections closes the idle connections, as http.Transport's
// does; connections in use go back to the pool when their response ends.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = make(map[string][]*conn)
	t.mu.Unlock()
	for _, list := range idle {
		for _, pc := range list {
			pc.c.Close()
		}
	}
}

// alive probes an idle connection without blocking.
func (pc *conn) alive() bool {
	return pc.br.Buffered() == 0 && pc.probe.Usable()
}

// roundTrip runs one exchange on pc. fresh reports a failure before any
// byte of the response arrived; on any error pc is closed.
func (pc *conn) roundTrip(ctx context.Context, r *http.Request) (resp *http.Response, fresh bool, err error) {
	// The context's end cuts whatever the exchange is blocked on.
	stop := context.AfterFunc(ctx, func() { _ = pc.c.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error, fresh bool) (*http.Response, bool, error) {
		stop()
		pc.c.Close()
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return nil, fresh, err
	}
	var rb *bodyReader
	if r.Body != nil && r.Body != http.NoBody {
		// Request.Write hides the body's read errors in a type of its
		// own; the caller may need them as they were (a framing guard's).
		rb = &bodyReader{ReadCloser: r.Body}
		out := *r
		out.Body = rb
		r = &out
	}
	if err := writeRequest(pc.bw, r); err != nil {
		if rb != nil && rb.err != nil {
			err = rb.err
		}
		return fail(err, false)
	}
	if err := pc.bw.Flush(); err != nil {
		return fail(err, true)
	}
	if d := pc.t.cfg.ResponseHeaderTimeout; d > 0 {
		_ = pc.c.SetReadDeadline(time.Now().Add(d))
		if ctx.Err() != nil {
			// The context ended as the deadline was armed: its cut must
			// hold.
			_ = pc.c.SetDeadline(time.Unix(1, 0))
		}
	}
	for n := 0; ; n++ {
		if _, err := pc.br.Peek(1); err != nil {
			var ne net.Error
			return fail(err, n == 0 && !(errors.As(err, &ne) && ne.Timeout()))
		}
		resp, err = http.ReadResponse(pc.br, r)
		if err != nil {
			return fail(err, false)
		}
		if resp.StatusCode >= 200 {
			break
		}
		if resp.StatusCode == http.StatusSwitchingProtocols || n == max1xx-1 {
			return fail(errors.New("h1client: unexpected informational response "+resp.Status), false)
		}
	}
	if pc.t.cfg.ResponseHeaderTimeout > 0 {
		_ = pc.c.SetReadDeadline(time.Time{})
		if ctx.Err() != nil {
			// The context ended as the deadline was cleared: its cut
			// must hold.
			_ = pc.c.SetDeadline(time.Unix(1, 0))
		}
	}
	b := &body{pc: pc, rc: resp.Body, stop: stop, keep: !resp.Close && !r.Close}
	if resp.Body == http.NoBody {
		b.done(true)
	} else {
		resp.Body = b
	}
	return resp, false, nil
}

// body is a response body: at its end the connection goes back to the
// pool; closed before its end, the connection is closed, unread. Close
// may be called from another goroutine to stop a Read.
type body struct {
	pc   *conn
	rc   io.ReadCloser
	stop func() bool
	keep bool
	end  atomic.Bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.end.Load() {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.done(true)
	} else if err != nil {
		b.done(false)
	}
	return n, err
}

// Close ends the body; unread, its connection cannot be reused.
func (b *body) Close() error {
	b.done(false)
	return nil
}

// done gives the connection back (the body ended cleanly and both sides
// keep it alive) or closes it; only its first call counts.
func (b *body) done(clean bool) {
	if b.end.Swap(true) {
		return
	}
	// stop is false once the context's AfterFunc has run: the
	// connection's deadline is in the past.
	if b.stop() && clean && b.keep && b.pc.br.Buffered() == 0 {
		b.pc.t.put(b.pc)
		return
	}
	b.pc.c.Close()
}

// bodyReader keeps the request body's first read error other than EOF.
type bodyReader struct {
	io.ReadCloser
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}
