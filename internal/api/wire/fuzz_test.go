package wire_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/api/wire"
)

// decodeTarget exercises every shape Decode meets in the handlers: plain
// and pointer scalars, a nested struct (by value and by pointer), a map and
// slices of scalars and of structs.
type decodeTarget struct {
	Name     string            `json:"name"`
	Token    *string           `json:"clientToken"`
	Port     *int32            `json:"port"`
	Count    int32             `json:"count"`
	Enabled  *bool             `json:"enabled"`
	Tags     map[string]string `json:"tags"`
	IDs      []string          `json:"securityGroupIds"`
	Nested   decodeNested      `json:"nested"`
	Optional *decodeNested     `json:"optional"`
	Items    []decodeNested    `json:"items"`
}

type decodeNested struct {
	Value  *string `json:"value"`
	Weight *int32  `json:"weight"`
	Deeper *struct {
		Code int32 `json:"code"`
	} `json:"deeper"`
}

// checkWireValidation fails unless err is a 400 ValidationException that
// the SDKs can parse: a message, and field names when a fieldList is set.
func checkWireValidation(t *testing.T, err error) *wire.Error {
	t.Helper()
	var we *wire.Error
	if !errors.As(err, &we) {
		t.Fatalf("error %T (%v) is not a *wire.Error", err, err)
	}
	if we.Status != http.StatusBadRequest || we.Type != wire.TypeValidation {
		t.Fatalf("error = %d %s (%s), want 400 %s", we.Status, we.Type, we.Message, wire.TypeValidation)
	}
	if we.Message == "" {
		t.Fatalf("error %+v has no message", we)
	}
	for _, f := range we.Fields {
		// f.Name may be empty: an unknown member named "" is reported as
		// such (body {"":1}).
		if f.Message == "" {
			t.Fatalf("field error %+v has no message", f)
		}
	}
	return we
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		``,
		`   `,
		`{}`,
		`null`,
		`{"name":"shop","port":80,"count":3,"enabled":true,"tags":{"a":"b"},"securityGroupIds":["sg-1"]}`,
		`{"nested":{"value":"x","weight":5,"deeper":{"code":404}},"optional":{"value":null}}`,
		`{"items":[{"value":"a"},{"weight":999}]}`,
		`{"port":"80"}`,
		`{"port":80.5}`,
		`{"port":99999999999}`,
		`{"port":1e2}`,
		`{"count":-2147483649}`,
		`{"tags":{"a":1}}`,
		`{"tags":[]}`,
		`{"securityGroupIds":"sg-1"}`,
		`{"items":[{"weight":"x"}]}`,
		`{"nested":{"deeper":{"code":"404"}}}`,
		`{"nested":{"unknown":1}}`,
		`{"unknown":1}`,
		`{"name":"a"}{"name":"b"}`,
		`{"name":"a"} x`,
		`{"name":"a"}]`,
		`{"name":"a"`,
		`{"name":`,
		`[1,2]`,
		`"string"`,
		`42`,
		`{"name":"\ud800"}`,
		"{\"name\":\"\xff\"}",
		`{"Name":"case-insensitive"}`,
		`{"name":"a","name":"b"}`,
		`{"enabled":"true"}`,
		`{,}`,
		"\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v decodeTarget
		err := wire.Decode(data, &v)
		if err == nil {
			// Anything accepted is a JSON value the standard decoder takes too.
			trimmed := strings.TrimSpace(string(data))
			if trimmed != "" && !json.Valid([]byte(trimmed)) {
				t.Fatalf("Decode accepted invalid JSON %q", data)
			}
			return
		}
		checkWireValidation(t, err)

		// The same body decoded into a map must not panic either.
		var m map[string]any
		if err := wire.Decode(data, &m); err != nil {
			checkWireValidation(t, err)
		}
	})
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		body, field string
	}{
		{`{"port":"80"}`, "port"},
		{`{"nested":{"deeper":{"code":"x"}}}`, "nested.deeper.code"},
		{`{"unknown":1}`, "unknown"},
		{`{"nested":{"extra":true}}`, "extra"},
		{`[1]`, "body"},
		{`{"name":1} `, "name"},
	} {
		var v decodeTarget
		err := wire.Decode([]byte(tc.body), &v)
		we := checkWireValidation(t, err)
		if len(we.Fields) != 1 || we.Fields[0].Name != tc.field {
			t.Errorf("Decode(%s) fields = %+v, want one named %q", tc.body, we.Fields, tc.field)
		}
	}
	for _, body := range []string{`{"name":"a"}{}`, `{"name":"a"} 1`, `{`, `{"name":"a"}]`} {
		var v decodeTarget
		checkWireValidation(t, wire.Decode([]byte(body), &v))
	}
	var v decodeTarget
	if err := wire.Decode([]byte(" \n\t"), &v); err != nil {
		t.Errorf("an empty body is {}: %v", err)
	}
}

func FuzzDecodeToken(f *testing.F) {
	f.Add("svc", "/lattice/111122223333/svc/svc-0123456789abcdef0", "sn", "")
	f.Add("tg//IP", "", "tg/vpc-1/IP", "garbage!")
	f.Add("rule/listener-0123456789abcdef0", "k\x00with\x00nuls", "rule/listener-0123456789abcdef1", "c3ZjAGtleQ")
	f.Add("a", "b", "a\x00b", "YQBiAGM")
	f.Add("", "", "x", "AA")
	f.Add("snsa//", strings.Repeat("k", 1600), "snsa/x/", "====")
	f.Fuzz(func(t *testing.T, scope, key, otherScope, raw string) {
		// Arbitrary tokens: never a panic, only ValidationExceptions.
		for _, s := range []string{scope, otherScope} {
			if _, err := wire.DecodeToken(s, raw); err != nil {
				checkWireValidation(t, err)
			}
		}

		tok := wire.EncodeToken(scope, key)
		if strings.ContainsAny(tok, "+/=") || len(tok) == 0 {
			t.Fatalf("token %q is not unpadded base64url", tok)
		}
		got, err := wire.DecodeToken(scope, tok)
		switch {
		case strings.Contains(scope, "\x00"):
			// A scope holding the separator cannot be told apart from a
			// shorter scope; such a token must not decode to the wrong key.
			if err == nil && got != key {
				t.Fatalf("scope %q key %q: decoded key %q", scope, key, got)
			}
		case len(tok) > 2048:
			// Longer than nextToken may be: rejected, never truncated.
			if err == nil {
				t.Fatalf("a %d-character token was accepted", len(tok))
			}
			checkWireValidation(t, err)
		default:
			if err != nil {
				t.Fatalf("round trip of scope %q key %q (token %q): %v", scope, key, tok, err)
			}
			if got != key {
				t.Fatalf("round trip of scope %q: key %q, want %q", scope, got, key)
			}
		}

		// A token of one listing is refused by another.
		if otherScope != scope && !strings.Contains(scope, "\x00") && !strings.Contains(otherScope, "\x00") {
			if k, err := wire.DecodeToken(otherScope, tok); err == nil {
				t.Fatalf("token of scope %q accepted for scope %q (key %q)", scope, otherScope, k)
			} else {
				checkWireValidation(t, err)
			}
		}

		// Tampering with the payload (if it still decodes) keeps the scope check.
		if b, err := base64.RawURLEncoding.DecodeString(raw); err == nil {
			if k, err := wire.DecodeToken(scope, raw); err == nil && string(b) != scope+"\x00"+k {
				t.Fatalf("token %q decoded to key %q for scope %q", raw, k, scope)
			}
		}
	})
}

// routerFixture is a router with the label shapes the APIs use; each
// handler reports its operation and the labels it was given.
func routerFixture(got *struct {
	op     string
	params map[string]string
}) *wire.Router {
	rt := wire.NewRouter(slog.New(slog.DiscardHandler), nil)
	h := func(op string) wire.HandlerFunc {
		return func(_ context.Context, r *wire.Request) (int, any, error) {
			got.op, got.params = op, r.Params
			for name, v := range r.Params {
				if v == "" {
					return 0, nil, wire.Invalid(name, "empty label")
				}
			}
			if op == "Delete" {
				return http.StatusNoContent, nil, nil
			}
			return http.StatusOK, map[string]string{"op": op}, nil
		}
	}
	rt.Handle(http.MethodGet, "/services", "List", h("List"))
	rt.Handle(http.MethodGet, "/services/{serviceIdentifier}", "Get", h("Get"))
	rt.Handle(http.MethodDelete, "/services/{serviceIdentifier}", "Delete", h("Delete"))
	rt.Handle(http.MethodGet, "/services/{serviceIdentifier}/listeners/{listenerIdentifier}", "GetListener", h("GetListener"))
	rt.Handle(http.MethodPost, "/tags/{resourceArn}", "Tag", h("Tag"))
	rt.Handle(http.MethodGet, "/", "Root", h("Root"))
	return rt
}

func FuzzRouter(f *testing.F) {
	for _, s := range []struct{ method, path, label string }{
		{"GET", "/services", "svc-0123456789abcdef0"},
		{"GET", "/services/svc-0123456789abcdef0", "arn:aws:vpc-lattice:us-east-1:111122223333:service/svc-0123456789abcdef0"},
		{"GET", "/services/arn%3Aaws%3Avpc-lattice%3Aus-east-1%3A111122223333%3Aservice%2Fsvc-0123456789abcdef0", "a/b"},
		{"POST", "/tags/arn%3Aaws%3Avpc-lattice%3Aus-east-1%3A1%3Aservice%2Fsvc-1%2Flistener%2Flistener-1", "%"},
		{"DELETE", "/services/%", "%zz"},
		{"GET", "/services/%zz/listeners/x", "%2"},
		{"PUT", "/services/x", " "},
		{"GET", "//services//x//", "\x00"},
		{"GET", "/services/%2F", "/"},
		{"GET", "/services/x/listeners/", ".."},
		{"GET", "/services/%00/listeners/%FF", "\xff"},
		{"get", "/", "?#"},
		{"", "", ""},
	} {
		f.Add(s.method, s.path, s.label)
	}
	f.Fuzz(func(t *testing.T, method, path, label string) {
		var got struct {
			op     string
			params map[string]string
		}
		rt := routerFixture(&got)

		// 1. The fuzzed path as the escaped form a client sent: whatever
		// it is, the router answers without panicking, with a request ID,
		// and with an AWS error shape when it fails.
		u := &url.URL{Path: path}
		if p, err := url.PathUnescape(path); err == nil {
			u.Path, u.RawPath = p, path
		}
		serveAndCheck(t, rt, &http.Request{Method: method, URL: u, Header: http.Header{}})
		_ = rt.Op(&http.Request{Method: method, URL: u})

		// 2. A label escaped the way the SDKs escape it comes back to the
		// handler unchanged, however many "/", "%" or ":" it holds.
		if label == "" {
			return
		}
		got.op, got.params = "", nil
		esc := url.PathEscape(label)
		lu := &url.URL{Path: "/services/" + label + "/listeners/" + label, RawPath: "/services/" + esc + "/listeners/" + esc}
		rec := serveAndCheck(t, rt, &http.Request{Method: http.MethodGet, URL: lu, Header: http.Header{}})
		if rec.Code != http.StatusOK || got.op != "GetListener" {
			t.Fatalf("GET %s = %d (op %q), want GetListener", lu.EscapedPath(), rec.Code, got.op)
		}
		if got.params["serviceIdentifier"] != label || got.params["listenerIdentifier"] != label {
			t.Fatalf("labels %q, want %q for both", got.params, label)
		}
		if op := rt.Op(&http.Request{Method: http.MethodGet, URL: lu}); op != "GetListener" {
			t.Fatalf("Op = %q, want GetListener", op)
		}
	})
}

func serveAndCheck(t *testing.T, rt *wire.Router, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	rt.ServeHTTP(rec, r)
	if rec.Header().Get("x-amzn-RequestId") == "" {
		t.Fatalf("%s %s: no x-amzn-RequestId", r.Method, r.URL.EscapedPath())
	}
	if rec.Code >= 500 {
		t.Fatalf("%s %s: status %d: %s", r.Method, r.URL.EscapedPath(), rec.Code, rec.Body)
	}
	if rec.Code >= 300 {
		if rec.Header().Get("x-amzn-ErrorType") == "" {
			t.Fatalf("%s %s: status %d without x-amzn-ErrorType", r.Method, r.URL.EscapedPath(), rec.Code)
		}
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s %s: error body %q is not a JSON object: %v", r.Method, r.URL.EscapedPath(), rec.Body, err)
		}
		if _, ok := body["message"].(string); !ok {
			t.Fatalf("%s %s: error body %s has no string message", r.Method, r.URL.EscapedPath(), rec.Body)
		}
	}
	return rec
}

func TestRouterMatching(t *testing.T) {
	var got struct {
		op     string
		params map[string]string
	}
	rt := routerFixture(&got)
	arn := "arn:aws:vpc-lattice:us-east-1:111122223333:service/svc-0123456789abcdef0"
	for _, tc := range []struct {
		method, raw string
		status      int
		op          string
		params      map[string]string
	}{
		{"GET", "/services", 200, "List", nil},
		{"GET", "/services/", 200, "List", nil},
		{"GET", "/services/svc-1", 200, "Get", map[string]string{"serviceIdentifier": "svc-1"}},
		{"GET", "/services/" + url.PathEscape(arn), 200, "Get", map[string]string{"serviceIdentifier": arn}},
		{"DELETE", "/services/svc-1", 204, "Delete", map[string]string{"serviceIdentifier": "svc-1"}},
		{"PATCH", "/services/svc-1", 405, "", nil},
		{"GET", "/nothing", 404, "", nil},
		{"GET", "/services/a/b", 404, "", nil},
		{"GET", "/", 200, "Root", nil},
	} {
		got.op, got.params = "", nil
		u := &url.URL{Path: tc.raw}
		if p, err := url.PathUnescape(tc.raw); err == nil {
			u.Path, u.RawPath = p, tc.raw
		}
		rec := serveAndCheck(t, rt, &http.Request{Method: tc.method, URL: u, Header: http.Header{}})
		if rec.Code != tc.status || got.op != tc.op {
			t.Errorf("%s %s = %d op %q, want %d op %q", tc.method, tc.raw, rec.Code, got.op, tc.status, tc.op)
			continue
		}
		for k, v := range tc.params {
			if got.params[k] != v {
				t.Errorf("%s %s: %s = %q, want %q", tc.method, tc.raw, k, got.params[k], v)
			}
		}
	}
}
