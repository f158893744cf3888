package snapshot

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/sigv4"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Authentication material: what a gateway needs to tell who is calling
// (SigV4 or an mTLS client certificate) and to evaluate the caller's
// identity policy, without ever holding a secret access key.
//
// SigV4. A signature is an HMAC made with a key derived from the secret
// and the scope (date, region, service; sigv4.DeriveSigningKey). The
// snapshot carries those derived keys for the snapshot's region, service
// vpc-lattice-svcs, and three UTC dates: yesterday, today and tomorrow.
// Trade-offs of that window:
//
//   - A derived key forges requests to Lattice services for its day only,
//     never control-plane calls (another service) and never after the
//     window: a stolen snapshot (a node's last-known-good file included)
//     is worth about two days of data-plane impersonation, a stolen secret
//     everything forever.
//   - A gateway cut off from the control plane keeps verifying until its
//     own clock leaves the window: at least the rest of the day the
//     snapshot was built plus one full day (24–48 hours). After that every
//     signed request fails with sigv4.ErrExpired, never as anonymous.
//     The broker rebuilds at each UTC midnight, so connected gateways
//     always hold yesterday to tomorrow.
//   - Yesterday covers requests signed just before midnight and checked
//     just after (the 15-minute clock skew), and presigned URLs made
//     yesterday; a presigned URL whose X-Amz-Date is older than yesterday
//     is refused (sigv4.ErrExpired) although SigV4 allows up to seven
//     days. Tomorrow covers clients whose clock is ahead across midnight.
//   - Three keys per access key: a snapshot grows by about 450 bytes per
//     access key.
//
// Session tokens. Trellis issues no temporary credentials (STS serves only
// GetCallerIdentity), so every key is long-term and a request carrying
// X-Amz-Security-Token fails (sigv4.ErrSessionToken).
//
// SigV4a. Its key derives from the secret itself, so gateways cannot
// verify SigV4a; such requests fail (sigv4.ErrMalformed).
//
// Principals. Every principal of every account is in every snapshot:
// callers from other accounts are possible (cross-account sharing), and
// identity policies and tags are evaluated at the gateway. The cost is
// linear in the installation's principals and keys: each snapshot carries
// all of them (about 700 KB of JSON for 1000 principals with a key each,
// plus their policies, up to 6 KiB each), every IAM change republishes
// every VPC's snapshot, and every node receives and compiles the whole
// material again. The broker builds the material once per change, not per
// VPC or per rebuild (authCache), but each publish still sends it whole.
// That is fine for some thousands of principals; beyond that the material
// should become a stream of its own, shared by a node's VPCs and sent as
// deltas.
//
// mTLS. Client certificates are issued by the installation's CA
// (ClientCAPEM) with a SPIFFE ID URI SAN in TrustDomain naming a principal
// (iam.SPIFFEID). A certificate is only as good as its principal: deleting
// the principal revokes its certificates at the next snapshot.

// SigningService is the SigV4 signing name of requests to Lattice
// services, the service every SigningKey is derived for.
const SigningService = "vpc-lattice-svcs"

// dateLayout is the SigV4 scope date.
const dateLayout = "20060102"

// AuthMaterial is the authentication and identity data of a snapshot. It
// is the same for every VPC of an installation at one revision and day.
type AuthMaterial struct {
	// Service is the signing name of the keys: SigningService.
	Service string `json:"service"`
	// SigningKeys are the derived keys of every access key whose principal
	// exists, for the snapshot's Region and Service, for the UTC dates
	// yesterday, today and tomorrow; sorted by access key ID, then date.
	SigningKeys []SigningKey `json:"signingKeys"`
	// Principals are the principals of every account, sorted by ARN.
	Principals []Principal `json:"principals"`
	// ClientCAPEM is the root certificate that issues client certificates
	// ("" when the server has no CA): the pool to verify mTLS clients with.
	ClientCAPEM string `json:"clientCaPem,omitempty"`
	// TrustDomain is the SPIFFE trust domain of client certificates'
	// URI SANs (default iam.DefaultTrustDomain).
	TrustDomain string `json:"trustDomain"`
}

// SigningKey is the SigV4 signing key of one access key for one day.
type SigningKey struct {
	AccessKeyID string `json:"accessKeyId"`
	// Date is the scope date, yyyymmdd (UTC).
	Date string `json:"date"`
	// Key is the hex of the 32-byte derived key.
	Key string `json:"key"`
	// PrincipalARN is the ARN of the key's principal (in Principals).
	PrincipalARN string `json:"principalArn"`
}

// Principal is an IAM-style user or role.
type Principal struct {
	ARN     string `json:"arn"`
	Account string `json:"account"`
	// Type is "user" or "role".
	Type string `json:"type"`
	Name string `json:"name"`
	// Tags are aws:PrincipalTag/<key> and x-amzn-lattice-identity-tags.
	Tags map[string]string `json:"tags,omitempty"`
	// IdentityPolicy is the principal's identity-based policy document
	// ("" when none: such a principal is denied by Lattice's rule that the
	// identity policy must allow vpc-lattice-svcs:Invoke).
	IdentityPolicy string `json:"identityPolicy,omitempty"`
	// Admin principals manage the installation; it does not widen what
	// they may invoke.
	Admin bool `json:"admin,omitempty"`
}

// AuthOptions say how Build makes the AuthMaterial.
type AuthOptions struct {
	// ClientCAPEM is the root certificate of client certificates (PEM);
	// "" leaves mTLS without a trust anchor.
	ClientCAPEM string
	// TrustDomain is the SPIFFE trust domain; default iam.DefaultTrustDomain.
	TrustDomain string
	// Now picks the dates of the signing keys; default time.Now.
	Now func() time.Time
}

func (o AuthOptions) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// signingDates are the scope dates keys are derived for at now:
// yesterday, today and tomorrow (UTC).
func signingDates(now time.Time) []string {
	y, m, d := now.UTC().Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	return []string{today.AddDate(0, 0, -1).Format(dateLayout), today.Format(dateLayout), today.AddDate(0, 0, 1).Format(dateLayout)}
}

// nextUTCDay is the start of the UTC day after now's.
func nextUTCDay(now time.Time) time.Time {
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}

// accessKey is a stored access key and the revision it was written at.
type accessKey struct {
	*model.AccessKey
	rev int64
}

// authCache carries auth material across the builds of a broker. While
// the material's inputs (the IAM records' revisions, region, day, trust
// domain, CA) are unchanged it hands out the same *AuthMaterial, so that
// the snapshots of successive rebuilds share it and publish can compare
// it by pointer instead of re-encoding it for every VPC. It also keeps
// derived keys, which never change for an access key record and a day,
// keyed by the record's revision rather than by its secret. Safe for
// concurrent use.
type authCache struct {
	mu       sync.Mutex
	memo     [sha256.Size]byte
	material *AuthMaterial
	keys     map[derivation]string
}

type derivation struct {
	id           string
	rev          int64
	date, region string
}

// authMaterial returns the auth material of s for region at the dates of
// opts' clock: computed once per state and inputs (every VPC of a rebuild
// shares it; snapshots are immutable), and, with a cache, once per
// change of its inputs.
func (s *state) authMaterial(region string, opts AuthOptions, cache *authCache) *AuthMaterial {
	dates := signingDates(opts.now())
	td := cmp.Or(opts.TrustDomain, iam.DefaultTrustDomain)
	h := sha256.New()
	for _, part := range []string{region, dates[1], td, opts.ClientCAPEM} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	h.Write(s.iamSum.Sum(nil))
	var memo [sha256.Size]byte
	h.Sum(memo[:0])
	if s.auth != nil && s.authMemo == memo {
		return s.auth
	}
	if cache != nil {
		cache.mu.Lock()
		defer cache.mu.Unlock()
		if cache.material != nil && cache.memo == memo {
			s.auth, s.authMemo = cache.material, memo
			return s.auth
		}
	}
	a := &AuthMaterial{Service: SigningService, SigningKeys: []SigningKey{}, Principals: []Principal{},
		ClientCAPEM: opts.ClientCAPEM, TrustDomain: td}
	exists := map[string]bool{}
	for _, p := range s.principals {
		exists[p.ARN] = true
		a.Principals = append(a.Principals, Principal{ARN: p.ARN, Account: p.Account, Type: p.Type, Name: p.Name,
			Tags: maps.Clone(p.Tags), IdentityPolicy: p.Policy, Admin: p.Admin})
	}
	slices.SortFunc(a.Principals, func(x, y Principal) int { return strings.Compare(x.ARN, y.ARN) })
	derived := map[derivation]string{}
	for _, k := range s.keys {
		if !exists[k.Principal] {
			continue // a key whose principal is gone authenticates no one
		}
		for _, d := range dates {
			dk := derivation{k.ID, k.rev, d, region}
			key, ok := "", false
			if cache != nil {
				key, ok = cache.keys[dk]
			}
			if !ok {
				key = hex.EncodeToString(sigv4.DeriveSigningKey(k.Secret, d, region, SigningService))
			}
			derived[dk] = key
			a.SigningKeys = append(a.SigningKeys, SigningKey{AccessKeyID: k.ID, Date: d, PrincipalARN: k.Principal, Key: key})
		}
	}
	slices.SortFunc(a.SigningKeys, func(x, y SigningKey) int {
		return cmp.Or(strings.Compare(x.AccessKeyID, y.AccessKeyID), strings.Compare(x.Date, y.Date))
	})
	if cache != nil {
		// Only what this build used: keys of past days and deleted
		// access keys leave the cache.
		cache.memo, cache.material, cache.keys = memo, a, derived
	}
	s.auth, s.authMemo = a, memo
	return a
}

// addIAM decodes a principal or access key into s.
func (s *state) addIAM(kv store.KV) error {
	if strings.HasPrefix(kv.Key, iam.AllPrincipalsPrefix()) || strings.HasPrefix(kv.Key, iam.AccessKeysPrefix()) {
		s.noteIAM(kv)
	}
	switch {
	case strings.HasPrefix(kv.Key, iam.AllPrincipalsPrefix()):
		v, err := decode[model.Principal](kv)
		if err == nil {
			s.principals = append(s.principals, v)
		}
		return err
	case strings.HasPrefix(kv.Key, iam.AccessKeysPrefix()):
		v, err := decode[model.AccessKey](kv)
		if err == nil {
			s.keys = append(s.keys, accessKey{v, kv.ModRevision})
		}
		return err
	}
	return nil
}

// noteIAM records that an IAM record is an input of the auth material.
func (s *state) noteIAM(kv store.KV) {
	s.iamSum.Write([]byte(kv.Key))
	s.iamSum.Write(strconv.AppendInt([]byte{0}, kv.ModRevision, 10))
	s.iamSum.Write([]byte{0})
}
