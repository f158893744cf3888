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

// taggable maps a Lattice ARN of the caller's account to the store key of
// the resource it names.
func (a *API) taggable(tx *store.Tx, arn, account string) (string, error) {
	if len(arn) > 1224 {
		return "", wire.Invalid("resourceArn", "must be at most 1224 characters long")
	}
	p, err := model.ParseARN(arn)
	if err != nil || p.Service != "vpc-lattice" {
		return "", wire.Invalid("resourceArn", "must be a VPC Lattice resource ARN, got %q", arn)
	}
	if p.Account != account || p.Region != a.region {
		return "", wire.NotFound("", arn)
	}
	parts := strings.Split(p.Resource, "/")
	var k, rt string
	switch {
	case len(parts) == 2 && parts[0] == "servicenetwork":
		k, rt = key(account, "sn", parts[1]), rtServiceNetwork
	case len(parts) == 2 && parts[0] == "service":
		k, rt = key(account, "svc", parts[1]), rtService
	case len(parts) == 4 && parts[0] == "service" && parts[2] == "listener":
		k, rt = key(account, "listener", parts[1], parts[3]), rtListener
	case len(parts) == 6 && parts[0] == "service" && parts[2] == "listener" && parts[4] == "rule":
		k, rt = key(account, "rule", parts[3], parts[5]), rtRule
	case len(parts) == 2 && parts[0] == "targetgroup":
		k, rt = key(account, "tg", parts[1]), rtTargetGroup
	case len(parts) == 2 && parts[0] == "servicenetworkserviceassociation":
		k, rt = key(account, "snsa", parts[1]), rtSNSA
	case len(parts) == 2 && parts[0] == "servicenetworkvpcassociation":
		k, rt = key(account, "snva", parts[1]), rtSNVA
	case len(parts) == 2 && parts[0] == "accesslogsubscription":
		k, rt = key(account, "als", parts[1]), rtAccessLog
	default:
		return "", wire.Invalid("resourceArn", "%q does not name a taggable VPC Lattice resource", arn)
	}
	if _, err := tx.Get(k); isNotFound(err) {
		return "", wire.NotFound(rt, arn)
	} else if err != nil {
		return "", err
	}
	return k, nil
}

// editTags loads the resource at k as raw JSON, lets fn change its tags,
// and saves it with every other member untouched.
func editTags(tx *store.Tx, k string, fn func(map[string]string) error) (map[string]string, error) {
	raw, _, err := store.GetJSON[map[string]json.RawMessage](tx, k)
	if err != nil {
		return nil, err
	}
	tags := map[string]string{}
	if t, ok := (*raw)["tags"]; ok {
		if err := json.Unmarshal(t, &tags); err != nil {
			return nil, err
		}
	}
	if fn == nil {
		return tags, nil
	}
	if err := fn(tags); err != nil {
		return nil, err
	}
	b, err := json.Marshal(tags)
	if err != nil {
		return nil, err
	}
	(*raw)["tags"] = b
	return tags, store.PutJSON(tx, k, raw)
}

func (a *API) tagResource(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Tags map[string]string `json:"tags"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var c model.Checker
	if len(in.Tags) == 0 {
		c.Addf("tags", "is required and must hold at least one tag")
	}
	c.Tags("tags", in.Tags)
	if err := c.Err(); err != nil {
		return 0, nil, err
	}
	err = a.update(ctx, func(tx *store.Tx) error {
		k, err := a.taggable(tx, r.Params["resourceArn"], cl.Account)
		if err != nil {
			return err
		}
		_, err = editTags(tx, k, func(tags map[string]string) error {
			for key, v := range in.Tags {
				tags[key] = v
			}
			if len(tags) > model.MaxTags {
				return wire.Invalid("tags", "a resource may carry at most %d tags; this would make %d", model.MaxTags, len(tags))
			}
			return nil
		})
		return err
	})
	return http.StatusOK, struct{}{}, err
}

func (a *API) untagResource(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	keys := r.HTTP.URL.Query()["tagKeys"]
	if len(keys) == 0 {
		return 0, nil, wire.Invalid("tagKeys", "is required")
	}
	err = a.update(ctx, func(tx *store.Tx) error {
		k, err := a.taggable(tx, r.Params["resourceArn"], cl.Account)
		if err != nil {
			return err
		}
		_, err = editTags(tx, k, func(tags map[string]string) error {
			for _, key := range keys {
				delete(tags, key)
			}
			return nil
		})
		return err
	})
	return http.StatusOK, struct{}{}, err
}

func (a *API) listTagsForResource(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var tags map[string]string
	err = a.view(ctx, func(tx *store.Tx) error {
		k, err := a.taggable(tx, r.Params["resourceArn"], cl.Account)
		if err != nil {
			return err
		}
		tags, err = editTags(tx, k, nil)
		return err
	})
	return http.StatusOK, map[string]any{"tags": tags}, err
}
