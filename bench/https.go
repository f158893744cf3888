package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The HTTPS columns: each proxy terminates TLS on a port of its own and
// forwards in plain text to the same backend. Every side uses an ECDSA
// P-256 certificate and TLS 1.3 with TLS_AES_128_GCM_SHA256, the suite
// Go's server (Trellis, Caddy) picks on a machine with AES instructions;
// nginx and HAProxy are told to use it too, since OpenSSL prefers
// AES-256. h2load connects to the port (--connect-to) while the URL
// carries the server name, which Trellis routes by: the service's
// generated name for Trellis, peerTLSName for the others, whose
// certificate is made here. The backend serves no TLS, so direct has no
// HTTPS column.

// peerTLSName is the server name of nginx's, HAProxy's and Caddy's
// certificate.
const peerTLSName = "bench.trellis.test"

// tlsSuite is the TLS 1.3 cipher suite every side uses, in OpenSSL's
// spelling.
const tlsSuite = "TLS_AES_128_GCM_SHA256"

// peerCert is the peers' certificate: the PEM files' paths.
type peerCert struct {
	cert, key string
	both      string // certificate then key, as HAProxy takes them
}

// writePeerCert makes a self-signed ECDSA P-256 certificate for
// peerTLSName in dir.
func writePeerCert(dir string) (peerCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return peerCert{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: peerTLSName},
		DNSNames:     []string{peerTLSName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return peerCert{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return peerCert{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	pc := peerCert{cert: filepath.Join(dir, "peer-cert.pem"), key: filepath.Join(dir, "peer-key.pem"), both: filepath.Join(dir, "peer.pem")}
	for path, data := range map[string][]byte{pc.cert: certPEM, pc.key: keyPEM, pc.both: append(append([]byte{}, certPEM...), keyPEM...)} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return peerCert{}, err
		}
	}
	return pc, nil
}

// peerCertFor returns the peers' certificate, made once per run.
func peerCertFor(cfg *config) (peerCert, error) {
	if cfg.peerCert.cert == "" {
		pc, err := writePeerCert(cfg.work)
		if err != nil {
			return peerCert{}, fmt.Errorf("making the peers' certificate: %w", err)
		}
		cfg.peerCert = pc
	}
	return cfg.peerCert, nil
}

// setTLS gives t its HTTPS address: the server name name on port.
func (t *target) setTLS(cfg *config, name string, port int) {
	t.tlsURL = "https://" + name + ":" + strconv.Itoa(port) + "/"
	t.tlsConnect = cfg.addr(port - cfg.basePort)
}

// runH2loadTLS measures HTTPS throughput with h2load: HTTP/1.1 by ALPN
// with one request at a time per connection (h1), or HTTP/2 with
// cfg.h2Streams streams per connection.
func runH2loadTLS(ctx context.Context, cfg *config, t *target, h1 bool, seconds int) (throughput, error) {
	streams := cfg.h2Streams
	args := []string{"--connect-to=" + t.tlsConnect}
	if h1 {
		streams = 1
		args = append(args, "--h1")
	}
	args = append(args, "-c", strconv.Itoa(cfg.conns), "-m", strconv.Itoa(streams), "-t", strconv.Itoa(cfg.threads),
		"-D", strconv.Itoa(seconds))
	return h2load(ctx, args, t.tlsURL, "")
}

// probeTLS sends a few HTTPS requests of each protocol; it fails unless
// all of them get 2xx.
func probeTLS(ctx context.Context, t *target) error {
	for _, h1 := range []bool{true, false} {
		args := []string{"--connect-to=" + t.tlsConnect, "-n", "20", "-c", "1"}
		if h1 {
			args = append(args, "--h1")
		}
		res, err := h2load(ctx, args, t.tlsURL, "")
		if err != nil {
			return err
		}
		if res.requests != 20 || res.errors != 0 {
			return fmt.Errorf("HTTPS probe (h1=%v): %d of 20 requests done, %d failed or not 2xx", h1, res.requests, res.errors)
		}
	}
	return nil
}

// renderHTTPS is the HTTPS table, for the targets that have it.
func renderHTTPS(b *strings.Builder, cfg *config, rows []*row) {
	var any bool
	for _, r := range rows {
		any = any || r.s1 != nil || r.s2 != nil
	}
	if !any {
		return
	}
	secs := int(cfg.duration / time.Second)
	fmt.Fprintf(b, "\n## HTTPS\n\nTLS 1.3, ECDSA P-256 certificates, %s on every side. HTTP/1.1: `h2load --h1 -c%d -m1 -t%d -D%d`;\n"+
		"HTTP/2: `h2load -c%d -m%d -t%d -D%d`; each after a %s warm-up, to the target's port with its server name\n"+
		"(`--connect-to`). The backend is reached in plain text, as in the table above.\n\n",
		tlsSuite, cfg.conns, cfg.threads, secs, cfg.conns, cfg.h2Streams, cfg.threads, secs, cfg.warmup)
	b.WriteString("| target | HTTPS HTTP/1.1 req/s | CPU µs/req | HTTPS HTTP/2 req/s | CPU µs/req |\n|---|--:|--:|--:|--:|\n")
	for _, r := range rows {
		if r.s1 == nil && r.s2 == nil {
			continue
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", r.t.name, rps(r.s1), cpuOf(r.s1), rps(r.s2), cpuOf(r.s2))
	}
}
