package h2server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawClient speaks frames to a Server, for what a well-behaved client
// never sends.
type rawClient struct {
	t  *testing.T
	c  net.Conn
	fr *http2.Framer
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, clientPreface); err != nil {
		t.Fatal(err)
	}
	rc := &rawClient{t: t, c: c, fr: http2.NewFramer(c, c)}
	if err := rc.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return rc
}

func (rc *rawClient) headers(id uint32, end bool, fields ...string) {
	rc.t.Helper()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for i := 0; i < len(fields); i += 2 {
		_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	if err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: buf.Bytes(), EndStream: end, EndHeaders: true}); err != nil {
		rc.t.Fatal(err)
	}
}

func get(path string) []string {
	return []string{":method", "GET", ":scheme", "http", ":authority", "a", ":path", path}
}

// next returns the next frame other than SETTINGS, WINDOW_UPDATE and PING
// acknowledgements; nil when the connection ended.
func (rc *rawClient) next() http2.Frame {
	rc.t.Helper()
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			return nil
		}
		switch f.(type) {
		case *http2.SettingsFrame, *http2.WindowUpdateFrame, *http2.PingFrame:
			continue
		}
		return f
	}
}

func (rc *rawClient) expectRST(id uint32, code http2.ErrCode) {
	rc.t.Helper()
	for {
		f := rc.next()
		if f == nil {
			rc.t.Fatalf("connection ended, want RST_STREAM %v on stream %d", code, id)
		}
		if r, ok := f.(*http2.RSTStreamFrame); ok && r.StreamID == id {
			if r.ErrCode != code {
				rc.t.Fatalf("RST_STREAM %v on stream %d, want %v", r.ErrCode, id, code)
			}
			return
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			rc.t.Fatalf("GOAWAY %v, want RST_STREAM %v on stream %d", g.ErrCode, code, id)
		}
	}
}

func (rc *rawClient) expectGoAway(code http2.ErrCode) {
	rc.t.Helper()
	for {
		f := rc.next()
		if f == nil {
			rc.t.Fatalf("connection ended without GOAWAY %v", code)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			if g.ErrCode != code {
				rc.t.Fatalf("GOAWAY %v, want %v", g.ErrCode, code)
			}
			return
		}
	}
}

// TestStreamLimitCountsResetStreams: streams beyond MaxConcurrentStreams
// are refused, and a stream the client reset counts until its handler
// returns, so that resets cannot start unbounded work (CVE-2023-44487).
func TestStreamLimitCountsResetStreams(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // ignores cancellation, as a slow handler may
	}), func(s *Server) { s.MaxConcurrentStreams = 2 })
	rc := dialRaw(t, addr)
	rc.headers(1, true, get("/")...)
	if err := rc.fr.WriteRSTStream(1, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	rc.headers(3, true, get("/")...)
	rc.headers(5, true, get("/")...)
	rc.expectRST(5, http2.ErrCodeRefusedStream)
}

func TestMalformedRequestsReset(t *testing.T) {
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	rc := dialRaw(t, addr)
	rc.headers(1, true, append(get("/"), "X-Upper", "v")...)
	rc.expectRST(1, http2.ErrCodeProtocol)
	rc.headers(3, true, append(get("/"), "transfer-encoding", "chunked")...)
	rc.expectRST(3, http2.ErrCodeProtocol)
	rc.headers(5, false, "content-length", "10", ":method", "POST")
	rc.expectRST(5, http2.ErrCodeProtocol) // pseudo-header after a regular field
	rc.headers(7, false, ":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/", "content-length", "10")
	if err := rc.fr.WriteData(7, true, []byte("short")); err != nil {
		t.Fatal(err)
	}
	rc.expectRST(7, http2.ErrCodeProtocol)
	// The connection is still good.
	rc.headers(9, true, get("/")...)
	for {
		f := rc.next()
		if h, ok := f.(*http2.HeadersFrame); ok && h.StreamID == 9 {
			return
		}
		if f == nil {
			t.Fatal("connection ended after stream errors")
		}
	}
}

// TestContinuationFlood: a header block that never ends is cut once it
// outgrows the header limit, before it is decoded.
func TestContinuationFlood(t *testing.T) {
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		func(s *Server) { s.MaxHeaderBytes = 4 << 10 })
	rc := dialRaw(t, addr)
	if err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0x82}}); err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{0}, 1000)
	go func() {
		for range 100 {
			if rc.fr.WriteContinuation(1, false, chunk) != nil {
				return
			}
		}
	}()
	rc.expectGoAway(http2.ErrCodeEnhanceYourCalm)
}

// TestControlFrameFlood: a client that sends PINGs and never reads the
// answers is cut rather than queued for without bound.
func TestControlFrameFlood(t *testing.T) {
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	rc := dialRaw(t, addr)
	var data [8]byte
	var err error
	for i := 0; i < 2_000_000 && err == nil; i++ {
		err = rc.fr.WritePing(false, data)
	}
	if err == nil {
		t.Fatal("two million unread PINGs were accepted")
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server stopped reading instead of cutting the connection: %v", err)
	}
}

// TestPreface: bytes other than the client preface end the connection.
func TestPreface(t *testing.T) {
	s := &Server{Handler: http.NotFoundHandler(), Logger: slog.New(slog.DiscardHandler)}
	c := &memConn{in: bytes.NewReader([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))}
	if err := s.ServeConn(context.Background(), c); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("ServeConn = %v, want a preface error", err)
	}
}

// memConn is a net.Conn reading from in and discarding writes.
type memConn struct {
	in  io.Reader
	out bytes.Buffer
}

func (c *memConn) Read(p []byte) (int, error)       { return c.in.Read(p) }
func (c *memConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzServeConn feeds arbitrary frames after the preface: whatever they
// are, the connection ends without a panic and its handlers return.
func FuzzServeConn(f *testing.F) {
	var seed bytes.Buffer
	fr := http2.NewFramer(&seed, nil)
	_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "a"}, {":path", "/x"}, {"content-length", "3"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	_ = fr.WriteData(1, true, []byte("abc"))
	_ = fr.WritePing(false, [8]byte{1})
	_ = fr.WriteWindowUpdate(0, 100)
	_ = fr.WriteRSTStream(1, http2.ErrCodeCancel)
	f.Add(seed.Bytes())
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 5, 1, 4, 0, 0, 0, 3})
	f.Fuzz(func(t *testing.T, frames []byte) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Trailer", "X-T")
			w.Write(b)
			w.Header().Set("X-T", "t")
		})
		s := &Server{Handler: h, Logger: slog.New(slog.DiscardHandler)}
		if len(frames)%2 == 1 {
			// Half the inputs meet a StreamHandler, which declines
			// every other request and echoes the bodies of the others.
			s.Handler = directHandler{http: h, serve: func(r *Request) bool {
				if len(r.Fields)%2 == 1 {
					return false
				}
				_ = r.WriteHead(200, r.Fields, -1, false)
				_, _ = r.Write([]byte(r.Path))
				if r.Body != nil {
					r.SetBodyIdle(time.Second)
					b, _ := io.ReadAll(r.Body)
					_, _ = r.Write(b)
				}
				r.SetTrailers(r.Fields)
				return true
			}}
		}
		c := &memConn{in: io.MultiReader(bytes.NewReader([]byte(clientPreface)), bytes.NewReader(frames))}
		done := make(chan struct{})
		go func() { _ = s.ServeConn(context.Background(), c); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("ServeConn did not return after its input ended")
		}
	})
}

// TestHostField: a Host field that names another host than :authority
// makes the request malformed; one that agrees, or stands alone, is the
// request's Host and leaves the header.
func TestHostField(t *testing.T) {
	got := make(chan string, 2)
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Host + "|" + r.Header.Get("Host")
	}))
	rc := dialRaw(t, addr)
	rc.headers(1, true, ":method", "GET", ":scheme", "http", ":authority", "a.example", ":path", "/", "host", "b.example")
	rc.expectRST(1, http2.ErrCodeProtocol)
	rc.headers(3, true, ":method", "GET", ":scheme", "http", ":authority", "a.example", ":path", "/", "host", "A.example")
	if g := <-got; g != "a.example|" {
		t.Errorf("agreeing Host: handler saw %q", g)
	}
	rc.headers(5, true, ":method", "GET", ":scheme", "http", ":path", "/", "host", "c.example")
	if g := <-got; g != "c.example|" {
		t.Errorf("Host without :authority: handler saw %q", g)
	}
}
