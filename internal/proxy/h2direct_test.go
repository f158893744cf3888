package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/snapshot"
	"github.com/trellis-mesh/trellis/internal/testnet"
)

// h2Answers are raw target responses by request path (/r/<name>).
var h2Answers = map[string]string{
	"cl": "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-Multi: a\r\nX-Multi: b\r\n\r\nhello",
	"chunked": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
		"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n",
	"close": "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close",
	"hop": "HTTP/1.1 201 Created\r\nConnection: X-Hop, keep-alive\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\n" +
		"X-Kept: yes\r\nContent-Length: 0\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\n\r\n",
	"204":    "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
	"304":    "HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\n\r\n",
	"1xx":    "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"head":   "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
	"both":   "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"short":  "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
	"none":   "",
	"upper":  "HTTP/1.1 200 OK\r\nX-UPPER-Case: v\r\nContent-Length: 0\r\n\r\n",
	"sse":    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\n",
	"upgrd":  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
	"bad":    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBad Field: x\r\n\r\nok",
	"stream": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npart\r\n",
	"dupcl":  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
	"trnock": "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nContent-Length: 2\r\n\r\nok",
}

// seenRequest is a request as the target parsed it.
type seenRequest struct {
	Method, URI, Host string
	Header            http.Header
}

// h2Outcome is what a client got, and what the target saw.
type h2Outcome struct {
	Status         int
	Header         http.Header
	Body, Trailer  string
	Err            bool
	Seen           *seenRequest
	Failure, Proto string
}

// h2Target serves h2Answers and keeps the requests it parsed by path.
func h2Target(t *testing.T) (addr string, seen func(path string) *seenRequest) {
	var mu sync.Mutex
	got := map[string]*seenRequest{}
	addr, _ = testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			mu.Lock()
			got[req.URL.Path] = &seenRequest{req.Method, req.RequestURI, req.Host, req.Header}
			mu.Unlock()
			answer := h2Answers[strings.TrimPrefix(req.URL.Path, "/r/")]
			if answer == "" {
				return
			}
			if _, err := io.WriteString(c, answer); err != nil {
				return
			}
			if strings.Contains(answer, "Connection: close") || strings.Contains(answer, "event-stream") ||
				strings.HasSuffix(answer, "short") || strings.HasSuffix(answer, "part\r\n") {
				return
			}
		}
	})
	return addr, func(path string) *seenRequest {
		mu.Lock()
		defer mu.Unlock()
		return got[path]
	}
}

// h2Requests are the requests of the parity test.
var h2Requests = []struct{ method, name string }{
	{"GET", "cl"}, {"GET", "chunked"}, {"GET", "close"}, {"GET", "hop"}, {"GET", "204"}, {"GET", "304"},
	{"GET", "1xx"}, {"HEAD", "head"}, {"GET", "both"}, {"GET", "short"}, {"GET", "none"}, {"GET", "upper"},
	{"GET", "sse"}, {"POST", "cl"}, {"DELETE", "cl"}, {"GET", "upgrd"}, {"GET", "bad"}, {"GET", "stream"},
	{"GET", "dupcl"}, {"GET", "trnock"},
}

// runH2 sends h2Requests over h2c to a gateway with the direct path on or
// off and returns what each got.
func runH2(t *testing.T, direct bool) []h2Outcome {
	target, seen := h2Target(t)
	rec := &recorder{}
	port := h2Service(t, direct, target, Config{Observer: rec})
	tr := &http.Transport{DialContext: dialTo(port), Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var out []h2Outcome
	for i, r := range h2Requests {
		path := fmt.Sprintf("/r/%s", r.name)
		req, _ := http.NewRequest(r.method, "http://svc-1.example.on.aws"+path+"?q=1&r=%2F", nil)
		req.Header = http.Header{
			"X-Custom":                {"kept", "twice"},
			"X-Amzn-Lattice-Identity": {"Principal=spoofed"},
			"X_amzn_lattice_network":  {"spoofed"},
			"X-Forwarded-For":         {"6.6.6.6"},
			"Content_length":          {"5"},
			"Transfer_encoding":       {"chunked"},
			"Cookie":                  {"a=1; b=2"},
			"Te":                      {"trailers"},
			"Proxy-Authorization":     {"Basic c2VjcmV0"},
			"Trailer":                 {"X-Nothing"},
			"User-Agent":              {[]string{"agent/1", ""}[i%2]},
		}
		var o h2Outcome
		resp, err := c.Do(req)
		if err != nil {
			o.Err = true
		} else {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			o.Status, o.Header, o.Body, o.Err = resp.StatusCode, resp.Header, string(b), err != nil
			if o.Header.Get("Date") != "" && !strings.Contains(h2Answers[r.name], "Date:") {
				o.Header.Del("Date") // the gateway's clock
			}
			o.Trailer = resp.Trailer.Get("X-Sum")
		}
		o.Seen = seen(path)
		if o.Seen != nil {
			// The one field that differs between the two gateways.
			if got := o.Seen.Header.Get("X-Forwarded-Port"); got != fmt.Sprint(port) {
				t.Errorf("%s: X-Forwarded-Port %q, want %d", r.name, got, port)
			}
			o.Seen.Header.Del("X-Forwarded-Port")
		}
		waitFor(t, "the record", func() bool { return len(rec.all()) == i+1 })
		last := rec.all()[i]
		o.Failure, o.Proto = last.FailureReason, last.Proto
		out = append(out, o)
	}
	return out
}

// TestH2DirectParity sends the same requests through the direct path and
// through ServeHTTP: the clients get the same answers and the target the
// same requests; and both are right.
func TestH2DirectParity(t *testing.T) {
	direct, nethttp := runH2(t, true), runH2(t, false)
	for i, r := range h2Requests {
		d, n := direct[i], nethttp[i]
		if r.name == "bad" {
			// A field name with a space: net/http's client drops the
			// field, h1wire refuses the response, as the HTTP/1 fast path
			// does (502, below).
			continue
		}
		if !reflect.DeepEqual(d, n) {
			t.Errorf("%s %s: direct path and ServeHTTP differ:\n direct  %+v %+v\n nethttp %+v %+v", r.method, r.name, d, d.Seen, n, n.Seen)
		}
	}
	get := func(name string) h2Outcome {
		for i, r := range h2Requests {
			if r.name == name {
				return direct[i]
			}
		}
		t.Fatalf("no request %s", name)
		return h2Outcome{}
	}
	cl := get("cl")
	if cl.Status != 200 || cl.Body != "hello" || !reflect.DeepEqual(cl.Header["X-Multi"], []string{"a", "b"}) || cl.Proto != "HTTP/2.0" {
		t.Errorf("cl: %+v", cl)
	}
	h := cl.Seen.Header
	if cl.Seen.URI != "/r/cl?q=1&r=%2F" || cl.Seen.Host != "svc-1.example.on.aws" {
		t.Errorf("target saw %s host %s", cl.Seen.URI, cl.Seen.Host)
	}
	for k, want := range map[string][]string{
		"X-Custom":        {"kept", "twice"},
		"Cookie":          {"a=1; b=2"},
		"Te":              {"trailers"},
		"X-Forwarded-For": {"127.0.0.1"},
		"User-Agent":      {"agent/1"},
	} {
		if !reflect.DeepEqual(h[k], want) {
			t.Errorf("target saw %s %q, want %q", k, h[k], want)
		}
	}
	for _, k := range []string{"X-Amzn-Lattice-Identity", "X_amzn_lattice_network", "Content_length", "Transfer_encoding", "Proxy-Authorization", "Trailer", "Content-Length"} {
		if v, ok := h[k]; ok {
			t.Errorf("target saw %s %q", k, v)
		}
	}
	if _, ok := get("chunked").Seen.Header["User-Agent"]; ok {
		t.Error("an empty User-Agent was sent")
	}
	for _, c := range []struct {
		name, body, trailer string
		status              int
		err                 bool
	}{
		{"chunked", "abcde", "5", 200, false},
		{"close", "until close", "", 200, false},
		{"hop", "", "", 201, false},
		{"204", "", "", 204, false},
		{"304", "", "", 304, false},
		{"1xx", "ok", "", 200, false},
		{"head", "", "", 200, false},
		{"both", "hi", "", 200, false},
		{"short", "", "", 0, true},
		{"none", "", "", 502, false},
		{"upgrd", "", "", 502, false},
		{"bad", "", "", 502, false},
		{"sse", "data: 1\n\n", "", 200, false},
		{"stream", "", "", 0, true},
	} {
		o := get(c.name)
		if c.err {
			if !o.Err {
				t.Errorf("%s: no error: %+v", c.name, o)
			}
			continue
		}
		if c.status == 502 {
			c.body = errTargetConnect.body
		}
		if o.Err || o.Status != c.status || o.Body != c.body || o.Trailer != c.trailer {
			t.Errorf("%s: %+v, want %d %q trailer %q", c.name, o, c.status, c.body, c.trailer)
		}
	}
	if h := get("dupcl").Header; !reflect.DeepEqual(h["Content-Length"], []string{"2"}) {
		t.Errorf("repeated Content-Length: %q", h["Content-Length"])
	}
	if h := get("trnock").Header; h["Trailer"] != nil {
		t.Errorf("Trailer announced without a chunked body: %q", h["Trailer"])
	}
	hop := get("hop").Header
	if hop.Get("X-Kept") != "yes" || hop.Get("X-Hop") != "" || hop.Get("Keep-Alive") != "" || hop.Get("Date") != "Mon, 02 Jan 2006 15:04:05 GMT" {
		t.Errorf("hop header %v", hop)
	}
	if got := get("head").Header.Get("Content-Length"); got != "10" {
		t.Errorf("HEAD: Content-Length %q", got)
	}
	if got := get("upper").Header.Get("X-Upper-Case"); got != "v" {
		t.Errorf("upper: %q", got)
	}
	for i, r := range h2Requests {
		if r.method == "POST" && !reflect.DeepEqual(direct[i].Seen.Header["Content-Length"], []string{"0"}) {
			t.Errorf("POST without body: target saw Content-Length %q", direct[i].Seen.Header["Content-Length"])
		}
	}
}

// TestH2ClientResetCutsTarget: a client that resets its stream while the
// target has not answered gets the target's connection closed (not kept
// waiting, not pooled), on both paths.
func TestH2ClientResetCutsTarget(t *testing.T) {
	for _, direct := range []bool{true, false} {
		t.Run(fmt.Sprint("direct=", direct), func(t *testing.T) {
			got := make(chan struct{}, 1)
			gone := make(chan struct{}, 1)
			target, _ := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				got <- struct{}{}
				_, _ = br.ReadByte() // until the gateway closes the connection
				gone <- struct{}{}
			})
			rec := &recorder{}
			port := h2Service(t, direct, target, Config{Observer: rec})
			tr := &http.Transport{DialContext: dialTo(port), Protocols: new(http.Protocols)}
			tr.Protocols.SetUnencryptedHTTP2(true)
			defer tr.CloseIdleConnections()
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://svc-1.example.on.aws/slow", nil)
			errc := make(chan error, 1)
			go func() {
				resp, err := tr.RoundTrip(req)
				if err == nil {
					resp.Body.Close()
				}
				errc <- err
			}()
			<-got
			cancel()
			if err := <-errc; err == nil {
				t.Fatal("the request succeeded")
			}
			select {
			case <-gone:
			case <-time.After(10 * time.Second):
				t.Fatal("the target's connection stayed open after the client reset its stream")
			}
			waitFor(t, "the record", func() bool { return len(rec.all()) == 1 })
			if r := rec.all()[0]; r.FailureReason != errClientGone.reason {
				t.Errorf("failure %q, want %q", r.FailureReason, errClientGone.reason)
			}
		})
	}
}

// TestH2DirectAllocations: the direct path serves an HTTP/2 request with
// far fewer allocations than ServeHTTP (client and target included in
// both counts), which shows it is the path taken.
func TestH2DirectAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	target := rawBackend(t)
	var allocs [2]float64
	for i, direct := range []bool{true, false} {
		port := h2Service(t, direct, target, Config{})
		tr := &http.Transport{DialContext: dialTo(port), Protocols: new(http.Protocols)}
		tr.Protocols.SetUnencryptedHTTP2(true)
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		get := func() {
			resp, err := c.Get("http://svc-1.example.on.aws/x")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		get()
		allocs[i] = testing.AllocsPerRun(200, get)
	}
	t.Logf("allocations per request: direct %.0f, ServeHTTP %.0f", allocs[0], allocs[1])
	if allocs[1]-allocs[0] < 15 {
		t.Errorf("direct path %.0f allocations per request, ServeHTTP %.0f: want at least 15 fewer", allocs[0], allocs[1])
	}
}

// rawH2 is a bare HTTP/2 client connection to the gateway (h2c, prior
// knowledge), for field lists and resets net/http's client does not
// send; a goroutine reads and drops the gateway's frames, acknowledging
// its SETTINGS.
type rawH2 struct {
	mu  sync.Mutex
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
}

func dialRawH2(t *testing.T, port int32) *rawH2 {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	rc := &rawH2{fr: http2.NewFramer(c, c)}
	rc.enc = hpack.NewEncoder(&rc.buf)
	if err := rc.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	go func() {
		rd := http2.NewFramer(io.Discard, c)
		for {
			f, err := rd.ReadFrame()
			if err != nil {
				return
			}
			if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
				rc.mu.Lock()
				_ = rc.fr.WriteSettingsAck()
				rc.mu.Unlock()
			}
		}
	}()
	return rc
}

// get sends a GET for path on stream id, with extra fields (name, value
// pairs).
func (rc *rawH2) get(id uint32, path string, fields ...string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.buf.Reset()
	fields = append([]string{":method", "GET", ":scheme", "http", ":authority", "svc-1.example.on.aws", ":path", path}, fields...)
	for i := 0; i < len(fields); i += 2 {
		_ = rc.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	_ = rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.buf.Bytes(), EndStream: true, EndHeaders: true})
}

// post opens a POST for path on stream id, with extra fields, its body
// to come (data).
func (rc *rawH2) post(id uint32, path string, fields ...string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.buf.Reset()
	fields = append([]string{":method", "POST", ":scheme", "http", ":authority", "svc-1.example.on.aws", ":path", path}, fields...)
	for i := 0; i < len(fields); i += 2 {
		_ = rc.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	_ = rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.buf.Bytes(), EndHeaders: true})
}

// data sends body bytes on stream id.
func (rc *rawH2) data(id uint32, end bool, p []byte) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	_ = rc.fr.WriteData(id, end, p)
}

// h2cTransport is a client transport speaking h2c (prior knowledge) to
// the gateway's port, closed with the test.
func h2cTransport(t *testing.T, port int32) *http.Transport {
	tr := &http.Transport{DialContext: dialTo(port), Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func (rc *rawH2) reset(id uint32) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	_ = rc.fr.WriteRSTStream(id, http2.ErrCodeCancel)
}

// h2Service is a gateway with one HTTP1 group on target, the direct path
// on or off.
func h2Service(t *testing.T, direct bool, target string, cfg Config) int32 {
	port := freePort(t)
	e := newEngine(t, cfg)
	e.h2direct = direct
	mustApply(t, e, testSnapshot(1,
		[]snapshot.Service{testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg", 1}))))},
		testTG("tg", model.ProtocolHTTP, "", target)))
	return port
}

// TestH2DirectRepeatedFields: field lists net/http's client never sends
// (a bare '?', repeated user-agent and te) reach the target as ServeHTTP
// sends them.
func TestH2DirectRepeatedFields(t *testing.T) {
	var seen [2]*seenRequest
	for i, direct := range []bool{true, false} {
		target, got := h2Target(t)
		rc := dialRawH2(t, h2Service(t, direct, target, Config{}))
		rc.get(1, "/r/cl?", "user-agent", "", "user-agent", "b", "te", "trailers", "te", "trailers")
		waitFor(t, "the request at the target", func() bool { return got("/r/cl") != nil })
		seen[i] = got("/r/cl")
		seen[i].Header.Del("X-Forwarded-Port")
	}
	if !reflect.DeepEqual(seen[0], seen[1]) {
		t.Errorf("direct path sent %+v\nServeHTTP %+v", seen[0], seen[1])
	}
	if s := seen[0]; s.URI != "/r/cl" || s.Header["User-Agent"] != nil || !reflect.DeepEqual(s.Header["Te"], []string{"trailers"}) {
		t.Errorf("target saw %+v", s)
	}
}

// TestH2ResetStormClosesTargets: streams reset at random moments after
// their HEADERS, toward a target that never answers, all have their
// target connection closed at once, wherever the reset lands (before the
// connection is watched, while the head is written, while the answer is
// awaited), on both paths.
func TestH2ResetStormClosesTargets(t *testing.T) {
	for _, direct := range []bool{true, false} {
		t.Run(fmt.Sprint("direct=", direct), func(t *testing.T) {
			var mu sync.Mutex
			open, reached := 0, 0
			target, _ := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				mu.Lock()
				open++
				reached++
				mu.Unlock()
				_, _ = br.ReadByte() // until the gateway closes the connection
				mu.Lock()
				open--
				mu.Unlock()
			})
			// The answer would be awaited for a minute.
			rc := dialRawH2(t, h2Service(t, direct, target, Config{ResponseHeaderTimeout: time.Minute}))
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range 600 {
				id := uint32(2*i + 1)
				rc.get(id, fmt.Sprintf("/p/%d", i))
				for start, d := time.Now(), time.Duration(rng.IntN(400))*time.Microsecond; time.Since(start) < d; {
				}
				rc.reset(id)
				if i%50 == 49 {
					time.Sleep(10 * time.Millisecond) // let the stream count drop
				}
			}
			waitFor(t, "every target connection closed", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return open == 0
			})
			mu.Lock()
			defer mu.Unlock()
			t.Logf("%d requests reached the target before their reset", reached)
		})
	}
}

// TestDirectReleaseBounded: a pooled direct keeps no pointer into a
// target's read buffer, and drops slices a huge response head grew.
func TestDirectReleaseBounded(t *testing.T) {
	e := newEngine(t, Config{})
	buf := []byte("HTTP/1.1 200 OK\r\n" + strings.Repeat("a: b\r\n", 200) + "\r\n")
	for _, n := range []int{3, 200} {
		d := newDirect(e)
		var err error
		head := buf
		if n == 3 {
			head = []byte("HTTP/1.1 200 OK\r\na: b\r\na: b\r\na: b\r\n\r\n")
		}
		d.ends = d.ends[:0]
		for i, c := range head {
			if c == '\n' {
				d.ends = append(d.ends, int32(i))
			}
		}
		if err = d.resp.ParseResponse(head, d.ends); err != nil || len(d.resp.Fields) != n {
			t.Fatalf("parse: %v, %d fields", err, len(d.resp.Fields))
		}
		d.release(e)
		if n > maxPooledFields && (d.resp.Fields != nil || d.ends != nil) {
			t.Errorf("%d fields: pooled with capacity %d fields, %d line ends", n, cap(d.resp.Fields), cap(d.ends))
		}
		for _, f := range d.resp.Fields[:cap(d.resp.Fields)] {
			if f.Name != nil || f.Value != nil {
				t.Fatalf("%d fields: a pooled field still points into the head", n)
			}
		}
	}
}

// TestHalfClosedTargetConnections: a target that answers one request per
// connection and then shuts down its side (without Connection: close),
// reading on, leaves pooled connections that look open but are done. Every
// request still gets its answer, on the HTTP/1 fast path (GET, and a POST
// whose body goes with the head) and on the HTTP/2 direct path: the
// connection is found not idle before anything is sent on it, and the
// request goes on a new one.
func TestHalfClosedTargetConnections(t *testing.T) {
	target, accepted := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, br) // until the gateway closes it
	})
	cfg := Config{ResponseHeaderTimeout: 30 * time.Second} // a hang would show as a 504 much later
	port := h2Service(t, true, target, cfg)
	h1 := &http.Client{Transport: &http.Transport{DialContext: dialTo(port)}}
	tr := &http.Transport{DialContext: dialTo(port), Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	for i := range 30 {
		c, method, body := h1, "GET", io.Reader(nil)
		switch i % 3 {
		case 1:
			method, body = "POST", strings.NewReader("body")
		case 2:
			c = h2
		}
		req, _ := http.NewRequest(method, "http://svc-1.example.on.aws/x", body)
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("request %d (%s, %s): %v", i, method, req.Proto, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" || time.Since(start) > 10*time.Second {
			t.Fatalf("request %d: %d %q after %v", i, resp.StatusCode, b, time.Since(start))
		}
		time.Sleep(5 * time.Millisecond) // the shutdown reaches the gateway's pooled connection
	}
	if n := accepted.Load(); n < 30 {
		t.Errorf("%d target connections for 30 requests", n)
	}
}
