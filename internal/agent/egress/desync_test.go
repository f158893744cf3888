package egress

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/h1wire"
	"github.com/trellis-mesh/trellis/internal/testnet"
)

// desyncVectors is where the HTTP/1.1 request-smuggling suite is kept,
// beside the repository (reference: /work/shared/vectors/README.md).
const desyncVectors = "../../../../shared/vectors/http1-desync"

// TestDesyncVectors replays the request-smuggling suite through the
// agent's proxy, over kept-alive endpoint connections. The agent is no
// framing guard (it takes what net/http takes), but what it sends on must
// never be read otherwise by the endpoint: every request the endpoint
// gets passes the framing guard's rules, and the endpoint answers no
// more requests than the clients got answers from it (a smuggled request
// would be one more).
func TestDesyncVectors(t *testing.T) {
	cases := testnet.LoadDesync(t, desyncVectors)
	var (
		mu     sync.Mutex
		bad    []string
		served atomic.Int64
	)
	ep, _ := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		for {
			head, err := readHead(br)
			if err != nil {
				return
			}
			var hd h1wire.Head
			hd.Reset()
			ends, whole := h1wire.HeadEnds(head, nil)
			if !whole || hd.ParseRequest(head, ends) != nil {
				mu.Lock()
				bad = append(bad, strconv.Quote(string(head)))
				mu.Unlock()
				return
			}
			if hd.Info.TE > 0 {
				if !skipChunked(br) {
					return
				}
			} else if _, err := io.CopyN(io.Discard, br, hd.Info.CLValue); err != nil {
				return
			}
			served.Add(1)
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Endpoint: 1\r\nContent-Length: 0\r\n\r\n"); err != nil {
				return
			}
		}
	})
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{{ID: "a", Addr: ep}})
	addr := listen(t, p, "svc", httpPolicy())
	answered := 0
	for _, c := range cases {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.Write(c.Raw())
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			if resp.Header.Get("X-Endpoint") != "" {
				answered++
			}
			resp.Body.Close()
		}
		conn.Close()
	}
	// A smuggled request reaches the endpoint after the answer to the one
	// that carried it: the proxy's idle endpoint connections are closed
	// so that the endpoint's readers finish.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = p.Close(ctx)
	waitFor(t, "the endpoint's connections to end", func() bool { return svcOf(p, "svc").connCount.Load() == 0 })
	mu.Lock()
	defer mu.Unlock()
	for _, b := range bad {
		t.Errorf("the endpoint got a request the framing rules refuse: %s", b)
	}
	if n := served.Load(); n != int64(answered) {
		t.Errorf("the endpoint served %d requests, the clients got %d answers from it", n, answered)
	}
	t.Logf("%d vectors, %d reached the endpoint", len(cases), answered)
}

// readHead reads a message head up to its empty line.
func readHead(br *bufio.Reader) ([]byte, error) {
	var head []byte
	for {
		line, err := br.ReadSlice('\n')
		head = append(head, line...)
		if err != nil {
			return head, err
		}
		if string(line) == "\r\n" || string(line) == "\n" {
			return head, nil
		}
	}
}

// skipChunked reads a chunked body and its trailers; false when it is
// malformed or ends early.
func skipChunked(br *bufio.Reader) bool {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return false
		}
		size, err := strconv.ParseInt(string(bytes.TrimRight([]byte(line), "\r\n")), 16, 64)
		if err != nil {
			return false
		}
		if size == 0 {
			break
		}
		if _, err := io.CopyN(io.Discard, br, size+2); err != nil {
			return false
		}
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return false
		}
		if line == "\r\n" {
			return true
		}
	}
}

// TestFramingTwinsFromHTTP2: a Content_Length or Transfer_Encoding field
// of an HTTP/2 request (where it frames nothing) is not passed to an
// HTTP/1.1 endpoint, which might take it for the real one.
func TestFramingTwinsFromHTTP2(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		for k := range r.Header {
			io.WriteString(w, k+";")
		}
	})
	p := newProxy(t, Config{})
	p.SetEndpoints("svc", []Endpoint{b.endpoint("a")})
	addr := listen(t, p, "svc", httpPolicy())
	r := do(t, newH2CClient(t), "GET", "http://"+addr+"/", "", "Content_Length", "10", "transfer_encoding", "chunked", "X_Other", "1")
	if r.status != 200 || !strings.Contains(r.body, "X_other;") && !strings.Contains(r.body, "X_Other;") {
		t.Fatalf("got %d %q", r.status, r.body)
	}
	if strings.Contains(strings.ToLower(r.body), "content_length") || strings.Contains(strings.ToLower(r.body), "transfer_encoding") {
		t.Fatalf("the endpoint got a framing twin: %q", r.body)
	}
}
