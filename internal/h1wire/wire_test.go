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
