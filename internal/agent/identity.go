package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/trellis-mesh/trellis/internal/nativeclient"
)

// certTTLHours is the lifetime asked for the agent's certificate; it is
// renewed when two thirds of it have passed, so a control plane down for
// up to a third of it (8 h) costs nothing.
const certTTLHours = 24

// identity is the agent's certificate from Trellis's CA, for TLS between
// agents: the server side of ingress and the client side of egress both
// present it, and both require the other side's to chain to the same CA
// and carry a SPIFFE ID of the same trust domain. It is renewed before it
// expires; TLS configs read the current one at each handshake, so
// rotation needs no restart.
type identity struct {
	log   *slog.Logger
	api   *nativeclient.Client
	cur   atomic.Pointer[issued]
	renew time.Time // when run renews next
}

// issued is one certificate and what verifies peers.
type issued struct {
	cert        tls.Certificate
	leaf        *x509.Certificate
	roots       *x509.CertPool
	spiffeID    string
	trustDomain string
	// peers is the SPIFFE ID prefix peers must carry: this agent's trust
	// domain and account ("spiffe://TD/account/ACCOUNT/").
	peers string
	// server is ingress's TLS config for this certificate and CA.
	server *tls.Config
}

// whoAmI is the native API's whoami answer.
type whoAmI struct {
	Account string `json:"Account"`
	Arn     string `json:"Arn"`
}

// certificateOut is the answer of POST .../certificates with a csrPem.
type certificateOut struct {
	CertificatePEM string `json:"certificatePem"`
	CAPEM          string `json:"caPem"`
	SPIFFEID       string `json:"spiffeId"`
}

// fetch asks the server for a certificate of the principal the agent's
// credentials belong to. The agent makes a new key each time and sends
// only a certificate signing request: the private key never leaves the
// process (nor is it written anywhere).
func (id *identity) fetch(ctx context.Context) error {
	var who whoAmI
	if err := id.api.Call(ctx, "GET", "/whoami", nil, &who); err != nil {
		return fmt.Errorf("agent identity: whoami: %w", err)
	}
	// arn:aws:iam::ACCOUNT:role/NAME or user/NAME (paths are not used).
	_, res, ok := strings.Cut(who.Arn, ":iam::"+who.Account+":")
	typ, name, ok2 := strings.Cut(res, "/")
	if !ok || !ok2 || (typ != "role" && typ != "user") {
		return fmt.Errorf("agent identity: credentials of %q: want an IAM user or role ARN", who.Arn)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("agent identity: generating a key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return fmt.Errorf("agent identity: certificate request: %w", err)
	}
	var out certificateOut
	path := "/principals/" + typ + "/" + url.PathEscape(name) + "/certificates"
	in := map[string]any{"ttlHours": certTTLHours,
		"csrPem": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}))}
	if err := id.api.Call(ctx, "POST", path, in, &out); err != nil {
		return fmt.Errorf("agent identity: certificate for %s: %w", who.Arn, err)
	}
	block, _ := pem.Decode([]byte(out.CertificatePEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return errors.New("agent identity: the server sent no certificate")
	}
	cert := tls.Certificate{Certificate: [][]byte{block.Bytes}, PrivateKey: key}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("agent identity: %w", err)
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		return errors.New("agent identity: the certificate is not for the key the agent sent")
	}
	cert.Leaf = leaf
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(out.CAPEM)) {
		return errors.New("agent identity: the server sent no CA certificate")
	}
	td, ok := trustDomainOf(out.SPIFFEID)
	if !ok {
		return fmt.Errorf("agent identity: %q is not a SPIFFE ID", out.SPIFFEID)
	}
	peers := "spiffe://" + td + "/account/" + who.Account + "/"
	if !strings.HasPrefix(out.SPIFFEID, peers) {
		return fmt.Errorf("agent identity: %q is not of account %s", out.SPIFFEID, who.Account)
	}
	is := &issued{cert: cert, leaf: leaf, roots: roots, spiffeID: out.SPIFFEID, trustDomain: td, peers: peers}
	is.server = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// crypto/tls checks the chain (and the egress proxy then records
		// the peer's SPIFFE ID); VerifyConnection adds the trust domain.
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  roots,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return checkPeerID(cs, peers)
		},
	}
	id.cur.Store(is)
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	id.renew = leaf.NotBefore.Add(life * 2 / 3)
	id.log.Info("certificate", "spiffeId", out.SPIFFEID, "notAfter", leaf.NotAfter.UTC().Format(time.RFC3339), "renewAt", id.renew.UTC().Format(time.RFC3339))
	return nil
}

// run renews the certificate before it expires, retrying failures with
// backoff, until ctx ends.
func (id *identity) run(ctx context.Context) {
	backoff := time.Second
	for {
		wait := time.Until(id.renew)
		if id.cur.Load() == nil {
			wait = backoff
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(wait, 0)):
		}
		if err := id.fetch(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			id.log.Warn("renewing the agent certificate", "err", err, "retryIn", backoff)
			id.renew = time.Now().Add(backoff)
			backoff = min(2*backoff, time.Minute)
			continue
		}
		backoff = time.Second
	}
}

func trustDomainOf(spiffeID string) (string, bool) {
	rest, ok := strings.CutPrefix(spiffeID, "spiffe://")
	if !ok {
		return "", false
	}
	td, _, ok := strings.Cut(rest, "/")
	return td, ok && td != ""
}

// errNoIdentity: a TLS handshake before the first certificate arrived.
var errNoIdentity = errors.New("agent identity: no certificate yet")

// serverConfig is ingress's TLS: TLS 1.3 with the current certificate,
// and a client certificate of the same CA and trust domain required. The
// config of the current certificate is chosen at each handshake, so a
// renewal (or a new CA) applies to the next connection.
func (id *identity) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			if c := id.cur.Load(); c != nil {
				return c.server, nil
			}
			return nil, errNoIdentity
		},
	}
}

// clientConfig is egress's TLS toward other agents' ingress: TLS 1.3, the
// current certificate, and the server's checked (verifyPeer; agents are
// reached by address, so there is no host name to check).
func (id *identity) clientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if c := id.cur.Load(); c != nil {
				return &c.cert, nil
			}
			return nil, errNoIdentity
		},
		InsecureSkipVerify: true, // replaced by VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			return id.verifyPeer(cs, x509.ExtKeyUsageServerAuth)
		},
	}
}

// verifyPeer accepts a peer whose certificate chains to Trellis's CA for
// usage and carries exactly one SPIFFE ID in the agent's trust domain:
// another agent (or principal) of this installation.
func (id *identity) verifyPeer(cs tls.ConnectionState, usage x509.ExtKeyUsage) error {
	c := id.cur.Load()
	if c == nil {
		return errNoIdentity
	}
	if len(cs.PeerCertificates) == 0 {
		return errors.New("agent TLS: the peer sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, ic := range cs.PeerCertificates[1:] {
		inter.AddCert(ic)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: c.roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return fmt.Errorf("agent TLS: peer certificate: %w", err)
	}
	return checkPeerID(cs, c.peers)
}

// checkPeerID accepts a peer whose leaf carries exactly one SPIFFE ID
// under prefix: a principal of this agent's trust domain and account
// (the namespace's; Trellis does not share namespaces across accounts).
func checkPeerID(cs tls.ConnectionState, prefix string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("agent TLS: the peer sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	if len(leaf.URIs) != 1 {
		return errors.New("agent TLS: the peer certificate carries no single SPIFFE ID")
	}
	if id := leaf.URIs[0].String(); !strings.HasPrefix(id, prefix) {
		return fmt.Errorf("agent TLS: peer %s is not under %s", id, prefix)
	}
	return nil
}
