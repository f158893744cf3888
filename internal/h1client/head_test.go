package h1client

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// canonical is a request head with its header lines sorted, for
// comparing heads whose fields come in different orders; the request
// line stays first.
func canonical(t testing.TB, head []byte) string {
	t.Helper()
	s := string(head)
	if !strings.HasSuffix(s, "\r\n\r\n") {
		t.Fatalf("head does not end with an empty line: %q", s)
	}
	lines := strings.Split(strings.TrimSuffix(s, "\r\n\r\n"), "\r\n")
	slices.Sort(lines[1:])
	return strings.Join(lines, "\n")
}

func written(t testing.TB, r *http.Request, write func(*bufio.Writer, *http.Request) error) ([]byte, error) {
	t.Helper()
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	err := write(w, r)
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	return buf.Bytes(), err
}

func stdWrite(w *bufio.Writer, r *http.Request) error { return r.Write(w) }

func newReq(method, target, host string, h http.Header) *http.Request {
	u, err := url.Parse("http://" + host + target)
	if err != nil {
		panic(err)
	}
	if h == nil {
		h = http.Header{}
	}
	return &http.Request{Method: method, URL: u, Host: host, Header: h}
}

// TestWriteRequestAsRequestWrite: what writeRequest writes is what
// Request.Write writes, field order aside, both for heads it writes
// itself and for those it hands to Request.Write.
func TestWriteRequestAsRequestWrite(t *testing.T) {
	withOpaque := newReq("GET", "/", "svc.example", http.Header{"Accept": {"*/*"}})
	withOpaque.URL = &url.URL{Scheme: "http", Host: "10.0.0.1:80", Opaque: "/a/b%2Fc", RawQuery: "x=1&y=%20"}
	forceQuery := newReq("GET", "/q", "svc.example", nil)
	forceQuery.URL.ForceQuery = true
	closing := newReq("GET", "/", "svc.example", nil)
	closing.Close = true
	body := newReq("POST", "/", "svc.example", nil)
	body.Body, body.ContentLength = http.NoBody, 0
	withBody := newReq("POST", "/", "svc.example", nil)
	withBody.Body, withBody.ContentLength = io.NopCloser(strings.NewReader("hello")), 5
	spacePath := newReq("GET", "/", "svc.example", nil)
	spacePath.URL.Path = "/a b"
	slashes := newReq("GET", "/", "svc.example", nil)
	slashes.URL.Opaque = "//evil.example/x"

	cases := []struct {
		name  string
		r     *http.Request
		plain bool // written by writeRequest itself
	}{
		{"get", newReq("GET", "/x?a=1", "svc.example", http.Header{
			"Accept":          {"*/*"},
			"X-Many":          {"one", "two", " three\t"},
			"X-Forwarded-For": {"10.0.0.9"},
			"X-Ctl":           {"a\x01b"}, // Request.Write passes other control bytes on
		}), true},
		{"default user agent", newReq("GET", "/", "svc.example", nil), true},
		{"empty user agent", newReq("GET", "/", "svc.example", http.Header{"User-Agent": {""}}), true},
		{"user agent", newReq("GET", "/", "svc.example", http.Header{"User-Agent": {"  curl/8 "}}), true},
		{"head", newReq("HEAD", "/", "svc.example:8080", nil), true},
		{"post without body", newReq("POST", "/p", "svc.example", nil), true},
		{"post with NoBody", body, true},
		{"delete", newReq("DELETE", "/d", "svc.example", nil), true},
		{"options", newReq("OPTIONS", "/o", "svc.example", nil), true},
		{"escaped path", newReq("GET", "/a%20b/%C3%A9", "svc.example", nil), true},
		{"opaque path and query", withOpaque, true},
		{"force query", forceQuery, true},
		{"framing fields dropped", newReq("GET", "/", "svc.example", http.Header{
			"Content-Length": {"5"}, "Transfer-Encoding": {"chunked"}, "Trailer": {"X"}, "Host": {"other"},
		}), true},
		{"ipv6 host", newReq("GET", "/", "[::1]:8080", nil), true},

		{"newline in a value", newReq("GET", "/", "svc.example", http.Header{"X-A": {"a\r\nInjected: 1"}}), false},
		{"key not a token", newReq("GET", "/", "svc.example", http.Header{"Bad Key": {"v"}}), false},
		{"close", closing, false},
		{"body", withBody, false},
		{"path with a space", spacePath, true}, // escaped as Request.Write escapes it
		{"opaque starting with //", slashes, false},
		{"unicode host", newReq("GET", "/", "bücher.example", nil), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, plain := plainHead(tc.r); plain != tc.plain {
				t.Fatalf("plainHead = %v, want %v", plain, tc.plain)
			}
			if tc.r.Body != nil && tc.r.Body != http.NoBody {
				// A body is read once: compare with a second request.
				got, err := written(t, tc.r, writeRequest)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasSuffix(got, []byte("\r\n\r\nhello")) || !bytes.Contains(got, []byte("Content-Length: 5\r\n")) {
					t.Fatalf("request with body written as %q", got)
				}
				return
			}
			want, werr := written(t, tc.r, stdWrite)
			got, gerr := written(t, tc.r, writeRequest)
			if (werr == nil) != (gerr == nil) {
				t.Fatalf("errors differ: Request.Write %v, writeRequest %v", werr, gerr)
			}
			if werr != nil {
				return
			}
			if canonical(t, got) != canonical(t, want) {
				t.Fatalf("writeRequest wrote\n%s\nRequest.Write wrote\n%s", canonical(t, got), canonical(t, want))
			}
		})
	}
}

// TestWriteRequestParses: a head written by writeRequest reads back as
// one request with the fields it was given.
func TestWriteRequestParses(t *testing.T) {
	r := newReq("GET", "/p?q=1", "svc.example", http.Header{"X-A": {"1", "2"}, "User-Agent": {""}})
	got, err := written(t, r, writeRequest)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(bytes.NewReader(got))
	back, err := http.ReadRequest(br)
	if err != nil {
		t.Fatal(err)
	}
	if back.Method != "GET" || back.RequestURI != "/p?q=1" || back.Host != "svc.example" ||
		!slices.Equal(back.Header["X-A"], []string{"1", "2"}) || back.Header.Get("User-Agent") != "" {
		t.Fatalf("read back %s %s host %q header %v", back.Method, back.RequestURI, back.Host, back.Header)
	}
	if br.Buffered() != 0 {
		t.Fatalf("%d bytes after the head", br.Buffered())
	}
}

// FuzzWriteRequest: for any method, target and field, writeRequest
// writes what Request.Write writes (field order aside), or leaves the
// request to it.
func FuzzWriteRequest(f *testing.F) {
	f.Add("GET", "/a?b=c", "svc.example", "X-A", "v")
	f.Add("POST", "/", "h:1", "User-Agent", " ua ")
	f.Add("PATCH", "//x", "h", "K", "a\rb")
	f.Add("GET", "/%zz", "[fe80::1%25eth0]:80", "K", "v")
	f.Fuzz(func(t *testing.T, method, target, host, key, value string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		u.Scheme, u.Host = "http", "10.0.0.1:80"
		r := &http.Request{Method: method, URL: u, Host: host, Header: http.Header{key: {value}}}
		want, werr := written(t, r, stdWrite)
		got, gerr := written(t, r, writeRequest)
		if _, _, plain := plainHead(r); !plain {
			if !bytes.Equal(got, want) {
				t.Fatalf("fallback wrote %q, Request.Write %q", got, want)
			}
			return
		}
		if werr != nil || gerr != nil {
			t.Fatalf("plain head: Request.Write error %v, writeRequest error %v", werr, gerr)
		}
		if canonical(t, got) != canonical(t, want) {
			t.Fatalf("writeRequest wrote\n%q\nRequest.Write wrote\n%q", got, want)
		}
	})
}
