package egress

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// testCA issues certificates for the tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue makes a leaf certificate for name (and 127.0.0.1), with uris as
// URI SANs.
func (ca *testCA) issue(t testing.TB, name string, uris ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, u := range uris {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestMutualTLS: endpoints are reached over TLS 1.3 with a client
// certificate, HTTP/1.1 or h2 by ALPN as the protocol says.
func TestMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	b := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer := ""
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			peer = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		fmt.Fprintf(w, "%s %s", r.Proto, peer)
	}))
	b.EnableHTTP2 = true
	b.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted case's handshake errors
	b.TLS = &tls.Config{
		Certificates: []tls.Certificate{ca.issue(t, "orders.internal")},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: ca.pool,
		MinVersion: tls.VersionTLS13,
	}
	b.StartTLS()
	t.Cleanup(b.Close)

	clientCert := ca.issue(t, "agent-7")
	for _, tc := range []struct {
		name       string
		proto      Protocol
		serverName string
		want       string
	}{
		{"http by IP", HTTP, "", "HTTP/1.1 agent-7"},
		{"http2 by name", HTTP2, "orders.internal", "HTTP/2.0 agent-7"},
		{"grpc by name", GRPC, "orders.internal", "HTTP/2.0 agent-7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProxy(t, Config{})
			p.SetEndpoints("orders", []Endpoint{{Addr: b.Listener.Addr().String()}})
			pol := Policy{Protocol: tc.proto, TLS: &tls.Config{
				RootCAs: ca.pool, Certificates: []tls.Certificate{clientCert},
				ServerName: tc.serverName, MinVersion: tls.VersionTLS13,
			}}
			addr := listen(t, p, "orders", pol)
			if r := get(t, newClient(t), addr); r.status != 200 || r.body != tc.want {
				t.Fatalf("got %d %q, want %q", r.status, r.body, tc.want)
			}
		})
	}

	t.Run("untrusted endpoint", func(t *testing.T) {
		other := newTestCA(t)
		rec := &recorder{}
		p := newProxy(t, Config{Observer: rec})
		p.SetEndpoints("orders", []Endpoint{{Addr: b.Listener.Addr().String()}})
		pol := Policy{Protocol: HTTP, Retry: RetryPolicy{NumRetries: 1, On: RetryConnectFailure},
			TLS: &tls.Config{RootCAs: other.pool, Certificates: []tls.Certificate{clientCert}}}
		addr := listen(t, p, "orders", pol)
		r := get(t, newClient(t), addr)
		if r.status != 503 || !strings.Contains(r.body, "certificate") {
			t.Fatalf("got %d %q", r.status, r.body)
		}
		if got := rec.waitRequests(t, 1)[0]; got.Failure != FailureConnect || got.Retries != 1 {
			t.Fatalf("record %+v", got)
		}
	})
}

// TestTCPOverTLS: a TCP service's bytes go to the endpoint inside TLS.
func TestTCPOverTLS(t *testing.T) {
	ca := newTestCA(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{ca.issue(t, "db.internal")},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: ca.pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	p := newProxy(t, Config{})
	p.SetEndpoints("db", []Endpoint{{Addr: ln.Addr().String()}})
	addr := listen(t, p, "db", Policy{Protocol: TCP, IdleTimeout: time.Minute, TLS: &tls.Config{
		RootCAs: ca.pool, Certificates: []tls.Certificate{ca.issue(t, "agent")}, ServerName: "db.internal",
	}})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "secret")
	roundTrip(t, c, strings.Repeat("y", 100_000))
}
