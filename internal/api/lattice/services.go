package lattice

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

type createServiceIn struct {
	ClientToken        *string           `json:"clientToken"`
	Name               string            `json:"name"`
	Tags               map[string]string `json:"tags"`
	CustomDomainName   *string           `json:"customDomainName"`
	CertificateARN     *string           `json:"certificateArn"`
	AuthType           *string           `json:"authType"`
	IdleTimeoutSeconds *int32            `json:"idleTimeoutSeconds"`
}

func checkCertificateARN(c *model.Checker, v *string) {
	if v == nil || *v == "" {
		return
	}
	arn, err := model.ParseARN(*v)
	if err != nil || len(*v) > model.MaxCertificateARNLen || !strings.HasPrefix(arn.Resource, "certificate/") {
		c.Addf("certificateArn", "must be a certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>), got %q", *v)
	}
}

func checkIdleTimeout(c *model.Checker, v *int32) {
	if v != nil {
		c.Range("idleTimeoutSeconds", int64(*v), model.MinIdleTimeout, model.MaxIdleTimeout)
	}
}

func checkDomainName(c *model.Checker, field, v string) {
	if len(v) < model.MinCustomDomainLen || len(v) > model.MaxCustomDomainLen {
		c.Addf(field, "must be %d to %d characters long", model.MinCustomDomainLen, model.MaxCustomDomainLen)
		return
	}
	labels := strings.Split(strings.TrimSuffix(v, "."), ".")
	if len(labels) < 2 {
		c.Addf(field, "must be a fully qualified domain name such as api.example.com")
		return
	}
	for i, l := range labels {
		if l == "*" && i == 0 {
			continue
		}
		if len(l) < 1 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			c.Addf(field, "label %q must be 1 to 63 characters and not start or end with a hyphen", l)
			return
		}
		for j := 0; j < len(l); j++ {
			ch := l[j]
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-') {
				c.Addf(field, "may contain only letters, digits, hyphens and dots")
				return
			}
		}
	}
}

func (a *API) dnsEntry(name, id string) model.DNSEntry {
	hexID := strings.TrimPrefix(id, model.PrefixService+"-")
	return model.DNSEntry{
		DomainName:   name + "-" + hexID + "." + a.partition + ".vpc-lattice-svcs." + a.region + ".on.aws",
		HostedZoneID: "Z" + strings.ToUpper(a.partition) + "TRELLIS",
	}
}

func (a *API) createService(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var in createServiceIn
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var c model.Checker
	c.ClientToken("clientToken", in.ClientToken)
	c.ResourceName("name", in.Name, 3, 40, model.PrefixService)
	authType := authTypeOr(&c, "authType", in.AuthType)
	c.Tags("tags", in.Tags)
	if in.CustomDomainName != nil {
		checkDomainName(&c, "customDomainName", *in.CustomDomainName)
	}
	checkCertificateARN(&c, in.CertificateARN)
	if in.CertificateARN != nil && *in.CertificateARN != "" && in.CustomDomainName == nil {
		c.Addf("certificateArn", "requires customDomainName: the certificate is served for the custom domain")
	}
	checkIdleTimeout(&c, in.IdleTimeoutSeconds)
	if err := c.Err(); err != nil {
		return 0, nil, err
	}
	var status int
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		status, out, err = idempotent(tx, cl.Account, "CreateService", in.ClientToken, r.HTTP.URL.EscapedPath(), r.Body, func() (int, any, error) {
			if err := a.claimName(tx, cl.Account, "svc", in.Name, rtService); err != nil {
				return 0, nil, err
			}
			if err := a.checkQuota(tx, key(cl.Account, "svc")+"/", a.quotas.Services, rtService, "L-620C821E", "services per region"); err != nil {
				return 0, nil, err
			}
			svc := model.Service{Meta: a.newMeta(cl.Account, model.PrefixService, "service/", in.Tags),
				Name: in.Name, AuthType: authType, Status: model.StatusActive, IdleTimeoutSeconds: model.DefaultIdleTimeout}
			if in.CustomDomainName != nil {
				svc.CustomDomainName = strings.ToLower(strings.TrimSuffix(*in.CustomDomainName, "."))
			}
			if in.CertificateARN != nil {
				svc.CertificateARN = *in.CertificateARN
			}
			if in.IdleTimeoutSeconds != nil {
				svc.IdleTimeoutSeconds = *in.IdleTimeoutSeconds
			}
			svc.DNSEntry = a.dnsEntry(svc.Name, svc.ID)
			if err := a.putName(tx, cl.Account, "svc", in.Name, svc.ID); err != nil {
				return 0, nil, err
			}
			if err := store.PutJSON(tx, key(cl.Account, "svc", svc.ID), svc); err != nil {
				return 0, nil, err
			}
			return http.StatusCreated, serviceView(&svc, false), nil
		})
		return err
	})
	return status, out, err
}

func serviceView(s *model.Service, full bool) map[string]any {
	out := map[string]any{"id": s.ID, "arn": s.ARN, "name": s.Name, "status": s.Status,
		"authType": s.AuthType, "idleTimeoutSeconds": s.IdleTimeoutSeconds, "dnsEntry": s.DNSEntry}
	if s.CustomDomainName != "" {
		out["customDomainName"] = s.CustomDomainName
	}
	if s.CertificateARN != "" {
		out["certificateArn"] = s.CertificateARN
	}
	if full {
		out["createdAt"] = wire.Timestamp(s.CreatedAt)
		out["lastUpdatedAt"] = wire.Timestamp(s.UpdatedAt)
	}
	return out
}

func (a *API) resolveService(r *wire.Request, account string) (string, error) {
	return a.resolve("serviceIdentifier", r.Params["serviceIdentifier"], model.PrefixService, "service", rtService, account)
}

func (a *API) getService(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.resolveService(r, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	var out any
	err = a.view(ctx, func(tx *store.Tx) error {
		svc, err := mustLoad[model.Service](tx, key(cl.Account, "svc", id), rtService, id)
		if err != nil {
			return err
		}
		out = serviceView(svc, true)
		return nil
	})
	return http.StatusOK, out, err
}

func (a *API) listServices(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	kvs, next, err := a.page(ctx, r, "svc", key(cl.Account, "svc")+"/")
	if err != nil {
		return 0, nil, err
	}
	items := make([]map[string]any, 0, len(kvs))
	for _, kv := range kvs {
		var s model.Service
		if err := json.Unmarshal(kv.Value, &s); err != nil {
			return 0, nil, err
		}
		v := serviceView(&s, true)
		delete(v, "authType")
		delete(v, "idleTimeoutSeconds")
		delete(v, "certificateArn")
		items = append(items, v)
	}
	return http.StatusOK, listOut{Items: items, NextToken: next}, nil
}

func (a *API) updateService(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.resolveService(r, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		CertificateARN     *string `json:"certificateArn"`
		AuthType           *string `json:"authType"`
		IdleTimeoutSeconds *int32  `json:"idleTimeoutSeconds"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var c model.Checker
	if in.AuthType != nil {
		c.Enum("authType", *in.AuthType, model.AuthTypeNone, model.AuthTypeAWSIAM)
	}
	checkCertificateARN(&c, in.CertificateARN)
	checkIdleTimeout(&c, in.IdleTimeoutSeconds)
	if err := c.Err(); err != nil {
		return 0, nil, err
	}
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		svc, err := mustLoad[model.Service](tx, key(cl.Account, "svc", id), rtService, id)
		if err != nil {
			return err
		}
		if in.CertificateARN != nil {
			if *in.CertificateARN != "" && svc.CustomDomainName == "" {
				return wire.Invalid("certificateArn", "service %s has no custom domain name to serve the certificate for", id)
			}
			svc.CertificateARN = *in.CertificateARN
		}
		if in.AuthType != nil {
			svc.AuthType = *in.AuthType
		}
		if in.IdleTimeoutSeconds != nil {
			svc.IdleTimeoutSeconds = *in.IdleTimeoutSeconds
		}
		svc.UpdatedAt = a.timestamp()
		v := serviceView(svc, false)
		delete(v, "status")
		delete(v, "dnsEntry")
		out = v
		return store.PutJSON(tx, key(cl.Account, "svc", id), svc)
	})
	return http.StatusOK, out, err
}

func (a *API) deleteService(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.resolveService(r, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		svc, err := mustLoad[model.Service](tx, key(cl.Account, "svc", id), rtService, id)
		if err != nil {
			return err
		}
		snsas, err := store.ListJSON[model.ServiceNetworkServiceAssociation](tx, key(cl.Account, "snsa")+"/")
		if err != nil {
			return err
		}
		for _, s := range snsas {
			if s.ServiceID == id {
				return wire.Conflict(rtService, id, "service %s is associated with service network %s (%s); delete the association first", id, s.ServiceNetworkID, s.ID)
			}
		}
		listeners, err := store.ListJSON[model.Listener](tx, key(cl.Account, "listener", id)+"/")
		if err != nil {
			return err
		}
		for _, l := range listeners {
			if err := a.deleteListenerTx(tx, cl.Account, l); err != nil {
				return err
			}
		}
		a.dropName(tx, cl.Account, "svc", svc.Name)
		tx.Delete(key(cl.Account, "svc", id))
		out = map[string]any{"id": svc.ID, "arn": svc.ARN, "name": svc.Name, "status": "DELETE_IN_PROGRESS"}
		return a.deletePoliciesAndLogs(tx, cl.Account, id)
	})
	return http.StatusOK, out, err
}
