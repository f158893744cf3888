// Package native serves Trellis's own small API beside the Lattice-compatible
// one: who am I, accounts, principals (IAM-style users and roles), access
// keys, principals' client certificates (clientcerts.go), VPCs,
// certificates, instances, and the node protocol (nodes.go). It
// speaks the same error shape as the Lattice API and lives under
// /trellis/v1/. Requests are SigV4-signed like every other API
// call (signing name "trellis" or "vpc-lattice").
//
// Authorization: any principal manages the principals, keys and VPCs of its
// own account; admin principals also manage accounts and may act in another
// account by naming it ("account" member or query parameter).
package native

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/pki"
	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/snapshot"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Prefix is the path prefix of the native API.
const Prefix = "/trellis/v1"

// API is the native API handler.
type API struct {
	st      store.Store
	region  string
	now     func() time.Time
	router  *wire.Router
	log     *slog.Logger
	observe wire.Observer

	// The node protocol (nodes.go).
	broker    *snapshot.Broker
	heartbeat time.Duration
	live      liveNodes

	// Client certificates (clientcerts.go).
	ca          *pki.CA
	trustDomain string

	// The namespace view agents poll (servicediscovery.go).
	namespaces NamespaceReader
}

// New returns the native API.
func New(st store.Store, region string, log *slog.Logger, observe wire.Observer, opts ...Option) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &API{st: st, region: region, now: time.Now, log: log, observe: observe, heartbeat: snapshot.HeartbeatInterval}
	for _, o := range opts {
		o(a)
	}
	a.router = wire.NewRouter(log, observe)
	h := a.router.Handle
	h(http.MethodGet, Prefix+"/whoami", "WhoAmI", a.whoami)
	h(http.MethodPost, Prefix+"/accounts", "CreateAccount", a.createAccount)
	h(http.MethodGet, Prefix+"/accounts", "ListAccounts", a.listAccounts)
	h(http.MethodPost, Prefix+"/principals", "CreatePrincipal", a.createPrincipal)
	h(http.MethodGet, Prefix+"/principals", "ListPrincipals", a.listPrincipals)
	h(http.MethodGet, Prefix+"/principals/{type}/{name}", "GetPrincipal", a.getPrincipal)
	h(http.MethodDelete, Prefix+"/principals/{type}/{name}", "DeletePrincipal", a.deletePrincipal)
	h(http.MethodPost, Prefix+"/principals/{type}/{name}/certificates", "CreateClientCertificate", a.createClientCertificate)
	h(http.MethodPost, Prefix+"/accesskeys", "CreateAccessKey", a.createAccessKey)
	h(http.MethodGet, Prefix+"/accesskeys", "ListAccessKeys", a.listAccessKeys)
	h(http.MethodDelete, Prefix+"/accesskeys/{id}", "DeleteAccessKey", a.deleteAccessKey)
	h(http.MethodPost, Prefix+"/vpcs", "CreateVpc", a.createVPC)
	h(http.MethodGet, Prefix+"/vpcs", "ListVpcs", a.listVPCs)
	h(http.MethodGet, Prefix+"/vpcs/{id}", "GetVpc", a.getVPC)
	h(http.MethodDelete, Prefix+"/vpcs/{id}", "DeleteVpc", a.deleteVPC)
	h(http.MethodPost, Prefix+"/certificates", "ImportCertificate", a.importCertificate)
	h(http.MethodGet, Prefix+"/certificates", "ListCertificates", a.listCertificates)
	h(http.MethodGet, Prefix+"/certificates/{id}", "GetCertificate", a.getCertificate)
	h(http.MethodDelete, Prefix+"/certificates/{id}", "DeleteCertificate", a.deleteCertificate)
	h(http.MethodPost, Prefix+"/instances", "CreateInstance", a.createInstance)
	h(http.MethodGet, Prefix+"/instances", "ListInstances", a.listInstances)
	h(http.MethodGet, Prefix+"/instances/{id}", "GetInstance", a.getInstance)
	h(http.MethodDelete, Prefix+"/instances/{id}", "DeleteInstance", a.deleteInstance)
	h(http.MethodGet, Prefix+"/nodes", "ListNodes", a.listNodes)
	h(http.MethodPost, Prefix+"/nodes/{node}/ack", "AckSnapshot", a.ackSnapshot)
	h(http.MethodPost, Prefix+"/nodes/{node}/health", "ReportTargetHealth", a.reportHealth)
	h(http.MethodPost, Prefix+"/policy/explain", "ExplainPolicy", a.explainPolicy)
	h(http.MethodGet, Prefix+"/servicediscovery/namespaces/{id}/services", "ListNamespaceServices", a.namespaceServices)
	return a
}

// ServeHTTP serves one authenticated request. The snapshot stream is
// served outside the router, which writes only whole responses.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if node, ok := streamSnapshotPath(r); ok {
		a.serveSnapshots(w, r, node)
		return
	}
	a.router.ServeHTTP(w, r)
}

func (a *API) timestamp() time.Time { return a.now().UTC().Truncate(time.Millisecond) }

func caller(ctx context.Context) (iam.Caller, error) {
	c, ok := iam.CallerFrom(ctx)
	if !ok {
		return iam.Caller{}, wire.AccessDenied("the request is not authenticated")
	}
	return c, nil
}

// actingAccount is the account a request acts in: the caller's own, or for
// admins the one named.
func actingAccount(c iam.Caller, named string) (string, error) {
	if named == "" || named == c.Account {
		return c.Account, nil
	}
	if !c.Admin {
		return "", wire.AccessDenied("%s may act only in its own account %s", c.ARN, c.Account)
	}
	if !model.IsAccountID(named) {
		return "", wire.Invalid("account", "must be a 12-digit account ID, got %q", named)
	}
	return named, nil
}

func list[T any](ctx context.Context, st store.Store, prefix string) ([]*T, error) {
	res, err := st.List(ctx, prefix, store.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]*T, 0, len(res.Items))
	for _, kv := range res.Items {
		v := new(T)
		if err := json.Unmarshal(kv.Value, v); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", kv.Key, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// WhoAmI is the answer of whoami and STS GetCallerIdentity.
type WhoAmI struct {
	Account string `json:"Account"`
	Arn     string `json:"Arn"`
	UserID  string `json:"UserId"`
}

func (a *API) whoami(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, WhoAmI{Account: c.Account, Arn: c.ARN, UserID: c.AccessKeyID}, nil
}

func (a *API) createAccount(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	if !c.Admin {
		return 0, nil, wire.AccessDenied("only admin principals may create accounts")
	}
	var in struct {
		Name string `json:"name"`
		ID   string `json:"id"`
	}
	if err := wire.Decode(r.Body, &in); err != nil {
		return 0, nil, err
	}
	var ck model.Checker
	ck.PrincipalName("name", in.Name)
	if in.ID != "" && !model.IsAccountID(in.ID) {
		ck.Addf("id", "must be a 12-digit account ID")
	}
	if err := ck.Err(); err != nil {
		return 0, nil, err
	}
	acct := model.Account{ID: in.ID, Name: in.Name, CreatedAt: a.timestamp()}
	if acct.ID == "" {
		acct.ID = model.NewAccountID()
	}
	_, err = store.Update(ctx, a.st, func(tx *store.Tx) error {
		accounts, err := tx.List(iam.AccountsPrefix())
		if err != nil {
			return err
		}
		for _, kv := range accounts {
			var o model.Account
			if err := json.Unmarshal(kv.Value, &o); err != nil {
				return err
			}
			if o.Name == acct.Name || o.ID == acct.ID {
				return wire.Conflict("ACCOUNT", o.ID, "account %s (%s) already exists", o.ID, o.Name)
			}
		}
		return store.PutJSON(tx, iam.AccountKey(acct.ID), acct)
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, accountView(&acct), nil
}

func accountView(a *model.Account) map[string]any {
	return map[string]any{"id": a.ID, "name": a.Name, "createdAt": wire.Timestamp(a.CreatedAt)}
}

func (a *API) listAccounts(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	accts, err := list[model.Account](ctx, a.st, iam.AccountsPrefix())
	if err != nil {
		return 0, nil, err
	}
	items := []map[string]any{}
	for _, x := range accts {
		if c.Admin || x.ID == c.Account {
			items = append(items, accountView(x))
		}
	}
	return http.StatusOK, map[string]any{"items": items}, nil
}

// principalView never includes secrets.
func principalView(p *model.Principal) map[string]any {
	v := map[string]any{"name": p.Name, "type": p.Type, "account": p.Account, "arn": p.ARN,
		"createdAt": wire.Timestamp(p.CreatedAt), "tags": p.Tags, "admin": p.Admin}
	if p.Tags == nil {
		v["tags"] = map[string]string{}
	}
	if p.Policy != "" {
		v["policy"] = p.Policy
	}
	return v
}

func (a *API) createPrincipal(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Name    string            `json:"name"`
		Type    string            `json:"type"`
		Tags    map[string]string `json:"tags"`
		Policy  string            `json:"policy"`
		Account string            `json:"account"`
	}
	if err := wire.Decode(r.Body, &in); err != nil {
		return 0, nil, err
	}
	acct, err := actingAccount(c, in.Account)
	if err != nil {
		return 0, nil, err
	}
	var ck model.Checker
	ck.PrincipalName("name", in.Name)
	ck.Enum("type", in.Type, model.PrincipalUser, model.PrincipalRole)
	ck.Tags("tags", in.Tags)
	if err := ck.Err(); err != nil {
		return 0, nil, err
	}
	if in.Policy != "" {
		if _, err := policy.Parse([]byte(in.Policy), policy.ParseOptions{Kind: policy.IdentityPolicy, MaxSize: 6144}); err != nil {
			return 0, nil, wire.Invalid("policy", "%v", err)
		}
	}
	p := model.Principal{Name: in.Name, Type: in.Type, Account: acct, ARN: model.PrincipalARN(acct, in.Type, in.Name),
		Tags: in.Tags, Policy: in.Policy, CreatedAt: a.timestamp()}
	_, err = store.Update(ctx, a.st, func(tx *store.Tx) error {
		if _, ok, err := store.GetJSON[model.Account](tx, iam.AccountKey(acct)); err != nil {
			return err
		} else if !ok {
			return wire.NotFound("ACCOUNT", acct)
		}
		if _, ok, err := store.GetJSON[model.Principal](tx, iam.PrincipalKey(acct, in.Type, in.Name)); err != nil {
			return err
		} else if ok {
			return wire.Conflict("PRINCIPAL", p.ARN, "%s already exists", p.ARN)
		}
		return store.PutJSON(tx, iam.PrincipalKey(acct, in.Type, in.Name), p)
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, principalView(&p), nil
}

func (a *API) listPrincipals(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	acct, err := actingAccount(c, r.Query("account"))
	if err != nil {
		return 0, nil, err
	}
	ps, err := list[model.Principal](ctx, a.st, iam.PrincipalsPrefix(acct))
	if err != nil {
		return 0, nil, err
	}
	items := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		items = append(items, principalView(p))
	}
	return http.StatusOK, map[string]any{"items": items}, nil
}

func (a *API) getPrincipal(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	acct, err := actingAccount(c, r.Query("account"))
	if err != nil {
		return 0, nil, err
	}
	var out any
	_, err = store.Update(ctx, a.st, func(tx *store.Tx) error {
		p, ok, err := store.GetJSON[model.Principal](tx, iam.PrincipalKey(acct, r.Params["type"], r.Params["name"]))
		if err != nil {
			return err
		}
		if !ok {
			return wire.NotFound("PRINCIPAL", model.PrincipalARN(acct, r.Params["type"], r.Params["name"]))
		}
		out = principalView(p)
		return nil
	})
	return http.StatusOK, out, err
}

func (a *API) deletePrincipal(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	acct, err := actingAccount(c, r.Query("account"))
	if err != nil {
		return 0, nil, err
	}
	arn := model.PrincipalARN(acct, r.Params["type"], r.Params["name"])
	if arn == c.ARN {
		return 0, nil, wire.Conflict("PRINCIPAL", arn, "a principal cannot delete itself")
	}
	_, err = store.Update(ctx, a.st, func(tx *store.Tx) error {
		k := iam.PrincipalKey(acct, r.Params["type"], r.Params["name"])
		if _, ok, err := store.GetJSON[model.Principal](tx, k); err != nil {
			return err
		} else if !ok {
			return wire.NotFound("PRINCIPAL", arn)
		}
		keys, err := tx.List(iam.AccessKeysPrefix())
		if err != nil {
			return err
		}
		for _, kv := range keys {
			var ak model.AccessKey
			if err := json.Unmarshal(kv.Value, &ak); err != nil {
				return err
			}
			if ak.Principal == arn {
				tx.Delete(kv.Key)
			}
		}
		tx.Delete(k)
		return nil
	})
	return http.StatusNoContent, nil, err
}

// findPrincipal resolves "NAME", "role/NAME", "user/NAME" or an IAM ARN in acct.
func findPrincipal(tx *store.Tx, acct, ref string) (*model.Principal, error) {
	if strings.HasPrefix(ref, "arn:") {
		arn, err := model.ParseARN(ref)
		if err != nil || arn.Service != "iam" {
			return nil, wire.Invalid("principal", "must be a principal name, TYPE/NAME or IAM ARN, got %q", ref)
		}
		acct, ref = arn.Account, arn.Resource
	}
	types := []string{model.PrincipalRole, model.PrincipalUser}
	name := ref
	if t, n, ok := strings.Cut(ref, "/"); ok {
		types, name = []string{t}, n
	}
	var found []*model.Principal
	for _, t := range types {
		p, ok, err := store.GetJSON[model.Principal](tx, iam.PrincipalKey(acct, t, name))
		if err != nil {
			return nil, err
		}
		if ok {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return nil, wire.NotFound("PRINCIPAL", ref)
	case 1:
		return found[0], nil
	}
	return nil, wire.Invalid("principal", "both role/%s and user/%s exist; say which", name, name)
}

// AccessKeyOut is the answer of CreateAccessKey: the only time the secret is shown.
type AccessKeyOut struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	Principal       string `json:"Principal"`
}

func (a *API) createAccessKey(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Principal string `json:"principal"`
		Account   string `json:"account"`
	}
	if err := wire.Decode(r.Body, &in); err != nil {
		return 0, nil, err
	}
	if in.Principal == "" {
		return 0, nil, wire.Invalid("principal", "is required")
	}
	acct, err := actingAccount(c, in.Account)
	if err != nil {
		return 0, nil, err
	}
	var out AccessKeyOut
	_, err = store.Update(ctx, a.st, func(tx *store.Tx) error {
		p, err := findPrincipal(tx, acct, in.Principal)
		if err != nil {
			return err
		}
		if _, err := actingAccount(c, p.Account); err != nil {
			return err
		}
		id, secret := model.NewAccessKey()
		out = AccessKeyOut{AccessKeyID: id, SecretAccessKey: secret, Principal: p.ARN}
		return store.PutJSON(tx, iam.AccessKeyKey(id), model.AccessKey{ID: id, Secret: secret, Account: p.Account, Principal: p.ARN, CreatedAt: a.timestamp()})
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, out, nil
}

func (a *API) listAccessKeys(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	acct, err := actingAccount(c, r.Query("account"))
	if err != nil {
		return 0, nil, err
	}
	keys, err := list[model.AccessKey](ctx, a.st, iam.AccessKeysPrefix())
	if err != nil {
		return 0, nil, err
	}
	items := []map[string]any{}
	for _, k := range keys {
		if k.Account == acct {
			items = append(items, map[string]any{"AccessKeyId": k.ID, "Principal": k.Principal, "createdAt": wire.Timestamp(k.CreatedAt)})
		}
	}
	return http.StatusOK, map[string]any{"items": items}, nil
}

func (a *API) deleteAccessKey(ctx context.Context, r *wire.Request) (int, any, error) {
	c, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id := r.Params["id"]
	_, err = store.Update(ctx, a.st, func(tx *store.Tx) error {
		k, ok, err := store.GetJSON[model.AccessKey](tx, iam.AccessKeyKey(id))
		if err != nil {
			return err
		}
		if !ok {
			return wire.NotFound("ACCESS_KEY", id)
		}
		if _, err := actingAccount(c, k.Account); err != nil {
			return wire.NotFound("ACCESS_KEY", id)
		}
		tx.Delete(iam.AccessKeyKey(id))
		return nil
	})
	return http.StatusNoContent, nil, err
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
