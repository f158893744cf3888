package h1wire

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"
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
