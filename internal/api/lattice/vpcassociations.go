package lattice

import (
	"context"
	"net/http"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

func (a *API) createSNVA(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var in createSNVAIn
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var c model.Checker
	c.ClientToken("clientToken", in.ClientToken)
	requireIdent(&c, "serviceNetworkIdentifier", in.ServiceNetworkIdentifier)
	if in.VpcIdentifier == "" {
		c.Addf("vpcIdentifier", "is required")
	} else if len(in.VpcIdentifier) < 5 || len(in.VpcIdentifier) > 50 {
		c.Addf("vpcIdentifier", "must be a VPC ID (vpc- followed by 8 or 17 characters)")
	}
	if in.SecurityGroupIDs != nil {
		checkSecurityGroups(&c, in.SecurityGroupIDs, 0)
	}
	checkDNSOptions(&c, in.DNSOptions)
	c.Tags("tags", in.Tags)
	if err := c.Err(); err != nil {
		return 0, nil, err
	}
	snID, err := a.resolveSN("serviceNetworkIdentifier", in.ServiceNetworkIdentifier, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	var status int
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		status, out, err = idempotent(tx, cl.Account, "CreateServiceNetworkVpcAssociation", in.ClientToken, r.HTTP.URL.EscapedPath(), r.Body, func() (int, any, error) {
			if _, err := mustLoad[model.ServiceNetwork](tx, key(cl.Account, "sn", snID), rtServiceNetwork, snID); err != nil {
				return 0, nil, err
			}
			vpc, ok, err := store.GetJSON[model.VPC](tx, VPCKey(in.VpcIdentifier))
			if err != nil {
				return 0, nil, err
			}
			if !ok || vpc.Account != cl.Account {
				return 0, nil, wire.NotFound(rtVPC, in.VpcIdentifier)
			}
			if kv, err := tx.Get(VPCAssociationKey(vpc.ID)); err == nil {
				return 0, nil, wire.Conflict(rtSNVA, string(kv.Value), "VPC %s is already associated with a service network (%s); a VPC has one service network association", vpc.ID, kv.Value)
			} else if !isNotFound(err) {
				return 0, nil, err
			}
			_, vpcs, err := snCounts(tx, cl.Account)
			if err != nil {
				return 0, nil, err
			}
			if vpcs[snID] >= int64(a.quotas.VPCAssociationsPerNetwork) {
				return 0, nil, wire.Quota(rtSNVA, "L-EF6E2D62", "quota exceeded: at most %d VPC associations per service network", a.quotas.VPCAssociationsPerNetwork)
			}
			as := model.ServiceNetworkVpcAssociation{
				Meta:   a.newMeta(cl.Account, model.PrefixSNVpcAssoc, "servicenetworkvpcassociation/", in.Tags),
				Status: model.StatusActive, CreatedBy: cl.Account, ServiceNetworkID: snID, VpcID: vpc.ID,
				SecurityGroupIDs: in.SecurityGroupIDs, PrivateDNS: in.PrivateDNSEnabled, DNSOptions: in.DNSOptions,
			}
			tx.Put(VPCAssociationKey(vpc.ID), []byte(as.ID))
			if err := store.PutJSON(tx, key(cl.Account, "snva", as.ID), as); err != nil {
				return 0, nil, err
			}
			v := map[string]any{"id": as.ID, "arn": as.ARN, "status": as.Status, "createdBy": as.CreatedBy,
				"securityGroupIds": sgs(as.SecurityGroupIDs)}
			if as.PrivateDNS != nil {
				v["privateDnsEnabled"] = *as.PrivateDNS
			}
			if as.DNSOptions != nil {
				v["dnsOptions"] = as.DNSOptions
			}
			return http.StatusOK, v, nil
		})
		return err
	})
	return status, out, err
}

func sgs(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

func (a *API) snvaView(tx *store.Tx, as *model.ServiceNetworkVpcAssociation) (map[string]any, error) {
	v := map[string]any{"id": as.ID, "arn": as.ARN, "status": as.Status, "createdBy": as.CreatedBy,
		"createdAt": wire.Timestamp(as.CreatedAt), "lastUpdatedAt": wire.Timestamp(as.UpdatedAt),
		"serviceNetworkId": as.ServiceNetworkID, "serviceNetworkArn": a.arn(as.Account, "servicenetwork/"+as.ServiceNetworkID),
		"vpcId": as.VpcID, "securityGroupIds": sgs(as.SecurityGroupIDs)}
	if as.PrivateDNS != nil {
		v["privateDnsEnabled"] = *as.PrivateDNS
	}
	if as.DNSOptions != nil {
		v["dnsOptions"] = as.DNSOptions
	}
	sn, ok, err := store.GetJSON[model.ServiceNetwork](tx, key(as.Account, "sn", as.ServiceNetworkID))
	if err != nil {
		return nil, err
	}
	if ok {
		v["serviceNetworkName"] = sn.Name
	}
	return v, nil
}

func (a *API) resolveSNVA(r *wire.Request, account string) (string, error) {
	return a.resolve("serviceNetworkVpcAssociationIdentifier", r.Params["serviceNetworkVpcAssociationIdentifier"],
		model.PrefixSNVpcAssoc, "servicenetworkvpcassociation", rtSNVA, account)
}

func (a *API) getSNVA(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.resolveSNVA(r, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	var out any
	err = a.view(ctx, func(tx *store.Tx) error {
		as, err := mustLoad[model.ServiceNetworkVpcAssociation](tx, key(cl.Account, "snva", id), rtSNVA, id)
		if err != nil {
			return err
		}
		out, err = a.snvaView(tx, as)
		return err
	})
	return http.StatusOK, out, err
}

func (a *API) listSNVAs(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var snID string
	if v := r.Query("serviceNetworkIdentifier"); v != "" {
		if snID, err = a.resolveSN("serviceNetworkIdentifier", v, cl.Account); err != nil {
			return 0, nil, err
		}
	}
	vpcID := r.Query("vpcIdentifier")
	var items []map[string]any
	var next string
	err = a.view(ctx, func(tx *store.Tx) error {
		all, err := store.ListJSON[model.ServiceNetworkVpcAssociation](tx, key(cl.Account, "snva")+"/")
		if err != nil {
			return err
		}
		var match []*model.ServiceNetworkVpcAssociation
		for _, s := range all {
			if (snID == "" || s.ServiceNetworkID == snID) && (vpcID == "" || s.VpcID == vpcID) {
				match = append(match, s)
			}
		}
		page, nt, err := paginate(r, "snva/"+snID+"/"+vpcID, match, func(s *model.ServiceNetworkVpcAssociation) string { return s.ID })
		if err != nil {
			return err
		}
		next = nt
		items = make([]map[string]any, 0, len(page))
		for _, s := range page {
			v, err := a.snvaView(tx, s)
			if err != nil {
				return err
			}
			delete(v, "securityGroupIds")
			items = append(items, v)
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, listOut{Items: items, NextToken: next}, nil
}

func (a *API) updateSNVA(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.resolveSNVA(r, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		SecurityGroupIDs []string `json:"securityGroupIds"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var c model.Checker
	checkSecurityGroups(&c, in.SecurityGroupIDs, 1)
	if err := c.Err(); err != nil {
		return 0, nil, err
	}
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		as, err := mustLoad[model.ServiceNetworkVpcAssociation](tx, key(cl.Account, "snva", id), rtSNVA, id)
		if err != nil {
			return err
		}
		if as.CreatedBy != cl.Account {
			return wire.AccessDenied("only the account that created association %s may update it", id)
		}
		as.SecurityGroupIDs = in.SecurityGroupIDs
		as.UpdatedAt = a.timestamp()
		out = map[string]any{"id": as.ID, "arn": as.ARN, "status": as.Status, "createdBy": as.CreatedBy, "securityGroupIds": as.SecurityGroupIDs}
		return store.PutJSON(tx, key(cl.Account, "snva", id), as)
	})
	return http.StatusOK, out, err
}

func (a *API) deleteSNVA(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.resolveSNVA(r, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		as, err := mustLoad[model.ServiceNetworkVpcAssociation](tx, key(cl.Account, "snva", id), rtSNVA, id)
		if err != nil {
			return err
		}
		tx.Delete(key(cl.Account, "snva", id))
		tx.Delete(VPCAssociationKey(as.VpcID))
		out = map[string]any{"id": as.ID, "arn": as.ARN, "status": "DELETE_IN_PROGRESS"}
		return nil
	})
	return http.StatusOK, out, err
}

// listSNVpcEndpointAssociations: Trellis has no VPC endpoints of type
// service network, so the list is always empty (but the network must exist).
func (a *API) listSNVpcEndpointAssociations(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	ident := r.Query("serviceNetworkIdentifier")
	if ident == "" {
		return 0, nil, wire.Invalid("serviceNetworkIdentifier", "is required")
	}
	id, err := a.resolveSN("serviceNetworkIdentifier", ident, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	if _, _, err := pageParams(r, "snve/"+id); err != nil {
		return 0, nil, err
	}
	err = a.view(ctx, func(tx *store.Tx) error {
		_, err := mustLoad[model.ServiceNetwork](tx, key(cl.Account, "sn", id), rtServiceNetwork, id)
		return err
	})
	return http.StatusOK, listOut{Items: []any{}}, err
}
