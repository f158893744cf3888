package cloudmap

import (
	"context"
	"strings"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

type createHTTPNamespaceIn struct {
	Name             *string `json:"Name"`
	CreatorRequestID *string `json:"CreatorRequestId"`
	Description      *string `json:"Description"`
	Tags             []tagIn `json:"Tags"`
}

type createPrivateDNSNamespaceIn struct {
	Name             *string                   `json:"Name"`
	CreatorRequestID *string                   `json:"CreatorRequestId"`
	Description      *string                   `json:"Description"`
	Vpc              *string                   `json:"Vpc"`
	Tags             []tagIn                   `json:"Tags"`
	Properties       *dnsNamespacePropertiesIn `json:"Properties"`
}

type createPublicDNSNamespaceIn struct {
	Name             *string                   `json:"Name"`
	CreatorRequestID *string                   `json:"CreatorRequestId"`
	Description      *string                   `json:"Description"`
	Tags             []tagIn                   `json:"Tags"`
	Properties       *dnsNamespacePropertiesIn `json:"Properties"`
}

type operationIDOut struct {
	OperationID string `json:"OperationId"`
}

// namespaceOut is Namespace (full) and NamespaceSummary (without
// CreatorRequestId).
type namespaceOut struct {
	ID               string        `json:"Id"`
	ARN              string        `json:"Arn"`
	ResourceOwner    string        `json:"ResourceOwner"`
	Name             string        `json:"Name"`
	Type             string        `json:"Type"`
	Description      string        `json:"Description,omitempty"`
	ServiceCount     int           `json:"ServiceCount"`
	Properties       propertiesOut `json:"Properties"`
	CreateDate       epoch         `json:"CreateDate"`
	CreatorRequestID string        `json:"CreatorRequestId,omitempty"`
}

type propertiesOut struct {
	DNSProperties  dnsPropertiesOut  `json:"DnsProperties"`
	HTTPProperties httpPropertiesOut `json:"HttpProperties"`
}

type dnsPropertiesOut struct {
	HostedZoneID string  `json:"HostedZoneId,omitempty"`
	SOA          *soaOut `json:"SOA,omitempty"`
}

type soaOut struct {
	TTL *int64 `json:"TTL,omitempty"`
}

type httpPropertiesOut struct {
	HTTPName string `json:"HttpName"`
}

func namespaceView(ns *namespace, full bool) namespaceOut {
	out := namespaceOut{ID: ns.ID, ARN: ns.ARN, ResourceOwner: ns.Account, Name: ns.Name, Type: ns.Type,
		Description: ns.Description, ServiceCount: ns.ServiceCount, CreateDate: epoch(ns.CreateDate),
		Properties: propertiesOut{HTTPProperties: httpPropertiesOut{HTTPName: ns.HTTPName}}}
	if ns.Type != NamespaceHTTP {
		out.Properties.DNSProperties = dnsPropertiesOut{HostedZoneID: ns.HostedZoneID, SOA: &soaOut{TTL: ns.SOATTL}}
	}
	if full {
		out.CreatorRequestID = ns.CreatorRequestID
	}
	return out
}

func (a *API) createHTTPNamespace(ctx context.Context, cl iam.Caller, in *createHTTPNamespaceIn) (any, error) {
	var c model.Checker
	checkHTTPNamespaceName(&c, "Name", in.Name)
	requestID(&c, "CreatorRequestId", in.CreatorRequestID)
	maxLen(&c, "Description", in.Description, maxDescription)
	tags := checkTags(&c, "Tags", in.Tags)
	if err := c.Err(); err != nil {
		return nil, err
	}
	ns := namespace{Name: *in.Name, Type: NamespaceHTTP, Description: derefOr(in.Description, ""), Tags: tags}
	return a.createNamespace(ctx, cl.Account, ns, "CreateHttpNamespace", in.CreatorRequestID, in)
}

func (a *API) createPrivateDNSNamespace(ctx context.Context, cl iam.Caller, in *createPrivateDNSNamespaceIn) (any, error) {
	var c model.Checker
	checkPrivateDNSName(&c, "Name", in.Name)
	requestID(&c, "CreatorRequestId", in.CreatorRequestID)
	maxLen(&c, "Description", in.Description, maxDescription)
	if required(&c, "Vpc", in.Vpc) {
		maxLen(&c, "Vpc", in.Vpc, maxResourceID)
	}
	tags := checkTags(&c, "Tags", in.Tags)
	ttl := checkSOA(&c, "Properties", in.Properties)
	if err := c.Err(); err != nil {
		return nil, err
	}
	ns := namespace{Name: *in.Name, Type: NamespaceDNSPrivate, Description: derefOr(in.Description, ""), Tags: tags,
		VPC: *in.Vpc, SOATTL: ttl}
	return a.createNamespace(ctx, cl.Account, ns, "CreatePrivateDnsNamespace", in.CreatorRequestID, in)
}

func (a *API) createPublicDNSNamespace(ctx context.Context, cl iam.Caller, in *createPublicDNSNamespaceIn) (any, error) {
	var c model.Checker
	checkPublicDNSName(&c, "Name", in.Name)
	requestID(&c, "CreatorRequestId", in.CreatorRequestID)
	maxLen(&c, "Description", in.Description, maxDescription)
	tags := checkTags(&c, "Tags", in.Tags)
	ttl := checkSOA(&c, "Properties", in.Properties)
	if err := c.Err(); err != nil {
		return nil, err
	}
	ns := namespace{Name: *in.Name, Type: NamespaceDNSPublic, Description: derefOr(in.Description, ""), Tags: tags, SOATTL: ttl}
	return a.createNamespace(ctx, cl.Account, ns, "CreatePublicDnsNamespace", in.CreatorRequestID, in)
}

// dnsNameKey is the uniqueness key of a DNS namespace: a public name once
// per account, a private name once per VPC. DNS names compare without case.
func dnsNameKey(account string, ns *namespace) string {
	name := strings.ToLower(strings.TrimSuffix(ns.Name, "."))
	if ns.Type == NamespaceDNSPublic {
		return key(account, "dnsname", "public", name)
	}
	return key(account, "dnsname", "private", name, ns.VPC)
}

// createNamespace stores spec as a new namespace. The name must be free:
// an HTTP namespace's name is its HttpName, which is unique in the
// account; a DNS namespace's name is unique among public namespaces or
// within its VPC, and its HttpName is the name or, when that is taken,
// the name with a generated suffix (as Cloud Map does).
func (a *API) createNamespace(ctx context.Context, account string, spec namespace, op string, token *string, in any) (any, error) {
	var opID string
	err := a.update(ctx, func(tx *store.Tx) error {
		var err error
		opID, err = idempotent(tx, account, op, token, in, func(tokenKey string) (string, error) {
			ns := spec
			if len(ns.Tags) > maxTagsPerResource {
				return "", tooManyTags("", len(ns.Tags))
			}
			if ns.Type == NamespaceDNSPrivate {
				vpc, ok, err := store.GetJSON[model.VPC](tx, lattice.VPCKey(ns.VPC))
				if err != nil {
					return "", err
				}
				if !ok || vpc.Account != account {
					return "", invalid("Vpc", "VPC %s was not found in account %s (declare it with the native API: trellis create vpc)", ns.VPC, account)
				}
			}
			uniq := key(account, "httpname", ns.Name)
			if ns.Type != NamespaceHTTP {
				uniq = dnsNameKey(account, &ns)
			}
			if err := a.nameFree(tx, account, uniq, ns.Name); err != nil {
				return "", err
			}
			kvs, err := tx.List(key(account, "ns") + "/")
			if err != nil {
				return "", err
			}
			if len(kvs) >= a.quotas.Namespaces {
				return "", errorf(TypeResourceLimitExceeded, "account %s already has %d namespaces, the most allowed", account, len(kvs))
			}
			ns.HTTPName = ns.Name
			if ns.Type != NamespaceHTTP {
				if _, err := tx.Get(key(account, "httpname", ns.HTTPName)); err == nil {
					ns.HTTPName = ns.Name + "-" + randomString(16)
				} else if !isNotFound(err) {
					return "", err
				}
				ns.HostedZoneID = newHostedZoneID()
			}
			ns.ID = newNamespaceID()
			ns.ARN = a.arn(account, "namespace/"+ns.ID)
			ns.Account = account
			ns.CreateDate = a.timestamp()
			ns.CreatorRequestID = derefOr(token, "")
			if ns.Type != NamespaceHTTP {
				tx.Put(uniq, []byte(ns.ID))
			}
			tx.Put(key(account, "httpname", ns.HTTPName), []byte(ns.ID))
			if err := store.PutJSON(tx, key(account, "ns", ns.ID), ns); err != nil {
				return "", err
			}
			return a.newOperation(tx, account, OpCreateNamespace, map[string]string{"NAMESPACE": ns.ID}, tokenKey)
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	a.pruneOperations(ctx, account)
	return operationIDOut{OperationID: opID}, nil
}

// nameFree fails with NamespaceAlreadyExists when the uniqueness key k
// names a namespace.
func (a *API) nameFree(tx *store.Tx, account, k, name string) error {
	kv, err := tx.Get(k)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	id := string(kv.Value)
	e := errorf(TypeNamespaceAlreadyExists, "namespace %q already exists (%s)", name, id)
	if ns, ok, err := store.GetJSON[namespace](tx, key(account, "ns", id)); err != nil {
		return err
	} else if ok {
		with(e, "CreatorRequestId", ns.CreatorRequestID)
	}
	return with(e, "NamespaceId", id)
}

type idIn struct {
	ID *string `json:"Id"`
}

func (a *API) getNamespace(ctx context.Context, cl iam.Caller, in *idIn) (any, error) {
	id, err := a.namespaceID("Id", in.ID, cl.Account)
	if err != nil {
		return nil, err
	}
	var out namespaceOut
	err = a.update(ctx, func(tx *store.Tx) error {
		ns, err := a.loadNamespace(tx, cl.Account, id)
		if err != nil {
			return err
		}
		out = namespaceView(ns, true)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return struct {
		Namespace namespaceOut `json:"Namespace"`
	}{out}, nil
}

type listIn struct {
	NextToken  *string    `json:"NextToken"`
	MaxResults *int32     `json:"MaxResults"`
	Filters    []filterIn `json:"Filters"`
}

func (a *API) listNamespaces(ctx context.Context, cl iam.Caller, in *listIn) (any, error) {
	var c model.Checker
	limit := checkMaxResults(&c, in.MaxResults, 100, 100)
	var match []func(*namespace) bool
	for i, f := range in.Filters {
		field := "Filters." + itoa(i+1)
		switch f.Name {
		case "TYPE":
			condition(&c, field, f, "EQ", "IN")
			for _, v := range f.Values {
				c.Enum(field+".Values", v, NamespaceHTTP, NamespaceDNSPrivate, NamespaceDNSPublic)
			}
			vals := f.Values
			match = append(match, func(ns *namespace) bool { return contains(vals, ns.Type) })
		case "NAME", "HTTP_NAME":
			cond := condition(&c, field, f, "EQ", "BEGINS_WITH")
			want, httpName := first(f.Values), f.Name == "HTTP_NAME"
			match = append(match, func(ns *namespace) bool {
				v := ns.Name
				if httpName {
					v = ns.HTTPName
				}
				if cond == "BEGINS_WITH" {
					return strings.HasPrefix(v, want)
				}
				return v == want
			})
		case "RESOURCE_OWNER":
			condition(&c, field, f, "EQ")
			want := first(f.Values)
			c.Enum(field+".Values", want, "SELF", "OTHER_ACCOUNTS")
			// No namespace is shared across accounts yet: SELF is every
			// namespace the caller sees, OTHER_ACCOUNTS none.
			match = append(match, func(*namespace) bool { return want == "SELF" })
		default:
			c.Enum(field+".Name", f.Name, "TYPE", "NAME", "HTTP_NAME", "RESOURCE_OWNER")
		}
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	var all []*namespace
	var keys []string
	err := a.update(ctx, func(tx *store.Tx) error {
		var err error
		all, keys, err = loadAll[namespace](tx, key(cl.Account, "ns")+"/")
		return err
	})
	if err != nil {
		return nil, err
	}
	items := make([]keyed[namespaceOut], 0, len(all))
	for i, ns := range all {
		if matchAll(match, ns) {
			items = append(items, keyed[namespaceOut]{keys[i], namespaceView(ns, false)})
		}
	}
	page, next, err := paginate(items, "namespaces", in.NextToken, limit)
	if err != nil {
		return nil, err
	}
	return struct {
		Namespaces []namespaceOut `json:"Namespaces"`
		NextToken  *string        `json:"NextToken,omitempty"`
	}{page, next}, nil
}

func (a *API) deleteNamespace(ctx context.Context, cl iam.Caller, in *idIn) (any, error) {
	id, err := a.namespaceID("Id", in.ID, cl.Account)
	if err != nil {
		return nil, err
	}
	var opID string
	err = a.update(ctx, func(tx *store.Tx) error {
		ns, err := a.loadNamespace(tx, cl.Account, id)
		if err != nil {
			return err
		}
		if ns.ServiceCount > 0 {
			return errorf(TypeResourceInUse, "namespace %s still has %d services; delete them first", id, ns.ServiceCount)
		}
		tx.Delete(key(cl.Account, "ns", id))
		tx.Delete(key(cl.Account, "httpname", ns.HTTPName))
		if ns.Type != NamespaceHTTP {
			tx.Delete(dnsNameKey(cl.Account, ns))
		}
		opID, err = a.newOperation(tx, cl.Account, OpDeleteNamespace, map[string]string{"NAMESPACE": id}, "")
		return err
	})
	if err != nil {
		return nil, err
	}
	a.pruneOperations(ctx, cl.Account)
	return operationIDOut{OperationID: opID}, nil
}

type updateHTTPNamespaceIn struct {
	ID               *string `json:"Id"`
	UpdaterRequestID *string `json:"UpdaterRequestId"`
	Namespace        *struct {
		Description *string `json:"Description"`
	} `json:"Namespace"`
}

type dnsNamespaceChangeIn struct {
	Description *string                   `json:"Description"`
	Properties  *dnsNamespacePropertiesIn `json:"Properties"`
}

type updateDNSNamespaceIn struct {
	ID               *string               `json:"Id"`
	UpdaterRequestID *string               `json:"UpdaterRequestId"`
	Namespace        *dnsNamespaceChangeIn `json:"Namespace"`
}

func (a *API) updateHTTPNamespace(ctx context.Context, cl iam.Caller, in *updateHTTPNamespaceIn) (any, error) {
	var c model.Checker
	requestID(&c, "UpdaterRequestId", in.UpdaterRequestID)
	if in.Namespace == nil {
		c.Addf("Namespace", "is required")
	} else if in.Namespace.Description == nil {
		c.Addf("Namespace.Description", "is required")
	} else {
		maxLen(&c, "Namespace.Description", in.Namespace.Description, maxDescription)
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return a.updateNamespace(ctx, cl.Account, in.ID, NamespaceHTTP, "UpdateHttpNamespace", in.UpdaterRequestID, in,
		func(ns *namespace) { ns.Description = *in.Namespace.Description })
}

func (a *API) updateDNSNamespace(typ, op string) func(context.Context, iam.Caller, *updateDNSNamespaceIn) (any, error) {
	return func(ctx context.Context, cl iam.Caller, in *updateDNSNamespaceIn) (any, error) {
		var c model.Checker
		requestID(&c, "UpdaterRequestId", in.UpdaterRequestID)
		var ttl *int64
		if in.Namespace == nil {
			c.Addf("Namespace", "is required")
		} else {
			maxLen(&c, "Namespace.Description", in.Namespace.Description, maxDescription)
			ttl = checkSOA(&c, "Namespace.Properties", in.Namespace.Properties)
		}
		if err := c.Err(); err != nil {
			return nil, err
		}
		return a.updateNamespace(ctx, cl.Account, in.ID, typ, op, in.UpdaterRequestID, in, func(ns *namespace) {
			if in.Namespace.Description != nil {
				ns.Description = *in.Namespace.Description
			}
			if ttl != nil {
				ns.SOATTL = ttl
			}
		})
	}
}

// updateNamespace applies change to a namespace of type typ and records
// an UPDATE_NAMESPACE operation.
func (a *API) updateNamespace(ctx context.Context, account string, ident *string, typ, op string, token *string, in any, change func(*namespace)) (any, error) {
	id, err := a.namespaceID("Id", ident, account)
	if err != nil {
		return nil, err
	}
	var opID string
	err = a.update(ctx, func(tx *store.Tx) error {
		var err error
		opID, err = idempotent(tx, account, op, token, in, func(tokenKey string) (string, error) {
			ns, err := a.loadNamespace(tx, account, id)
			if err != nil {
				return "", err
			}
			if ns.Type != typ {
				return "", invalid("Id", "namespace %s is a %s namespace; %s updates %s namespaces", id, ns.Type, op, typ)
			}
			change(ns)
			if err := store.PutJSON(tx, key(account, "ns", id), ns); err != nil {
				return "", err
			}
			return a.newOperation(tx, account, OpUpdateNamespace, map[string]string{"NAMESPACE": id}, tokenKey)
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	a.pruneOperations(ctx, account)
	return operationIDOut{OperationID: opID}, nil
}
