package lattice

import (
	"context"
	"net/http"
	"strings"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

func (a *API) resolveSN(field, ident, account string) (string, error) {
	return a.resolve(field, ident, model.PrefixServiceNetwork, "servicenetwork", rtServiceNetwork, account)
}

type createSNSAIn struct {
	ClientToken              *string           `json:"clientToken"`
	ServiceIdentifier        string            `json:"serviceIdentifier"`
	ServiceNetworkIdentifier string            `json:"serviceNetworkIdentifier"`
	Tags                     map[string]string `json:"tags"`
}

func requireIdent(c *model.Checker, field, v string) {
	if v == "" {
		c.Addf(field, "is required")
	} else if len(v) > model.MaxIdentifierLen {
		c.Addf(field, "must be at most %d characters long", model.MaxIdentifierLen)
	}
}

func (a *API) createSNSA(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var in createSNSAIn
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var c model.Checker
	c.ClientToken("clientToken", in.ClientToken)
	requireIdent(&c, "serviceIdentifier", in.ServiceIdentifier)
	requireIdent(&c, "serviceNetworkIdentifier", in.ServiceNetworkIdentifier)
	c.Tags("tags", in.Tags)
	if err := c.Err(); err != nil {
		return 0, nil, err
	}
	svcID, err := a.resolve("serviceIdentifier", in.ServiceIdentifier, model.PrefixService, "service", rtService, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	snID, err := a.resolveSN("serviceNetworkIdentifier", in.ServiceNetworkIdentifier, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	var status int
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		status, out, err = idempotent(tx, cl.Account, "CreateServiceNetworkServiceAssociation", in.ClientToken, r.HTTP.URL.EscapedPath(), r.Body, func() (int, any, error) {
			svc, err := mustLoad[model.Service](tx, key(cl.Account, "svc", svcID), rtService, svcID)
			if err != nil {
				return 0, nil, err
			}
			if _, err := mustLoad[model.ServiceNetwork](tx, key(cl.Account, "sn", snID), rtServiceNetwork, snID); err != nil {
				return 0, nil, err
			}
			all, err := store.ListJSON[model.ServiceNetworkServiceAssociation](tx, key(cl.Account, "snsa")+"/")
			if err != nil {
				return 0, nil, err
			}
			inNetwork := 0
			for _, s := range all {
				if s.ServiceNetworkID != snID {
					continue
				}
				inNetwork++
				if s.ServiceID == svcID {
					return 0, nil, wire.Conflict(rtSNSA, s.ID, "service %s is already associated with service network %s (%s)", svcID, snID, s.ID)
				}
				if svc.CustomDomainName != "" {
					other, ok, err := store.GetJSON[model.Service](tx, key(cl.Account, "svc", s.ServiceID))
					if err != nil {
						return 0, nil, err
					}
					if ok && strings.EqualFold(other.CustomDomainName, svc.CustomDomainName) {
						return 0, nil, wire.Conflict(rtSNSA, s.ID, "service %s in service network %s already uses custom domain name %s", other.ID, snID, svc.CustomDomainName)
					}
				}
			}
			if inNetwork >= a.quotas.ServiceAssociationsPerNetwork {
				return 0, nil, wire.Quota(rtSNSA, "L-75D4A19E", "quota exceeded: at most %d service associations per service network", a.quotas.ServiceAssociationsPerNetwork)
			}
			as := model.ServiceNetworkServiceAssociation{
				Meta:   a.newMeta(cl.Account, model.PrefixSNServiceAssoc, "servicenetworkserviceassociation/", in.Tags),
				Status: model.StatusActive, CreatedBy: cl.Account, ServiceID: svcID, ServiceNetworkID: snID,
				ServiceAccount: cl.Account, ServiceNetworkAcct: cl.Account,
			}
			if err := store.PutJSON(tx, key(cl.Account, "snsa", as.ID), as); err != nil {
				return 0, nil, err
			}
			v := map[string]any{"id": as.ID, "arn": as.ARN, "status": as.Status, "createdBy": as.CreatedBy, "dnsEntry": svc.DNSEntry}
			if svc.CustomDomainName != "" {
				v["customDomainName"] = svc.CustomDomainName
			}
			return http.StatusOK, v, nil
		})
		return err
	})
	return status, out, err
}

// snsaView is the full (Get and List) shape of a service association.
func (a *API) snsaView(tx *store.Tx, as *model.ServiceNetworkServiceAssociation) (map[string]any, error) {
	v := map[string]any{"id": as.ID, "arn": as.ARN, "status": as.Status, "createdBy": as.CreatedBy,
		"createdAt": wire.Timestamp(as.CreatedAt), "serviceId": as.ServiceID, "serviceNetworkId": as.ServiceNetworkID,
		"serviceArn":        a.arn(as.ServiceAccount, "service/"+as.ServiceID),
		"serviceNetworkArn": a.arn(as.ServiceNetworkAcct, "servicenetwork/"+as.ServiceNetworkID)}
	if svc, ok, err := store.GetJSON[model.Service](tx, key(as.ServiceAccount, "svc", as.ServiceID)); err != nil {
		return nil, err
	} else if ok {
		v["serviceName"] = svc.Name
		v["dnsEntry"] = svc.DNSEntry
		if svc.CustomDomainName != "" {
			v["customDomainName"] = svc.CustomDomainName
		}
	}
	if sn, ok, err := store.GetJSON[model.ServiceNetwork](tx, key(as.ServiceNetworkAcct, "sn", as.ServiceNetworkID)); err != nil {
		return nil, err
	} else if ok {
		v["serviceNetworkName"] = sn.Name
	}
	return v, nil
}

func (a *API) resolveSNSA(r *wire.Request, account string) (string, error) {
	return a.resolve("serviceNetworkServiceAssociationIdentifier", r.Params["serviceNetworkServiceAssociationIdentifier"],
		model.PrefixSNServiceAssoc, "servicenetworkserviceassociation", rtSNSA, account)
}

func (a *API) getSNSA(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.resolveSNSA(r, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	var out any
	err = a.view(ctx, func(tx *store.Tx) error {
		as, err := mustLoad[model.ServiceNetworkServiceAssociation](tx, key(cl.Account, "snsa", id), rtSNSA, id)
		if err != nil {
			return err
		}
		out, err = a.snsaView(tx, as)
		return err
	})
	return http.StatusOK, out, err
}

func (a *API) listSNSAs(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var snID, svcID string
	if v := r.Query("serviceNetworkIdentifier"); v != "" {
		if snID, err = a.resolveSN("serviceNetworkIdentifier", v, cl.Account); err != nil {
			return 0, nil, err
		}
	}
	if v := r.Query("serviceIdentifier"); v != "" {
		if svcID, err = a.resolve("serviceIdentifier", v, model.PrefixService, "service", rtService, cl.Account); err != nil {
			return 0, nil, err
		}
	}
	var items []map[string]any
	var next string
	err = a.view(ctx, func(tx *store.Tx) error {
		all, err := store.ListJSON[model.ServiceNetworkServiceAssociation](tx, key(cl.Account, "snsa")+"/")
		if err != nil {
			return err
		}
		var match []*model.ServiceNetworkServiceAssociation
		for _, s := range all {
			if (snID == "" || s.ServiceNetworkID == snID) && (svcID == "" || s.ServiceID == svcID) {
				match = append(match, s)
			}
		}
		page, nt, err := paginate(r, "snsa/"+snID+"/"+svcID, match, func(s *model.ServiceNetworkServiceAssociation) string { return s.ID })
		if err != nil {
			return err
		}
		next = nt
		items = make([]map[string]any, 0, len(page))
		for _, s := range page {
			v, err := a.snsaView(tx, s)
			if err != nil {
				return err
			}
			items = append(items, v)
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, listOut{Items: items, NextToken: next}, nil
}

func (a *API) deleteSNSA(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.resolveSNSA(r, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		as, err := mustLoad[model.ServiceNetworkServiceAssociation](tx, key(cl.Account, "snsa", id), rtSNSA, id)
		if err != nil {
			return err
		}
		tx.Delete(key(cl.Account, "snsa", id))
		out = map[string]any{"id": as.ID, "arn": as.ARN, "status": "DELETE_IN_PROGRESS"}
		return nil
	})
	return http.StatusOK, out, err
}

type createSNVAIn struct {
	ClientToken              *string           `json:"clientToken"`
	ServiceNetworkIdentifier string            `json:"serviceNetworkIdentifier"`
	VpcIdentifier            string            `json:"vpcIdentifier"`
	PrivateDNSEnabled        *bool             `json:"privateDnsEnabled"`
	SecurityGroupIDs         []string          `json:"securityGroupIds"`
	Tags                     map[string]string `json:"tags"`
	DNSOptions               *model.DNSOptions `json:"dnsOptions"`
}

func checkSecurityGroups(c *model.Checker, ids []string, minN int) {
	if len(ids) < minN || len(ids) > 5 {
		c.Addf("securityGroupIds", "must list %d to 5 security groups, got %d", minN, len(ids))
	}
	for i, sg := range ids {
		rest, ok := strings.CutPrefix(sg, "sg-")
		if !ok || (len(rest) != 8 && len(rest) != 17) || strings.Trim(rest, "0123456789abcdefghijklmnopqrstuvwxyz") != "" {
			c.Addf("securityGroupIds["+itoa(i)+"]", "must be a security group ID (sg- followed by 8 or 17 characters), got %q", sg)
		}
	}
}

func checkDNSOptions(c *model.Checker, o *model.DNSOptions) {
	if o == nil {
		return
	}
	if o.PrivateDNSPreference != "" {
		c.Enum("dnsOptions.privateDnsPreference", o.PrivateDNSPreference,
			"VERIFIED_DOMAINS_ONLY", "ALL_DOMAINS", "VERIFIED_DOMAINS_AND_SPECIFIED_DOMAINS", "SPECIFIED_DOMAINS_ONLY")
	}
	if n := len(o.PrivateDNSSpecifiedDomains); n > 10 {
		c.Addf("dnsOptions.privateDnsSpecifiedDomains", "must list at most 10 domains, got %d", n)
	}
	for i, d := range o.PrivateDNSSpecifiedDomains {
		checkDomainName(c, "dnsOptions.privateDnsSpecifiedDomains["+itoa(i)+"]", d)
	}
}
