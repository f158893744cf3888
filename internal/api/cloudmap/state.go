package cloudmap

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Store key layout. Every Cloud Map resource lives under its owner account:
//
//	/cloudmap/<account>/ns/<ns-id>                   namespace
//	/cloudmap/<account>/httpname/<HttpName>          namespace ID by HttpName (DiscoverInstances)
//	/cloudmap/<account>/dnsname/private/<name>/<vpc> private DNS namespace ID (name unique per VPC)
//	/cloudmap/<account>/dnsname/public/<name>        public DNS namespace ID
//	/cloudmap/<account>/svc/<srv-id>                 service (with its service attributes)
//	/cloudmap/<account>/svcname/<ns-id>/<name>       service ID by name in a namespace
//	/cloudmap/<account>/inst/<srv-id>/<instance-id>  instance
//	/cloudmap/<account>/rev/<srv-id>                 written on every (de)registration: its ModRevision is the InstancesRevision
//	/cloudmap/<account>/op/<operation-id>            operation
//	/cloudmap/<account>/opage/<unix-nanos>/<op-id>   operations by age, for pruning
//	/cloudmap/<account>/token/<op>/<token>           CreatorRequestId/UpdaterRequestId record
func key(account string, parts ...string) string {
	return "/cloudmap/" + account + "/" + strings.Join(parts, "/")
}

// loadAll decodes every value under prefix, in key order.
func loadAll[T any](tx *store.Tx, prefix string) ([]*T, []string, error) {
	kvs, err := tx.List(prefix)
	if err != nil {
		return nil, nil, err
	}
	out, keys := make([]*T, 0, len(kvs)), make([]string, 0, len(kvs))
	for _, kv := range kvs {
		v := new(T)
		if err := json.Unmarshal(kv.Value, v); err != nil {
			return nil, nil, fmt.Errorf("decoding %s: %w", kv.Key, err)
		}
		out, keys = append(out, v), append(keys, kv.Key)
	}
	return out, keys, nil
}

// update runs fn in an optimistic transaction; a read-only fn gets a
// consistent view.
func (a *API) update(ctx context.Context, fn func(tx *store.Tx) error) error {
	_, err := store.Update(ctx, a.st, fn)
	return err
}

func (a *API) loadNamespace(tx *store.Tx, account, id string) (*namespace, error) {
	ns, ok, err := store.GetJSON[namespace](tx, key(account, "ns", id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errorf(TypeNamespaceNotFound, "namespace %s was not found", id)
	}
	return ns, nil
}

func (a *API) loadService(tx *store.Tx, account, id string) (*service, error) {
	svc, ok, err := store.GetJSON[service](tx, key(account, "svc", id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errorf(TypeServiceNotFound, "service %s was not found", id)
	}
	return svc, nil
}

func (a *API) loadInstance(tx *store.Tx, account, serviceID, id string) (*instance, error) {
	in, ok, err := store.GetJSON[instance](tx, key(account, "inst", serviceID, id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errorf(TypeInstanceNotFound, "instance %s of service %s was not found", id, serviceID)
	}
	return in, nil
}

// IDs. Namespace and service IDs are the prefix and 16 characters of
// lowercase base32 (ns-e4anhexample0004); operation IDs are 32 and 8 such
// characters joined by a hyphen, as Cloud Map's.

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func randomString(n int) string {
	b := make([]byte, (n*5+7)/8)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // unrecoverable: the OS has no entropy
	}
	return idEncoding.EncodeToString(b)[:n]
}

func newNamespaceID() string { return "ns-" + randomString(16) }
func newServiceID() string   { return "srv-" + randomString(16) }
func newOperationID() string { return randomString(32) + "-" + randomString(8) }

// newHostedZoneID returns a Route 53–style hosted zone ID (Z + 20
// uppercase characters) for a DNS namespace.
func newHostedZoneID() string { return "Z" + strings.ToUpper(randomString(20)) }

func isID(s, prefix string) bool {
	rest, ok := strings.CutPrefix(s, prefix+"-")
	if !ok || len(rest) != 16 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func (a *API) arn(account, resource string) string {
	return model.ARN{Partition: "aws", Service: "servicediscovery", Region: a.region, Account: account, Resource: resource}.String()
}

// resolve turns an ID or ARN of kind ("namespace" or "service") into an ID
// of the caller's account. An ARN of another account or region names
// nothing the caller can see (namespaces are not shared across accounts
// yet), so it is not found; a value that is neither is InvalidInput.
func (a *API) resolve(field string, v *string, kind, prefix, notFound, account string) (string, error) {
	if v == nil || *v == "" {
		return "", invalid(field, "is required")
	}
	s := *v
	if !strings.HasPrefix(s, "arn:") {
		if len(s) > 64 {
			return "", invalid(field, "must be at most 64 characters long (an ID) or an ARN")
		}
		return s, nil
	}
	if len(s) > 255 {
		return "", invalid(field, "must be at most 255 characters long")
	}
	p, err := model.ParseARN(s)
	resKind, id, _ := strings.Cut(p.Resource, "/")
	if err != nil || p.Service != "servicediscovery" || resKind != kind || !isID(id, prefix) {
		return "", invalid(field, "must be a %s ID (%s-...) or ARN (arn:aws:servicediscovery:<region>:<account>:%s/%s-...), got %q",
			kind, prefix, kind, prefix, s)
	}
	if p.Partition != "aws" || p.Region != a.region || p.Account != account {
		return "", errorf(notFound, "%s %s was not found", kind, s)
	}
	return id, nil
}

func (a *API) namespaceID(field string, v *string, account string) (string, error) {
	return a.resolve(field, v, "namespace", "ns", TypeNamespaceNotFound, account)
}

func (a *API) serviceID(field string, v *string, account string) (string, error) {
	return a.resolve(field, v, "service", "srv", TypeServiceNotFound, account)
}

// Operations. Every asynchronous call records one, already SUCCESS, and
// an age index entry; pruneOperations removes them after the retention.

func ageKey(account string, t time.Time, id string) string {
	return key(account, "opage", fmt.Sprintf("%020d", t.UnixNano()), id)
}

// newOperation records a finished operation and returns its ID. token is
// the store key of the idempotency record that refers to it, or "".
func (a *API) newOperation(tx *store.Tx, account, typ string, targets map[string]string, token string) (string, error) {
	now := a.timestamp()
	op := operation{ID: newOperationID(), Type: typ, Status: StatusSuccess, CreateDate: now, UpdateDate: now,
		Targets: targets, Token: token}
	tx.Put(ageKey(account, now, op.ID), nil)
	return op.ID, store.PutJSON(tx, key(account, "op", op.ID), op)
}

// tokenRecord is what a CreatorRequestId or UpdaterRequestId answered.
type tokenRecord struct {
	RequestHash string `json:"requestHash"`
	OperationID string `json:"operationId"`
}

// idempotent runs fn (which records an operation and returns its ID)
// unless token was already used for op: then a request identical to the
// first gets the first operation's ID again, and a different one is a
// DuplicateRequest naming that operation. in is the decoded request,
// whose JSON encoding identifies it.
func idempotent(tx *store.Tx, account, op string, token *string, in any, fn func(tokenKey string) (string, error)) (string, error) {
	if token == nil {
		return fn("")
	}
	k := key(account, "token", op, *token)
	raw, err := json.Marshal(in)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	hash := hex.EncodeToString(sum[:])
	prev, ok, err := store.GetJSON[tokenRecord](tx, k)
	if err != nil {
		return "", err
	}
	if ok {
		if prev.RequestHash != hash {
			return "", with(errorf(TypeDuplicateRequest, "request ID %q was already used for a different %s request (operation %s)", *token, op, prev.OperationID),
				"DuplicateOperationId", prev.OperationID)
		}
		return prev.OperationID, nil
	}
	id, err := fn(k)
	if err != nil {
		return "", err
	}
	return id, store.PutJSON(tx, k, tokenRecord{RequestHash: hash, OperationID: id})
}

// pruneBatch bounds the work one pruning pass does.
const pruneBatch = 16

// pruneOperations deletes up to pruneBatch of the account's operations
// older than the retention, with their idempotency records. It runs after
// each operation is recorded, so the backlog cannot grow beyond what the
// retention keeps. Failures only delay pruning; they are logged.
func (a *API) pruneOperations(ctx context.Context, account string) {
	cutoff := a.now().Add(-a.retention).UnixNano()
	res, err := a.st.List(ctx, key(account, "opage")+"/", store.ListOptions{Limit: pruneBatch})
	if err != nil {
		a.log.Warn("listing operations to prune", "account", account, "err", err)
		return
	}
	var expired []string
	for _, kv := range res.Items {
		rest := strings.TrimPrefix(kv.Key, key(account, "opage")+"/")
		ts, _, _ := strings.Cut(rest, "/")
		if n, err := strconv.ParseInt(ts, 10, 64); err == nil && n < cutoff {
			expired = append(expired, kv.Key)
		}
	}
	if len(expired) == 0 {
		return
	}
	err = a.update(ctx, func(tx *store.Tx) error {
		for _, ak := range expired {
			id := ak[strings.LastIndexByte(ak, '/')+1:]
			op, ok, err := store.GetJSON[operation](tx, key(account, "op", id))
			if err != nil {
				return err
			}
			if ok && op.Token != "" {
				tx.Delete(op.Token)
			}
			tx.Delete(key(account, "op", id))
			tx.Delete(ak)
		}
		return nil
	})
	if err != nil {
		a.log.Warn("pruning operations", "account", account, "err", err)
	}
}

// InstancesRevision. Every registration and deregistration rewrites the
// service's revision key, whose ModRevision, the store revision of that
// write, is the service's InstancesRevision: it only grows, and a service
// deleted and created again under the same name never goes back to
// revisions a client has already seen.

func revisionKey(account, svcID string) string { return key(account, "rev", svcID) }

// touchRevision moves the service's InstancesRevision on.
func touchRevision(tx *store.Tx, account, svcID string) { tx.Put(revisionKey(account, svcID), nil) }

// instancesRevision reads the service's InstancesRevision.
func instancesRevision(tx *store.Tx, account, svcID string) (int64, error) {
	kv, err := tx.Get(revisionKey(account, svcID))
	if isNotFound(err) {
		return 0, nil
	}
	return kv.ModRevision, err
}
