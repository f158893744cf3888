package pki

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Size limits of an import, as ACM's ImportCertificate has them.
const (
	MaxCertificateBytes = 32 << 10
	MaxPrivateKeyBytes  = 5 << 10
	MaxChainBytes       = 512 << 10
)

// Imported is a certificate a user imported for a custom domain, as
// stored at ImportedKey(account, id). KeyPEM never leaves the control plane
// except in a node's snapshot.
type Imported struct {
	ID      string `json:"id"`
	ARN     string `json:"arn"`
	Account string `json:"account"`
	// CertPEM is the leaf; ChainPEM the intermediates, the leaf's issuer
	// first ("" when none); KeyPEM the leaf's key in PKCS#8.
	CertPEM  string `json:"certPem"`
	ChainPEM string `json:"chainPem,omitempty"`
	KeyPEM   string `json:"keyPem"`
	// DomainNames are the leaf's DNS SANs (its CN when it has none), lower case.
	DomainNames []string `json:"domainNames"`
	Subject     string   `json:"subject"`
	Issuer      string   `json:"issuer"`
	Serial      string   `json:"serial"`
	// KeyAlgorithm is named as ACM names it: RSA_2048, EC_prime256v1, ...
	KeyAlgorithm string            `json:"keyAlgorithm"`
	NotBefore    time.Time         `json:"notBefore"`
	NotAfter     time.Time         `json:"notAfter"`
	Tags         map[string]string `json:"tags,omitempty"`
	ImportedAt   time.Time         `json:"importedAt"`
}

// ImportedPrefix is where an account's imported certificates are stored.
func ImportedPrefix(account string) string { return "/certs/" + account + "/" }

// ImportedKey is the store key of one imported certificate.
func ImportedKey(account, id string) string { return ImportedPrefix(account) + id }

// CertificateARN is arn:aws:acm:<region>:<account>:certificate/<id>.
func CertificateARN(region, account, id string) string {
	return model.ARN{Partition: "aws", Service: "acm", Region: region, Account: account, Resource: "certificate/" + id}.String()
}

// ParseCertificateARN returns the account and ID of a certificate ARN.
func ParseCertificateARN(arn string) (account, id string, err error) {
	a, err := model.ParseARN(arn)
	if err != nil {
		return "", "", err
	}
	id, ok := strings.CutPrefix(a.Resource, "certificate/")
	if a.Service != "acm" || !ok || !isUUID(id) || !model.IsAccountID(a.Account) {
		return "", "", fmt.Errorf("%q is not a certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)", arn)
	}
	return a.Account, id, nil
}

// NewCertificateID returns a random UUID (version 4), the form of ACM
// certificate IDs.
func NewCertificateID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // unrecoverable: the OS has no entropy
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// isUUID reports whether s is 8-4-4-4-12 lowercase hex digits.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
				return false
			}
		}
	}
	return true
}

// IsCertificateID reports whether s has the form of a certificate ID.
func IsCertificateID(s string) bool { return isUUID(s) }

// ImportInput is what a user uploads, every member PEM.
type ImportInput struct {
	Certificate      string
	PrivateKey       string
	CertificateChain string
}

// Import validates in at time now and returns the record to store, without
// ID, ARN, Account, Tags and ImportedAt, which the caller sets. Problems
// are reported as a *model.ValidationError naming the member
// ("certificate", "privateKey", "certificateChain"). Extra certificates
// after the leaf in Certificate (a "full chain" file) are taken as the
// start of the chain.
func Import(in ImportInput, now time.Time) (*Imported, error) {
	var ck model.Checker
	leaf, extra := parseImportCerts(&ck, "certificate", in.Certificate, MaxCertificateBytes, true)
	var key crypto.Signer
	switch {
	case strings.TrimSpace(in.PrivateKey) == "":
		ck.Addf("privateKey", "is required")
	case len(in.PrivateKey) > MaxPrivateKeyBytes:
		ck.Addf("privateKey", "must be at most %d bytes", MaxPrivateKeyBytes)
	default:
		var err error
		if key, err = parseKeyPEM([]byte(in.PrivateKey)); err != nil {
			ck.Addf("privateKey", "%v", err)
		}
	}
	_, chain := parseImportCerts(&ck, "certificateChain", in.CertificateChain, MaxChainBytes, false)
	chain = append(extra, chain...)
	if !ck.OK() {
		return nil, ck.Err()
	}

	alg, err := keyAlgorithm(leaf.PublicKey)
	if err != nil {
		ck.Addf("certificate", "%v", err)
	}
	if key != nil && !publicKeysEqual(leaf.PublicKey, key.Public()) {
		ck.Addf("privateKey", "does not match the certificate's public key")
	}
	if now.After(leaf.NotAfter) {
		ck.Addf("certificate", "expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	names := domainNames(leaf)
	if len(names) == 0 {
		ck.Addf("certificate", "has no DNS names (subject alternative names or a host name as common name)")
	}
	child := leaf
	for i, c := range chain {
		if err := child.CheckSignatureFrom(c); err != nil {
			ck.Addf("certificateChain", "certificate %d (%s) did not sign %s: give the chain in order, the leaf's issuer first (%v)",
				i+1, c.Subject, child.Subject, err)
			break
		}
		if now.After(c.NotAfter) {
			ck.Addf("certificateChain", "certificate %d (%s) expired at %s", i+1, c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
		}
		child = c
	}
	if !ck.OK() {
		return nil, ck.Err()
	}
	keyPEM, err := marshalKey(key)
	if err != nil {
		return nil, err
	}
	var chainPEM bytes.Buffer
	for _, c := range chain {
		_ = pem.Encode(&chainPEM, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return &Imported{
		CertPEM:      string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})),
		ChainPEM:     chainPEM.String(),
		KeyPEM:       string(keyPEM),
		DomainNames:  names,
		Subject:      leaf.Subject.String(),
		Issuer:       leaf.Issuer.String(),
		Serial:       leaf.SerialNumber.Text(16),
		KeyAlgorithm: alg,
		NotBefore:    leaf.NotBefore.UTC(),
		NotAfter:     leaf.NotAfter.UTC(),
	}, nil
}

// parseImportCerts parses every CERTIFICATE block of field: the first is
// returned as leaf (when wantLeaf), the others as rest.
func parseImportCerts(ck *model.Checker, field, s string, maxBytes int, wantLeaf bool) (leaf *x509.Certificate, rest []*x509.Certificate) {
	switch {
	case strings.TrimSpace(s) == "":
		if wantLeaf {
			ck.Addf(field, "is required")
		}
		return nil, nil
	case len(s) > maxBytes:
		ck.Addf(field, "must be at most %d bytes", maxBytes)
		return nil, nil
	}
	data := []byte(s)
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			ck.Addf(field, "PEM block %d is %q, want CERTIFICATE", n, block.Type)
			return nil, nil
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			ck.Addf(field, "certificate %d does not parse: %v", n, err)
			return nil, nil
		}
		certs = append(certs, c)
	}
	switch {
	case len(certs) == 0:
		ck.Addf(field, "is not PEM: want -----BEGIN CERTIFICATE----- blocks")
		return nil, nil
	case len(bytes.TrimSpace(data)) != 0:
		ck.Addf(field, "has data after the last PEM block")
		return nil, nil
	}
	if wantLeaf {
		return certs[0], certs[1:]
	}
	return nil, certs
}

// parseKeyPEM parses one unencrypted private key: PKCS#8 ("PRIVATE KEY"),
// PKCS#1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY", optionally after
// the "EC PARAMETERS" block openssl writes).
func parseKeyPEM(b []byte) (crypto.Signer, error) {
	var key crypto.Signer
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type == "EC PARAMETERS" {
			continue
		}
		if key != nil {
			return nil, errors.New("holds more than one PEM block; give only the certificate's key")
		}
		if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
			return nil, errors.New("is encrypted; give the key without a passphrase (openssl pkey -in KEY -out PLAIN)")
		}
		var parsed any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			parsed, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			parsed, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			return nil, fmt.Errorf("PEM block is %q, want PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("does not parse: %w", err)
		}
		s, ok := parsed.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("is a %T key, which cannot sign", parsed)
		}
		key = s
	}
	if key == nil {
		return nil, errors.New("is not PEM: want a -----BEGIN PRIVATE KEY----- block")
	}
	if len(bytes.TrimSpace(b)) != 0 {
		return nil, errors.New("has data after the PEM block")
	}
	return key, nil
}

// keyAlgorithm names a certificate key as ACM does, refusing what a
// listener should not serve.
func keyAlgorithm(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		if bits < 2048 || bits > 4096 {
			return "", fmt.Errorf("has a %d-bit RSA key; RSA keys must be 2048 to 4096 bits", bits)
		}
		return fmt.Sprintf("RSA_%d", bits), nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "EC_prime256v1", nil
		case elliptic.P384():
			return "EC_secp384r1", nil
		case elliptic.P521():
			return "EC_secp521r1", nil
		}
		return "", fmt.Errorf("has an ECDSA key on an unsupported curve")
	}
	return "", fmt.Errorf("has a %T key; want RSA or ECDSA", pub)
}

// domainNames are the leaf's DNS SANs, or its CN when it has none and the
// CN is a host name (Lattice: "SAN, else CN").
func domainNames(c *x509.Certificate) []string {
	var out []string
	for _, n := range c.DNSNames {
		out = append(out, strings.ToLower(n))
	}
	if len(out) == 0 && checkDNSName(c.Subject.CommonName) == nil && strings.Contains(c.Subject.CommonName, ".") {
		out = append(out, strings.ToLower(c.Subject.CommonName))
	}
	return out
}

// Covers reports whether a certificate for names serves domain, with
// Lattice's one-level wildcard rule: *.example.com covers
// parking.example.com but neither example.com nor a.b.example.com. A
// wildcard domain (*.example.com) is covered only by the same wildcard.
// Comparison ignores case and a trailing dot.
func Covers(names []string, domain string) bool {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if domain == "" {
		return false
	}
	for _, n := range names {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		if n == domain {
			return true
		}
		suffix, ok := strings.CutPrefix(n, "*.")
		if !ok {
			continue
		}
		label, rest, found := strings.Cut(domain, ".")
		if found && rest == suffix && label != "" && label != "*" {
			return true
		}
	}
	return false
}

// LookupImported reads the imported certificate named by arn. A missing
// one is an error wrapping ErrCertificateNotFound.
func LookupImported(ctx context.Context, st store.Store, arn string) (*Imported, error) {
	account, id, err := ParseCertificateARN(arn)
	if err != nil {
		return nil, fmt.Errorf("pki: %w: %w", ErrCertificateNotFound, err)
	}
	kv, err := st.Get(ctx, ImportedKey(account, id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("pki: %s: %w", arn, ErrCertificateNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("pki: reading %s: %w", arn, err)
	}
	var c Imported
	if err := json.Unmarshal(kv.Value, &c); err != nil {
		return nil, fmt.Errorf("pki: decoding %s: %w", arn, err)
	}
	return &c, nil
}
