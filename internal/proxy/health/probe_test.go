package health

import (
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
)

func TestParseMatcher(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		accept  []int
		reject  []int
		wantErr bool
	}{
		{name: "single", in: "200", accept: []int{200}, reject: []int{201, 199, 404}},
		{name: "list", in: "200,202", accept: []int{200, 202}, reject: []int{201, 203}},
		{name: "range", in: "200-299", accept: []int{200, 204, 299}, reject: []int{300, 199}},
		{name: "mixed", in: "200,302-304, 404", accept: []int{200, 302, 303, 304, 404}, reject: []int{301, 305, 500}},
		{name: "empty", in: "", wantErr: true},
		{name: "letters", in: "2xx", wantErr: true},
		{name: "reversed", in: "299-200", wantErr: true},
		{name: "out of range", in: "99", wantErr: true},
		{name: "dangling dash", in: "200-", wantErr: true},
		{name: "dangling comma", in: "200,", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseMatcher(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseMatcher(%q) error %v, want error %v", tc.in, err, tc.wantErr)
			}
			for _, c := range tc.accept {
				if !m.match(c) {
					t.Errorf("%q rejects %d", tc.in, c)
				}
			}
			for _, c := range tc.reject {
				if m.match(c) {
					t.Errorf("%q accepts %d", tc.in, c)
				}
			}
		})
	}
}

func FuzzParseMatcher(f *testing.F) {
	for _, s := range []string{"200", "200,202", "200-299", "-", ",", "1-2-3", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseMatcher(s)
		if err == nil && len(m) == 0 {
			t.Fatalf("parseMatcher(%q) accepted nothing without error", s)
		}
		for _, r := range m {
			if r.lo > r.hi || r.lo < 100 || r.hi > 599 {
				t.Fatalf("parseMatcher(%q) gave range %v", s, r)
			}
		}
	})
}

func TestNext(t *testing.T) {
	const ok, fail = true, false
	type step struct {
		ok   bool
		want Status
	}
	for _, tc := range []struct {
		name  string
		start Status
		steps []step
	}{
		{"initial passes one check", Initial, []step{{ok, Healthy}}},
		{"initial fails to threshold", Initial, []step{{fail, Initial}, {fail, Initial}, {fail, Unhealthy}}},
		{"initial failures reset by success", Initial, []step{{fail, Initial}, {fail, Initial}, {ok, Healthy}}},
		{"healthy fails to threshold", Healthy, []step{{fail, Healthy}, {fail, Healthy}, {fail, Unhealthy}}},
		{"healthy failure streak broken", Healthy, []step{{fail, Healthy}, {fail, Healthy}, {ok, Healthy}, {fail, Healthy}, {fail, Healthy}}},
		{"unhealthy recovers after threshold", Unhealthy, []step{{ok, Unhealthy}, {ok, Unhealthy}, {ok, Unhealthy}, {ok, Healthy}}},
		{"unhealthy success streak broken", Unhealthy, []step{{ok, Unhealthy}, {ok, Unhealthy}, {fail, Unhealthy}, {ok, Unhealthy}, {ok, Unhealthy}, {ok, Unhealthy}, {ok, Healthy}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := verdict{tc.start, ""}
			if tc.start == Unhealthy {
				v.reason = ReasonTimeout
			}
			var c counters
			for i, s := range tc.steps {
				reason := ""
				if !s.ok {
					reason = ReasonTimeout
				}
				v = next(v, &c, s.ok, reason, 4, 3)
				if v.status != s.want {
					t.Fatalf("step %d (ok=%v): %v, want %v", i, s.ok, v.status, s.want)
				}
				if v.status == Healthy && v.reason != "" {
					t.Fatalf("step %d: healthy with reason %q", i, v.reason)
				}
				if v.status == Unhealthy && v.reason != ReasonTimeout {
					t.Fatalf("step %d: unhealthy with reason %q", i, v.reason)
				}
			}
		})
	}
}

func TestNewProbeConfig(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	str := func(v string) *string { return &v }
	hc := &model.HealthCheckConfig{Protocol: model.ProtocolHTTPS, ProtocolVersion: model.ProtocolVersionHTTP2,
		Port: i32(8081), Path: str("/healthz"), HealthCheckIntervalSeconds: i32(10), HealthCheckTimeoutSeconds: i32(20),
		HealthyThresholdCount: i32(3), UnhealthyThresholdCount: i32(4), Matcher: &model.Matcher{HTTPCode: str("200-204")}}
	p := newProbeConfig(hc, "10.0.0.7:8080", 0.5)
	want := probeConfig{address: "10.0.0.7:8081", https: true, http2: true, path: "/healthz", matcher: "200-204",
		interval: 5 * time.Second, timeout: 5 * time.Second /* capped at the interval */, healthyN: 3, unhealthyN: 4}
	if p != want {
		t.Errorf("probe config\n %+v\nwant\n %+v", p, want)
	}
	p = newProbeConfig(&model.HealthCheckConfig{Port: i32(0)}, "[fd00::1]:80", 0)
	want = probeConfig{address: "[fd00::1]:80", path: "/", matcher: "200", interval: 30 * time.Second,
		timeout: 5 * time.Second, healthyN: 5, unhealthyN: 2}
	if p != want {
		t.Errorf("default probe config\n %+v\nwant\n %+v", p, want)
	}
}
