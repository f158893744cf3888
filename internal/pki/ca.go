package pki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/trellis-mesh/trellis/internal/store"
)

// CAKey is the store key of the installation's root CA.
const CAKey = "/pki/ca"

// CALifetime is how long a new root CA is valid. Leaves never outlive it.
const CALifetime = 10 * 365 * 24 * time.Hour

// clockSkew backdates notBefore so a peer whose clock is a little behind
// the issuer's accepts a certificate at once.
const clockSkew = 5 * time.Minute

// caRecord is the stored form of the CA.
type caRecord struct {
	CertPEM   string    `json:"certPem"`
	KeyPEM    string    `json:"keyPem"`
	CreatedAt time.Time `json:"createdAt"`
}

// CA is the installation's root certificate authority. It is immutable
// once loaded and safe for concurrent use.
type CA struct {
	cert        *x509.Certificate
	certPEM     []byte
	key         crypto.Signer
	fingerprint string
	now         func() time.Time
}

// LoadOrCreate returns the CA kept in st, creating it on the first call of
// an installation. Creation is create-if-absent in one store transaction,
// so servers racing on one store end up with the same CA. now is the clock
// for validity periods (nil: time.Now).
func LoadOrCreate(ctx context.Context, st store.Store, now func() time.Time) (*CA, error) {
	if now == nil {
		now = time.Now
	}
	kv, err := st.Get(ctx, CAKey)
	if err == nil {
		return parseCA(kv.Value, now)
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("pki: loading the CA: %w", err)
	}
	// The key is generated outside the transaction: Update may run its
	// function several times, and a conflict means another server won.
	rec, err := newCARecord(now().UTC())
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("pki: encoding the CA: %w", err)
	}
	var stored []byte
	_, err = store.Update(ctx, st, func(tx *store.Tx) error {
		kv, err := tx.Get(CAKey)
		if err == nil {
			stored = kv.Value
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		tx.Put(CAKey, raw)
		stored = raw
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pki: creating the CA: %w", err)
	}
	return parseCA(stored, now)
}

func newCARecord(now time.Time) (*caRecord, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generating the CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"Trellis"},
			CommonName:   "Trellis Root CA " + serial.Text(16)[:8],
		},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The root signs leaves directly; no intermediates.
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: signing the CA certificate: %w", err)
	}
	keyPEM, err := marshalKey(key)
	if err != nil {
		return nil, err
	}
	return &caRecord{
		CertPEM:   string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:    string(keyPEM),
		CreatedAt: now,
	}, nil
}

func parseCA(raw []byte, now func() time.Time) (*CA, error) {
	var rec caRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("pki: decoding the stored CA: %w", err)
	}
	cert, err := parseCertPEM([]byte(rec.CertPEM))
	if err != nil {
		return nil, fmt.Errorf("pki: stored CA certificate: %w", err)
	}
	key, err := parseKeyPEM([]byte(rec.KeyPEM))
	if err != nil {
		return nil, fmt.Errorf("pki: stored CA key: %w", err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, errors.New("pki: stored CA key does not match its certificate")
	}
	sum := sha256.Sum256(cert.Raw)
	return &CA{cert: cert, certPEM: []byte(rec.CertPEM), key: key, fingerprint: hex.EncodeToString(sum[:]), now: now}, nil
}

// CertPEM returns the root certificate in PEM form (what clients trust).
func (ca *CA) CertPEM() []byte { return append([]byte(nil), ca.certPEM...) }

// Certificate returns the parsed root certificate; callers must not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Pool returns a new certificate pool holding only the root.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Fingerprint is the hex SHA-256 of the root certificate's DER form.
func (ca *CA) Fingerprint() string { return ca.fingerprint }

// CAFileName is the name of the file WriteCAFile writes in a data directory.
const CAFileName = "ca.pem"

// WriteCAFile writes the root certificate to dir/ca.pem (mode 0644,
// replaced atomically) and returns the path, so clients can run
// curl --cacert DIR/ca.pem.
func (ca *CA) WriteCAFile(dir string) (string, error) {
	path := filepath.Join(dir, CAFileName)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, ca.certPEM, 0o644); err != nil {
		return "", fmt.Errorf("pki: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("pki: writing %s: %w", path, err)
	}
	return path, nil
}

// newSerial returns a random positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func marshalKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encoding a private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// parseCertPEM parses exactly one CERTIFICATE block.
func parseCertPEM(b []byte) (*x509.Certificate, error) {
	block, rest := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	if len(trimSpace(rest)) != 0 {
		return nil, errors.New("data after the certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ak.Equal(b)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// nextCert parses the first CERTIFICATE block of b and returns the rest;
// c is nil when b holds no more PEM blocks.
func nextCert(b []byte) (c *x509.Certificate, rest []byte, err error) {
	block, rest := pem.Decode(b)
	if block == nil {
		return nil, nil, nil
	}
	if block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("PEM block is %q, want CERTIFICATE", block.Type)
	}
	c, err = x509.ParseCertificate(block.Bytes)
	return c, rest, err
}
