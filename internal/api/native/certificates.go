package native

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/pki"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Certificates: the ACM-like import of certificates for custom domains.
// A service names one by its certificateArn
// (arn:aws:acm:<region>:<account>:certificate/<uuid>); the pki Issuer
// hands it to the service's HTTPS listeners. Records live at
// /certs/<account>/<uuid> (pki.ImportedKey); the private key is never
// returned by the API.

const rtCertificate = "CERTIFICATE"

func certificateNotFound(ref string) *wire.Error {
	e := wire.NotFound(rtCertificate, ref)
	e.Message = "certificate " + ref + " was not found"
	return e
}

// servicesPrefix is where the Lattice API keeps an account's services.
func servicesPrefix(account string) string { return "/lattice/" + account + "/svc/" }

func (a *API) importCertificate(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Certificate      string            `json:"certificate"`
		PrivateKey       string            `json:"privateKey"`
		CertificateChain string            `json:"certificateChain"`
		Tags             map[string]string `json:"tags"`
		Account          string            `json:"account"`
	}
	if err := wire.Decode(r.Body, &in); err != nil {
		return 0, nil, err
	}
	acct, err := actingAccount(c, in.Account)
	if err != nil {
		return 0, nil, err
	}
	var ck model.Checker
	ck.Tags("tags", in.Tags)
	if err := ck.Err(); err != nil {
		return 0, nil, err
	}
	now := a.timestamp()
	cert, err := pki.Import(pki.ImportInput{Certificate: in.Certificate, PrivateKey: in.PrivateKey, CertificateChain: in.CertificateChain}, now)
	if err != nil {
		return 0, nil, err
	}
	cert.ID = pki.NewCertificateID()
	cert.ARN = pki.CertificateARN(a.region, acct, cert.ID)
	cert.Account, cert.Tags, cert.ImportedAt = acct, in.Tags, now
	_, err = store.Update(ctx, a.st, func(tx *store.Tx) error {
		if _, ok, err := store.GetJSON[model.Account](tx, iam.AccountKey(acct)); err != nil {
			return err
		} else if !ok {
			return wire.NotFound("ACCOUNT", acct)
		}
		return store.PutJSON(tx, pki.ImportedKey(acct, cert.ID), cert)
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, certificateView(cert, nil, false), nil
}

// certificateView is the API form of a certificate; withPEM adds the
// certificate and chain (public), never the key.
func certificateView(c *pki.Imported, inUseBy []string, withPEM bool) map[string]any {
	tags := c.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	if inUseBy == nil {
		inUseBy = []string{}
	}
	v := map[string]any{
		"certificateArn": c.ARN, "id": c.ID, "account": c.Account, "domainNames": c.DomainNames,
		"subject": c.Subject, "issuer": c.Issuer, "serial": c.Serial, "keyAlgorithm": c.KeyAlgorithm,
		"notBefore": wire.Timestamp(c.NotBefore), "notAfter": wire.Timestamp(c.NotAfter),
		"importedAt": wire.Timestamp(c.ImportedAt), "tags": tags, "inUseBy": inUseBy,
	}
	if withPEM {
		v["certificate"] = c.CertPEM
		if c.ChainPEM != "" {
			v["certificateChain"] = c.ChainPEM
		}
	}
	return v
}

// certificateUsers maps certificate ARNs to the ARNs of the account's
// services that name them, sorted.
func certificateUsers(services []*model.Service) map[string][]string {
	out := map[string][]string{}
	for _, s := range services {
		if s.CertificateARN != "" {
			out[s.CertificateARN] = append(out[s.CertificateARN], s.ARN)
		}
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

func decodeServices(kvs []store.KV) ([]*model.Service, error) {
	out := make([]*model.Service, 0, len(kvs))
	for _, kv := range kvs {
		var s model.Service
		if err := json.Unmarshal(kv.Value, &s); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", kv.Key, err)
		}
		out = append(out, &s)
	}
	return out, nil
}

func (a *API) listCertificates(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	acct, err := actingAccount(c, r.Query("account"))
	if err != nil {
		return 0, nil, err
	}
	items := []map[string]any{}
	_, err = store.Update(ctx, a.st, func(tx *store.Tx) error {
		items = items[:0]
		kvs, err := tx.List(pki.ImportedPrefix(acct))
		if err != nil {
			return err
		}
		svcKVs, err := tx.List(servicesPrefix(acct))
		if err != nil {
			return err
		}
		services, err := decodeServices(svcKVs)
		if err != nil {
			return err
		}
		users := certificateUsers(services)
		for _, kv := range kvs {
			var cert pki.Imported
			if err := json.Unmarshal(kv.Value, &cert); err != nil {
				return fmt.Errorf("decoding %s: %w", kv.Key, err)
			}
			items = append(items, certificateView(&cert, users[cert.ARN], false))
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"items": items}, nil
}

// certificateRef resolves the {id} label, a certificate ID or ARN, to the
// account and ID it names, checking the caller may act there.
func certificateRef(c iam.Caller, ref, named string) (acct, id string, err error) {
	if strings.HasPrefix(ref, "arn:") {
		if acct, id, err = pki.ParseCertificateARN(ref); err != nil {
			return "", "", certificateNotFound(ref)
		}
	} else {
		if !pki.IsCertificateID(ref) {
			return "", "", certificateNotFound(ref)
		}
		id, acct = ref, named
	}
	if acct, err = actingAccount(c, acct); err != nil {
		return "", "", certificateNotFound(ref)
	}
	return acct, id, nil
}

func (a *API) getCertificate(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	ref := r.Params["id"]
	acct, id, err := certificateRef(c, ref, r.Query("account"))
	if err != nil {
		return 0, nil, err
	}
	var out any
	_, err = store.Update(ctx, a.st, func(tx *store.Tx) error {
		cert, ok, err := store.GetJSON[pki.Imported](tx, pki.ImportedKey(acct, id))
		if err != nil {
			return err
		}
		if !ok {
			return certificateNotFound(ref)
		}
		svcKVs, err := tx.List(servicesPrefix(acct))
		if err != nil {
			return err
		}
		services, err := decodeServices(svcKVs)
		if err != nil {
			return err
		}
		out = certificateView(cert, certificateUsers(services)[cert.ARN], true)
		return nil
	})
	return http.StatusOK, out, err
}

// deleteCertificate refuses while a service's certificateArn names the
// certificate: its HTTPS listeners would lose their certificate.
func (a *API) deleteCertificate(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	ref := r.Params["id"]
	acct, id, err := certificateRef(c, ref, r.Query("account"))
	if err != nil {
		return 0, nil, err
	}
	_, err = store.Update(ctx, a.st, func(tx *store.Tx) error {
		k := pki.ImportedKey(acct, id)
		cert, ok, err := store.GetJSON[pki.Imported](tx, k)
		if err != nil {
			return err
		}
		if !ok {
			return certificateNotFound(ref)
		}
		// The prefix read makes a service created meanwhile with this
		// certificateArn conflict with the delete, which then re-runs.
		svcKVs, err := tx.List(servicesPrefix(acct))
		if err != nil {
			return err
		}
		services, err := decodeServices(svcKVs)
		if err != nil {
			return err
		}
		if users := certificateUsers(services)[cert.ARN]; len(users) > 0 {
			return wire.Conflict(rtCertificate, cert.ARN, "certificate %s is in use by %s; delete the service or create it without this certificate first",
				cert.ARN, strings.Join(users, ", "))
		}
		tx.Delete(k)
		return nil
	})
	return http.StatusNoContent, nil, err
}
