package proxy

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/snapshot"
)

// desyncVectors is the HTTP/1.1 request-smuggling suite of
// github.com/aws/http-desync-guardian, kept beside the repository
// (reference: /work/shared/vectors/README.md).
const desyncVectors = "../../../shared/vectors/http1-desync"

// desyncCase is one vector: a request and the tier it belongs to.
type desyncCase struct {
	Name    string     `json:"name"`
	URI     flexString `json:"uri"`
	Method  flexString `json:"method"`
	Version flexString `json:"version"`
	Headers []struct {
		Name  flexString `json:"name"`
		Value flexString `json:"value"`
	} `json:"headers"`
	Expected struct {
		Tier   string `json:"tier"`
		Reason string `json:"reason"`
	} `json:"expected"`
	file string
}

// flexString takes a YAML scalar of any type (`value: 1000` is a number).
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case nil:
		*s = ""
	case string:
		*s = flexString(v)
	default:
		*s = flexString(strings.TrimSpace(string(b)))
	}
	return nil
}

func loadDesyncCases(t *testing.T) []desyncCase {
	files, err := filepath.Glob(filepath.Join(desyncVectors, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Skipf("desync vectors not found in %s (expected ../shared/vectors/http1-desync beside the repository)", desyncVectors)
	}
	var all []desyncCase
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cs []desyncCase
		if err := yaml.Unmarshal(data, &cs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i := range cs {
			cs[i].file = filepath.Base(f)
		}
		all = append(all, cs...)
	}
	return all
}

// rawRequest renders the case as bytes on the wire. A Host header for the
// test service is added first when the case has none, so that an accepted
// request would really reach the target; a body matching the framing
// headers (an empty chunked body, or Content-Length bytes) follows, so that
// a request the gateway accepts completes.
func (c *desyncCase) rawRequest() []byte {
	var b strings.Builder
	b.WriteString(string(c.Method) + " " + string(c.URI))
	if c.Version != "" {
		b.WriteString(" " + string(c.Version))
	}
	b.WriteString("\r\n")
	hasHost := false
	for _, h := range c.Headers {
		if strings.EqualFold(strings.TrimSpace(string(h.Name)), "host") {
			hasHost = true
		}
	}
	if !hasHost {
		b.WriteString("Host: localhost\r\n")
	}
	body := ""
	for _, h := range c.Headers {
		b.WriteString(string(h.Name) + ": " + string(h.Value) + "\r\n")
		name, value := string(h.Name), strings.TrimSpace(string(h.Value))
		switch {
		case strings.EqualFold(name, "transfer-encoding") && strings.Contains(strings.ToLower(value), "chunked"):
			body = "0\r\n\r\n"
		case strings.EqualFold(name, "content-length") && body == "":
			if n, err := strconv.Atoi(value); err == nil && n >= 0 && n <= 8<<20 {
				body = strings.Repeat("x", n)
			}
		}
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return []byte(b.String())
}

// TestHTTP1Desync replays every desync vector against a real listener with
// a real target that counts what reaches it. Severe requests must be
// rejected (a 4xx answer or a closed connection) and never reach the
// target; Compliant ones must reach it unless stricterByDesign; the
// outcome of every tier is reported (go test -v).
func TestHTTP1Desync(t *testing.T) {
	cases := loadDesyncCases(t)
	reachedBy := map[bool][]bool{}
	forEachPath(t, func(t *testing.T, fast bool) { reachedBy[fast] = testDesync(t, cases, fast) })
	// Both request paths must agree on every case.
	if f, n := reachedBy[true], reachedBy[false]; len(f) == len(cases) && len(n) == len(cases) {
		for i, c := range cases {
			if f[i] != n[i] {
				t.Errorf("%s: case %q reached the target on the fast path %v, on net/http %v", c.file, c.Name, f[i], n[i])
			}
		}
	}
}

// testDesync replays the cases and returns, for each, whether it reached
// the target.
func testDesync(t *testing.T, cases []desyncCase, fast bool) []bool {
	var hits []bool
	var reached atomic.Int64
	target := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.Header().Set("Connection", "close")
		w.WriteHeader(200)
	}))
	port := freePort(t)
	svc := testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg", 1}))))
	svc.CustomDomain = "localhost"
	e := newEngine(t, Config{})
	e.h1fast = fast
	mustApply(t, e, testSnapshot(1, []snapshot.Service{svc},
		testTG("tg", model.ProtocolHTTP, "", target.Listener.Addr().String())))

	type outcome struct{ rejected, forwarded, other int }
	byTier := map[string]*outcome{}
	for _, c := range cases {
		before := reached.Load()
		res := sendRaw(t, port, c.rawRequest())
		hit := reached.Load() > before
		hits = append(hits, hit)
		tier := c.Expected.Tier
		if byTier[tier] == nil {
			byTier[tier] = &outcome{}
		}
		o := byTier[tier]
		rejected := !hit && (res.closed || res.status >= 400 && res.status < 500)
		switch {
		case rejected:
			o.rejected++
		case hit:
			o.forwarded++
		default:
			o.other++
		}
		if tier == "Severe" && !rejected {
			t.Errorf("%s: Severe case %q (%s) not rejected: reached target %v, answer %s",
				c.file, c.Name, c.Expected.Reason, hit, res)
		}
		if tier == "Compliant" && !hit && !stricterByDesign(&c) {
			t.Errorf("%s: Compliant case %q rejected: %s", c.file, c.Name, res)
		}
		if tier != "Severe" {
			t.Logf("%-9s %-32s %-45q → reached=%v %s", tier, c.Expected.Reason, c.Name, hit, res)
		}
	}
	tiers := make([]string, 0, len(byTier))
	for k := range byTier {
		tiers = append(tiers, k)
	}
	sort.Strings(tiers)
	for _, k := range tiers {
		o := byTier[k]
		t.Logf("%-10s %3d cases: %3d rejected, %3d forwarded, %3d other", k, o.rejected+o.forwarded+o.other, o.rejected, o.forwarded, o.other)
	}
	return hits
}

// stricterByDesign reports whether the guard rejects a case the suite
// calls Compliant on purpose: transfer codings other than a lone "chunked"
// (net/http answers those 501 anyway) and request targets that are empty
// or not ASCII.
func stricterByDesign(c *desyncCase) bool {
	te := 0
	for _, h := range c.Headers {
		if strings.EqualFold(string(h.Name), "transfer-encoding") {
			te++
			if !strings.EqualFold(strings.TrimSpace(string(h.Value)), "chunked") {
				return true
			}
		}
	}
	if te > 1 || c.URI == "" {
		return true
	}
	for i := 0; i < len(c.URI); i++ {
		if c.URI[i] >= 0x80 {
			return true
		}
	}
	return false
}

type rawResult struct {
	status int
	closed bool
	err    error
}

func (r rawResult) String() string {
	switch {
	case r.status != 0:
		return fmt.Sprintf("status %d", r.status)
	case r.closed:
		return "connection closed"
	default:
		return fmt.Sprintf("error %v", r.err)
	}
}

// sendRaw writes req on a new connection and reads the answer. (The
// connection is not half-closed: net/http takes that as the client going
// away and cancels the request, which would hide forwarding.)
func sendRaw(t *testing.T, port int32, req []byte) rawResult {
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(req); err != nil {
		return rawResult{closed: true}
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return rawResult{err: err}
		}
		return rawResult{closed: true, err: err}
	}
	resp.Body.Close()
	return rawResult{status: resp.StatusCode}
}
