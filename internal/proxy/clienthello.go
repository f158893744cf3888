package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
)

// TLS record and handshake constants (RFC 8446).
const (
	recordTypeAlert     = 21
	recordTypeHandshake = 22
	handshakeClientHelo = 1
	extServerName       = 0
	maxClientHelloBytes = 64 << 10

	alertHandshakeFailure = 40
	alertAccessDenied     = 49
)

var errNotTLS = errors.New("not a TLS handshake")

// readClientHello reads the records that carry a connection's first
// handshake message, a ClientHello, and returns the bytes read (to be
// replayed to crypto/tls or a passthrough target) and its server name
// ("" when it has none). It reads exactly the records that hold the
// message, never beyond.
func readClientHello(r io.Reader) (raw []byte, sni string, err error) {
	raw = make([]byte, 0, 1024)
	var msg []byte // handshake bytes, reassembled across records
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, "", fmt.Errorf("read record header: %w", err)
		}
		if hdr[0] != recordTypeHandshake || hdr[1] != 3 {
			return nil, "", errNotTLS
		}
		n := int(hdr[3])<<8 | int(hdr[4])
		if n == 0 || n > 1<<14+256 || len(raw)+5+n > maxClientHelloBytes {
			return nil, "", errors.New("bad handshake record length")
		}
		start := len(raw)
		raw = append(raw, hdr[:]...)
		raw = append(raw, make([]byte, n)...)
		if _, err := io.ReadFull(r, raw[start+5:]); err != nil {
			return nil, "", fmt.Errorf("read record: %w", err)
		}
		msg = append(msg, raw[start+5:]...)
		if len(msg) < 4 {
			continue
		}
		if msg[0] != handshakeClientHelo {
			return nil, "", errors.New("first handshake message is not a ClientHello")
		}
		mlen := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
		if 4+mlen > maxClientHelloBytes {
			return nil, "", errors.New("ClientHello too large")
		}
		if len(msg) < 4+mlen {
			continue
		}
		sni, err := parseClientHelloSNI(msg[4 : 4+mlen])
		if err != nil {
			return nil, "", err
		}
		return raw, sni, nil
	}
}

// parseClientHelloSNI returns the host_name of a ClientHello body's
// server_name extension, "" when absent.
func parseClientHelloSNI(b []byte) (string, error) {
	bad := errors.New("malformed ClientHello")
	// legacy_version(2) random(32)
	if len(b) < 34 {
		return "", bad
	}
	b = b[34:]
	// legacy_session_id <0..32>
	b, ok := skipVec(b, 1)
	if !ok {
		return "", bad
	}
	// cipher_suites <2..2^16-2>
	if b, ok = skipVec(b, 2); !ok {
		return "", bad
	}
	// legacy_compression_methods <1..2^8-1>
	if b, ok = skipVec(b, 1); !ok {
		return "", bad
	}
	if len(b) == 0 {
		return "", nil // no extensions
	}
	if len(b) < 2 {
		return "", bad
	}
	ext := b[2:]
	n := int(b[0])<<8 | int(b[1])
	if n > len(ext) {
		return "", bad
	}
	ext = ext[:n]
	for len(ext) >= 4 {
		typ := int(ext[0])<<8 | int(ext[1])
		n := int(ext[2])<<8 | int(ext[3])
		if 4+n > len(ext) {
			return "", bad
		}
		data := ext[4 : 4+n]
		ext = ext[4+n:]
		if typ != extServerName {
			continue
		}
		// ServerNameList <1..2^16-1>: name_type(1) HostName<1..2^16-1>
		if len(data) < 2 {
			return "", bad
		}
		list := data[2:]
		if l := int(data[0])<<8 | int(data[1]); l != len(list) {
			return "", bad
		}
		for len(list) >= 3 {
			nt := list[0]
			l := int(list[1])<<8 | int(list[2])
			if 3+l > len(list) {
				return "", bad
			}
			name := list[3 : 3+l]
			list = list[3+l:]
			if nt == 0 {
				if !validSNI(name) {
					return "", bad
				}
				return string(name), nil
			}
		}
		return "", bad
	}
	return "", nil
}

// skipVec skips a vector with an n-byte length prefix.
func skipVec(b []byte, n int) ([]byte, bool) {
	if len(b) < n {
		return nil, false
	}
	l := 0
	for i := 0; i < n; i++ {
		l = l<<8 | int(b[i])
	}
	if len(b) < n+l {
		return nil, false
	}
	return b[n+l:], true
}

// validSNI accepts the characters of a DNS host name.
func validSNI(name []byte) bool {
	if len(name) == 0 || len(name) > 255 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// writeAlert sends a fatal TLS alert record (TLS 1.0 record version, as a
// server that has not negotiated a version yet does).
func writeAlert(c net.Conn, desc byte) {
	_, _ = c.Write([]byte{recordTypeAlert, 3, 1, 0, 2, 2, desc})
}
