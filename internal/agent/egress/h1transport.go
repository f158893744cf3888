package egress

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/internal/connprobe"
)

// h1Transport is the HTTP/1.1 client of a service's upstream for requests
// whose body, if any, is small (h1Fits): it writes the request and reads
// the response head on the calling goroutine, over keep-alive connections
// pooled per endpoint address. http.Transport runs a reader and a writer
// goroutine per connection and hands every request and response between
// them and the caller over channels; on a proxy hop that costs more
// scheduling than the exchange itself. Requests with larger or streamed
// bodies keep http.Transport, which reads an early answer while the body
// is still being written.
//
// The request is written by Request.Write and the response parsed by
// http.ReadResponse, the same code http.Transport uses. The request's
// context cuts the connection (through its deadline) when it ends, so a
// timeout or a client that leaves never waits on the endpoint.
type h1Transport struct {
	s   *service
	pol *policy

	mu   sync.Mutex
	idle map[string][]*h1Conn // per address, most recently used last
}

// h1Conn is one pooled connection to an endpoint.
type h1Conn struct {
	t      *h1Transport
	addr   string
	c      net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time // when it was put back
}

const (
	h1ConnReadBuf  = 4 << 10
	h1ConnWriteBuf = 4 << 10
	// h1ProbeAfter is the idle time after which a pooled connection is
	// probed (a non-blocking read) before use: endpoints close idle
	// keep-alive connections (Node.js after 5 s), and a request written
	// to a closed one fails without having been served.
	h1ProbeAfter = time.Second
	// h1Max1xx bounds the informational responses skipped before the
	// final one, as Go's client does.
	h1Max1xx = 5
)

func newH1Transport(s *service, pol *policy) *h1Transport {
	return &h1Transport{s: s, pol: pol, idle: make(map[string][]*h1Conn)}
}

// h1Fits reports whether r goes through the h1Transport: no body, or a
// body of known length that an endpoint's socket buffers take whole, so
// that writing it before reading the answer cannot deadlock.
func h1Fits(r *http.Request) bool {
	return r.Body == nil || (r.ContentLength > 0 && r.ContentLength <= MaxReplayBody && len(r.Trailer) == 0)
}

// RoundTrip sends r (its URL's Host is the endpoint's address) and returns
// the response once its head has arrived. A reused connection that turns
// out to be closed before any byte of the response came is replaced by a
// new one, for an idempotent request without body (the endpoint most
// likely closed it idle as the request went out; Go's client and nginx
// assume so too). Other requests probe a reused connection first.
func (t *h1Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx := r.Context()
	addr := r.URL.Host
	// A request that may not be sent twice probes any reused connection.
	again := r.Body == nil && idempotent(r.Method)
	for {
		pc, reused := t.get(addr, !again), true
		if pc == nil {
			reused = false
			var err error
			if pc, err = t.dial(ctx, addr); err != nil {
				return nil, err
			}
		}
		resp, err, fresh := pc.roundTrip(ctx, r)
		if err != nil && reused && fresh && again && ctx.Err() == nil {
			continue
		}
		return resp, err
	}
}

// dial opens a connection to addr, counted by the service's breaker.
func (t *h1Transport) dial(ctx context.Context, addr string) (*h1Conn, error) {
	c, err := t.s.dial(ctx, addr, t.pol, false, true)
	if err != nil {
		return nil, err
	}
	return &h1Conn{
		t: t, addr: addr, c: c,
		br: bufio.NewReaderSize(c, h1ConnReadBuf),
		bw: bufio.NewWriterSize(c, h1ConnWriteBuf),
	}, nil
}

// get takes the most recently used idle connection to addr, dropping
// those idle for the idle timeout and those the endpoint closed (probed
// when idle for h1ProbeAfter, or always with probe).
func (t *h1Transport) get(addr string, probe bool) *h1Conn {
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
		t.idle[addr] = list[:n-1]
		t.mu.Unlock()
		age := now.Sub(pc.idleAt)
		if (t.pol.IdleTimeout <= 0 || age < t.pol.IdleTimeout) && (age < h1ProbeAfter && !probe || pc.alive()) {
			return pc
		}
		pc.c.Close()
	}
}

// put keeps a connection whose response was read to its end.
func (t *h1Transport) put(pc *h1Conn) {
	pc.idleAt = time.Now()
	t.mu.Lock()
	list := t.idle[pc.addr]
	if len(list) >= t.maxIdle() {
		t.mu.Unlock()
		pc.c.Close()
		return
	}
	t.idle[pc.addr] = append(list, pc)
	t.mu.Unlock()
}

func (t *h1Transport) maxIdle() int {
	if max := t.pol.Breaker.MaxConnections; max > 0 {
		return min(max, maxIdlePerEndpoint)
	}
	return maxIdlePerEndpoint
}

// CloseIdleConnections closes the idle connections, as
// http.Transport's does; connections in use go back to the pool when
// their response ends.
func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = make(map[string][]*h1Conn)
	t.mu.Unlock()
	for _, list := range idle {
		for _, pc := range list {
			pc.c.Close()
		}
	}
}

// alive probes an idle connection without blocking: an endpoint that
// closed it has left an EOF (or a reset) to read; a live one nothing.
func (pc *h1Conn) alive() bool {
	return pc.br.Buffered() == 0 && connprobe.Usable(pc.c)
}

// roundTrip runs one exchange on pc. fresh reports a failure before any
// byte of the response arrived on a connection that had served before;
// on any error pc is closed.
func (pc *h1Conn) roundTrip(ctx context.Context, r *http.Request) (resp *http.Response, err error, fresh bool) {
	// The context's end cuts whatever the exchange is blocked on.
	stop := context.AfterFunc(ctx, func() { _ = pc.c.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error, fresh bool) (*http.Response, error, bool) {
		stop()
		pc.c.Close()
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return nil, err, fresh
	}
	if err := r.Write(pc.bw); err != nil {
		return fail(err, false)
	}
	if err := pc.bw.Flush(); err != nil {
		return fail(err, true)
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
		if resp.StatusCode == http.StatusSwitchingProtocols || n == h1Max1xx-1 {
			return fail(errors.New("unexpected informational response "+resp.Status), false)
		}
	}
	b := &h1Body{pc: pc, body: resp.Body, stop: stop, keep: !resp.Close && !r.Close}
	if resp.Body == http.NoBody {
		b.done(true)
	} else {
		resp.Body = b
	}
	return resp, nil, false
}

// h1Body is a response body: at its end the connection goes back to the
// pool; closed before its end, the connection is closed, unread.
type h1Body struct {
	pc   *h1Conn
	body io.ReadCloser
	stop func() bool
	keep bool
	end  bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.end {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.done(true)
	} else if err != nil {
		b.done(false)
	}
	return n, err
}

// Close ends the body; unread, its connection cannot be reused.
func (b *h1Body) Close() error {
	if !b.end {
		b.done(false)
	}
	return nil
}

// done gives the connection back (the body ended cleanly and both sides
// keep it alive) or closes it.
func (b *h1Body) done(clean bool) {
	b.end = true
	// stop is false once the context's AfterFunc has run: the
	// connection's deadline is in the past.
	if b.stop() && clean && b.keep && b.pc.br.Buffered() == 0 {
		b.pc.t.put(b.pc)
		return
	}
	b.pc.c.Close()
}
