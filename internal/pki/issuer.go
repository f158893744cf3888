package pki

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/snapshot"
	"github.com/trellis-mesh/trellis/internal/store"
)

// IssuedPrefix is where issued listener certificates are cached, one per
// service: IssuedPrefix + service ID.
const IssuedPrefix = "/pki/issued/"

// DefaultLifetime is the lifetime of issued listener certificates.
const DefaultLifetime = 90 * 24 * time.Hour

// IssuerConfig configures an Issuer. Zero values take the documented defaults.
type IssuerConfig struct {
	// Store holds the imported certificates and the issued ones. Required.
	Store store.Store
	// CA signs issued certificates. Required.
	CA *CA
	// Lifetime of issued certificates; default DefaultLifetime (90 days).
	// They are renewed when less than a third of it remains, so a node
	// that lost contact with the control plane keeps a valid certificate
	// for at least Lifetime/3 (30 days by default).
	Lifetime time.Duration
	// KeyType of issued certificates; default KeyRSA2048, which Lattice's
	// TLS 1.2 cipher policy needs. KeyECDSAP256 makes handshakes ~30x
	// cheaper to sign but limits TLS 1.2 clients to ECDHE-ECDSA suites,
	// which that policy does not list (see the package doc).
	KeyType KeyType
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives one line per issued certificate; default discards.
	Logger *slog.Logger
}

// Issuer gives each service the certificate its HTTPS listeners present;
// it implements snapshot.CertSource. Safe for concurrent use. A call may
// block on the store and, when it must issue, on key generation (RSA-2048
// takes tens of milliseconds); concurrent calls for one service share a
// single issuance.
type Issuer struct {
	cfg IssuerConfig
	log *slog.Logger

	mu     sync.Mutex
	cache  map[string]*issuedRecord // service ID -> last record handed out
	flight map[string]*flight       // service ID -> issuance in progress
}

var _ snapshot.CertSource = (*Issuer)(nil)

type flight struct {
	done chan struct{}
	rec  *issuedRecord
	err  error
}

// issuedRecord is the stored form of an issued certificate.
type issuedRecord struct {
	ServiceID string   `json:"serviceId"`
	Account   string   `json:"account"`
	Names     []string `json:"names"`
	CertPEM   string   `json:"certPem"`
	KeyPEM    string   `json:"keyPem"`
	// CA is the fingerprint of the CA that signed it: a certificate of
	// another CA (a store restored elsewhere) is reissued.
	CA       string    `json:"ca"`
	KeyType  string    `json:"keyType"`
	IssuedAt time.Time `json:"issuedAt"`
	NotAfter time.Time `json:"notAfter"`
}

// renewAt is when the record should be replaced: once less than a third
// of its lifetime remains.
func (r *issuedRecord) renewAt() time.Time {
	return r.NotAfter.Add(-r.NotAfter.Sub(r.IssuedAt) / 3)
}

// NewIssuer returns an Issuer.
func NewIssuer(cfg IssuerConfig) (*Issuer, error) {
	if cfg.Store == nil || cfg.CA == nil {
		return nil, errors.New("pki: an issuer needs a store and a CA")
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.Lifetime < 0 || cfg.Lifetime > MaxLeafTTL {
		return nil, fmt.Errorf("pki: issuer lifetime %v is not in (0, %v]", cfg.Lifetime, MaxLeafTTL)
	}
	if cfg.KeyType == 0 {
		cfg.KeyType = KeyRSA2048
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Issuer{cfg: cfg, log: log.With("component", "pki"),
		cache: map[string]*issuedRecord{}, flight: map[string]*flight{}}, nil
}

// ServiceCertificate returns what svc's HTTPS listeners present: with a
// certificateArn, the imported certificate (an error wrapping
// ErrCertificateNotFound, ErrExpired or ErrNameMismatch when it is missing,
// expired, or does not cover the custom domain); otherwise a certificate
// of the CA for the generated name and the custom domain, reused until it
// needs renewal or the names change.
func (is *Issuer) ServiceCertificate(ctx context.Context, svc *model.Service) (*snapshot.Certificate, error) {
	if svc.CertificateARN != "" {
		return is.imported(ctx, svc)
	}
	names, err := serviceNames(svc)
	if err != nil {
		return nil, err
	}
	rec, err := is.issued(ctx, svc, names)
	if err != nil {
		return nil, err
	}
	return &snapshot.Certificate{CertPEM: rec.CertPEM, KeyPEM: rec.KeyPEM, NotAfter: rec.NotAfter.Format(time.RFC3339)}, nil
}

func (is *Issuer) imported(ctx context.Context, svc *model.Service) (*snapshot.Certificate, error) {
	c, err := LookupImported(ctx, is.cfg.Store, svc.CertificateARN)
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", svc.ID, err)
	}
	if c.Account != svc.Account {
		return nil, fmt.Errorf("service %s: %s belongs to another account: %w", svc.ID, svc.CertificateARN, ErrCertificateNotFound)
	}
	if is.cfg.Now().After(c.NotAfter) {
		return nil, fmt.Errorf("service %s: %s expired at %s: %w", svc.ID, c.ARN, c.NotAfter.Format(time.RFC3339), ErrExpired)
	}
	if svc.CustomDomainName != "" && !Covers(c.DomainNames, svc.CustomDomainName) {
		return nil, fmt.Errorf("service %s: %s (for %s) does not cover %s: %w",
			svc.ID, c.ARN, strings.Join(c.DomainNames, ", "), svc.CustomDomainName, ErrNameMismatch)
	}
	return &snapshot.Certificate{ARN: c.ARN, CertPEM: c.CertPEM + c.ChainPEM, KeyPEM: c.KeyPEM,
		NotAfter: c.NotAfter.Format(time.RFC3339)}, nil
}

// serviceNames are the names an issued certificate of svc carries.
func serviceNames(svc *model.Service) ([]string, error) {
	if svc.DNSEntry.DomainName == "" {
		return nil, fmt.Errorf("pki: service %s has no generated DNS name", svc.ID)
	}
	names := []string{strings.ToLower(svc.DNSEntry.DomainName)}
	if d := strings.ToLower(strings.TrimSuffix(svc.CustomDomainName, ".")); d != "" && d != names[0] {
		names = append(names, d)
	}
	return names, nil
}

// usable reports whether rec can still be handed out for names at now.
func (is *Issuer) usable(rec *issuedRecord, names []string, now time.Time) bool {
	return rec != nil && slices.Equal(rec.Names, names) && rec.CA == is.cfg.CA.Fingerprint() && now.Before(rec.renewAt())
}

// issued returns a usable issued certificate for svc: the one handed out
// last, else the stored one, else a new one.
func (is *Issuer) issued(ctx context.Context, svc *model.Service, names []string) (*issuedRecord, error) {
	now := is.cfg.Now()
	is.mu.Lock()
	if rec := is.cache[svc.ID]; is.usable(rec, names, now) {
		is.mu.Unlock()
		return rec, nil
	}
	if f, ok := is.flight[svc.ID]; ok {
		is.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("pki: service %s: %w", svc.ID, ctx.Err())
		}
		if f.err == nil && !is.usable(f.rec, names, is.cfg.Now()) {
			// The names changed while the other call issued; go again.
			return is.issued(ctx, svc, names)
		}
		return f.rec, f.err
	}
	f := &flight{done: make(chan struct{})}
	is.flight[svc.ID] = f
	is.mu.Unlock()

	f.rec, f.err = is.loadOrIssue(ctx, svc, names)
	is.mu.Lock()
	delete(is.flight, svc.ID)
	if f.err == nil {
		is.cache[svc.ID] = f.rec
	}
	is.mu.Unlock()
	close(f.done)
	return f.rec, f.err
}

func (is *Issuer) loadOrIssue(ctx context.Context, svc *model.Service, names []string) (*issuedRecord, error) {
	key := IssuedPrefix + svc.ID
	stored, err := is.load(ctx, key)
	if err != nil {
		return nil, err
	}
	if is.usable(stored, names, is.cfg.Now()) {
		return stored, nil
	}
	rec, err := is.issue(svc, names)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("pki: encoding the certificate of %s: %w", svc.ID, err)
	}
	// Another server may have stored a usable one meanwhile: keep it, so
	// every server hands out the same certificate.
	var out *issuedRecord
	_, err = store.Update(ctx, is.cfg.Store, func(tx *store.Tx) error {
		out = rec
		kv, err := tx.Get(key)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err == nil {
			var other issuedRecord
			if json.Unmarshal(kv.Value, &other) == nil && is.usable(&other, names, is.cfg.Now()) {
				out = &other
				return nil
			}
		}
		tx.Put(key, raw)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pki: storing the certificate of %s: %w", svc.ID, err)
	}
	if out == rec {
		is.log.Info("issued certificate", "service", svc.ID, "names", names, "key", is.cfg.KeyType.String(),
			"notAfter", rec.NotAfter.Format(time.RFC3339))
	}
	return out, nil
}

func (is *Issuer) load(ctx context.Context, key string) (*issuedRecord, error) {
	kv, err := is.cfg.Store.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pki: reading %s: %w", key, err)
	}
	var rec issuedRecord
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		// A record we cannot read is replaced, not fatal.
		is.log.Warn("discarding unreadable issued certificate", "key", key, "error", err)
		return nil, nil
	}
	return &rec, nil
}

func (is *Issuer) issue(svc *model.Service, names []string) (*issuedRecord, error) {
	certPEM, keyPEM, err := is.cfg.CA.IssueRequest(Request{DNSNames: names, TTL: is.cfg.Lifetime, Key: is.cfg.KeyType})
	if err != nil {
		return nil, fmt.Errorf("pki: service %s: %w", svc.ID, err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: service %s: parsing the issued certificate: %w", svc.ID, err)
	}
	return &issuedRecord{ServiceID: svc.ID, Account: svc.Account, Names: names, CertPEM: string(certPEM), KeyPEM: string(keyPEM),
		CA: is.cfg.CA.Fingerprint(), KeyType: is.cfg.KeyType.String(), IssuedAt: is.cfg.Now().UTC(), NotAfter: cert.NotAfter}, nil
}

// NextRenewal is the earliest time at which a certificate this Issuer
// handed out should be replaced (the zero time when it handed out none).
// A snapshot builder rebuilds at that time so nodes get the renewed
// certificate even when nothing else changes.
func (is *Issuer) NextRenewal() time.Time {
	is.mu.Lock()
	defer is.mu.Unlock()
	var next time.Time
	for _, rec := range is.cache {
		if t := rec.renewAt(); next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next
}

// Prune deletes the cached certificates of services that no longer exist
// and returns how many it removed.
func (is *Issuer) Prune(ctx context.Context) (int, error) {
	removed := 0
	var gone []string
	_, err := store.Update(ctx, is.cfg.Store, func(tx *store.Tx) error {
		removed, gone = 0, gone[:0]
		kvs, err := tx.List(IssuedPrefix)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			var rec issuedRecord
			if err := json.Unmarshal(kv.Value, &rec); err != nil {
				tx.Delete(kv.Key)
				removed++
				continue
			}
			_, err := tx.Get("/lattice/" + rec.Account + "/svc/" + rec.ServiceID)
			if errors.Is(err, store.ErrNotFound) {
				tx.Delete(kv.Key)
				gone = append(gone, rec.ServiceID)
				removed++
			} else if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("pki: pruning issued certificates: %w", err)
	}
	is.mu.Lock()
	for _, id := range gone {
		delete(is.cache, id)
	}
	is.mu.Unlock()
	return removed, nil
}

// Verify checks that certPEM (leaf first, then intermediates) chains to
// roots for every name at now, as a TLS client would.
func Verify(certPEM []byte, roots *x509.CertPool, names []string, now time.Time) error {
	var certs []*x509.Certificate
	for rest := certPEM; ; {
		c, r, err := nextCert(rest)
		if err != nil {
			return err
		}
		if c == nil {
			break
		}
		certs, rest = append(certs, c), r
	}
	if len(certs) == 0 {
		return errors.New("pki: no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	for _, n := range names {
		if _, err := certs[0].Verify(x509.VerifyOptions{DNSName: n, Roots: roots, Intermediates: inter, CurrentTime: now}); err != nil {
			return fmt.Errorf("pki: %s: %w", n, err)
		}
	}
	return nil
}
