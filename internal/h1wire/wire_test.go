package h1wire

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/rawio"
)

func TestWriteStatusLine(t *testing.T) {
	for _, tc := range []struct {
		http10 bool
		code   int
		want   string
	}{
		{false, 200, "HTTP/1.1 200 OK\r\n"},
		{true, 404, "HTTP/1.0 404 Not Found\r\n"},
		{false, 599, "HTTP/1.1 599 status code 599\r\n"},
	} {
		var b strings.Builder
		w := bufio.NewWriter(&b)
		WriteStatusLine(w, tc.http10, tc.code)
		w.Flush()
		if b.String() != tc.want {
			t.Errorf("%d: got %q, want %q", tc.code, b.String(), tc.want)
		}
	}
}

func TestDate(t *testing.T) {
	var b strings.Builder
	w := bufio.NewWriter(&b)
	var d Date
	d.WriteField(w)
	w.Flush()
	v, ok := strings.CutPrefix(b.String(), "Date: ")
	got, err := http.ParseTime(strings.TrimSuffix(v, "\r\n"))
	if !ok || err != nil || time.Since(got) > 2*time.Second || !strings.HasSuffix(v, "\r\n") {
		t.Fatalf("got %q (%v)", b.String(), err)
	}
	w.Reset(nilWriter{})
	if n := testing.AllocsPerRun(100, func() { d.WriteField(w); WriteStatusLine(w, false, 200) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

type nilWriter struct{}

func (nilWriter) Write(p []byte) (int, error) { return len(p), nil }

func TestFramingTwin(t *testing.T) {
	for name, want := range map[string]bool{
		"Content_Length": true, "content_length": true, "TRANSFER_ENCODING": true, "Transfer_encoding": true,
		"Content-Length": false, "Transfer-Encoding": false, "Content_Type": false, "content_length_x": false, "": false,
	} {
		if got := FramingTwin(name); got != want {
			t.Errorf("FramingTwin(%q) = %v", name, got)
		}
		if got := FramingTwin([]byte(name)); got != want {
			t.Errorf("FramingTwin([]byte %q) = %v", name, got)
		}
	}
}

func TestClassifyFieldString(t *testing.T) {
	for name, want := range map[string]FieldKind{
		"te": FieldTE, "Host": FieldHost, "x_amzn_lattice_identity": FieldLattice, "X-Forwarded-For": FieldLattice,
		"proxy-authorization": FieldHop, "transfer-encoding": FieldTransferEncoding, "x-custom": FieldOther,
	} {
		if got, gotBytes := ClassifyField(name), ClassifyField([]byte(name)); got != want || gotBytes != want {
			t.Errorf("ClassifyField(%q) = %v, %v; want %v", name, got, gotBytes, want)
		}
	}
}

// TestWriteFill: the request goes out and the answer's first bytes come
// in, over a raw connection (one write, one read) and over any other
// (Write, then Fill).
func TestWriteFill(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					fmt.Fprintf(c, "re:%s", buf[:n])
				}
			}()
		}
	}()
	for _, raw := range []bool{true, false} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if raw {
			c = rawio.Wrap(c)
		} else {
			c = struct{ net.Conn }{c} // hides WriteRead
		}
		b := &Buf{C: c, B: make([]byte, 32)}
		w := &DeadlineWriter{C: c, D: time.Second}
		b.ArmRead(time.Now(), time.Second)
		for i := range 20 {
			req := fmt.Sprintf("q%d", i)
			if err := b.WriteFill(w, []byte(req)); err != nil {
				t.Fatalf("raw %v, round %d: %v", raw, i, err)
			}
			for b.Buffered() < len("re:")+len(req) {
				if err := b.Fill(len(b.B)); err != nil {
					t.Fatal(err)
				}
			}
			if got := string(b.B[b.R:b.W]); got != "re:"+req {
				t.Fatalf("raw %v, round %d: %q", raw, i, got)
			}
			b.R = b.W
		}
	}
}
