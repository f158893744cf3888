package h2server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"golang.org/x/net/http2/hpack"
)

// Server serves HTTP/2 connections with an http.Handler.
type Server struct {
	Handler http.Handler
	// MaxConcurrentStreams bounds the streams of a connection whose
	// handlers run; 0 means 250. A stream the client resets still counts
	// until its handler returns, so resets cannot pile up work.
	MaxConcurrentStreams uint32
	// MaxHeaderBytes bounds a request's header list (HPACK-decoded sizes,
	// as SETTINGS_MAX_HEADER_LIST_SIZE counts them); 0 means
	// http.DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// IdleTimeout closes a connection without streams for that long; 0:
	// never.
	IdleTimeout time.Duration
	// PrefaceTimeout bounds the wait for the client's preface and first
	// SETTINGS; 0 means 10 s.
	PrefaceTimeout time.Duration
	// WriteTimeout bounds one write to the connection; a client that
	// reads nothing for that long is cut. 0 means 30 s.
	WriteTimeout time.Duration
	// BodyIdleTimeout bounds each wait of a request body's reads for
	// DATA (ServeHTTP's bodies and StreamHandler's, whose SetBodyIdle
	// overrides it): a client that sends nothing of its body for that
	// long, while the server's flow-control windows let it, has the
	// read fail with ErrBodyIdle. 0: no bound.
	BodyIdleTimeout time.Duration
	// ConnContext, if set, derives a connection's context (the base of
	// its requests' contexts) from the connection.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	Logger      *slog.Logger

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutdown bool
	workers  workerPool
}

// Receive windows advertised to clients. The connection's bounds what a
// connection's request bodies may buffer before handlers read them.
const (
	streamRecvWindow = 1 << 20
	connRecvWindow   = 4 << 20
	// maxOutBuffer bounds the bytes queued for a client: handlers wait
	// beyond it, and a client that makes the server queue control frames
	// (PING, SETTINGS acknowledgements) past it is cut.
	maxOutBuffer = 1 << 20
)

func (s *Server) maxStreams() uint32 {
	if s.MaxConcurrentStreams == 0 {
		return 250
	}
	return s.MaxConcurrentStreams
}

func (s *Server) maxHeaderBytes() int {
	if s.MaxHeaderBytes <= 0 {
		return http.DefaultMaxHeaderBytes
	}
	return s.MaxHeaderBytes
}

func durationOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// ErrServerClosed is returned by ServeConn after Shutdown.
var ErrServerClosed = errors.New("h2server: server closed")

// ServeConn serves c, whose next bytes are the client's connection
// preface, until the connection ends, and returns once its handlers have
// returned. A *tls.Conn gives its state to Request.TLS.
func (s *Server) ServeConn(ctx context.Context, c net.Conn) error {
	cn := s.newConn(ctx, c)
	if !s.track(cn, true) {
		_ = c.Close()
		return ErrServerClosed
	}
	defer s.track(cn, false)
	defer func() {
		// A bug must cost one connection, not the process.
		if v := recover(); v != nil {
			cn.log.Error("panic serving an HTTP/2 connection", "remote", cn.remote, "panic", v, "stack", string(debug.Stack()))
			_ = c.Close()
		}
	}()
	return cn.serve()
}

func (s *Server) track(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.conns, c)
		return true
	}
	if s.shutdown {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

// Shutdown sends every connection a GOAWAY, lets the streams already open
// finish and closes each connection once it has none, until ctx ends;
// then it closes the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	s.workers.close()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.goAway(errNoError)
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for c := range s.conns {
				_ = c.nc.Close()
			}
			s.mu.Unlock()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// conn is one client connection. The serve goroutine reads and handles
// every frame; handlers write their responses through out (write.go).
type conn struct {
	srv    *Server
	nc     net.Conn
	br     *bufio.Reader
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	remote string
	tls    *tls.ConnectionState
	wg     sync.WaitGroup // handlers
	direct StreamHandler  // the Handler, when it is one

	// Read side, owned by the serve goroutine.
	hdr          [frameHeaderLen]byte
	payload      []byte
	dec          *hpack.Decoder
	fields       []hpack.HeaderField
	fieldsSize   int
	fieldsBad    bool // the header list went past MaxHeaderBytes
	block        []byte
	blockFor     uint32 // stream whose header block continues; 0: none
	blockFlags   uint8
	headerStream uint32 // stream of the header block being read
	maxHeader    int

	// Shared with handlers; mu guards it and out.
	mu          sync.Mutex
	maxID       uint32     // highest stream ID the client opened
	recvWindow  int32      // connection receive window left
	recvRefund  int32      // bytes consumed but not yet given back
	cond        *sync.Cond // window updates, output drained, streams closing
	streams     map[uint32]*stream
	running     uint32 // handlers running (open streams and reset ones alike)
	sendWindow  int64  // connection send window
	peerWindow  int32  // client's SETTINGS_INITIAL_WINDOW_SIZE
	peerFrame   int    // client's SETTINGS_MAX_FRAME_SIZE
	goingAway   bool   // GOAWAY sent: no new streams
	goAwayRecv  bool   // the client sent GOAWAY
	closed      bool   // the connection is done: writes fail
	idle        *time.Timer
	out         output
	enc         *hpack.Encoder
	encBuf      bytesBuffer
	prefaceDone bool // the server's SETTINGS are queued
	sentGoAway  bool
	// resetIDs are the streams the server reset most recently (a ring):
	// frames the client sent before it saw the reset are ignored (§5.1).
	resetIDs    []uint32
	resetNext   int
	writeFailed error
}

func (s *Server) newConn(ctx context.Context, nc net.Conn) *conn {
	if s.ConnContext != nil {
		ctx = s.ConnContext(ctx, nc)
	}
	c := &conn{
		srv: s, nc: nc, br: bufio.NewReaderSize(nc, 16<<10),
		log: s.Logger, remote: nc.RemoteAddr().String(),
		payload: make([]byte, defaultFrameSize), streams: make(map[uint32]*stream),
		recvWindow: connRecvWindow, sendWindow: defaultWindow, peerWindow: defaultWindow,
		peerFrame: defaultFrameSize, maxHeader: s.maxHeaderBytes(),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.ctx, c.cancel = context.WithCancel(ctx)
	c.direct, _ = s.Handler.(StreamHandler)
	if tc, ok := nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		c.tls = &st
	}
	c.cond = sync.NewCond(&c.mu)
	c.dec = hpack.NewDecoder(4096, c.emit)
	c.dec.SetMaxStringLength(c.maxHeader)
	c.enc = hpack.NewEncoder(&c.encBuf)
	c.out.init(c)
	return c
}

// emit collects a decoded header field, up to MaxHeaderBytes.
func (c *conn) emit(f hpack.HeaderField) {
	if c.fieldsBad {
		return
	}
	c.fieldsSize += int(f.Size())
	if c.fieldsSize > c.maxHeader {
		c.fieldsBad = true
		c.fields = c.fields[:0]
		return
	}
	c.fields = append(c.fields, f)
}

// serve runs the connection: the preface, then every frame until an error
// or the end.
func (c *conn) serve() error {
	defer c.finish()
	if err := c.readPreface(); err != nil {
		c.log.Debug("http2 preface", "remote", c.remote, "err", err)
		return err
	}
	c.mu.Lock()
	c.prefaceDone = true
	c.out.appendSettings([][2]uint32{
		{uint32(settingMaxConcurrentStreams), c.srv.maxStreams()},
		{uint32(settingInitialWindowSize), streamRecvWindow},
		{uint32(settingMaxHeaderListSize), uint32(c.maxHeader)},
		{uint32(settingEnablePush), 0},
	})
	c.out.appendWindowUpdate(0, connRecvWindow-defaultWindow)
	if c.goingAway {
		// Shutdown came during the preface: the GOAWAY follows SETTINGS.
		c.sentGoAway = true
		c.out.appendGoAway(0, errNoError)
	}
	c.mu.Unlock()
	c.flushAsync(false)
	first := true
	for {
		fh, err := c.readFrame()
		if err == nil && first && fh.typ != frameSettings {
			err = connError{errProtocol, "the client's preface is not followed by SETTINGS"}
		}
		if first {
			first = false
			_ = c.nc.SetReadDeadline(time.Time{})
			c.armIdle()
		}
		if err == nil {
			err = c.handle(fh)
		}
		if err != nil {
			var se streamError
			if errors.As(err, &se) {
				c.log.Debug("http2 stream reset", "remote", c.remote, "err", err)
				err = nil
				if !c.resetStream(se.stream, se.code) {
					err = connError{errEnhanceYourCalm, "the client does not read its resets"}
				}
			}
		}
		if err != nil {
			var ce connError
			if errors.As(err, &ce) {
				c.log.Debug("http2 connection error", "remote", c.remote, "err", err)
				c.goAway(ce.code)
				return err
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.log.Debug("http2 connection ended", "remote", c.remote, "err", err)
			}
			return err
		}
		if c.br.Buffered() == 0 {
			c.flushAsync(false)
		}
		if c.done() {
			return nil
		}
	}
}

func (c *conn) readPreface() error {
	_ = c.nc.SetReadDeadline(time.Now().Add(durationOr(c.srv.PrefaceTimeout, 10*time.Second)))
	var b [len(clientPreface)]byte
	if _, err := io.ReadFull(c.br, b[:]); err != nil {
		return err
	}
	if string(b[:]) != clientPreface {
		return errors.New("not the HTTP/2 client preface")
	}
	return nil
}

// readFrame reads the next frame's header and payload (into c.payload).
func (c *conn) readFrame() (frameHeader, error) {
	if _, err := io.ReadFull(c.br, c.hdr[:]); err != nil {
		return frameHeader{}, err
	}
	fh := parseFrameHeader(c.hdr[:])
	if fh.length > defaultFrameSize {
		// We never raise SETTINGS_MAX_FRAME_SIZE.
		return fh, connError{errFrameSize, "frame larger than SETTINGS_MAX_FRAME_SIZE"}
	}
	if _, err := io.ReadFull(c.br, c.payload[:fh.length]); err != nil {
		return fh, err
	}
	return fh, nil
}

// done reports whether the connection has nothing left to do: a GOAWAY
// was sent or received and no stream remains.
func (c *conn) done() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return (c.goingAway || c.goAwayRecv) && c.running == 0 && len(c.streams) == 0
}

// finish ends the connection: streams are cancelled, handlers awaited.
func (c *conn) finish() {
	c.mu.Lock()
	c.closed = true
	for _, s := range c.streams {
		s.abort(errConnClosed)
	}
	if c.idle != nil {
		c.idle.Stop()
	}
	c.cond.Broadcast()
	if c.out.writing {
		// A write in progress (a GOAWAY, say) may finish first, for up to
		// a second: a client that reads nothing is not waited for.
		t := time.AfterFunc(time.Second, func() { _ = c.nc.Close() })
		for c.out.writing {
			c.cond.Wait()
		}
		t.Stop()
	}
	c.mu.Unlock()
	c.flush()
	c.cancel()
	_ = c.nc.Close()
	c.wg.Wait()
}

var errConnClosed = errors.New("h2server: connection closed")

// armIdle starts or stops the idle timer as streams come and go; called
// with mu held or before handlers start.
func (c *conn) armIdle() {
	d := c.srv.IdleTimeout
	if d <= 0 {
		return
	}
	if c.idle == nil {
		c.idle = time.AfterFunc(d, func() {
			c.mu.Lock()
			idle := c.running == 0 && len(c.streams) == 0
			c.mu.Unlock()
			if idle {
				c.goAway(errNoError) // wakes the serve loop if still idle
			}
		})
		return
	}
	if c.running == 0 && len(c.streams) == 0 {
		c.idle.Reset(d)
	} else {
		c.idle.Stop()
	}
}

// goAway sends GOAWAY with the highest stream the client opened: the
// streams up to it finish, later ones are ignored. It does not wait for
// the write: Shutdown must not stall on a client that does not read.
func (c *conn) goAway(code errCode) {
	c.mu.Lock()
	if !c.sentGoAway || code != errNoError {
		c.goingAway = true
		if c.prefaceDone {
			c.sentGoAway = true
			c.out.appendGoAway(c.maxID, code)
		}
	}
	idle := c.running == 0 && len(c.streams) == 0
	c.mu.Unlock()
	c.flushAsync(true)
	if code == errNoError && idle {
		// Wake a serve loop blocked on a read so that it sees it is done.
		_ = c.nc.SetReadDeadline(time.Now())
	}
}

// noteReset remembers that the server reset stream id; mu held.
func (c *conn) noteReset(id uint32) {
	if c.resetIDs == nil {
		c.resetIDs = make([]uint32, 2*c.srv.maxStreams())
	}
	c.resetIDs[c.resetNext] = id
	c.resetNext = (c.resetNext + 1) % len(c.resetIDs)
}

// wasReset reports whether the server reset stream id recently.
func (c *conn) wasReset(id uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.resetIDs, id)
}
