package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
)

// TestPeerCert: the peers' files hold one ECDSA key pair whose
// certificate names peerTLSName, and HAProxy's file holds the same pair.
func TestPeerCert(t *testing.T) {
	pc, err := writePeerCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(pc.cert, pc.key)
	if err != nil {
		t.Fatalf("certificate and key: %v", err)
	}
	if _, err := tls.LoadX509KeyPair(pc.both, pc.both); err != nil {
		t.Fatalf("HAProxy's file: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname(peerTLSName); err != nil {
		t.Error(err)
	}
	if leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("key algorithm %v, want ECDSA", leaf.PublicKeyAlgorithm)
	}
	if fi, err := os.Stat(pc.key); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("key file mode %v, %v: want it private", fi.Mode(), err)
	}
}

// TestRenderHTTPS: the HTTPS table lists the targets measured over TLS,
// and is left out when none was.
func TestRenderHTTPS(t *testing.T) {
	cfg := &config{conns: 64, threads: 2, h2Streams: 10}
	rows := []*row{
		{t: &target{name: "direct"}},
		{t: &target{name: "nginx"}, s1: &throughput{rps: 41262, cpuUS: 17.4}, s2: &throughput{rps: 47238, cpuUS: 16.1}},
	}
	var b strings.Builder
	renderHTTPS(&b, cfg, rows)
	out := b.String()
	if !strings.Contains(out, "| nginx | 41262 | 17.4 | 47238 | 16.1 |") || strings.Contains(out, "| direct") {
		t.Errorf("HTTPS table:\n%s", out)
	}
	b.Reset()
	renderHTTPS(&b, cfg, rows[:1])
	if b.Len() != 0 {
		t.Errorf("HTTPS table without HTTPS rows:\n%s", b.String())
	}
}
