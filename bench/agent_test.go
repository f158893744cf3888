package main

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

func TestParseHosts(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want map[string]string
	}{
		{
			name: "machine lines are not aliases",
			in: "127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n" + hostsMarker + "\n" +
				"127.255.43.161\tpayments\n127.255.1.2\tsvc-001\n",
			want: map[string]string{"payments": "127.255.43.161", "svc-001": "127.255.1.2"},
		},
		{
			name: "no aliases yet",
			in:   "127.0.0.1 localhost\n" + hostsMarker + "\n",
			want: map[string]string{},
		},
		{
			name: "no marker",
			in:   "127.0.0.1 localhost\n",
			want: map[string]string{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseHosts(tc.in); !maps.Equal(got, tc.want) {
				t.Errorf("parseHosts = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWithAlias(t *testing.T) {
	// As internal/agent publishes it for an http service with the defaults.
	const doc = `{"v":1,"protocol":"http","aliases":[{"dnsName":"payments","port":8080}],"idleMs":300000,` +
		`"perRequestMs":15000,"retry":{"num":2,"on":97,"budgetPercent":20},"outlier":{"consecutive5xx":5},"breaker":{"maxRequests":1024}}`
	got, err := withAlias(doc, "svc-001", 8080)
	if err != nil {
		t.Fatal(err)
	}
	var before, after map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(got), &after); err != nil {
		t.Fatal(err)
	}
	if a := string(after["aliases"]); a != `[{"dnsName":"svc-001","port":8080}]` {
		t.Errorf("aliases = %s", a)
	}
	delete(before, "aliases")
	delete(after, "aliases")
	if !maps.EqualFunc(before, after, func(a, b json.RawMessage) bool { return string(a) == string(b) }) {
		t.Errorf("other members changed: %s", got)
	}
	if _, err := withAlias(`{"v":1}`, "x", 1); err == nil {
		t.Error("withAlias accepted a document without aliases")
	}
}

func TestRenderAgentTargets(t *testing.T) {
	mem := []memUse{
		{name: "client agent", idleKB: 22 * 1024, afterKB: 30 * 1024},
		{name: "server agent", idleKB: 19 * 1024, afterKB: 29 * 1024},
		{name: "registry (trellis up)", aside: true, idleKB: 60 * 1024, afterKB: 61 * 1024},
	}
	if got := partsRSS(mem); got != "30.0 + 29.0 MB" {
		t.Errorf("partsRSS = %q", got)
	}
	var b strings.Builder
	renderAgents(&b, &config{agentServices: 100}, &row{t: &target{name: "agents"}, mem: mem}, nil)
	out := b.String()
	for _, want := range []string{"| client agent RSS idle ≤ 20.0 MB | 22.0 MB | **no** |", "| server agent RSS idle ≤ 20.0 MB | 19.0 MB | yes |"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "registry (trellis up) RSS idle") {
		t.Errorf("the registry is judged against the agents' target:\n%s", out)
	}
}
