package cloudmap

import (
	"context"
	"slices"
	"strings"

	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

type createServiceIn struct {
	Name                    *string               `json:"Name"`
	NamespaceID             *string               `json:"NamespaceId"`
	CreatorRequestID        *string               `json:"CreatorRequestId"`
	Description             *string               `json:"Description"`
	DNSConfig               *dnsConfigIn          `json:"DnsConfig"`
	HealthCheckConfig       *healthCheckConfigIn  `json:"HealthCheckConfig"`
	HealthCheckCustomConfig *customHealthConfigIn `json:"HealthCheckCustomConfig"`
	Tags                    []tagIn               `json:"Tags"`
	Type                    *string               `json:"Type"`
}

// serviceOut is Service (full) and ServiceSummary (without NamespaceId
// and CreatorRequestId).
type serviceOut struct {
	ID                      string              `json:"Id"`
	ARN                     string              `json:"Arn"`
	ResourceOwner           string              `json:"ResourceOwner"`
	Name                    string              `json:"Name"`
	NamespaceID             string              `json:"NamespaceId,omitempty"`
	Description             string              `json:"Description,omitempty"`
	InstanceCount           int                 `json:"InstanceCount"`
	DNSConfig               dnsConfigOut        `json:"DnsConfig"`
	Type                    string              `json:"Type"`
	HealthCheckConfig       *healthCheckConfig  `json:"HealthCheckConfig,omitempty"`
	HealthCheckCustomConfig *customHealthConfig `json:"HealthCheckCustomConfig,omitempty"`
	CreateDate              epoch               `json:"CreateDate"`
	CreatorRequestID        string              `json:"CreatorRequestId,omitempty"`
	CreatedByAccount        string              `json:"CreatedByAccount"`
}

type dnsConfigOut struct {
	NamespaceID   string      `json:"NamespaceId,omitempty"`
	RoutingPolicy string      `json:"RoutingPolicy,omitempty"`
	DNSRecords    []dnsRecord `json:"DnsRecords,omitempty"`
}

func serviceView(s *service, full bool) serviceOut {
	out := serviceOut{ID: s.ID, ARN: s.ARN, ResourceOwner: s.Account, Name: s.Name, Description: s.Description,
		InstanceCount: s.InstanceCount, Type: s.Type, HealthCheckConfig: s.HealthCheck,
		HealthCheckCustomConfig: s.CustomHealth, CreateDate: epoch(s.CreateDate), CreatedByAccount: s.Account}
	if s.DNS != nil {
		out.DNSConfig = dnsConfigOut{NamespaceID: s.NamespaceID, RoutingPolicy: s.DNS.RoutingPolicy, DNSRecords: s.DNS.DNSRecords}
	}
	if full {
		out.NamespaceID, out.CreatorRequestID = s.NamespaceID, s.CreatorRequestID
	}
	return out
}

type serviceOutput struct {
	Service serviceOut `json:"Service"`
}

// serviceNameKey indexes a service by name in its namespace: exact in HTTP
// namespaces, without case in DNS namespaces (DNS names ignore case).
func serviceNameKey(account string, ns *namespace, name string) string {
	if ns.Type != NamespaceHTTP {
		name = strings.ToLower(name)
	}
	return key(account, "svcname", ns.ID, name)
}

func (a *API) createService(ctx context.Context, cl iam.Caller, in *createServiceIn) (any, error) {
	var c model.Checker
	checkServiceName(&c, "Name", in.Name)
	requestID(&c, "CreatorRequestId", in.CreatorRequestID)
	maxLen(&c, "Description", in.Description, maxDescription)
	tags := checkTags(&c, "Tags", in.Tags)
	if in.Type != nil {
		c.Enum("Type", *in.Type, ServiceTypeHTTP)
	}
	nsIdent := in.NamespaceID
	var dns *dnsConfig
	if in.DNSConfig != nil {
		dns = checkDNSConfig(&c, "DnsConfig", in.DNSConfig)
		if d := in.DNSConfig.NamespaceID; d != nil && *d != "" {
			if nsIdent != nil && *nsIdent != *d {
				c.Addf("DnsConfig.NamespaceId", "is deprecated and must equal NamespaceId when both are given")
			}
			nsIdent = d
		}
		if in.Type != nil {
			c.Addf("DnsConfig", "cannot be combined with Type HTTP (a service without DNS records)")
		}
	}
	var hc *healthCheckConfig
	if in.HealthCheckConfig != nil {
		hc = checkHealthCheckConfig(&c, "HealthCheckConfig", in.HealthCheckConfig)
		if in.HealthCheckCustomConfig != nil {
			c.Addf("HealthCheckCustomConfig", "cannot be combined with HealthCheckConfig")
		}
		if dns != nil && slices.ContainsFunc(dns.DNSRecords, func(r dnsRecord) bool { return r.Type == "CNAME" }) {
			c.Addf("HealthCheckConfig", "cannot be used with a CNAME record")
		}
	}
	var custom *customHealthConfig
	if in.HealthCheckCustomConfig != nil {
		if t := in.HealthCheckCustomConfig.FailureThreshold; t != nil {
			c.Range("HealthCheckCustomConfig.FailureThreshold", int64(*t), 1, 10)
		}
		// FailureThreshold is deprecated: Cloud Map always uses 1.
		custom = &customHealthConfig{FailureThreshold: 1}
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	nsID, err := a.namespaceID("NamespaceId", nsIdent, cl.Account)
	if err != nil {
		return nil, err
	}
	var out serviceOut
	err = a.update(ctx, func(tx *store.Tx) error {
		ns, err := a.loadNamespace(tx, cl.Account, nsID)
		if err != nil {
			return err
		}
		typ := ServiceTypeHTTP
		switch {
		case dns != nil && ns.Type == NamespaceHTTP:
			return invalid("DnsConfig", "namespace %s is an HTTP namespace: its services have no DNS records", ns.ID)
		case dns != nil:
			typ = ServiceTypeDNSHTTP
		}
		if hc != nil && ns.Type == NamespaceDNSPrivate {
			return invalid("HealthCheckConfig", "Route 53 health checks cannot be configured for services in a private DNS namespace; use HealthCheckCustomConfig")
		}
		nameKey := serviceNameKey(cl.Account, ns, *in.Name)
		if kv, err := tx.Get(nameKey); err == nil {
			prev, err := a.loadService(tx, cl.Account, string(kv.Value))
			if err != nil {
				return err
			}
			if in.CreatorRequestID != nil && prev.CreatorRequestID == *in.CreatorRequestID {
				out = serviceView(prev, true) // a retry of the request that created it
				return nil
			}
			return with(errorf(TypeServiceAlreadyExists, "service %q already exists in namespace %s (%s)", *in.Name, ns.ID, prev.ID),
				"CreatorRequestId", prev.CreatorRequestID, "ServiceId", prev.ID)
		} else if !isNotFound(err) {
			return err
		}
		if len(tags) > maxTagsPerResource {
			return tooManyTags("", len(tags))
		}
		svc := service{ID: newServiceID(), Account: cl.Account, Name: *in.Name, NamespaceID: ns.ID,
			Description: derefOr(in.Description, ""), Type: typ, DNS: dns, HealthCheck: hc, CustomHealth: custom,
			CreatorRequestID: derefOr(in.CreatorRequestID, ""), Tags: tags,
			CreateDate: a.timestamp()}
		svc.ARN = a.arn(cl.Account, "service/"+svc.ID)
		ns.ServiceCount++
		tx.Put(nameKey, []byte(svc.ID))
		touchRevision(tx, cl.Account, svc.ID)
		if err := store.PutJSON(tx, key(cl.Account, "ns", ns.ID), ns); err != nil {
			return err
		}
		out = serviceView(&svc, true)
		return store.PutJSON(tx, key(cl.Account, "svc", svc.ID), svc)
	})
	if err != nil {
		return nil, err
	}
	return serviceOutput{out}, nil
}

func (a *API) getService(ctx context.Context, cl iam.Caller, in *idIn) (any, error) {
	id, err := a.serviceID("Id", in.ID, cl.Account)
	if err != nil {
		return nil, err
	}
	var out serviceOut
	err = a.update(ctx, func(tx *store.Tx) error {
		svc, err := a.loadService(tx, cl.Account, id)
		if err != nil {
			return err
		}
		out = serviceView(svc, true)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return serviceOutput{out}, nil
}

func (a *API) listServices(ctx context.Context, cl iam.Caller, in *listIn) (any, error) {
	var c model.Checker
	limit := checkMaxResults(&c, in.MaxResults, 100, 100)
	var match []func(*service) bool
	for i, f := range in.Filters {
		field := "Filters." + itoa(i+1)
		switch f.Name {
		case "NAMESPACE_ID":
			condition(&c, field, f, "EQ")
			want := first(f.Values)
			if id, err := a.namespaceID(field+".Values", &want, cl.Account); err == nil {
				want = id
			}
			match = append(match, func(s *service) bool { return s.NamespaceID == want })
		case "RESOURCE_OWNER":
			condition(&c, field, f, "EQ")
			want := first(f.Values)
			c.Enum(field+".Values", want, "SELF", "OTHER_ACCOUNTS")
			match = append(match, func(*service) bool { return want == "SELF" })
		default:
			c.Enum(field+".Name", f.Name, "NAMESPACE_ID", "RESOURCE_OWNER")
		}
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	var all []*service
	var keys []string
	err := a.update(ctx, func(tx *store.Tx) error {
		var err error
		all, keys, err = loadAll[service](tx, key(cl.Account, "svc")+"/")
		return err
	})
	if err != nil {
		return nil, err
	}
	items := make([]keyed[serviceOut], 0, len(all))
	for i, s := range all {
		if matchAll(match, s) {
			items = append(items, keyed[serviceOut]{keys[i], serviceView(s, false)})
		}
	}
	page, next, err := paginate(items, "services", in.NextToken, limit)
	if err != nil {
		return nil, err
	}
	return struct {
		Services  []serviceOut `json:"Services"`
		NextToken *string      `json:"NextToken,omitempty"`
	}{page, next}, nil
}

type updateServiceIn struct {
	ID      *string `json:"Id"`
	Service *struct {
		Description *string `json:"Description"`
		DNSConfig   *struct {
			DNSRecords []dnsRecordIn `json:"DnsRecords"`
		} `json:"DnsConfig"`
		HealthCheckConfig *healthCheckConfigIn `json:"HealthCheckConfig"`
	} `json:"Service"`
}

// updateService changes a service's description, DNS record TTLs and
// Route 53 health check. As in Cloud Map, an omitted HealthCheckConfig
// removes the service's health check, record types cannot change, and a
// custom health check can be neither added nor removed.
func (a *API) updateService(ctx context.Context, cl iam.Caller, in *updateServiceIn) (any, error) {
	var c model.Checker
	var recs []dnsRecord
	var hc *healthCheckConfig
	if in.Service == nil {
		c.Addf("Service", "is required")
	} else {
		maxLen(&c, "Service.Description", in.Service.Description, maxDescription)
		if in.Service.DNSConfig != nil {
			recs = checkDNSRecords(&c, "Service.DnsConfig.DnsRecords", in.Service.DNSConfig.DNSRecords)
		}
		if in.Service.HealthCheckConfig != nil {
			hc = checkHealthCheckConfig(&c, "Service.HealthCheckConfig", in.Service.HealthCheckConfig)
		}
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	id, err := a.serviceID("Id", in.ID, cl.Account)
	if err != nil {
		return nil, err
	}
	var opID string
	err = a.update(ctx, func(tx *store.Tx) error {
		svc, err := a.loadService(tx, cl.Account, id)
		if err != nil {
			return err
		}
		ns, err := a.loadNamespace(tx, cl.Account, svc.NamespaceID)
		if err != nil {
			return err
		}
		if in.Service.Description != nil {
			svc.Description = *in.Service.Description
		}
		if recs != nil {
			if svc.DNS == nil {
				return invalid("Service.DnsConfig", "service %s has no DNS records", id)
			}
			if !sameRecordTypes(svc.DNS.DNSRecords, recs) {
				return invalid("Service.DnsConfig.DnsRecords", "record types cannot change: service %s has %s", id, recordTypes(svc.DNS.DNSRecords))
			}
			svc.DNS.DNSRecords = recs
		}
		switch {
		case hc != nil && svc.CustomHealth != nil:
			return invalid("Service.HealthCheckConfig", "service %s has a custom health check, which cannot be replaced", id)
		case hc != nil && ns.Type == NamespaceDNSPrivate:
			return invalid("Service.HealthCheckConfig", "Route 53 health checks cannot be configured for services in a private DNS namespace")
		}
		svc.HealthCheck = hc
		if err := store.PutJSON(tx, key(cl.Account, "svc", id), svc); err != nil {
			return err
		}
		opID, err = a.newOperation(tx, cl.Account, OpUpdateService, map[string]string{"SERVICE": id}, "")
		return err
	})
	if err != nil {
		return nil, err
	}
	a.pruneOperations(ctx, cl.Account)
	return operationIDOut{OperationID: opID}, nil
}

func recordTypes(recs []dnsRecord) string {
	types := make([]string, 0, len(recs))
	for _, r := range recs {
		types = append(types, r.Type)
	}
	slices.Sort(types)
	return strings.Join(types, " and ")
}

func sameRecordTypes(a, b []dnsRecord) bool { return recordTypes(a) == recordTypes(b) }

func (a *API) deleteService(ctx context.Context, cl iam.Caller, in *idIn) (any, error) {
	id, err := a.serviceID("Id", in.ID, cl.Account)
	if err != nil {
		return nil, err
	}
	err = a.update(ctx, func(tx *store.Tx) error {
		svc, err := a.loadService(tx, cl.Account, id)
		if err != nil {
			return err
		}
		if svc.InstanceCount > 0 {
			return errorf(TypeResourceInUse, "service %s still has %d registered instances; deregister them first", id, svc.InstanceCount)
		}
		ns, ok, err := store.GetJSON[namespace](tx, key(cl.Account, "ns", svc.NamespaceID))
		if err != nil {
			return err
		}
		if ok {
			ns.ServiceCount--
			tx.Delete(serviceNameKey(cl.Account, ns, svc.Name))
			if err := store.PutJSON(tx, key(cl.Account, "ns", ns.ID), ns); err != nil {
				return err
			}
		}
		tx.Delete(key(cl.Account, "svc", id))
		tx.Delete(revisionKey(cl.Account, id))
		return nil
	})
	return nil, err
}

type serviceIDIn struct {
	ServiceID *string `json:"ServiceId"`
}

type updateServiceAttributesIn struct {
	ServiceID  *string           `json:"ServiceId"`
	Attributes map[string]string `json:"Attributes"`
}

type deleteServiceAttributesIn struct {
	ServiceID  *string  `json:"ServiceId"`
	Attributes []string `json:"Attributes"`
}

func (a *API) getServiceAttributes(ctx context.Context, cl iam.Caller, in *serviceIDIn) (any, error) {
	id, err := a.serviceID("ServiceId", in.ServiceID, cl.Account)
	if err != nil {
		return nil, err
	}
	type attrsOut struct {
		ServiceARN    string            `json:"ServiceArn"`
		ResourceOwner string            `json:"ResourceOwner"`
		Attributes    map[string]string `json:"Attributes"`
	}
	var out attrsOut
	err = a.update(ctx, func(tx *store.Tx) error {
		svc, err := a.loadService(tx, cl.Account, id)
		if err != nil {
			return err
		}
		out = attrsOut{ServiceARN: svc.ARN, ResourceOwner: svc.Account, Attributes: svc.Attributes}
		if out.Attributes == nil {
			out.Attributes = map[string]string{}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return struct {
		ServiceAttributes attrsOut `json:"ServiceAttributes"`
	}{out}, nil
}

func (a *API) updateServiceAttributes(ctx context.Context, cl iam.Caller, in *updateServiceAttributesIn) (any, error) {
	var c model.Checker
	if n := len(in.Attributes); n < 1 || n > maxServiceAttrs {
		c.Addf("Attributes", "must have 1 to %d attributes, got %d", maxServiceAttrs, n)
	}
	for _, k := range sortedKeys(in.Attributes) {
		if len(k) > maxAttrKey {
			c.Addf("Attributes", "key %q must be at most %d characters long", k, maxAttrKey)
		}
		if len(in.Attributes[k]) > maxAttrValue {
			c.Addf("Attributes."+k, "must be at most %d characters long", maxAttrValue)
		}
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return a.editServiceAttributes(ctx, cl.Account, in.ServiceID, func(attrs map[string]string) error {
		for k, v := range in.Attributes {
			attrs[k] = v
		}
		if len(attrs) > maxServiceAttrs {
			return errorf(TypeAttributesLimitExceeded, "a service can have at most %d attributes; this request would give it %d", maxServiceAttrs, len(attrs))
		}
		return nil
	})
}

func (a *API) deleteServiceAttributes(ctx context.Context, cl iam.Caller, in *deleteServiceAttributesIn) (any, error) {
	var c model.Checker
	if n := len(in.Attributes); n < 1 || n > maxServiceAttrs {
		c.Addf("Attributes", "must list 1 to %d attribute keys, got %d", maxServiceAttrs, n)
	}
	for _, k := range in.Attributes {
		if len(k) > maxAttrKey {
			c.Addf("Attributes", "key %q must be at most %d characters long", k, maxAttrKey)
		}
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return a.editServiceAttributes(ctx, cl.Account, in.ServiceID, func(attrs map[string]string) error {
		for _, k := range in.Attributes {
			delete(attrs, k)
		}
		return nil
	})
}

func (a *API) editServiceAttributes(ctx context.Context, account string, ident *string, edit func(map[string]string) error) (any, error) {
	id, err := a.serviceID("ServiceId", ident, account)
	if err != nil {
		return nil, err
	}
	err = a.update(ctx, func(tx *store.Tx) error {
		svc, err := a.loadService(tx, account, id)
		if err != nil {
			return err
		}
		if svc.Attributes == nil {
			svc.Attributes = map[string]string{}
		}
		if err := edit(svc.Attributes); err != nil {
			return err
		}
		return store.PutJSON(tx, key(account, "svc", id), svc)
	})
	return nil, err
}
