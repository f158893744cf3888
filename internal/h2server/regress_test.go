package h2server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// A body that arrived in full but that the handler never read (a
// generated 403, say) gives its bytes back to the connection's receive
// window when the handler returns: after more than the window's 4 MiB of
// such bodies, a request body still gets through.
func TestUnreadBodyGivesWindowBack(t *testing.T) {
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ignore" {
			time.Sleep(100 * time.Millisecond) // let the whole body arrive
			w.WriteHeader(403)                 // e.g. auth failure, body never read
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	cl := h2cClient(t)
	body := bytes.Repeat([]byte("x"), 1_000_000)
	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/ignore", bytes.NewReader(body))
		resp, err := cl.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		cancel()
		t.Logf("ignore #%d: err=%v", i, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/echo", strings.NewReader("hello"))
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("echo after unread bodies: %v (connection receive window leaked)", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "hello" {
		t.Fatalf("echo body %q, %v (connection receive window leaked)", b, err)
	}
}

// A handler slower than its client keeps the body buffer near the
// stream's window, not the size of the whole body.
func TestBodyBufferBounded(t *testing.T) {
	const size = 32 << 20
	var mu sync.Mutex
	maxCap := 0
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rb := r.Body.(*requestBody)
		buf := make([]byte, 8<<10)
		total := 0
		for {
			n, err := r.Body.Read(buf)
			total += n
			rb.s.c.mu.Lock()
			c := cap(rb.buf)
			rb.s.c.mu.Unlock()
			mu.Lock()
			maxCap = max(maxCap, c)
			mu.Unlock()
			if err != nil {
				break
			}
			time.Sleep(20 * time.Microsecond) // a slow upstream
		}
		io.WriteString(w, "ok")
	}))
	req, _ := http.NewRequest("POST", "http://"+addr+"/", io.LimitReader(zeros{}, size))
	resp, err := h2cClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("max cap(requestBody.buf) = %d for a %d-byte body (stream window %d)", maxCap, size, streamRecvWindow)
	if maxCap > 4*streamRecvWindow {
		t.Fatalf("request body buffer grew to %d bytes (> 4x the stream window)", maxCap)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// RST_STREAM frames answering a client's stream errors count against the
// same bound as acknowledgements: a client that provokes them (here,
// PRIORITY frames of the wrong size) and reads nothing is cut rather than
// queued for.
func TestResetFloodCut(t *testing.T) {
	s := &Server{Handler: http.NotFoundHandler(), Logger: slog.New(slog.DiscardHandler), WriteTimeout: time.Minute}
	cli, srv := net.Pipe()
	defer cli.Close()
	done := make(chan struct{})
	go func() { _ = s.ServeConn(context.Background(), srv); close(done) }()
	var b bytes.Buffer
	b.WriteString(clientPreface)
	fr := http2.NewFramer(&b, nil)
	_ = fr.WriteSettings()
	const n = 300_000
	for range n {
		// PRIORITY, length 4, stream 1: a stream error (FRAME_SIZE_ERROR).
		b.Write([]byte{0, 0, 4, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0})
	}
	_ = cli.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := cli.Write(b.Bytes()); err != nil {
		t.Logf("connection cut (the wanted outcome): %v", err)
		cli.Close()
		<-done
		return
	}
	time.Sleep(100 * time.Millisecond)
	s.mu.Lock()
	var queued int
	for c := range s.conns {
		c.mu.Lock()
		queued = len(c.out.buf)
		c.mu.Unlock()
	}
	s.mu.Unlock()
	t.Logf("queued %d bytes for a client that reads nothing (maxOutBuffer %d)", queued, maxOutBuffer)
	cli.Close()
	<-done
	if queued > 2*maxOutBuffer {
		t.Fatalf("queued %d bytes of RST_STREAM for a client that does not read", queued)
	}
}

// Trailers the client had in flight when the server reset the stream
// (the handler returned without reading the body: RST_STREAM NO_ERROR)
// are ignored (§5.1); the connection and its other streams go on.
func TestFramesAfterServerResetIgnored(t *testing.T) {
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
	}))
	rc := dialRaw(t, addr)
	rc.headers(1, false, ":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/")
	for {
		f := rc.next()
		if f == nil {
			t.Fatal("connection ended")
		}
		if h, ok := f.(*http2.HeadersFrame); ok && h.StreamID == 1 {
			break
		}
	}
	// In flight before the client saw the RST_STREAM:
	rc.headers(1, true, "x-checksum", "abc")
	rc.headers(3, true, get("/")...)
	for {
		f := rc.next()
		if f == nil {
			t.Fatal("connection ended")
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			t.Fatalf("GOAWAY %v: in-flight trailers on a stream the server reset ended the connection", g.ErrCode)
		}
		if h, ok := f.(*http2.HeadersFrame); ok && h.StreamID == 3 {
			return
		}
	}
}

// A response shorter than its declared Content-Length is reset with
// INTERNAL_ERROR, also when nothing at all was written: the client must
// not take it for complete.
func TestShortResponseReset(t *testing.T) {
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
	}))
	rc := dialRaw(t, addr)
	rc.headers(1, true, get("/")...)
	for {
		f := rc.next()
		if f == nil {
			t.Fatal("connection ended")
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			if f.StreamEnded() {
				t.Fatalf("HEADERS with END_STREAM and content-length 5, no body: want RST_STREAM INTERNAL_ERROR")
			}
		case *http2.RSTStreamFrame:
			return
		}
	}
}

// Shutdown must not wait on a client that does not read: the GOAWAY is
// written on a goroutine of its own and ctx bounds the wait. With an
// hour-long WriteTimeout, only ctx can end this Shutdown.
func TestShutdownDoesNotWaitOnWrites(t *testing.T) {
	s := &Server{Handler: http.NotFoundHandler(), Logger: slog.New(slog.DiscardHandler), WriteTimeout: time.Hour}
	cli, srv := net.Pipe()
	defer cli.Close()
	done := make(chan struct{})
	go func() { _ = s.ServeConn(context.Background(), srv); close(done) }()
	go func() {
		var b bytes.Buffer
		b.WriteString(clientPreface)
		_ = http2.NewFramer(&b, nil).WriteSettings()
		cli.Write(b.Bytes())
	}()
	fr := http2.NewFramer(nil, cli)
	for acked := false; !acked; {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && sf.IsAck() {
			acked = true
		}
	}
	// The client now stops reading: on a net.Pipe the GOAWAY's write
	// blocks until it does.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the context's deadline", err)
	}
	<-done // Shutdown closed the connection
}

// A well-behaved client downloading faster than its network drains (large
// windows, as browsers and gRPC advertise) may send a PING (gRPC's BDP
// probe, keepalives) while the queue is full of DATA: it gets its answer,
// since only the answers to its own frames count against the flood bound.
func TestPingDuringDownload(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 8<<20))
	}), Logger: slog.New(slog.DiscardHandler)}
	cli, srv := net.Pipe()
	defer cli.Close()
	done := make(chan struct{})
	go func() { _ = s.ServeConn(context.Background(), srv); close(done) }()
	defer func() { cli.Close(); <-done }()
	_ = cli.SetDeadline(time.Now().Add(20 * time.Second))
	wfr := http2.NewFramer(cli, nil)
	rfr := http2.NewFramer(nil, cli)
	rc := &rawClient{t: t, c: cli, fr: http2.NewFramer(cli, cli)}
	go func() {
		io.WriteString(cli, clientPreface)
		wfr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 16 << 20})
		wfr.WriteWindowUpdate(0, 1<<30)
		rc.headers(1, true, get("/")...)
	}()
	// Read the server's preface, then stop reading while the download is
	// produced (a slow network).
	for got := 0; got < 2; got++ {
		if _, err := rfr.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	s.mu.Lock()
	for c := range s.conns {
		c.mu.Lock()
		t.Logf("queued %d writing %v sendWindow %d", len(c.out.buf), c.out.writing, c.sendWindow)
		c.mu.Unlock()
	}
	s.mu.Unlock()
	if err := wfr.WritePing(false, [8]byte{1}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	for {
		f, err := rfr.ReadFrame()
		if err != nil {
			t.Fatalf("connection cut after one PING during a download: %v", err)
		}
		switch f := f.(type) {
		case *http2.PingFrame:
			if f.IsAck() {
				return
			}
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v after one PING during a download", f.ErrCode)
		}
	}
}
