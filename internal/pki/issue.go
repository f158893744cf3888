package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// KeyType is the kind of key a leaf certificate gets.
type KeyType int

const (
	// KeyECDSAP256 is an ECDSA key on P-256: cheap to generate and to sign
	// handshakes with; usable with TLS 1.3 and ECDHE-ECDSA suites.
	KeyECDSAP256 KeyType = iota + 1
	// KeyRSA2048 is a 2048-bit RSA key, what Lattice serves and what its
	// TLS 1.2 cipher policy (RSA-authenticated suites only) needs.
	KeyRSA2048
)

func (k KeyType) String() string {
	switch k {
	case KeyECDSAP256:
		return "EC_prime256v1"
	case KeyRSA2048:
		return "RSA_2048"
	}
	return fmt.Sprintf("KeyType(%d)", int(k))
}

// MaxLeafTTL is the longest lifetime Issue grants (the CA/Browser Forum's
// limit for server certificates).
const MaxLeafTTL = 398 * 24 * time.Hour

// Request is what IssueRequest signs.
type Request struct {
	// DNSNames become DNS SANs (a leading "*." label is allowed); with any,
	// the certificate is good for serverAuth.
	DNSNames []string
	// URIs become URI SANs: at most one SPIFFE ID,
	// spiffe://<trust-domain>/<path>; with one, the certificate is an
	// X.509-SVID good for clientAuth and serverAuth (a workload identity is
	// used on both ends of mTLS).
	URIs []string
	// TTL is the lifetime, up to MaxLeafTTL; notAfter never passes the CA's.
	TTL time.Duration
	// Key is the leaf's key type; zero means KeyECDSAP256.
	Key KeyType
	// CommonName is the subject's CN: 1–64 printable ASCII characters;
	// "" takes the first DNS name when it fits (a client identity with
	// only a URI then has an empty subject).
	CommonName string
	// PublicKey, when set, is the key to certify, whose private half the
	// requester keeps (from a certificate signing request whose signature
	// the caller checked): ECDSA P-256 or P-384, or RSA of 2048–4096
	// bits. Key is then ignored and no private key is returned.
	PublicKey crypto.PublicKey
}

// Issue signs an ECDSA P-256 leaf for dnsNames (server certificate) and/or
// uris (client identity, SPIFFE IDs) valid for ttl, and returns the
// certificate and its PKCS#8 private key in PEM form. It does no I/O.
func (ca *CA) Issue(dnsNames, uris []string, ttl time.Duration) (certPEM, keyPEM []byte, err error) {
	return ca.IssueRequest(Request{DNSNames: dnsNames, URIs: uris, TTL: ttl})
}

// IssueRequest signs r; see Request for the rules.
func (ca *CA) IssueRequest(r Request) (certPEM, keyPEM []byte, err error) {
	tmpl, err := ca.template(r)
	if err != nil {
		return nil, nil, err
	}
	if r.PublicKey != nil {
		if err := checkPublicKey(r.PublicKey); err != nil {
			return nil, nil, err
		}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, r.PublicKey, ca.key)
		if err != nil {
			return nil, nil, fmt.Errorf("pki: signing a certificate for %v %v: %w", r.DNSNames, r.URIs, err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil, nil
	}
	var key crypto.Signer
	switch r.Key {
	case 0, KeyECDSAP256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	case KeyRSA2048:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
		// KeyEncipherment: the plain-RSA suites of Lattice's TLS 1.2 policy
		// (AES128-GCM-SHA256, ...) encrypt the premaster secret to this key.
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	default:
		return nil, nil, fmt.Errorf("pki: %w: unknown key type %d", ErrInvalidRequest, r.Key)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generating a %s key: %w", r.Key, err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: signing a certificate for %v %v: %w", r.DNSNames, r.URIs, err)
	}
	if keyPEM, err = marshalKey(key); err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// checkPublicKey accepts the keys Request.PublicKey may be.
func checkPublicKey(k crypto.PublicKey) error {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
		return fmt.Errorf("pki: %w: ECDSA keys must be P-256 or P-384", ErrInvalidRequest)
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n >= 2048 && n <= 4096 {
			return nil
		}
		return fmt.Errorf("pki: %w: RSA keys must have 2048 to 4096 bits, got %d", ErrInvalidRequest, k.N.BitLen())
	}
	return fmt.Errorf("pki: %w: unsupported public key %T (want ECDSA P-256/P-384 or RSA)", ErrInvalidRequest, k)
}

// template checks r and builds the leaf's template (without key usage).
func (ca *CA) template(r Request) (*x509.Certificate, error) {
	if len(r.DNSNames) == 0 && len(r.URIs) == 0 {
		return nil, fmt.Errorf("pki: %w: at least one DNS name or URI is required", ErrInvalidRequest)
	}
	if r.TTL <= 0 || r.TTL > MaxLeafTTL {
		return nil, fmt.Errorf("pki: %w: lifetime %v is not in (0, %v]", ErrInvalidRequest, r.TTL, MaxLeafTTL)
	}
	names := make([]string, len(r.DNSNames))
	for i, n := range r.DNSNames {
		if err := checkDNSName(n); err != nil {
			return nil, fmt.Errorf("pki: %w: DNS name %q: %w", ErrInvalidRequest, n, err)
		}
		names[i] = strings.ToLower(n)
	}
	var uris []*url.URL
	for _, s := range r.URIs {
		u, err := parseSPIFFEID(s)
		if err != nil {
			return nil, fmt.Errorf("pki: %w: URI %q: %w", ErrInvalidRequest, s, err)
		}
		uris = append(uris, u)
	}
	if len(uris) > 1 {
		return nil, fmt.Errorf("pki: %w: an X.509-SVID carries exactly one SPIFFE ID, got %d", ErrInvalidRequest, len(uris))
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := ca.now().UTC()
	notAfter := now.Add(r.TTL)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		DNSNames:              names,
		URIs:                  uris,
		BasicConstraintsValid: true,
	}
	// The CN is legacy (clients match SANs) but tools show it; RFC 5280
	// bounds it to 64 characters, which long generated names exceed.
	if len(names) > 0 && len(names[0]) <= 64 {
		tmpl.Subject = pkix.Name{CommonName: names[0]}
	}
	if r.CommonName != "" {
		if err := checkCommonName(r.CommonName); err != nil {
			return nil, fmt.Errorf("pki: %w: common name %q: %w", ErrInvalidRequest, r.CommonName, err)
		}
		tmpl.Subject = pkix.Name{CommonName: r.CommonName}
	}
	if len(names) > 0 {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if len(uris) > 0 {
		if len(names) == 0 {
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		}
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	return tmpl, nil
}

// checkCommonName accepts 1–64 printable ASCII characters (RFC 5280's
// upper bound; PrintableString-safe enough for every TLS stack).
func checkCommonName(cn string) error {
	if len(cn) > 64 {
		return fmt.Errorf("must be at most 64 characters long")
	}
	for i := 0; i < len(cn); i++ {
		if cn[i] < 0x20 || cn[i] > 0x7e {
			return fmt.Errorf("may contain only printable ASCII characters")
		}
	}
	return nil
}

// checkDNSName accepts a host name of 1–253 characters whose labels are
// 1–63 characters of letters, digits and hyphens (not at either end),
// optionally with "*" as the whole first label.
func checkDNSName(n string) error {
	if len(n) == 0 || len(n) > 253 {
		return fmt.Errorf("must be 1 to 253 characters long")
	}
	labels := strings.Split(n, ".")
	for i, l := range labels {
		if l == "*" && i == 0 && len(labels) > 2 {
			continue
		}
		if len(l) == 0 || len(l) > 63 {
			return fmt.Errorf("label %q must be 1 to 63 characters long", l)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("label %q must not start or end with a hyphen", l)
		}
		for j := 0; j < len(l); j++ {
			c := l[j] | 0x20 // ASCII lower case
			if !(c >= 'a' && c <= 'z' || l[j] >= '0' && l[j] <= '9' || l[j] == '-') {
				return fmt.Errorf("label %q may contain only letters, digits and hyphens", l)
			}
		}
	}
	return nil
}

// parseSPIFFEID parses spiffe://<trust-domain>/<path>: a lowercase trust
// domain of [a-z0-9.-_], a non-empty path of non-empty segments of
// [A-Za-z0-9.-_] other than "." and "..", and nothing else (no port,
// user, query or fragment).
func parseSPIFFEID(s string) (*url.URL, error) {
	rest, ok := strings.CutPrefix(s, "spiffe://")
	if !ok {
		return nil, fmt.Errorf("must be a SPIFFE ID, spiffe://<trust-domain>/<path>")
	}
	td, path, _ := strings.Cut(rest, "/")
	if td == "" || len(td) > 255 {
		return nil, fmt.Errorf("the trust domain must be 1 to 255 characters long")
	}
	for i := 0; i < len(td); i++ {
		c := td[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return nil, fmt.Errorf("the trust domain may contain only lowercase letters, digits, '.', '-' and '_'")
		}
	}
	if path == "" {
		return nil, fmt.Errorf("a workload's SPIFFE ID needs a path after the trust domain")
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return nil, fmt.Errorf("path segments must be non-empty and not '.' or '..'")
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
				return nil, fmt.Errorf("path segments may contain only letters, digits, '.', '-' and '_'")
			}
		}
	}
	return &url.URL{Scheme: "spiffe", Host: td, Path: "/" + path}, nil
}
