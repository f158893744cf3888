package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/snapshot"
	"github.com/trellis-mesh/trellis/internal/testnet"
)

// desyncVectors is where the HTTP/1.1 request-smuggling suite is kept,
// beside the repository (reference: /work/shared/vectors/README.md).
const desyncVectors = "../../../shared/vectors/http1-desync"

// TestHTTP1Desync replays every desync vector against a real listener with
// a real target that counts what reaches it. Severe requests must be
// rejected (a 4xx answer or a closed connection) and never reach the
// target; Compliant ones must reach it unless stricterByDesign; the
// outcome of every tier is reported (go test -v).
func TestHTTP1Desync(t *testing.T) {
	cases := testnet.LoadDesync(t, desyncVectors)
	reachedBy := map[bool][]bool{}
	forEachPath(t, func(t *testing.T, fast bool) { reachedBy[fast] = testDesync(t, cases, fast) })
	// Both request paths must agree on every case.
	if f, n := reachedBy[true], reachedBy[false]; len(f) == len(cases) && len(n) == len(cases) {
		for i, c := range cases {
			if f[i] != n[i] {
				t.Errorf("%s: case %q reached the target on the fast path %v, on net/http %v", c.File, c.Name, f[i], n[i])
			}
		}
	}
}

// testDesync replays the cases and returns, for each, whether it reached
// the target.
func testDesync(t *testing.T, cases []testnet.DesyncCase, fast bool) []bool {
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
		res := sendRaw(t, port, c.Raw())
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
				c.File, c.Name, c.Expected.Reason, hit, res)
		}
		if tier == "Compliant" && !hit && !stricterByDesign(&c) {
			t.Errorf("%s: Compliant case %q rejected: %s", c.File, c.Name, res)
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
func stricterByDesign(c *testnet.DesyncCase) bool {
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
