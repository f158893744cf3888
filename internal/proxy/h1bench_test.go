package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/snapshot"
)

// rawBackend answers every request on a keep-alive connection with a
// fixed response of a 1 KiB body, allocating nothing per request: with
// rawClient, the allocations a benchmark counts are the gateway's.
func rawBackend(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\nContent-Length: 1024\r\n\r\n" + string(make([]byte, 1024)))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := &rawReader{c: c, b: make([]byte, 16<<10)}
				for {
					if _, err := r.head(); err != nil {
						return
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// rawReader reads message heads and fixed-length bodies without
// allocating.
type rawReader struct {
	c    net.Conn
	b    []byte
	r, w int
}

// head consumes a head and returns its Content-Length (0 when absent).
func (r *rawReader) head() (int, error) {
	for {
		if i := bytes.Index(r.b[r.r:r.w], []byte("\r\n\r\n")); i >= 0 {
			h := r.b[r.r : r.r+i+2]
			r.r += i + 4
			n := 0
			if j := bytes.Index(h, []byte("Content-Length: ")); j >= 0 {
				for _, c := range h[j+16:] {
					if c < '0' || c > '9' {
						break
					}
					n = n*10 + int(c-'0')
				}
			}
			return n, nil
		}
		if err := r.more(); err != nil {
			return 0, err
		}
	}
}

func (r *rawReader) more() error {
	if r.r > 0 {
		r.w = copy(r.b, r.b[r.r:r.w])
		r.r = 0
	}
	if r.w == len(r.b) {
		return io.ErrShortBuffer
	}
	n, err := r.c.Read(r.b[r.w:])
	r.w += n
	if n > 0 {
		return nil
	}
	return err
}

// skip consumes n body bytes.
func (r *rawReader) skip(n int) error {
	for n > 0 {
		if r.r == r.w {
			if err := r.more(); err != nil {
				return err
			}
		}
		k := min(n, r.w-r.r)
		r.r += k
		n -= k
	}
	return nil
}

// rawClient sends one fixed request at a time on a keep-alive connection.
type rawClient struct {
	c   net.Conn
	req []byte
	in  rawReader
}

func newRawClient(t testing.TB, port int32, req string) *rawClient {
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{c: c, req: []byte(req), in: rawReader{c: c, b: make([]byte, 16<<10)}}
}

func (c *rawClient) roundTrip() error {
	if _, err := c.c.Write(c.req); err != nil {
		return err
	}
	if !bytes.HasPrefix(c.in.b[c.in.r:], []byte("HTTP/1.1 200 ")) && c.in.w-c.in.r >= 13 {
		return fmt.Errorf("unexpected answer %q", c.in.b[c.in.r:c.in.w])
	}
	n, err := c.in.head()
	if err != nil {
		return err
	}
	return c.in.skip(n)
}

// rawSetup serves svc-1.example.on.aws on a fresh port in front of a raw
// backend, with the benchmark's two rules.
func rawSetup(t testing.TB, fast bool) int32 {
	target := rawBackend(t)
	port := freePort(t)
	rules := []snapshot.Rule{
		matchRule("r-1", 1, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Prefix: ptr("/admin")}}}, fixed(404)),
		defaultRule(fwd(wtg{"tg", 1})),
	}
	e := newEngine(t, Config{})
	e.h1fast = fast
	mustApply(t, e, testSnapshot(1,
		[]snapshot.Service{testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, rules...))},
		testTG("tg", model.ProtocolHTTP, "", target)))
	return port
}

const rawGet = "GET /api/items/42 HTTP/1.1\r\nHost: svc-1.example.on.aws\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"

// BenchmarkGatewayHTTP1 measures the gateway alone: a client and a target
// that allocate nothing, HTTP/1.1 keep-alive, 1 KiB answers, over the
// fast path and over the net/http path.
func BenchmarkGatewayHTTP1(b *testing.B) {
	for _, fast := range []bool{true, false} {
		name := "nethttp"
		if fast {
			name = "fast"
		}
		b.Run(name, func(b *testing.B) {
			port := rawSetup(b, fast)
			b.ReportAllocs()
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c := newRawClient(b, port, rawGet)
				for pb.Next() {
					if err := c.roundTrip(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestFastPathZeroAlloc: a forwarded request allocates nothing on the
// fast path once the connection and the target pool are warm.
func TestFastPathZeroAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	port := rawSetup(t, true)
	c := newRawClient(t, port, rawGet)
	for range 10 {
		if err := c.roundTrip(); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	allocs := testing.AllocsPerRun(2000, func() {
		if e := c.roundTrip(); e != nil {
			err = e
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Errorf("%v allocations per forwarded request, want 0", allocs)
	}
}
