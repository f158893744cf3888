package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/proxy/health"
	"github.com/trellis-mesh/trellis/internal/snapshot"
)

// recorder is an Observer keeping copies of records.
type recorder struct {
	mu   sync.Mutex
	recs []Record
}

func (r *recorder) Observe(rec *Record) {
	r.mu.Lock()
	r.recs = append(r.recs, *rec)
	r.mu.Unlock()
}

func (r *recorder) all() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Record(nil), r.recs...)
}

func TestHTTPRouting(t *testing.T) { forEachPath(t, testHTTPRouting) }

func testHTTPRouting(t *testing.T, fast bool) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	port := freePort(t)
	rules := []snapshot.Rule{
		matchRule("r-get-api", 1, &model.HTTPMatch{Method: ptr("GET"), PathMatch: &model.PathMatch{Match: model.PathMatchType{Prefix: ptr("/api/")}}}, fwd(wtg{"tg-b", 1})),
		matchRule("r-hdr", 2, &model.HTTPMatch{HeaderMatches: []model.HeaderMatch{{Name: "x-canary", Match: model.HeaderMatchType{Exact: ptr("yes")}}}}, fwd(wtg{"tg-b", 1})),
		matchRule("r-gone", 3, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Exact: ptr("/gone")}}}, fixed(404)),
		matchRule("r-err", 4, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Exact: ptr("/err")}}}, fixed(500)),
		defaultRule(fwd(wtg{"tg-a", 1})),
	}
	svc := testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, rules...))
	svc.CustomDomain = "api.example.com"
	e := newEngine(t, Config{})
	e.h1fast = fast
	mustApply(t, e, testSnapshot(1, []snapshot.Service{svc},
		testTG("tg-a", model.ProtocolHTTP, model.ProtocolVersionHTTP1, a.addr()),
		testTG("tg-b", model.ProtocolHTTP, model.ProtocolVersionHTTP1, b.addr())))
	c := httpClient(t, port)
	base := fmt.Sprintf("http://svc-1.example.on.aws:%d", port)

	tests := []struct {
		name, method, url string
		hdr               []string
		status            int
		backend           string
		seenPath          string
	}{
		{"default", "GET", base + "/", nil, 200, "a", "/"},
		{"prefix and method", "GET", base + "/api/users", nil, 200, "b", "/api/users"},
		{"method mismatch", "POST", base + "/api/users", nil, 200, "a", "/api/users"},
		{"header", "GET", base + "/x", []string{"X-Canary", "YES"}, 200, "b", "/x"},
		{"fixed 404", "GET", base + "/gone", nil, 404, "", ""},
		{"fixed 500", "GET", base + "/err?x=1", nil, 500, "", ""},
		{"normalised path matches and is sent", "GET", base + "/x/../api/./v1//%7Ea%2fb", nil, 200, "b", "/api/v1/~a%2Fb"},
		{"custom domain", "GET", "http://API.example.com./api/", nil, 200, "b", "/api/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, tt.url, nil)
			for i := 0; i+1 < len(tt.hdr); i += 2 {
				req.Header.Set(tt.hdr[i], tt.hdr[i+1])
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.status, body)
			}
			if got := resp.Header.Get("X-Backend"); got != tt.backend {
				t.Errorf("backend %q, want %q", got, tt.backend)
			}
			if tt.backend == "" && len(body) != 0 {
				t.Errorf("fixed response body %q, want empty", body)
			}
			if tt.seenPath != "" {
				if got := resp.Header.Get("X-Seen-Path"); got != tt.seenPath {
					t.Errorf("target saw path %q, want %q", got, tt.seenPath)
				}
			}
		})
	}
}

func TestUnknownHostAndGeneratedAnswers(t *testing.T) {
	forEachPath(t, testUnknownHostAndGeneratedAnswers)
}

func testUnknownHostAndGeneratedAnswers(t *testing.T, fast bool) {
	port := freePort(t)
	dead := freePort(t) // nothing listens: connection refused
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	go func() { // accepts and never answers
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	rules := []snapshot.Rule{
		matchRule("r-dead", 1, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Exact: ptr("/dead")}}}, fwd(wtg{"tg-dead", 1})),
		matchRule("r-hang", 2, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Exact: ptr("/hang")}}}, fwd(wtg{"tg-hang", 1})),
		matchRule("r-missing", 3, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Exact: ptr("/missing")}}}, fwd(wtg{"tg-missing", 1})),
		matchRule("r-h2", 4, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Exact: ptr("/h2")}}}, fwd(wtg{"tg-h2", 1})),
		defaultRule(fwd(wtg{"tg-empty", 1})),
	}
	rec := &recorder{}
	e := newEngine(t, Config{Observer: rec, ResponseHeaderTimeout: 200 * time.Millisecond})
	e.h1fast = fast
	mustApply(t, e, testSnapshot(1,
		[]snapshot.Service{testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, rules...))},
		testTG("tg-dead", model.ProtocolHTTP, "", fmt.Sprintf("127.0.0.1:%d", dead)),
		testTG("tg-hang", model.ProtocolHTTP, "", hang.Addr().String()),
		testTG("tg-h2", model.ProtocolHTTP, model.ProtocolVersionHTTP2, hang.Addr().String()),
		testTG("tg-empty", model.ProtocolHTTP, "")))
	c := httpClient(t, port)
	for _, tt := range []struct {
		url    string
		status int
		reason string
	}{
		{fmt.Sprintf("http://unknown.example:%d/", port), 404, "NoMatchingService"},
		{fmt.Sprintf("http://svc-1.example.on.aws:%d/", port), 503, "NoAvailableTargets"},
		{fmt.Sprintf("http://svc-1.example.on.aws:%d/missing", port), 503, "NoAvailableTargets"},
		{fmt.Sprintf("http://svc-1.example.on.aws:%d/dead", port), 502, "TargetConnectionError"},
		{fmt.Sprintf("http://svc-1.example.on.aws:%d/hang", port), 504, "TargetTimeout"},
		{fmt.Sprintf("http://svc-1.example.on.aws:%d/h2", port), 502, "UnsupportedProtocolVersion"},
	} {
		resp, body := get(t, c, tt.url)
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.url, resp.StatusCode, tt.status)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || body == "" {
			t.Errorf("%s: generated answer %q with content type %q, want plain text", tt.url, body, ct)
		}
		recs := rec.all()
		last := recs[len(recs)-1]
		if !last.Generated || last.Status != tt.status || last.FailureReason != tt.reason {
			t.Errorf("%s: record generated=%v status=%d reason=%q, want %d %q", tt.url, last.Generated, last.Status, last.FailureReason, tt.status, tt.reason)
		}
	}
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "CONNECT svc-1.example.on.aws:443 HTTP/1.1\r\nHost: svc-1.example.on.aws\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: "CONNECT"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 400 {
		t.Errorf("CONNECT: status %d, want 400", resp.StatusCode)
	}
}

func TestHeadersTowardTarget(t *testing.T) { forEachPath(t, testHeadersTowardTarget) }

func testHeadersTowardTarget(t *testing.T, fast bool) {
	a := newBackend(t, "a")
	port := freePort(t)
	e := newEngine(t, Config{})
	e.h1fast = fast
	mustApply(t, e, testSnapshot(1,
		[]snapshot.Service{testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg-a", 1}))))},
		testTG("tg-a", model.ProtocolHTTP, "", a.addr())))

	// A raw request, so that header names keep the spelling we choose.
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /h HTTP/1.1\r\nHost: svc-1.example.on.aws\r\n"+
		"x-amzn-lattice-identity: Principal=arn:aws:iam::1:root\r\n"+
		"X-AMZN-LATTICE-IDENTITY-TAGS: a=b\r\n"+
		"X-Amzn-Lattice-Network: SourceVpcArn=spoofed\r\n"+
		"x-amzn-lattice-target: ServiceArn=spoofed\r\n"+
		"X-Forwarded-For: 6.6.6.6\r\n"+
		"x-forwarded-port: 1\r\n"+
		"X-Forwarded-Proto: https\r\n"+
		"Connection: keep-alive, X-Hop\r\n"+
		"X-Hop: secret\r\n"+
		"Keep-Alive: timeout=5\r\n"+
		"X-Custom: kept\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := a.last().Header
	want := map[string]string{
		"X-Forwarded-For":        "127.0.0.1",
		"X-Forwarded-Port":       strconv.Itoa(int(port)),
		"X-Forwarded-Proto":      "http",
		"X-Amzn-Lattice-Network": "SourceVpcArn=" + testVPCARN,
		"X-Amzn-Lattice-Target":  "ServiceArn=" + svcARN("svc-1") + ";ServiceNetworkArn=" + testNetworkARN + ";TargetGroupArn=" + tgARN("tg-a"),
		"X-Custom":               "kept",
	}
	for k, v := range want {
		if vv := got.Values(k); len(vv) != 1 || vv[0] != v {
			t.Errorf("%s = %q, want [%q]", k, vv, v)
		}
	}
	for _, k := range []string{"X-Amzn-Lattice-Identity", "X-Amzn-Lattice-Identity-Tags", "X-Hop", "Keep-Alive", "User-Agent"} {
		if vv := got.Values(k); len(vv) != 0 {
			t.Errorf("%s reached the target: %q", k, vv)
		}
	}
}

func TestWeightedGroups(t *testing.T) {
	a, b, z := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "zero")
	port := freePort(t)
	e := newEngine(t, Config{})
	mustApply(t, e, testSnapshot(1,
		[]snapshot.Service{testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port,
			defaultRule(fwd(wtg{"tg-a", 750}, wtg{"tg-b", 250}, wtg{"tg-z", 0}))))},
		testTG("tg-a", model.ProtocolHTTP, "", a.addr()),
		testTG("tg-b", model.ProtocolHTTP, "", b.addr()),
		testTG("tg-z", model.ProtocolHTTP, "", z.addr())))
	c := httpClient(t, port)
	const n = 2000
	counts := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				resp, _ := get(t, c, fmt.Sprintf("http://svc-1.example.on.aws:%d/", port))
				mu.Lock()
				counts[resp.Header.Get("X-Backend")]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if counts["zero"] != 0 {
		t.Errorf("weight-0 group got %d requests", counts["zero"])
	}
	// The schedule is deterministic: exactly 3:1 over whole periods.
	if got := float64(counts["a"]) / n; got < 0.73 || got > 0.77 {
		t.Errorf("group a got %.3f of requests, want 0.75 (counts %v)", got, counts)
	}
}

func TestFailOpenEndToEnd(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	port := freePort(t)
	states := map[string]*health.State{}
	var mu sync.Mutex
	hf := func(key string) *health.State {
		mu.Lock()
		defer mu.Unlock()
		if states[key] == nil {
			states[key] = new(health.State)
		}
		return states[key]
	}
	e := newEngine(t, Config{Health: hf})
	tg := testTG("tg", model.ProtocolHTTP, "", a.addr(), b.addr())
	mustApply(t, e, testSnapshot(1,
		[]snapshot.Service{testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg", 1}))))}, tg))
	c := httpClient(t, port)
	url := fmt.Sprintf("http://svc-1.example.on.aws:%d/", port)
	hf(tg.Targets[0].Key("tg")).Store(health.Unhealthy)
	for range 10 {
		if resp, _ := get(t, c, url); resp.Header.Get("X-Backend") != "b" {
			t.Fatalf("unhealthy target a got traffic")
		}
	}
	hf(tg.Targets[1].Key("tg")).Store(health.Unhealthy)
	seen := map[string]bool{}
	for range 10 {
		resp, _ := get(t, c, url)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d with all targets unhealthy, want fail open", resp.StatusCode)
		}
		seen[resp.Header.Get("X-Backend")] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Errorf("fail open used %v, want both", seen)
	}
}

func TestRequestBodyAndObserver(t *testing.T) { forEachPath(t, testRequestBodyAndObserver) }

func testRequestBodyAndObserver(t *testing.T, fast bool) {
	a := newBackend(t, "a")
	port := freePort(t)
	rec := &recorder{}
	e := newEngine(t, Config{Observer: rec})
	e.h1fast = fast
	svc := testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg-a", 1}))))
	svc.AccessLogs = []snapshot.AccessLog{{DestinationARN: "arn:aws:logs:us-east-1:1:log-group:svc"}}
	svc.Networks[0].AccessLogs = []snapshot.AccessLog{{DestinationARN: "arn:aws:s3:::net-logs"}}
	mustApply(t, e, testSnapshot(1, []snapshot.Service{svc}, testTG("tg-a", model.ProtocolHTTP, "", a.addr())))
	c := httpClient(t, port)
	body := strings.Repeat("x", 100_000)
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://svc-1.example.on.aws:%d/upload?x=1", port), strings.NewReader(body))
	req.Header.Set("User-Agent", "test-agent")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if got := resp.Header.Get("X-Seen-Body"); got != "100000" {
		t.Fatalf("target received %s body bytes", got)
	}
	waitFor(t, "record", func() bool { return len(rec.all()) == 1 })
	r := rec.all()[0]
	checks := map[string][2]any{
		"ServiceID":        {r.ServiceID, "svc-1"},
		"ListenerID":       {r.ListenerID, "l-1"},
		"ListenerProtocol": {r.ListenerProtocol, "HTTP"},
		"TargetGroupID":    {r.TargetGroupID, "tg-a"},
		"TargetAddr":       {r.TargetAddr, a.addr()},
		"Method":           {r.Method, "POST"},
		"Path":             {r.Path, "/upload?x=1"},
		"Proto":            {r.Proto, "HTTP/1.1"},
		"UserAgent":        {r.UserAgent, "test-agent"},
		"Status":           {r.Status, 200},
		"BytesReceived":    {r.BytesReceived, int64(100_000)},
		"BytesSent":        {r.BytesSent, int64(1)},
		"Generated":        {r.Generated, false},
		"NetworkARN":       {r.NetworkARN, testNetworkARN},
		"AccessLogs":       {fmt.Sprint(r.AccessLogs), "[arn:aws:logs:us-east-1:1:log-group:svc arn:aws:s3:::net-logs]"},
	}
	for k, v := range checks {
		if v[0] != v[1] {
			t.Errorf("record %s = %v, want %v", k, v[0], v[1])
		}
	}
	if r.Duration <= 0 || r.Start.IsZero() {
		t.Errorf("record timing not set: %+v", r)
	}
}

// TestApplyWhileServing changes the configuration repeatedly while
// requests run: none may fail, and a long request started before the
// changes completes.
func TestApplyWhileServing(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	release := make(chan struct{})
	slow, _ := newSlowBackend(t, release)
	port := freePort(t)
	e := newEngine(t, Config{})
	snap := func(v int64, weightB int32) *snapshot.Snapshot {
		rules := []snapshot.Rule{
			matchRule("r-slow", 1, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Exact: ptr("/slow")}}}, fwd(wtg{"tg-slow", 1})),
			defaultRule(fwd(wtg{"tg-a", 10}, wtg{"tg-b", weightB})),
		}
		return testSnapshot(v, []snapshot.Service{testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, rules...))},
			testTG("tg-a", model.ProtocolHTTP, "", a.addr()),
			testTG("tg-b", model.ProtocolHTTP, "", b.addr()),
			testTG("tg-slow", model.ProtocolHTTP, "", slow))
	}
	mustApply(t, e, snap(1, 0))
	c := httpClient(t, port)
	base := fmt.Sprintf("http://svc-1.example.on.aws:%d", port)

	slowDone := make(chan error, 1)
	go func() {
		resp, err := c.Get(base + "/slow")
		if err == nil {
			var body []byte
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && (resp.StatusCode != 200 || string(body) != "slow done") {
				err = fmt.Errorf("slow request: %d %q", resp.StatusCode, body)
			}
		}
		slowDone <- err
	}()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var failures, total int
	var mu sync.Mutex
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				resp, err := c.Get(base + "/")
				ok := err == nil && resp.StatusCode == 200
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				total++
				if !ok {
					failures++
				}
				mu.Unlock()
			}
		}()
	}
	for v := int64(2); v < 40; v++ {
		mustApply(t, e, snap(v, int32(v%3)*5))
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	close(release)
	if err := <-slowDone; err != nil {
		t.Fatalf("long request across applies: %v", err)
	}
	if failures != 0 {
		t.Fatalf("%d of %d requests failed across applies", failures, total)
	}
	t.Logf("%d requests across 38 applies", total)
}

// newSlowBackend answers "slow done" once release is closed; started
// receives a value as each request arrives.
func newSlowBackend(t *testing.T, release <-chan struct{}) (addr string, started <-chan struct{}) {
	st := make(chan struct{}, 100)
	srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st <- struct{}{}
		<-release
		io.WriteString(w, "slow done")
	}))
	return srv.Listener.Addr().String(), st
}

func TestPortRemovalClosesListener(t *testing.T) {
	a := newBackend(t, "a")
	p1, p2 := freePort(t), freePort(t)
	e := newEngine(t, Config{DrainTimeout: time.Second})
	svc := testService("svc-1", "svc-1.example.on.aws",
		listener("l-1", model.ProtocolHTTP, p1, defaultRule(fwd(wtg{"tg-a", 1}))),
		listener("l-2", model.ProtocolHTTP, p2, defaultRule(fwd(wtg{"tg-a", 1}))))
	tg := testTG("tg-a", model.ProtocolHTTP, "", a.addr())
	mustApply(t, e, testSnapshot(1, []snapshot.Service{svc}, tg))
	if got := fmt.Sprint(e.Ports()); got != fmt.Sprint([]int32{min(p1, p2), max(p1, p2)}) {
		t.Fatalf("ports %s", got)
	}
	c2 := httpClient(t, p2)
	if resp, _ := get(t, c2, fmt.Sprintf("http://svc-1.example.on.aws:%d/", p2)); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	svc.Listeners = svc.Listeners[:1]
	mustApply(t, e, testSnapshot(2, []snapshot.Service{svc}, tg))
	if got := fmt.Sprint(e.Ports()); got != fmt.Sprint([]int32{p1}) {
		t.Fatalf("ports after removal %s", got)
	}
	waitFor(t, "port closed", func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p2), time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	c1 := httpClient(t, p1)
	if resp, _ := get(t, c1, fmt.Sprintf("http://svc-1.example.on.aws:%d/", p1)); resp.StatusCode != 200 {
		t.Fatalf("remaining port: status %d", resp.StatusCode)
	}
	// The port can come back at once, while the old one still drains.
	mustApply(t, e, testSnapshot(3, []snapshot.Service{testService("svc-1", "svc-1.example.on.aws",
		listener("l-1", model.ProtocolHTTP, p1, defaultRule(fwd(wtg{"tg-a", 1}))),
		listener("l-2", model.ProtocolHTTP, p2, defaultRule(fwd(wtg{"tg-a", 1}))))}, tg))
	c3 := httpClient(t, p2)
	if resp, _ := get(t, c3, fmt.Sprintf("http://svc-1.example.on.aws:%d/", p2)); resp.StatusCode != 200 {
		t.Fatalf("re-added port: status %d", resp.StatusCode)
	}
}

func TestIdleTimeoutClosesClientConnection(t *testing.T) {
	forEachPath(t, testIdleTimeoutClosesClientConnection)
}

func testIdleTimeoutClosesClientConnection(t *testing.T, fast bool) {
	a := newBackend(t, "a")
	port := freePort(t)
	e := newEngine(t, Config{})
	e.h1fast = fast
	svc := testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, port, defaultRule(fwd(wtg{"tg-a", 1}))))
	svc.IdleTimeoutSeconds = 1
	mustApply(t, e, testSnapshot(1, []snapshot.Service{svc}, testTG("tg-a", model.ProtocolHTTP, "", a.addr())))
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: svc-1.example.on.aws\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("read after idle: %v, want EOF", err)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 3*time.Second {
		t.Errorf("closed after %v, want about 1 s", d)
	}
}
