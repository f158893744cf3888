package main

import (
	"os"
	"strings"
	"testing"
)

// TestPeerHeadersSetting: BENCH_PEER_HEADERS=0 leaves the five headers
// out of every peer's configuration; by default all three send them.
func TestPeerHeadersSetting(t *testing.T) {
	t.Setenv("BENCH_PEER_HEADERS", "")
	on := loadConfig()
	if !on.peerHeaders {
		t.Fatal("peer headers off by default")
	}
	for name, conf := range map[string]string{"nginx": nginxHeaders(on), "haproxy": haproxyHeaders(on), "caddy": caddyHeaders(on)} {
		for _, want := range []string{"X-Forwarded-Port", "X-Amzn-Lattice-Network", peerNetworkHdr, "X-Amzn-Lattice-Target", peerTargetHdr} {
			if !strings.Contains(conf, want) {
				t.Errorf("%s configuration lacks %q:\n%s", name, want, conf)
			}
		}
	}
	t.Setenv("BENCH_PEER_HEADERS", "0")
	off := loadConfig()
	if off.peerHeaders || nginxHeaders(off)+haproxyHeaders(off)+caddyHeaders(off) != "" {
		t.Fatal("BENCH_PEER_HEADERS=0 did not turn the peer headers off")
	}
}

// TestTreeTicks: the CPU reading covers the process asked for, by pid.
func TestTreeTicks(t *testing.T) {
	ticks := treeTicks([]int{os.Getpid()})
	if _, ok := ticks[os.Getpid()]; !ok {
		t.Fatalf("no reading for this process in %v", ticks)
	}
}
