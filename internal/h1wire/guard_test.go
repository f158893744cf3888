package h1wire

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// scriptConn is a net.Conn whose reads return the given chunks in turn.
type scriptConn struct {
	net.Conn // nil: only Read and RemoteAddr are used
	chunks   [][]byte
}

func (c *scriptConn) Read(p []byte) (int, error) {
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	return n, nil
}

func (c *scriptConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

// readAllGuard reads through a guard with reads of size step.
func readAllGuard(chunks [][]byte, step int) ([]byte, error) {
	g := NewGuardConn(&scriptConn{chunks: chunks}, 1<<10, slog.New(slog.DiscardHandler))
	var out []byte
	buf := make([]byte, step)
	for {
		n, err := g.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
	}
}

func TestGuard(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		passed string // bytes released before the rejection ("" = all when ok)
		ok     bool
	}{
		{"simple", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "", true},
		{"pipelined", "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n", "", true},
		{"content-length body then request", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n", "", true},
		{"chunked with extension and trailer", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "", true},
		{"body holds a request line", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 19\r\n\r\nGET /x HTTP/1.1\r\n\r\n", "", true},
		{"http/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00garbage\r\n \n", "", true},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", "", false},
		{"bare LF", "GET / HTTP/1.1\nHost: a\r\n\r\n", "", false},
		{"bare CR", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", "", false},
		{"TE and CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "", false},
		{"duplicate CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", "", false},
		{"TE list", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "", false},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "", false},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", "", false},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n", "", false},
		{"HTTP/1.0 chunked", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "", false},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n",
			"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"chunk without CRLF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n",
			"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello", false},
		{"smuggled second request", "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nX: y\r\n z\r\n\r\n",
			"GET / HTTP/1.1\r\nHost: a\r\n\r\n", false},
		{"head too large", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 2<<10) + "\r\n\r\n", "", false},
	}
	for _, tt := range tests {
		for _, step := range []int{1, 7, 4096} {
			// Feed the input in 3-byte chunks too, to cross every boundary.
			var chunks [][]byte
			for i := 0; i < len(tt.in); i += 3 {
				chunks = append(chunks, []byte(tt.in[i:min(i+3, len(tt.in))]))
			}
			for _, in := range [][][]byte{{[]byte(tt.in)}, chunks} {
				out, err := readAllGuard(in, step)
				if tt.ok {
					if err != nil || string(out) != tt.in {
						t.Errorf("%s (read %d): got %q, %v; want all bytes", tt.name, step, out, err)
					}
					continue
				}
				var ge *FramingError
				if !errors.As(err, &ge) {
					t.Errorf("%s (read %d): err %v, want a framing rejection", tt.name, step, err)
				}
				if string(out) != tt.passed {
					t.Errorf("%s (read %d): released %q before rejecting, want %q", tt.name, step, out, tt.passed)
				}
			}
		}
	}
}

// timeoutConn returns a timeout once, then the rest of its data.
type timeoutConn struct {
	scriptConn
	fired bool
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func (c *timeoutConn) Read(p []byte) (int, error) {
	if !c.fired {
		c.fired = true
		return 0, timeoutErr{}
	}
	return c.scriptConn.Read(p)
}

// TestGuardTimeoutNotSticky: net/http interrupts a background read with a
// past deadline and reads on; the guard must not keep the error.
func TestGuardTimeoutNotSticky(t *testing.T) {
	c := &timeoutConn{scriptConn: scriptConn{chunks: [][]byte{[]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")}}}
	g := NewGuardConn(c, 1<<10, slog.New(slog.DiscardHandler))
	buf := make([]byte, 100)
	if _, err := g.Read(buf); err == nil {
		t.Fatal("first read: want the timeout")
	}
	n, err := g.Read(buf)
	if err != nil || n == 0 {
		t.Fatalf("read after timeout: %d %v", n, err)
	}
	_ = time.Now
}

// FuzzGuard feeds random bytes through the guard: it must never panic
// and never alter bytes; what it releases is a prefix of its input.
func FuzzGuard(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), uint8(3))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: x\r\n\r\n"), uint8(1))
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nabGET / HTTP/1.0\r\n\r\n"), uint8(5))
	f.Add([]byte(http2Preface+"\x00\x00"), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		step := int(chunk%16) + 1
		var chunks [][]byte
		for i := 0; i < len(in); i += step {
			chunks = append(chunks, in[i:min(i+step, len(in))])
		}
		out, _ := readAllGuard(chunks, step+3)
		if !bytes.HasPrefix(in, out) {
			t.Fatalf("guard altered bytes: in %q out %q", in, out)
		}
	})
}

// countConn counts the reads that reach the connection.
type countConn struct {
	scriptConn
	reads int
}

func (c *countConn) Read(p []byte) (int, error) {
	c.reads++
	return c.scriptConn.Read(p)
}

// TestGuardHTTP2Buffered: once the HTTP/2 preface has passed, the small
// reads net/http's HTTP/2 server makes (a frame header, then its payload)
// are served from the guard's buffer, so frames that arrived together
// cost one read of the connection; a large read still goes straight
// through, and the bytes come out unchanged either way.
func TestGuardHTTP2Buffered(t *testing.T) {
	frames := bytes.Repeat([]byte("\x00\x00\x03\x08\x00\x00\x00\x00\x01abc"), 10) // ten 12-byte frames
	big := bytes.Repeat([]byte{'x'}, 2*guardInitialBuf)
	c := &countConn{scriptConn: scriptConn{chunks: [][]byte{[]byte(http2Preface), frames, big}}}
	g := NewGuardConn(c, 1<<10, slog.New(slog.DiscardHandler))
	var out []byte
	hdr := make([]byte, 9)
	for len(out) < len(http2Preface)+len(frames) {
		n, err := g.Read(hdr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, hdr[:n]...)
	}
	if want := http2Preface + string(frames); string(out) != want {
		t.Fatalf("read %q, want %q", out, want)
	}
	if c.reads != 2 { // the preface, then all ten frames
		t.Errorf("%d reads of the connection for the preface and ten frames, want 2", c.reads)
	}
	large := make([]byte, len(big))
	n, err := io.ReadFull(g, large)
	if err != nil || !bytes.Equal(large[:n], big) {
		t.Fatalf("large read: %d bytes, %v", n, err)
	}
	if c.reads != 3 {
		t.Errorf("%d reads after a large read, want 3 (straight into the caller's buffer)", c.reads)
	}
}

// TestGuardReplay: bytes given back with Replay are read first and
// checked as the connection's own: a smuggling head split between the
// replayed bytes and the connection is rejected, and a clean stream
// reads back whole, in order.
func TestGuardReplay(t *testing.T) {
	read := func(replay string, rest ...string) (string, error) {
		var chunks [][]byte
		for _, r := range rest {
			chunks = append(chunks, []byte(r))
		}
		g := NewGuardConn(&scriptConn{chunks: chunks}, 1<<10, slog.New(slog.DiscardHandler))
		g.Replay([]byte(replay))
		out, err := io.ReadAll(g)
		return string(out), err
	}
	clean := "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
	for split := 0; split <= len(clean); split++ {
		out, err := read(clean[:split], clean[split:])
		if err != nil || out != clean {
			t.Fatalf("split at %d: read %q, %v; want the stream back", split, out, err)
		}
	}
	bad := "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, split := range []int{0, 20, len(bad) - 1, len(bad)} {
		out, err := read(bad[:split], bad[split:])
		var fe *FramingError
		if !errors.As(err, &fe) || out != "" {
			t.Errorf("split at %d: read %q, %v; want nothing and a FramingError", split, out, err)
		}
	}
	big := "GET /" + strings.Repeat("x", 3*guardInitialBuf) + " HTTP/1.1\r\nHost: a\r\n\r\n"
	g := NewGuardConn(&scriptConn{}, 16<<10, slog.New(slog.DiscardHandler))
	g.Replay([]byte(big))
	if out, err := io.ReadAll(g); err != nil || string(out) != big {
		t.Errorf("replay larger than the guard's first buffer: read %d bytes, %v", len(out), err)
	}
}
