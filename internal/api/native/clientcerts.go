package native

import (
	"cmp"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/pki"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Client certificates: mTLS identities of principals.
//
//	POST /trellis/v1/principals/{type}/{name}/certificates
//	     body {"ttlHours"?: 1–8760 (default 24), "account"?: ACCOUNT,
//	           "csrPem"?: PEM CERTIFICATE REQUEST}
//	     → 201 {"certificatePem", "privateKeyPem" (without csrPem),
//	            "caPem", "spiffeId", "principal", "notAfter"}
//
// The certificate is an X.509-SVID issued by the installation's CA: the
// URI SAN spiffe://<trust-domain>/account/<account>/<type>/<name>
// (iam.SPIFFEID), CN the principal's name, good for clientAuth. A gateway
// that trusts the CA maps it back to the principal
// (snapshot.AuthIndex.PrincipalForCertificate). With csrPem, the
// certificate is for the request's public key (ECDSA P-256/P-384 or RSA
// 2048–4096), whose private half never leaves the requester: the
// request's signature must verify, and its subject and names are ignored
// (the principal decides them). Without it, an ECDSA P-256 key is made
// here and returned once. Nothing is stored, so a certificate cannot be
// listed or revoked on its own: deleting the principal revokes all of its
// certificates (gateways refuse them from their next snapshot), and the
// lifetime bounds the rest.
//
// Authorization: principals of the caller's account; admins name another
// account with "account".

const (
	defaultClientCertHours = 24
	maxClientCertHours     = 365 * 24
)

// ClientCertOptions enable client certificates.
type ClientCertOptions struct {
	// CA issues them. Without it the endpoint answers
	// InternalServerException.
	CA *pki.CA
	// TrustDomain is the SPIFFE trust domain of their IDs; default
	// iam.DefaultTrustDomain.
	TrustDomain string
}

// WithClientCertificates enables issuing principals' client certificates.
func WithClientCertificates(o ClientCertOptions) Option {
	return func(a *API) {
		a.ca = o.CA
		a.trustDomain = cmp.Or(o.TrustDomain, iam.DefaultTrustDomain)
	}
}

// ClientCertificateOut is the answer of CreateClientCertificate: the only
// time the private key is shown.
type ClientCertificateOut struct {
	CertificatePEM string `json:"certificatePem"`
	PrivateKeyPEM  string `json:"privateKeyPem,omitempty"`
	CAPEM          string `json:"caPem"`
	SPIFFEID       string `json:"spiffeId"`
	Principal      string `json:"principal"`
	NotAfter       string `json:"notAfter"`
}

func (a *API) createClientCertificate(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		TTLHours *int   `json:"ttlHours"`
		Account  string `json:"account"`
		CSRPEM   string `json:"csrPem"`
	}
	if err := wire.Decode(r.Body, &in); err != nil {
		return 0, nil, err
	}
	acct, err := actingAccount(c, in.Account)
	if err != nil {
		return 0, nil, err
	}
	typ, name := r.Params["type"], r.Params["name"]
	var ck model.Checker
	ck.Enum("type", typ, model.PrincipalUser, model.PrincipalRole)
	ck.PrincipalName("name", name)
	if err := iam.CheckSPIFFEName(name); err != nil && ck.Err() == nil {
		ck.Addf("name", "%v; create a principal whose name fits to give it client certificates", err)
	}
	hours := defaultClientCertHours
	if in.TTLHours != nil {
		hours = *in.TTLHours
		if hours < 1 || hours > maxClientCertHours {
			ck.Addf("ttlHours", "must be 1 to %d hours, got %d", maxClientCertHours, hours)
		}
	}
	var pub crypto.PublicKey
	if in.CSRPEM != "" {
		csr, err := parseCSR(in.CSRPEM)
		if err != nil {
			ck.Addf("csrPem", "%v", err)
		} else {
			pub = csr.PublicKey
		}
	}
	if err := ck.Err(); err != nil {
		return 0, nil, err
	}
	if a.ca == nil {
		return 0, nil, &wire.Error{Type: wire.TypeInternal, Status: http.StatusInternalServerError,
			Message: "client certificates are not enabled on this server (it has no certificate authority)"}
	}
	arn := model.PrincipalARN(acct, typ, name)
	_, err = a.st.Get(ctx, iam.PrincipalKey(acct, typ, name))
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, wire.NotFound("PRINCIPAL", arn)
	}
	if err != nil {
		return 0, nil, err
	}
	id := iam.SPIFFEID(a.trustDomain, acct, typ, name)
	certPEM, keyPEM, err := a.ca.IssueRequest(pki.Request{URIs: []string{id}, CommonName: name,
		TTL: time.Duration(hours) * time.Hour, PublicKey: pub})
	if errors.Is(err, pki.ErrInvalidRequest) && pub != nil {
		return 0, nil, wire.Invalid("csrPem", "%v", err)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("issuing a client certificate for %s: %w", arn, err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return 0, nil, fmt.Errorf("issuing a client certificate for %s: the CA returned no PEM", arn)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return 0, nil, fmt.Errorf("issuing a client certificate for %s: %w", arn, err)
	}
	return http.StatusCreated, ClientCertificateOut{CertificatePEM: string(certPEM), PrivateKeyPEM: string(keyPEM),
		CAPEM: string(a.ca.CertPEM()), SPIFFEID: id, Principal: arn, NotAfter: wire.Timestamp(leaf.NotAfter)}, nil
}

// parseCSR decodes a PEM certificate signing request and checks its
// signature: the requester holds the private key.
func parseCSR(s string) (*x509.CertificateRequest, error) {
	block, rest := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE REQUEST" || len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("must be one PEM block of type CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("its signature does not verify: %w", err)
	}
	return csr, nil
}
