package cloudmap

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

type getOperationIn struct {
	OperationID  *string `json:"OperationId"`
	OwnerAccount *string `json:"OwnerAccount"`
}

type operationOut struct {
	ID         string            `json:"Id"`
	Type       string            `json:"Type"`
	Status     string            `json:"Status"`
	CreateDate epoch             `json:"CreateDate"`
	UpdateDate epoch             `json:"UpdateDate"`
	Targets    map[string]string `json:"Targets"`
}

func (a *API) getOperation(ctx context.Context, cl iam.Caller, in *getOperationIn) (any, error) {
	var c model.Checker
	if required(&c, "OperationId", in.OperationID) {
		maxLen(&c, "OperationId", in.OperationID, maxResourceID)
	}
	if in.OwnerAccount != nil && !model.IsAccountID(*in.OwnerAccount) {
		c.Addf("OwnerAccount", "must be a 12-digit account ID, got %q", *in.OwnerAccount)
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	notFound := errorf(TypeOperationNotFound, "operation %s was not found (operations are kept for %s)", *in.OperationID, a.retention)
	if in.OwnerAccount != nil && *in.OwnerAccount != cl.Account {
		return nil, notFound
	}
	var out operationOut
	err := a.update(ctx, func(tx *store.Tx) error {
		op, ok, err := store.GetJSON[operation](tx, key(cl.Account, "op", *in.OperationID))
		if err != nil {
			return err
		}
		if !ok {
			return notFound
		}
		out = operationOut{ID: op.ID, Type: op.Type, Status: op.Status, CreateDate: epoch(op.CreateDate),
			UpdateDate: epoch(op.UpdateDate), Targets: op.Targets}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return struct {
		Operation operationOut `json:"Operation"`
	}{out}, nil
}

type operationSummary struct {
	ID     string `json:"Id"`
	Status string `json:"Status"`
}

// listOperations lists the kept operations, oldest first, that match
// every filter.
func (a *API) listOperations(ctx context.Context, cl iam.Caller, in *listIn) (any, error) {
	var c model.Checker
	limit := checkMaxResults(&c, in.MaxResults, 100, 100)
	var match []func(*operation) bool
	for i, f := range in.Filters {
		field := "Filters." + itoa(i+1)
		switch f.Name {
		case "NAMESPACE_ID", "SERVICE_ID":
			condition(&c, field, f, "EQ")
			target, want := strings.TrimSuffix(f.Name, "_ID"), first(f.Values)
			match = append(match, func(op *operation) bool { return op.Targets[target] == want })
		case "STATUS", "TYPE":
			condition(&c, field, f, "EQ", "IN")
			allowed := []string{"SUBMITTED", "PENDING", StatusSuccess, "FAIL"}
			if f.Name == "TYPE" {
				allowed = []string{OpCreateNamespace, OpDeleteNamespace, OpUpdateNamespace, OpUpdateService, OpRegisterInstance, OpDeregisterInstance}
			}
			for _, v := range f.Values {
				c.Enum(field+".Values", v, allowed...)
			}
			vals, isType := f.Values, f.Name == "TYPE"
			match = append(match, func(op *operation) bool {
				if isType {
					return contains(vals, op.Type)
				}
				return contains(vals, op.Status)
			})
		case "UPDATE_DATE":
			if condition(&c, field, f, "BETWEEN") != "BETWEEN" || len(f.Values) != 2 {
				continue
			}
			from, err1 := parseEpoch(f.Values[0])
			to, err2 := parseEpoch(f.Values[1])
			if err1 != nil || err2 != nil {
				c.Addf(field+".Values", "must be two times in epoch seconds (start, end), got %q", f.Values)
				continue
			}
			match = append(match, func(op *operation) bool { return !op.UpdateDate.Before(from) && !op.UpdateDate.After(to) })
		default:
			c.Enum(field+".Name", f.Name, "NAMESPACE_ID", "SERVICE_ID", "STATUS", "TYPE", "UPDATE_DATE")
		}
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	page, next, err := a.scanOperations(ctx, cl.Account, in.NextToken, limit, match)
	if err != nil {
		return nil, err
	}
	return struct {
		Operations []operationSummary `json:"Operations"`
		NextToken  *string            `json:"NextToken,omitempty"`
	}{page, next}, nil
}

// scanBatch is how many operations scanOperations reads per store call.
const scanBatch = 100

// scanOperations walks the account's operations oldest first through the
// age index, from the one after nextToken, and returns up to limit that
// match. It reads in batches, so a page costs what it returns (plus the
// operations that filters skip), however many operations are kept.
func (a *API) scanOperations(ctx context.Context, account string, nextToken *string, limit int, match []func(*operation) bool) ([]operationSummary, *string, error) {
	const scope = "operations"
	prefix := key(account, "opage") + "/"
	after := ""
	if nextToken != nil && *nextToken != "" {
		k, err := wire.DecodeToken(scope, *nextToken)
		if err != nil || !strings.HasPrefix(k, prefix) {
			return nil, nil, invalid("NextToken", "is not a token returned by this operation")
		}
		after = k
	}
	out := []operationSummary{}
	for {
		res, err := a.st.List(ctx, prefix, store.ListOptions{After: after, Limit: scanBatch})
		if err != nil {
			return nil, nil, err
		}
		for i, kv := range res.Items {
			after = kv.Key
			id := kv.Key[strings.LastIndexByte(kv.Key, '/')+1:]
			raw, err := a.st.Get(ctx, key(account, "op", id))
			if isNotFound(err) {
				continue // pruned meanwhile
			}
			if err != nil {
				return nil, nil, err
			}
			var op operation
			if err := json.Unmarshal(raw.Value, &op); err != nil {
				return nil, nil, fmt.Errorf("decoding operation %s: %w", id, err)
			}
			if !matchAll(match, &op) {
				continue
			}
			out = append(out, operationSummary{ID: op.ID, Status: op.Status})
			if len(out) == limit {
				if i < len(res.Items)-1 || res.More {
					t := wire.EncodeToken(scope, after)
					return out, &t, nil
				}
				return out, nil, nil
			}
		}
		if !res.More {
			return out, nil, nil
		}
	}
}

// parseEpoch parses a time in epoch seconds (fractions allowed).
func parseEpoch(s string) (time.Time, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1e11 {
		return time.Time{}, fmt.Errorf("not epoch seconds: %q", s)
	}
	return time.UnixMilli(int64(f * 1000)), nil
}
