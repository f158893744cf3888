package lattice

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Resource types as they appear in error bodies.
const (
	rtServiceNetwork = "SERVICE_NETWORK"
	rtService        = "SERVICE"
	rtListener       = "LISTENER"
	rtRule           = "RULE"
	rtTargetGroup    = "TARGET_GROUP"
	rtSNSA           = "SERVICE_NETWORK_SERVICE_ASSOCIATION"
	rtSNVA           = "SERVICE_NETWORK_VPC_ASSOCIATION"
	rtAccessLog      = "ACCESS_LOG_SUBSCRIPTION"
	rtAuthPolicy     = "AUTH_POLICY"
	rtResourcePolicy = "RESOURCE_POLICY"
	rtVPC            = "VPC"
)

// Store key layout. Every Lattice resource lives under its owner account:
//
//	/lattice/<account>/sn/<id>                 service network
//	/lattice/<account>/svc/<id>                service
//	/lattice/<account>/listener/<svc>/<id>     listener
//	/lattice/<account>/rule/<listener>/<id>    rule (including the default rule)
//	/lattice/<account>/tg/<id>                 target group
//	/lattice/<account>/target/<tg>/<id>/<port> target
//	/lattice/<account>/snsa/<id>, snva/<id>, als/<id>
//	/lattice/<account>/authpolicy/<id>, respolicy/<id>
//	/lattice/<account>/name/<kind>/<name>      name uniqueness index
//	/lattice/<account>/token/<op>/<token>      clientToken idempotency record
//	/lattice-vpc/<vpc-id>                      the one SN association of a VPC
func acctPrefix(account string) string { return "/lattice/" + account + "/" }

func key(account string, parts ...string) string {
	return acctPrefix(account) + strings.Join(parts, "/")
}

// VPCKey is where a declared VPC is stored (shared with the native API).
func VPCKey(id string) string { return "/vpcs/" + id }

// VPCAssociationKey holds the ID of the one service-network association of a VPC.
func VPCAssociationKey(vpcID string) string { return "/lattice-vpc/" + vpcID }

// caller returns the authenticated caller; the server guarantees one.
func caller(ctx context.Context) (iam.Caller, error) {
	c, ok := iam.CallerFrom(ctx)
	if !ok || c.Account == "" {
		return iam.Caller{}, wire.AccessDenied("the request is not authenticated")
	}
	return c, nil
}

// mustLoad is load with ResourceNotFoundException when absent.
func mustLoad[T any](tx *store.Tx, key, resType, id string) (*T, error) {
	v, ok, err := store.GetJSON[T](tx, key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, wire.NotFound(resType, id)
	}
	return v, nil
}

// update runs fn in an optimistic transaction.
func (a *API) update(ctx context.Context, fn func(tx *store.Tx) error) error {
	_, err := store.Update(ctx, a.st, fn)
	return err
}

// view runs fn in a transaction that writes nothing (a consistent read).
func (a *API) view(ctx context.Context, fn func(tx *store.Tx) error) error {
	return a.update(ctx, fn)
}

// resolve turns an identifier (ID or ARN) into an ID of the caller's
// account. arnKind is the ARN resource-type segment ("servicenetwork").
// An ARN of another account or region is not found, since sharing is not
// yet supported.
func (a *API) resolve(field, ident, prefix, arnKind, resType, account string) (string, error) {
	if model.IsID(ident, prefix) {
		return ident, nil
	}
	if !strings.HasPrefix(ident, "arn:") {
		return "", wire.Invalid(field, "must be a %s ID (%s-<17 characters>) or ARN, got %q", strings.ToLower(strings.ReplaceAll(resType, "_", " ")), prefix, ident)
	}
	arn, err := model.ParseARN(ident)
	if err != nil || arn.Service != "vpc-lattice" {
		return "", wire.Invalid(field, "must be a %s ID or ARN, got %q", strings.ToLower(strings.ReplaceAll(resType, "_", " ")), ident)
	}
	kind, id, ok := strings.Cut(arn.Resource, "/")
	if !ok || kind != arnKind || !model.IsID(id, prefix) {
		return "", wire.Invalid(field, "ARN %q is not a %s ARN (…:%s/%s-…)", ident, strings.ToLower(strings.ReplaceAll(resType, "_", " ")), arnKind, prefix)
	}
	if arn.Partition != "aws" || arn.Account != account || arn.Region != a.region {
		return "", wire.NotFound(resType, ident)
	}
	return id, nil
}

func (a *API) arn(account, resource string) string {
	return model.LatticeARN(a.region, account, resource)
}

func (a *API) newMeta(account, prefix, arnResource string, tags map[string]string) model.Meta {
	id := model.NewID(prefix)
	now := a.timestamp()
	return model.Meta{ID: id, ARN: a.arn(account, arnResource+id), Account: account, CreatedAt: now, UpdatedAt: now, Tags: tags}
}

// token is an idempotency record: the request it answered and the answer.
type token struct {
	RequestHash string          `json:"requestHash"`
	Status      int             `json:"status"`
	Response    json.RawMessage `json:"response"`
}

// idempotent runs create inside tx unless clientToken was already used for
// op: then it returns the first answer when the request is the same, and a
// ConflictException when it differs.
func idempotent(tx *store.Tx, account, op string, clientToken *string, path string, body []byte,
	create func() (int, any, error)) (int, any, error) {
	if clientToken == nil {
		return create()
	}
	k := key(account, "token", op, *clientToken)
	// The request is its path (the parent resources) and its body.
	sum := sha256.Sum256(append([]byte(path+"\n"), canonicalJSON(body)...))
	hash := fmt.Sprintf("%x", sum)
	prev, ok, err := store.GetJSON[token](tx, k)
	if err != nil {
		return 0, nil, err
	}
	if ok {
		if prev.RequestHash != hash {
			return 0, nil, wire.Conflict("", *clientToken,
				"clientToken %q was already used for a different %s request", *clientToken, op)
		}
		return prev.Status, prev.Response, nil
	}
	status, out, err := create()
	if err != nil {
		return 0, nil, err
	}
	resp, err := json.Marshal(out)
	if err != nil {
		return 0, nil, err
	}
	return status, json.RawMessage(resp), store.PutJSON(tx, k, token{RequestHash: hash, Status: status, Response: resp})
}

// canonicalJSON re-encodes a JSON document with sorted keys, so two requests
// that differ only in member order hash the same.
func canonicalJSON(b []byte) []byte {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return b
	}
	out, err := json.Marshal(v)
	if err != nil {
		return b
	}
	return out
}

// page lists one page of keys under prefix, continuing from nextToken.
func (a *API) page(ctx context.Context, r *wire.Request, scope, prefix string) ([]store.KV, string, error) {
	limit, after, err := pageParams(r, scope)
	if err != nil {
		return nil, "", err
	}
	res, err := a.st.List(ctx, prefix, store.ListOptions{After: after, Limit: limit})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if res.More && len(res.Items) > 0 {
		next = wire.EncodeToken(scope, res.Items[len(res.Items)-1].Key)
	}
	return res.Items, next, nil
}

const defaultPageSize = 50

func pageParams(r *wire.Request, scope string) (limit int, after string, err error) {
	limit = defaultPageSize
	if s := r.Query("maxResults"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return 0, "", wire.Invalid("maxResults", "must be an integer from 1 to 100, got %q", s)
		}
		limit = n
	}
	if t := r.Query("nextToken"); t != "" {
		after, err = wire.DecodeToken(scope, t)
		if err != nil {
			return 0, "", err
		}
	}
	return limit, after, nil
}

// paginate slices an in-memory, key-sorted list the same way page does.
func paginate[T any](r *wire.Request, scope string, items []T, keyOf func(T) string) ([]T, string, error) {
	limit, after, err := pageParams(r, scope)
	if err != nil {
		return nil, "", err
	}
	start := 0
	if after != "" {
		for start < len(items) && keyOf(items[start]) <= after {
			start++
		}
	}
	end := min(start+limit, len(items))
	next := ""
	if end < len(items) {
		next = wire.EncodeToken(scope, keyOf(items[end-1]))
	}
	return items[start:end], next, nil
}

func decode(r *wire.Request, v any) error { return wire.Decode(r.Body, v) }

// listOut is the body of every List* operation.
type listOut struct {
	Items     any    `json:"items"`
	NextToken string `json:"nextToken,omitempty"`
}

func unsupported(op string) func(context.Context, *wire.Request) (int, any, error) {
	return func(context.Context, *wire.Request) (int, any, error) {
		return 0, nil, &wire.Error{Type: wire.TypeValidation, Status: http.StatusBadRequest, Reason: wire.ReasonUnknownOperation,
			Message: op + " is not supported by Trellis yet: resource configurations, resource gateways and domain verifications are out of scope"}
	}
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

func humanKind(resType string) string {
	return strings.ToLower(strings.ReplaceAll(resType, "_", " "))
}

// deletePoliciesAndLogs removes what belongs to a deleted network or
// service: its auth policy, resource policy and access-log subscriptions.
func (a *API) deletePoliciesAndLogs(tx *store.Tx, account, resourceID string) error {
	tx.Delete(key(account, "authpolicy", resourceID))
	tx.Delete(key(account, "respolicy", resourceID))
	subs, err := store.ListJSON[model.AccessLogSubscription](tx, key(account, "als")+"/")
	if err != nil {
		return err
	}
	for _, s := range subs {
		if s.ResourceID == resourceID {
			tx.Delete(key(account, "als", s.ID))
		}
	}
	return nil
}

func itoa(i int) string { return strconv.Itoa(i) }
