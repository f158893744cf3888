package cloudmap

import (
	"context"
	"strings"

	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

type tagResourceIn struct {
	ResourceARN *string `json:"ResourceARN"`
	Tags        []tagIn `json:"Tags"`
}

type untagResourceIn struct {
	ResourceARN *string  `json:"ResourceARN"`
	TagKeys     []string `json:"TagKeys"`
}

type resourceARNIn struct {
	ResourceARN *string `json:"ResourceARN"`
}

// taggable maps a namespace or service ARN of the caller's account to the
// store key of the resource. Other ARNs, and ARNs of other accounts or
// regions, name no resource the caller can tag.
func (a *API) taggable(v *string, account string) (string, error) {
	var c model.Checker
	if required(&c, "ResourceARN", v) {
		maxLen(&c, "ResourceARN", v, maxResourceARN)
	}
	if err := c.Err(); err != nil {
		return "", err
	}
	p, err := model.ParseARN(*v)
	if err != nil {
		return "", invalid("ResourceARN", "must be a namespace or service ARN, got %q", *v)
	}
	notFound := errorf(TypeResourceNotFound, "resource %s was not found", *v)
	kind, id, _ := strings.Cut(p.Resource, "/")
	switch {
	case p.Service != "servicediscovery" || p.Partition != "aws" || p.Region != a.region || p.Account != account:
		return "", notFound
	case kind == "namespace" && isID(id, "ns"):
		return key(account, "ns", id), nil
	case kind == "service" && isID(id, "srv"):
		return key(account, "svc", id), nil
	}
	return "", notFound
}

// editTags loads the namespace or service at k, lets fn change its tags,
// and saves it.
func (a *API) editTags(tx *store.Tx, k, arn string, fn func(map[string]string)) (map[string]string, error) {
	notFound := errorf(TypeResourceNotFound, "resource %s was not found", arn)
	if strings.Contains(k, "/ns/") {
		ns, ok, err := store.GetJSON[namespace](tx, k)
		if err != nil || !ok {
			return nil, firstErr(err, notFound)
		}
		if fn == nil {
			return ns.Tags, nil
		}
		if ns.Tags == nil {
			ns.Tags = map[string]string{}
		}
		fn(ns.Tags)
		return ns.Tags, store.PutJSON(tx, k, ns)
	}
	svc, ok, err := store.GetJSON[service](tx, k)
	if err != nil || !ok {
		return nil, firstErr(err, notFound)
	}
	if fn == nil {
		return svc.Tags, nil
	}
	if svc.Tags == nil {
		svc.Tags = map[string]string{}
	}
	fn(svc.Tags)
	return svc.Tags, store.PutJSON(tx, k, svc)
}

func firstErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

func (a *API) tagResource(ctx context.Context, cl iam.Caller, in *tagResourceIn) (any, error) {
	var c model.Checker
	if in.Tags == nil {
		c.Addf("Tags", "is required")
	}
	tags := checkTags(&c, "Tags", in.Tags)
	if err := c.Err(); err != nil {
		return nil, err
	}
	k, err := a.taggable(in.ResourceARN, cl.Account)
	if err != nil {
		return nil, err
	}
	err = a.update(ctx, func(tx *store.Tx) error {
		cur, err := a.editTags(tx, k, *in.ResourceARN, nil)
		if err != nil {
			return err
		}
		n := len(cur)
		for key := range tags {
			if _, ok := cur[key]; !ok {
				n++
			}
		}
		if n > maxTagsPerResource {
			return tooManyTags(*in.ResourceARN, n)
		}
		_, err = a.editTags(tx, k, *in.ResourceARN, func(m map[string]string) {
			for key, v := range tags {
				m[key] = v
			}
		})
		return err
	})
	return nil, err
}

func (a *API) untagResource(ctx context.Context, cl iam.Caller, in *untagResourceIn) (any, error) {
	var c model.Checker
	if in.TagKeys == nil {
		c.Addf("TagKeys", "is required")
	}
	if len(in.TagKeys) > maxTagsPerRequest {
		c.Addf("TagKeys", "must have at most %d keys, got %d", maxTagsPerRequest, len(in.TagKeys))
	}
	for _, k := range in.TagKeys {
		if n := len([]rune(k)); n < 1 || n > 128 {
			c.Addf("TagKeys", "tag keys must be 1 to 128 characters long")
			break
		}
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	k, err := a.taggable(in.ResourceARN, cl.Account)
	if err != nil {
		return nil, err
	}
	err = a.update(ctx, func(tx *store.Tx) error {
		_, err := a.editTags(tx, k, *in.ResourceARN, func(m map[string]string) {
			for _, key := range in.TagKeys {
				delete(m, key)
			}
		})
		return err
	})
	return nil, err
}

func (a *API) listTagsForResource(ctx context.Context, cl iam.Caller, in *resourceARNIn) (any, error) {
	k, err := a.taggable(in.ResourceARN, cl.Account)
	if err != nil {
		return nil, err
	}
	var tags map[string]string
	err = a.update(ctx, func(tx *store.Tx) error {
		tags, err = a.editTags(tx, k, *in.ResourceARN, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	return struct {
		Tags []tagOut `json:"Tags"`
	}{tagsOut(tags)}, nil
}
