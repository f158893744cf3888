package snapshot

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/identity"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/sigv4"
)

// AuthIndex is AuthMaterial compiled for a gateway's request path: signing
// keys by access key and date, principals by ARN with their identity
// headers prepared, and the client CA pool. Compile it once when a
// snapshot is applied; it is immutable and safe for concurrent use, and
// its lookups do not allocate (except PrincipalForCertificate, called once
// per TLS connection).
type AuthIndex struct {
	region, service, trustDomain string
	keys                         map[keyDay]sigv4.SigningKey
	known                        map[string]struct{} // access key IDs
	first, last                  string              // dates held
	principals                   map[string]*AuthPrincipal
	clientCAs                    *x509.CertPool
}

type keyDay struct{ id, date string }

// AuthPrincipal is a principal ready for requests.
type AuthPrincipal struct {
	Principal
	// Identity is the principal as the identity headers show it (tags
	// sorted by key); copy it and set X509 for mTLS callers.
	Identity identity.Caller
}

// Compile indexes the material of a snapshot of region. A malformed key
// or CA (a snapshot from a broken or foreign server) fails the whole
// index: the node keeps its previous snapshot.
func (a *AuthMaterial) Compile(region string) (*AuthIndex, error) {
	x := &AuthIndex{region: region, service: a.Service, trustDomain: a.TrustDomain,
		keys: make(map[keyDay]sigv4.SigningKey, len(a.SigningKeys)), known: map[string]struct{}{},
		principals: make(map[string]*AuthPrincipal, len(a.Principals))}
	if x.trustDomain == "" {
		x.trustDomain = iam.DefaultTrustDomain
	}
	for i := range a.Principals {
		p := &AuthPrincipal{Principal: a.Principals[i]}
		p.Identity = identity.Caller{Principal: p.ARN, Tags: make([]identity.Tag, 0, len(p.Tags))}
		for k, v := range p.Tags {
			p.Identity.Tags = append(p.Identity.Tags, identity.Tag{Key: k, Value: v})
		}
		slices.SortFunc(p.Identity.Tags, func(a, b identity.Tag) int { return strings.Compare(a.Key, b.Key) })
		x.principals[p.ARN] = p
	}
	for i, k := range a.SigningKeys {
		field := "auth.signingKeys[" + strconv.Itoa(i) + "]"
		key, err := hex.DecodeString(k.Key)
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("snapshot: %s.key: not the hex of a 32-byte key", field)
		}
		if _, ok := x.principals[k.PrincipalARN]; !ok {
			return nil, fmt.Errorf("snapshot: %s.principalArn: %s is not among the principals", field, k.PrincipalARN)
		}
		x.keys[keyDay{k.AccessKeyID, k.Date}] = sigv4.SigningKey{Key: key, Principal: k.PrincipalARN}
		x.known[k.AccessKeyID] = struct{}{}
		if x.first == "" || k.Date < x.first {
			x.first = k.Date
		}
		x.last = max(x.last, k.Date)
	}
	if a.ClientCAPEM != "" {
		x.clientCAs = x509.NewCertPool()
		if !x.clientCAs.AppendCertsFromPEM([]byte(a.ClientCAPEM)) {
			return nil, fmt.Errorf("snapshot: auth.clientCaPem: no certificate in it")
		}
	}
	return x, nil
}

// SigningKey is a sigv4.SigningKeyLookup: the derived key of the scope's
// access key and date. An access key this index knows but holds no key of
// for the date (a presigned URL older than yesterday, or a snapshot older
// than a day) is an error wrapping sigv4.ErrExpired; a scope of another
// region or service one wrapping sigv4.ErrScope. The result's Principal
// is the key's principal ARN (see Principal).
func (x *AuthIndex) SigningKey(_ context.Context, s sigv4.Scope) (sigv4.SigningKey, bool, error) {
	if s.Region != x.region || s.Service != x.service {
		return sigv4.SigningKey{}, false, fmt.Errorf("%w: this gateway holds signing keys for %s in %s only", sigv4.ErrScope, x.service, x.region)
	}
	if k, ok := x.keys[keyDay{s.AccessKeyID, s.Date}]; ok {
		return k, true, nil
	}
	if _, ok := x.known[s.AccessKeyID]; ok {
		return sigv4.SigningKey{}, false, fmt.Errorf("%w: the gateway verifies signatures dated %s to %s; sign the request again (presigned URLs are good here for a day)",
			sigv4.ErrExpired, x.first, x.last)
	}
	return sigv4.SigningKey{}, false, nil
}

// Principal is the principal of an ARN (a SigningKey's Principal), nil if
// there is none.
func (x *AuthIndex) Principal(arn string) *AuthPrincipal { return x.principals[arn] }

// ClientCAs is the pool to verify client certificates with
// (tls.Config.ClientCAs); nil when the snapshot has no CA.
func (x *AuthIndex) ClientCAs() *x509.CertPool { return x.clientCAs }

// TrustDomain is the SPIFFE trust domain of client certificates.
func (x *AuthIndex) TrustDomain() string { return x.trustDomain }

// PrincipalForCertificate is the principal a verified client certificate
// (chained to ClientCAs by the TLS handshake) names with its SPIFFE ID:
// exactly one URI SAN, in the index's trust domain, naming an existing
// principal. Otherwise ok is false and the connection must not be taken
// for anyone (nor downgraded to anonymous).
func (x *AuthIndex) PrincipalForCertificate(cert *x509.Certificate) (*AuthPrincipal, bool) {
	if cert == nil || len(cert.URIs) != 1 {
		return nil, false
	}
	acct, typ, name, ok := iam.PrincipalForSPIFFE(x.trustDomain, cert.URIs[0].String())
	if !ok {
		return nil, false
	}
	p := x.principals[model.PrincipalARN(acct, typ, name)]
	return p, p != nil
}
