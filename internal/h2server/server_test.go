package h2server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
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

// serve runs a Server with h on a loopback listener until the test ends.
func serve(t testing.TB, h http.Handler, opts ...func(*Server)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h, Logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(s)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); _ = s.ServeConn(context.Background(), c) }()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		wg.Wait()
	})
	return s, ln.Addr().String()
}

// h2cClient speaks HTTP/2 with prior knowledge, as net/http's client does.
func h2cClient(t testing.TB) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// drainGet GETs url and reads the answer to its end.
func drainGet(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return err
}

func TestRequestAndResponse(t *testing.T) {
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 || r.Host != "svc.example" || r.URL.Path != "/a/b" || r.URL.RawQuery != "q=1" {
			http.Error(w, fmt.Sprintf("got %s %s %s", r.Proto, r.Host, r.URL), 400)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Echo", r.Header.Get("X-In"))
		w.Header()["Connection"] = []string{"close"} // forbidden in HTTP/2: dropped
		io.WriteString(w, "hello")
	}))
	req, _ := http.NewRequest("GET", "http://"+addr+"/a/b?q=1", nil)
	req.Host = "svc.example"
	req.Header.Set("X-In", "v1")
	resp, err := h2cClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello" || resp.ProtoMajor != 2 {
		t.Fatalf("%s %d %q", resp.Proto, resp.StatusCode, body)
	}
	if resp.Header.Get("X-Echo") != "v1" || resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("Date") == "" {
		t.Errorf("headers %v", resp.Header)
	}
	if _, ok := resp.Header["Connection"]; ok {
		t.Error("connection-specific header sent")
	}
}

// TestLargeBodies moves bodies far larger than the flow-control windows
// both ways: the server must give window back as its handler reads, and
// wait for the client's window updates as it writes.
func TestLargeBodies(t *testing.T) {
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("X-Sum", fmt.Sprintf("%x", h.Sum(nil)))
		w.Header().Set("X-Len", fmt.Sprint(n))
		chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
		for range 96 {                                          // 6 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	up := bytes.Repeat([]byte("upload-"), 1<<20) // 7 MiB
	sum := sha256.Sum256(up)
	c := h2cClient(t)
	var wg sync.WaitGroup
	for range 3 { // concurrent streams share the connection's windows
		wg.Go(func() {
			resp, err := c.Post("http://"+addr+"/", "application/octet-stream", bytes.NewReader(up))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			n, err := io.Copy(io.Discard, resp.Body)
			if err != nil || n != 6<<20 {
				t.Errorf("response body: %d bytes, %v", n, err)
			}
			if resp.Header.Get("X-Sum") != fmt.Sprintf("%x", sum) || resp.Header.Get("X-Len") != fmt.Sprint(len(up)) {
				t.Errorf("request body arrived as %s bytes, sum %s", resp.Header.Get("X-Len"), resp.Header.Get("X-Sum"))
			}
		})
	}
	wg.Wait()
}

func TestTrailers(t *testing.T) {
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Trailer", "X-Declared")
		io.WriteString(w, "body")
		w.Header().Set("X-Declared", "d-"+r.Trailer.Get("X-Req-Trailer"))
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
	}))
	req, _ := http.NewRequest("POST", "http://"+addr+"/", io.MultiReader(strings.NewReader("abc")))
	req.Trailer = http.Header{"X-Req-Trailer": nil}
	req.Body = &trailerBody{r: strings.NewReader("abc"), set: func() { req.Trailer.Set("X-Req-Trailer", "rt") }}
	resp, err := h2cClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "body" {
		t.Fatalf("body %q", body)
	}
	if resp.Trailer.Get("X-Declared") != "d-rt" || resp.Trailer.Get("Grpc-Status") != "0" {
		t.Errorf("trailers %v", resp.Trailer)
	}
}

// trailerBody sets the request's trailers when its body ends, as a
// streaming client does.
type trailerBody struct {
	r   io.Reader
	set func()
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.set()
	}
	return n, err
}
func (b *trailerBody) Close() error { return nil }

// TestManyStreams runs many concurrent requests over one connection.
func TestManyStreams(t *testing.T) {
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	c := h2cClient(t)
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Go(func() {
			resp, err := c.Get(fmt.Sprintf("http://%s/%d", addr, i))
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != fmt.Sprintf("/%d", i) {
				t.Errorf("stream %d got %q", i, b)
			}
		})
	}
	wg.Wait()
}

// TestHandlerPanic: a panicking handler resets its stream only; the
// connection serves on.
func TestHandlerPanic(t *testing.T) {
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		io.WriteString(w, "ok")
	}))
	c := h2cClient(t)
	if resp, err := c.Get("http://" + addr + "/panic"); err == nil {
		resp.Body.Close()
		t.Fatalf("panicking handler answered %d", resp.StatusCode)
	}
	resp, err := c.Get("http://" + addr + "/fine")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("%q", b)
	}
}

// TestClientCancel: a request the client gives up on cancels the
// handler's context.
func TestClientCancel(t *testing.T) {
	cancelled := make(chan struct{})
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(cancelled)
	}))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
	resp, err := h2cClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	<-cancelled // the test times out if the handler is never told
}

// TestShutdownLetsStreamsFinish: Shutdown sends GOAWAY, the stream in
// flight completes, and Shutdown returns once it has.
func TestShutdownLetsStreamsFinish(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	s, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	}))
	c := h2cClient(t)
	got := make(chan string, 1)
	go func() {
		resp, err := c.Get("http://" + addr + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a stream in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if b := <-got; b != "finished" {
		t.Fatalf("in-flight request got %q", b)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestIdleTimeout: a connection without streams for IdleTimeout gets a
// GOAWAY and is closed; one with a stream in flight is not.
func TestIdleTimeout(t *testing.T) {
	release := make(chan struct{})
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "ok")
	}), func(s *Server) { s.IdleTimeout = 50 * time.Millisecond })
	rc := dialRaw(t, addr)
	rc.headers(1, true, get("/slow")...)
	// The stream outlives many idle periods and still gets its answer.
	time.Sleep(200 * time.Millisecond)
	close(release)
	for {
		f := rc.next()
		if f == nil {
			t.Fatal("connection closed with a stream in flight")
		}
		if _, ok := f.(*http2.GoAwayFrame); ok {
			t.Fatal("GOAWAY with a stream in flight")
		}
		if d, ok := f.(*http2.DataFrame); ok && d.StreamEnded() {
			break
		}
	}
	// Now idle: GOAWAY, then the end of the connection.
	rc.expectGoAway(http2.ErrCodeNo)
	if f := rc.next(); f != nil {
		t.Fatalf("after GOAWAY: %T, want the connection closed", f)
	}
}

// TestPrefaceTimeout: a client that connects and sends nothing is closed.
func TestPrefaceTimeout(t *testing.T) {
	_, addr := serve(t, http.NotFoundHandler(), func(s *Server) { s.PrefaceTimeout = 50 * time.Millisecond })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second)) // only a hang guard
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a server waiting for the preface", n)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server kept a silent client past PrefaceTimeout")
	}
}
