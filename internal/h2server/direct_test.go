package h2server

import (
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// directHandler is a StreamHandler: serve answers the streams it is
// offered, unless it returns false; ServeHTTP gets the rest.
type directHandler struct {
	serve func(r *Request) bool
	http  http.HandlerFunc
}

func (h directHandler) ServeStream(r *Request) bool { return h.serve(r) }
func (h directHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.http(w, r)
}

// seenDirect is what ServeStream saw of a request.
type seenDirect struct {
	method, scheme, authority, path string
	fields                          []hpack.HeaderField
	body                            string
	length                          int64
	hasBody                         bool
}

// TestStreamHandlerOffers: requests reach ServeStream with their fields
// as documented (Host out, cookies joined, order kept), and their body
// when they have one; CONNECT and requests that expect 100-continue
// reach ServeHTTP.
func TestStreamHandlerOffers(t *testing.T) {
	seen := make(chan seenDirect, 4)
	viaHTTP := make(chan string, 4)
	_, addr := serve(t, directHandler{
		serve: func(r *Request) bool {
			sd := seenDirect{r.Method, r.Scheme, r.Authority, r.Path, append([]hpack.HeaderField(nil), r.Fields...), "", r.ContentLength, r.Body != nil}
			if r.Body != nil {
				b, err := io.ReadAll(r.Body)
				if err != nil {
					sd.body = "error: " + err.Error()
				} else {
					sd.body = string(b)
				}
			}
			seen <- sd
			return true
		},
		http: func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			viaHTTP <- r.Method
		},
	})
	rc := dialRaw(t, addr)
	rc.headers(1, true, ":method", "GET", ":scheme", "http", ":authority", "a.example", ":path", "/p?q=1",
		"cookie", "a=1", "x-one", "1", "host", "a.example", "cookie", "b=2", "te", "trailers", "x-one", "2")
	got := <-seen
	want := seenDirect{"GET", "http", "a.example", "/p?q=1", []hpack.HeaderField{
		{Name: "cookie", Value: "a=1; b=2"}, {Name: "x-one", Value: "1"}, {Name: "te", Value: "trailers"}, {Name: "x-one", Value: "2"},
	}, "", 0, false}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ServeStream saw %+v\nwant %+v", got, want)
	}
	rc.headers(3, true, ":method", "GET", ":scheme", "http", ":path", "/", "host", "b.example")
	if got := <-seen; got.authority != "b.example" || len(got.fields) != 0 {
		t.Errorf("Host without :authority: %+v", got)
	}
	rc.headers(5, false, ":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/", "content-length", "5")
	if err := rc.fr.WriteData(5, false, []byte("he")); err != nil {
		t.Fatal(err)
	}
	if err := rc.fr.WriteData(5, true, []byte("llo")); err != nil {
		t.Fatal(err)
	}
	if got := <-seen; got.method != "POST" || !got.hasBody || got.body != "hello" || got.length != 5 {
		t.Errorf("POST with a body: %+v", got)
	}
	rc.headers(7, false, ":method", "PUT", ":scheme", "http", ":authority", "a", ":path", "/")
	if err := rc.fr.WriteData(7, true, []byte("no length")); err != nil {
		t.Fatal(err)
	}
	if got := <-seen; !got.hasBody || got.body != "no length" || got.length != -1 {
		t.Errorf("PUT without content-length: %+v", got)
	}
	rc.headers(9, false, ":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/", "content-length", "5")
	if err := rc.fr.WriteData(9, true, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if got := <-seen; !strings.HasPrefix(got.body, "error: ") {
		t.Errorf("a body shorter than content-length read without error: %+v", got)
	}
	rc.headers(11, false, ":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/", "expect", "100-continue")
	if err := rc.fr.WriteData(11, true, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if m := <-viaHTTP; m != "POST" {
		t.Errorf("ServeHTTP got %s", m)
	}
	rc.headers(13, true, ":method", "CONNECT", ":authority", "a:443")
	if m := <-viaHTTP; m != "CONNECT" {
		t.Errorf("ServeHTTP got %s", m)
	}
	select {
	case s := <-seen:
		t.Errorf("ServeStream was offered %+v", s)
	default:
	}
}

// TestStreamHandlerDecline: a request ServeStream declines reaches
// ServeHTTP as a server with a plain Handler gives it.
func TestStreamHandlerDecline(t *testing.T) {
	type view struct {
		Method, Host, RequestURI, Path, RawQuery, Proto string
		Header                                          http.Header
		ContentLength                                   int64
		NoBody, HasContext                              bool
	}
	see := func(r *http.Request) view {
		return view{r.Method, r.Host, r.RequestURI, r.URL.Path, r.URL.RawQuery, r.Proto, r.Header, r.ContentLength,
			r.Body == http.NoBody, r.Context().Done() != nil}
	}
	got := make(chan view, 2)
	h := func(w http.ResponseWriter, r *http.Request) {
		got <- see(r)
		w.Header().Set("X-Via", "http")
	}
	_, direct := serve(t, directHandler{serve: func(*Request) bool { return false }, http: h})
	_, plain := serve(t, http.HandlerFunc(h))
	var views [2]view
	for i, addr := range []string{direct, plain} {
		rc := dialRaw(t, addr)
		rc.headers(1, true, ":method", "GET", ":scheme", "http", ":authority", "a.example", ":path", "/a%20b?x=%2F",
			"cookie", "a=1", "cookie", "b=2", "x-custom", "v", "content-length", "0")
		views[i] = <-got
		for {
			f := rc.next()
			if f == nil {
				t.Fatal("no response")
			}
			if hf, ok := f.(*http2.HeadersFrame); ok && hf.StreamID == 1 {
				break
			}
		}
	}
	if !reflect.DeepEqual(views[0], views[1]) {
		t.Errorf("declined request %+v\nplain handler's %+v", views[0], views[1])
	}
	if views[0].Header.Get("Cookie") != "a=1; b=2" || views[0].Path != "/a b" || !views[0].HasContext {
		t.Errorf("declined request %+v", views[0])
	}
}

// TestStreamHandlerResponse: WriteHead, Write and SetTrailers answer the
// request; fields HTTP/2 forbids and invalid ones are dropped, names
// lower-cased, a date added when there is none.
func TestStreamHandlerResponse(t *testing.T) {
	_, addr := serve(t, directHandler{
		serve: func(r *Request) bool {
			switch r.Path {
			case "/head":
				_ = r.WriteHead(204, []hpack.HeaderField{{Name: "date", Value: "Mon, 02 Jan 2006 15:04:05 GMT"}}, -1, true)
			default:
				err := r.WriteHead(200, []hpack.HeaderField{
					{Name: "content-type", Value: "text/plain"},
					{Name: "connection", Value: "close"},
					{Name: "bad name", Value: "x"},
					{Name: "X-Up", Value: "v"},
					{Name: "x-bad-value", Value: "a\r\nb"},
					{Name: "trailer", Value: "X-Sum"},
				}, -1, false)
				if err != nil {
					t.Error(err)
				}
				if err := r.WriteHead(500, nil, -1, true); err == nil {
					t.Error("a second WriteHead was taken")
				}
				r.Write([]byte("hello "))
				r.Flush()
				r.Write([]byte("world"))
				r.SetTrailers([]hpack.HeaderField{{Name: "X-Sum", Value: "11"}})
			}
			return true
		},
		http: func(w http.ResponseWriter, r *http.Request) { t.Error("ServeHTTP called") },
	})
	c := h2cClient(t)
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "hello world" || resp.StatusCode != 200 {
		t.Fatalf("%d %q %v", resp.StatusCode, body, err)
	}
	h := resp.Header
	if h.Get("Content-Type") != "text/plain" || h.Get("X-Up") != "v" || h.Get("Date") == "" ||
		h.Get("Connection") != "" || h.Get("X-Bad-Value") != "" || len(h) != 3 { // Trailer goes to resp.Trailer
		t.Errorf("header %v", h)
	}
	if resp.Trailer.Get("X-Sum") != "11" {
		t.Errorf("trailer %v", resp.Trailer)
	}
	resp, err = c.Get("http://" + addr + "/head")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Date") != "Mon, 02 Jan 2006 15:04:05 GMT" {
		t.Errorf("%d %v", resp.StatusCode, resp.Header)
	}
}

// closeRecorder is an io.Closer that counts its closes.
type closeRecorder struct {
	mu     sync.Mutex
	closes int
	cut    chan struct{}
}

func (c *closeRecorder) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closes++; c.closes == 1 {
		close(c.cut)
	}
	return nil
}

// TestStreamHandlerWatch: a stream the client resets closes what its
// handler watches; once reset, Watch watches nothing and says so; a
// stream that ends normally closes nothing.
func TestStreamHandlerWatch(t *testing.T) {
	d := &closeRecorder{cut: make(chan struct{})}
	kept := &closeRecorder{cut: make(chan struct{})}
	after := make(chan bool, 1)
	_, addr := serve(t, directHandler{
		serve: func(r *Request) bool {
			if r.Path == "/kept" {
				if !r.Watch(kept) || !r.Watch(nil) {
					t.Error("Watch refused on a live stream")
				}
				_ = r.WriteHead(204, nil, -1, true)
				return true
			}
			if !r.Watch(d) {
				t.Error("Watch refused on a live stream")
			}
			<-d.cut
			after <- r.Watch(&closeRecorder{cut: make(chan struct{})})
			return true
		},
		http: func(w http.ResponseWriter, r *http.Request) {},
	})
	rc := dialRaw(t, addr)
	rc.headers(1, true, get("/")...)
	time.Sleep(10 * time.Millisecond) // let the handler start watching; the test holds either way
	if err := rc.fr.WriteRSTStream(1, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	select {
	case ok := <-after:
		if ok {
			t.Error("Watch took a reset stream")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reset did not close the watched connection")
	}
	rc.headers(3, true, get("/kept")...)
	for {
		f := rc.next()
		if f == nil {
			t.Fatal("no answer")
		}
		if h, ok := f.(*http2.HeadersFrame); ok && h.StreamID == 3 {
			break
		}
	}
	if err := rc.fr.WriteRSTStream(3, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	rc.headers(5, true, get("/kept")...) // a round trip after the reset
	for {
		f := rc.next()
		if f == nil {
			t.Fatal("no answer")
		}
		if h, ok := f.(*http2.HeadersFrame); ok && h.StreamID == 5 {
			break
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	kept.mu.Lock()
	defer kept.mu.Unlock()
	if d.closes != 1 || kept.closes != 0 {
		t.Errorf("closes: reset stream's %d, unwatched stream's %d", d.closes, kept.closes)
	}
}

// TestStreamHandlerMalformed: the direct path's requests pass the same
// checks (RFC 9113 §8.2–8.3) as ServeHTTP's.
func TestStreamHandlerMalformed(t *testing.T) {
	_, addr := serve(t, directHandler{
		serve: func(r *Request) bool {
			_ = r.WriteHead(200, nil, 0, true)
			return true
		},
		http: func(w http.ResponseWriter, r *http.Request) {},
	})
	rc := dialRaw(t, addr)
	for i, fields := range [][]string{
		append(get("/"), "X-Upper", "v"),
		append(get("/"), "connection", "close"),
		append(get("/"), "te", "gzip"),
		append(get("/"), "content-length", "1"),
		append(get("/"), "host", "other"),
		get("/a%zz"),
		get("a"),
		{":method", "GET", ":authority", "a", ":path", "/"},
	} {
		id := uint32(2*i + 1)
		rc.headers(id, true, fields...)
		rc.expectRST(id, http2.ErrCodeProtocol)
	}
	rc.headers(99, true, get("/%41")...)
	for {
		f := rc.next()
		if f == nil {
			t.Fatal("connection ended")
		}
		if h, ok := f.(*http2.HeadersFrame); ok && h.StreamID == 99 {
			return
		}
		if r, ok := f.(*http2.RSTStreamFrame); ok && r.StreamID == 99 {
			t.Fatalf("a valid escape was refused: %v", r.ErrCode)
		}
	}
}

// TestStreamHandlerDeclineBody: a request with a body that ServeStream
// declines reaches ServeHTTP with its whole body, its length and the
// trailers it declared, including the DATA that came while it was
// offered.
func TestStreamHandlerDeclineBody(t *testing.T) {
	offered := make(chan struct{})
	release := make(chan struct{})
	type view struct {
		body    string
		length  int64
		trailer string
	}
	got := make(chan view, 1)
	_, addr := serve(t, directHandler{
		serve: func(r *Request) bool {
			close(offered)
			<-release // DATA arrives meanwhile
			return false
		},
		http: func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got <- view{string(b), r.ContentLength, r.Trailer.Get("X-Sum")}
		},
	})
	rc := dialRaw(t, addr)
	rc.headers(1, false, ":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/",
		"content-length", "11", "trailer", "x-sum")
	<-offered
	if err := rc.fr.WriteData(1, false, []byte("hello ")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	if err := rc.fr.WriteData(1, false, []byte("world")); err != nil {
		t.Fatal(err)
	}
	rc.headers(1, true, "x-sum", "11")
	select {
	case v := <-got:
		if v != (view{"hello world", 11, "11"}) {
			t.Errorf("ServeHTTP got %+v", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeHTTP never got the request")
	}
}

// TestStreamHandlerBodyIdle: SetBodyIdle bounds each wait for DATA, not
// the whole body: a body that trickles in with gaps shorter than the
// bound reads whole; one that stops fails with ErrBodyIdle.
func TestStreamHandlerBodyIdle(t *testing.T) {
	type result struct {
		body    string
		err     error
		elapsed time.Duration
	}
	got := make(chan result, 2)
	_, addr := serve(t, directHandler{
		serve: func(r *Request) bool {
			r.SetBodyIdle(200 * time.Millisecond)
			start := time.Now()
			b, err := io.ReadAll(r.Body)
			got <- result{string(b), err, time.Since(start)}
			return true
		},
	})
	rc := dialRaw(t, addr)
	rc.headers(1, false, ":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/")
	for i, part := range []string{"tr", "ick", "le"} {
		if i > 0 {
			time.Sleep(120 * time.Millisecond)
		}
		if err := rc.fr.WriteData(1, i == 2, []byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	if r := <-got; r.err != nil || r.body != "trickle" {
		t.Errorf("trickling body: %q, %v", r.body, r.err)
	}
	rc.headers(3, false, ":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/")
	if err := rc.fr.WriteData(3, false, []byte("half")); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if !errors.Is(r.err, ErrBodyIdle) || r.body != "half" {
		t.Errorf("stalled body: %q, %v; want what came and ErrBodyIdle", r.body, r.err)
	}
	if r.elapsed < 200*time.Millisecond || r.elapsed > 2*time.Second {
		t.Errorf("stalled body failed after %v, want about 200ms", r.elapsed)
	}
}

// TestBodyIdleHeldBack: a body wait does not time out while the client
// cannot send because this server's connection window is used up by
// other streams' unread DATA; it does once the window is open again and
// the client still sends nothing.
func TestBodyIdleHeldBack(t *testing.T) {
	release := make(chan struct{})
	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	_, addr := serve(t, directHandler{
		serve: func(r *Request) bool {
			if r.Path == "/fill" {
				<-release // reads nothing until released
				_, _ = io.Copy(io.Discard, r.Body)
				return true
			}
			r.SetBodyIdle(100 * time.Millisecond)
			b, err := io.ReadAll(r.Body)
			got <- result{string(b), err}
			return true
		},
	})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open) // before the server's: a failure must not leave handlers blocked
	rc := dialRaw(t, addr)
	chunk := make([]byte, defaultFrameSize)
	// Four streams of 1 MiB (each stream's window) fill the 4 MiB
	// connection window.
	for id := uint32(1); id <= 7; id += 2 {
		rc.headers(id, false, ":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/fill")
		for n := 0; n < streamRecvWindow; n += len(chunk) {
			if err := rc.fr.WriteData(id, false, chunk); err != nil {
				t.Fatal(err)
			}
		}
	}
	rc.headers(9, false, ":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/held")
	select {
	case r := <-got:
		t.Fatalf("a body held back by the connection window ended after its idle bound: %q, %v", r.body, r.err)
	case <-time.After(500 * time.Millisecond):
	}
	open() // the window comes back; the client now sends, then stops
	// The connection's first WINDOW_UPDATE is the server's opening one;
	// the next gives back what the released handlers read.
	for updates := 0; updates < 2; {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if wu, ok := f.(*http2.WindowUpdateFrame); ok && wu.StreamID == 0 {
			updates++
		}
	}
	if err := rc.fr.WriteData(9, false, []byte("late")); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if !errors.Is(r.err, ErrBodyIdle) || r.body != "late" {
			t.Errorf("after the window reopened: %q, %v; want what came and ErrBodyIdle", r.body, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the body wait never ended once the client could send")
	}
}

// TestStreamHandlerBodyCloseWakesRead: a body read waiting for DATA on
// another goroutine returns once the handler closes the body (the
// gateway cuts a streamed body that way once its answer has ended).
func TestStreamHandlerBodyCloseWakesRead(t *testing.T) {
	got := make(chan error, 1)
	_, addr := serve(t, directHandler{
		serve: func(r *Request) bool {
			read := make(chan error, 1)
			go func() {
				_, err := io.ReadAll(r.Body)
				read <- err
			}()
			time.Sleep(100 * time.Millisecond) // the read waits for DATA
			_ = r.Body.Close()
			select {
			case err := <-read:
				got <- err
			case <-time.After(5 * time.Second):
				got <- errors.New("the read still waits after Close")
			}
			_ = r.WriteHead(200, nil, 0, true)
			return true
		},
	})
	rc := dialRaw(t, addr)
	rc.headers(1, false, ":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/")
	if err := rc.fr.WriteData(1, false, []byte("part")); err != nil {
		t.Fatal(err)
	}
	if err := <-got; !errors.Is(err, http.ErrBodyReadAfterClose) {
		t.Fatalf("read after Close: %v, want http.ErrBodyReadAfterClose", err)
	}
}
