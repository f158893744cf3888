package proxy

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/proxy/health"
	"github.com/trellis-mesh/trellis/internal/snapshot"
	"github.com/trellis-mesh/trellis/internal/urlpath"
)

// compileTest compiles snap without opening ports.
func compileTest(t testing.TB, cfg Config, snap *snapshot.Snapshot) *table {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	e := New(cfg)
	tb, _, err := e.compile(snap)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return tb
}

// routingSnapshot is one service on port 80 with rules of every kind.
func routingSnapshot() *snapshot.Snapshot {
	rules := []snapshot.Rule{
		matchRule("r-method", 1, &model.HTTPMatch{Method: ptr("DELETE")}, fixed(404)),
		matchRule("r-exact", 2, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Exact: ptr("/exact")}}}, fwd(wtg{"tg-a", 1})),
		matchRule("r-exact-cs", 3, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Exact: ptr("/Case")}, CaseSensitive: ptr(true)}}, fwd(wtg{"tg-b", 1})),
		matchRule("r-prefix", 4, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Prefix: ptr("/api/")}}}, fwd(wtg{"tg-b", 1})),
		matchRule("r-tilde", 5, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Prefix: ptr("/%7euser")}}}, fixed(500)),
		matchRule("r-hdr-exact", 6, &model.HTTPMatch{HeaderMatches: []model.HeaderMatch{{Name: "x-env", Match: model.HeaderMatchType{Exact: ptr("Canary")}}}}, fwd(wtg{"tg-b", 1})),
		matchRule("r-hdr-cs", 7, &model.HTTPMatch{HeaderMatches: []model.HeaderMatch{{Name: "X-Tenant", Match: model.HeaderMatchType{Prefix: ptr("Org-")}, CaseSensitive: ptr(true)}}}, fwd(wtg{"tg-b", 1})),
		matchRule("r-hdr-contains", 8, &model.HTTPMatch{HeaderMatches: []model.HeaderMatch{{Name: "user-agent", Match: model.HeaderMatchType{Contains: ptr("BOT")}}}}, fixed(404)),
		matchRule("r-and", 9, &model.HTTPMatch{
			Method:        ptr("POST"),
			PathMatch:     &model.PathMatch{Match: model.PathMatchType{Prefix: ptr("/upload")}},
			HeaderMatches: []model.HeaderMatch{{Name: "content-type", Match: model.HeaderMatchType{Prefix: ptr("multipart/")}}},
		}, fwd(wtg{"tg-b", 1})),
		matchRule("r-host", 10, &model.HTTPMatch{HeaderMatches: []model.HeaderMatch{{Name: "Host", Match: model.HeaderMatchType{Prefix: ptr("custom.")}}}}, fixed(500)),
		defaultRule(fwd(wtg{"tg-a", 1})),
	}
	svc := testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTP, 80, rules...))
	svc.CustomDomain = "Custom.Example.com."
	return testSnapshot(1, []snapshot.Service{svc},
		testTG("tg-a", model.ProtocolHTTP, model.ProtocolVersionHTTP1, "127.0.0.1:1"),
		testTG("tg-b", model.ProtocolHTTP, model.ProtocolVersionHTTP1, "127.0.0.1:2"))
}

func TestRouteMatching(t *testing.T) {
	tb := compileTest(t, Config{}, routingSnapshot())
	pt := tb.ports[80]
	tests := []struct {
		name, host, method, path string
		hdr                      []string
		want                     string // rule ID, "" for no listener
	}{
		{"unknown host", "other.example", "GET", "/", nil, ""},
		{"default", "svc-1.example.on.aws", "GET", "/", nil, "rule-default"},
		{"host with port and case", "SVC-1.Example.ON.aws:80", "GET", "/", nil, "rule-default"},
		{"host trailing dot", "svc-1.example.on.aws.", "GET", "/", nil, "rule-default"},
		{"custom domain", "custom.example.com", "GET", "/", nil, "r-host"},
		{"method exact", "svc-1.example.on.aws", "DELETE", "/", nil, "r-method"},
		{"method case-sensitive", "svc-1.example.on.aws", "delete", "/", nil, "rule-default"},
		{"path exact", "svc-1.example.on.aws", "GET", "/exact", nil, "r-exact"},
		{"path exact folds by default", "svc-1.example.on.aws", "GET", "/EXACT", nil, "r-exact"},
		{"path exact is exact", "svc-1.example.on.aws", "GET", "/exact/", nil, "rule-default"},
		{"path case-sensitive hit", "svc-1.example.on.aws", "GET", "/Case", nil, "r-exact-cs"},
		{"path case-sensitive miss", "svc-1.example.on.aws", "GET", "/case", nil, "rule-default"},
		{"path prefix", "svc-1.example.on.aws", "GET", "/api/v1", nil, "r-prefix"},
		{"path prefix needs the slash", "svc-1.example.on.aws", "GET", "/api", nil, "rule-default"},
		{"pattern percent-normalised", "svc-1.example.on.aws", "GET", "/~user/x", nil, "r-tilde"},
		{"header exact folds", "svc-1.example.on.aws", "GET", "/", []string{"X-Env", "canary"}, "r-hdr-exact"},
		{"header exact is exact", "svc-1.example.on.aws", "GET", "/", []string{"X-Env", "canary2"}, "rule-default"},
		{"header any value", "svc-1.example.on.aws", "GET", "/", []string{"X-Env", "prod", "X-Env", "CANARY"}, "r-hdr-exact"},
		{"header prefix case-sensitive", "svc-1.example.on.aws", "GET", "/", []string{"X-Tenant", "Org-1"}, "r-hdr-cs"},
		{"header prefix case-sensitive miss", "svc-1.example.on.aws", "GET", "/", []string{"X-Tenant", "org-1"}, "rule-default"},
		{"header contains", "svc-1.example.on.aws", "GET", "/", []string{"User-Agent", "googlebot/2"}, "r-hdr-contains"},
		{"and all", "svc-1.example.on.aws", "POST", "/upload/1", []string{"Content-Type", "multipart/form-data"}, "r-and"},
		{"and missing header", "svc-1.example.on.aws", "POST", "/upload/1", nil, "rule-default"},
		{"and wrong method", "svc-1.example.on.aws", "PUT", "/upload/1", []string{"Content-Type", "multipart/form-data"}, "rule-default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for i := 0; i+1 < len(tt.hdr); i += 2 {
				h.Add(tt.hdr[i], tt.hdr[i+1])
			}
			q := &request{method: tt.method, path: tt.path, host: tt.host, header: httpHeader(h)}
			lr, r := pt.route(q)
			switch {
			case tt.want == "" && lr != nil:
				t.Fatalf("routed to listener %s, want none", lr.id)
			case tt.want == "":
			case r == nil:
				t.Fatalf("no rule matched, want %s", tt.want)
			case r.id != tt.want:
				t.Fatalf("rule %s matched, want %s", r.id, tt.want)
			}
		})
	}
}

func TestCompileDisablesBrokenObjects(t *testing.T) {
	snap := routingSnapshot()
	l := &snap.Services[0].Listeners[0]
	// A rule with two path kinds is disabled; the rest still routes.
	bad := matchRule("r-bad", 0, &model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Exact: ptr("/x"), Prefix: ptr("/x")}}}, fixed(404))
	l.Rules = append([]snapshot.Rule{bad}, l.Rules...)
	// A second service with an HTTPS listener on the HTTP port conflicts.
	svc2 := testService("svc-2", "svc-2.example.on.aws", listener("l-2", model.ProtocolHTTPS, 80, defaultRule(fixed(404))))
	svc2.Certificate = newTestCA(t).issue(t, "svc-2.example.on.aws")
	// A third has an HTTPS listener without certificate.
	svc3 := testService("svc-3", "svc-3.example.on.aws", listener("l-3", model.ProtocolHTTPS, 443, defaultRule(fixed(404))))
	snap.Services = append(snap.Services, svc2, svc3)
	tb := compileTest(t, Config{}, snap)
	if len(tb.portList) != 1 || tb.portList[0] != 80 {
		t.Fatalf("ports = %v, want [80]", tb.portList)
	}
	pt := tb.ports[80]
	if pt.lookupHost("svc-2.example.on.aws") != nil {
		t.Error("conflicting HTTPS listener on an HTTP port was placed")
	}
	lr := pt.lookupHost("svc-1.example.on.aws")
	for _, r := range lr.rules {
		if r.id == "r-bad" {
			t.Error("broken rule compiled")
		}
	}
	if len(lr.rules) != len(l.Rules)-1 {
		t.Errorf("%d rules, want %d", len(lr.rules), len(l.Rules)-1)
	}
}

func TestCompileNothingUsable(t *testing.T) {
	svc := testService("svc-1", "svc-1.example.on.aws", listener("l-1", model.ProtocolHTTPS, 443, defaultRule(fixed(404))))
	e := New(Config{Logger: testLogger(t)})
	if err := e.Apply(testSnapshot(1, []snapshot.Service{svc})); err == nil {
		t.Fatal("apply of a snapshot without a usable listener succeeded")
	}
	// An empty snapshot is a valid configuration.
	if err := e.Apply(testSnapshot(2, nil)); err != nil {
		t.Fatalf("apply empty: %v", err)
	}
}

func TestSmoothSchedule(t *testing.T) {
	tests := []struct {
		w    []int
		want []uint8
	}{
		{[]int{1, 1}, []uint8{0, 1}},
		{[]int{500, 500}, []uint8{0, 1}},
		{[]int{2, 1}, []uint8{0, 1, 0}},
		{[]int{5, 1, 1}, []uint8{0, 0, 1, 0, 2, 0, 0}},
	}
	for _, tt := range tests {
		got := smoothSchedule(tt.w)
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("smoothSchedule(%v) = %v, want %v", tt.w, got, tt.want)
		}
	}
	s := smoothSchedule([]int{999, 998, 1, 7})
	counts := make([]int, 4)
	for _, i := range s {
		counts[i]++
	}
	if fmt.Sprint(counts) != "[999 998 1 7]" {
		t.Errorf("counts %v", counts)
	}
}

func TestPickFailOpen(t *testing.T) {
	states := map[string]*health.State{}
	hf := func(key string) *health.State {
		if states[key] == nil {
			states[key] = new(health.State)
		}
		return states[key]
	}
	snap := testSnapshot(1, []snapshot.Service{testService("svc-1", "a.example", listener("l", model.ProtocolHTTP, 80, defaultRule(fwd(wtg{"tg", 1}))))},
		testTG("tg", model.ProtocolHTTP, "", "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"))
	snap.TargetGroups[0].Targets = append(snap.TargetGroups[0].Targets, snapshot.Target{ID: "i-unknown", Port: 80}) // no address
	tb := compileTest(t, Config{Health: hf}, snap)
	g := tb.ports[80].lookupHost("a.example").rules[0].fwd.pick().tg
	if len(g.targets) != 3 {
		t.Fatalf("%d targets, want 3 (the one without address left out)", len(g.targets))
	}
	seen := func(n int) map[string]int {
		m := map[string]int{}
		for range n {
			m[g.pick().addr]++
		}
		return m
	}
	if m := seen(30); len(m) != 3 || m["127.0.0.1:1"] != 10 {
		t.Errorf("round robin over healthy targets: %v", m)
	}
	states["tg/10.0.0.1/1"].Store(health.Unhealthy)
	if m := seen(30); len(m) != 2 || m["127.0.0.1:1"] != 0 {
		t.Errorf("with one unhealthy: %v", m)
	}
	for _, s := range states {
		s.Store(health.Unhealthy)
	}
	if m := seen(30); len(m) != 3 {
		t.Errorf("all unhealthy must fail open over all: %v", m)
	}
}

// benchTable is 50 services of 10 rules each on one port.
func benchSnapshot() *snapshot.Snapshot {
	var svcs []snapshot.Service
	var tgs []snapshot.TargetGroup
	for i := range 50 {
		a, b := fmt.Sprintf("tg-%d-a", i), fmt.Sprintf("tg-%d-b", i)
		var rules []snapshot.Rule
		for j := range 9 {
			rules = append(rules, matchRule(fmt.Sprintf("r-%d-%d", i, j), int32(j+1), &model.HTTPMatch{
				Method:        ptr("GET"),
				PathMatch:     &model.PathMatch{Match: model.PathMatchType{Prefix: ptr(fmt.Sprintf("/api/v%d/", j))}},
				HeaderMatches: []model.HeaderMatch{{Name: "x-tenant", Match: model.HeaderMatchType{Exact: ptr(fmt.Sprintf("tenant-%d", j))}}},
			}, fwd(wtg{a, 80}, wtg{b, 20})))
		}
		rules = append(rules, defaultRule(fwd(wtg{a, 1})))
		svcs = append(svcs, testService(fmt.Sprintf("svc-%03d", i), fmt.Sprintf("svc-%03d.example.on.aws", i), listener(fmt.Sprintf("l-%03d", i), model.ProtocolHTTP, 80, rules...)))
		tgs = append(tgs,
			testTG(a, model.ProtocolHTTP, "", "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"),
			testTG(b, model.ProtocolHTTP, "", "10.0.1.1:80", "10.0.1.2:80"))
	}
	return testSnapshot(1, svcs, tgs...)
}

// BenchmarkRoute measures the whole routing path of a request: host
// lookup, path normalisation, rule match (the 8th of 10 rules), weighted
// group pick and round-robin target pick with health reads.
func BenchmarkRoute(b *testing.B) {
	states := map[string]*health.State{}
	hf := func(key string) *health.State {
		s := new(health.State)
		states[key] = s
		return s
	}
	tb := compileTest(b, Config{Health: hf}, benchSnapshot())
	pt := tb.ports[80]
	h := http.Header{}
	h.Set("X-Tenant", "tenant-7")
	h.Set("User-Agent", "bench")
	h.Set("Accept", "*/*")
	b.ReportAllocs()
	for b.Loop() {
		path, err := urlpath.Normalize("/api/v7/users/42")
		if err != nil {
			b.Fatal(err)
		}
		q := request{method: "GET", path: path, host: "SVC-025.example.on.aws:80", header: httpHeader(h)}
		_, r := pt.route(&q)
		if r == nil || r.fwd == nil {
			b.Fatal("no route")
		}
		g := r.fwd.pick()
		if g.tg.pick() == nil {
			b.Fatal("no target")
		}
	}
}

// FuzzRoute routes random requests against a compiled table: it must
// never panic, and a matched rule must belong to the host's listener.
func FuzzRoute(f *testing.F) {
	tb := compileTest(f, Config{}, routingSnapshot())
	pt := tb.ports[80]
	f.Add("svc-1.example.on.aws", "GET", "/api/x", "X-Env", "canary")
	f.Add("custom.example.com:443", "POST", "/upload/%2e%2e/x", "Content-Type", "multipart/x")
	f.Add("[::1]:80", "DELETE", "//", "", "")
	f.Add("svc-1.example.on.aws.", "GET", "/%7euser", "User-Agent", "BOT")
	f.Fuzz(func(t *testing.T, host, method, path, hname, hvalue string) {
		h := http.Header{}
		if hname != "" {
			h[http.CanonicalHeaderKey(hname)] = []string{hvalue}
		}
		np, err := urlpath.Normalize(path)
		if err != nil {
			return
		}
		q := &request{method: method, path: np, host: host, header: httpHeader(h)}
		lr, r := pt.route(q)
		if lr == nil {
			return
		}
		if r == nil {
			t.Fatalf("listener %s has a default rule but nothing matched", lr.id)
		}
		if r.fwd != nil {
			if g := r.fwd.pick(); g == nil || g.tg.pick() == nil {
				t.Fatal("forward rule without target")
			}
		}
	})
}
