package proxy

import (
	"bytes"
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// captureHello returns the bytes crypto/tls sends as its first flight for
// serverName.
func captureHello(t testing.TB, serverName string) []byte {
	t.Helper()
	client, server := net.Pipe()
	defer server.Close()
	go func() {
		c := tls.Client(client, &tls.Config{ServerName: serverName, InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		_ = c.Handshake() // fails once server closes
		client.Close()
	}()
	_ = server.SetDeadline(time.Now().Add(2 * time.Second))
	raw, _, err := readClientHello(server)
	if err != nil {
		t.Fatalf("read ClientHello: %v", err)
	}
	return raw
}

func TestReadClientHello(t *testing.T) {
	for _, name := range []string{"svc-1.example.on.aws", ""} {
		raw := captureHello(t, name)
		got, sni, err := readClientHello(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if sni != name {
			t.Errorf("server name %q, want %q", sni, name)
		}
		if !bytes.Equal(got, raw) {
			t.Errorf("returned bytes differ from those read")
		}
	}
	// The same hello split across two records is reassembled.
	raw := captureHello(t, "split.example.com")
	body := raw[5:]
	half := len(body) / 2
	var split []byte
	for _, part := range [][]byte{body[:half], body[half:]} {
		split = append(split, 22, 3, 1, byte(len(part)>>8), byte(len(part)))
		split = append(split, part...)
	}
	if _, sni, err := readClientHello(bytes.NewReader(split)); err != nil || sni != "split.example.com" {
		t.Errorf("split hello: %q %v", sni, err)
	}
	// Plain text is not TLS.
	if _, _, err := readClientHello(bytes.NewReader([]byte("GET / HTTP/1.1\r\n\r\n"))); err == nil {
		t.Error("plain text accepted as a ClientHello")
	}
}

// FuzzClientHello parses random bytes as a ClientHello: never a panic, and
// a server name found is a valid host name.
func FuzzClientHello(f *testing.F) {
	f.Add(captureHello(f, "svc-1.example.on.aws"))
	f.Add(captureHello(f, ""))
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		_, sni, err := readClientHello(bytes.NewReader(in))
		if err == nil && sni != "" && !validSNI([]byte(sni)) {
			t.Fatalf("invalid server name %q accepted", sni)
		}
	})
}
