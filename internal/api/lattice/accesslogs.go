package lattice

import (
	"context"
	"net/http"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

// destinationType checks an access-log destination ARN and returns its
// kind: a CloudWatch Logs log group, an S3 bucket or a Firehose delivery
// stream (see docs/api.md).
func destinationType(field, arn string) (string, error) {
	if len(arn) < 20 || len(arn) > 2048 {
		return "", wire.Invalid(field, "must be 20 to 2048 characters long")
	}
	a, err := model.ParseARN(arn)
	if err != nil {
		return "", wire.Invalid(field, "%v", err)
	}
	switch {
	case a.Service == "logs" && len(a.Resource) > len("log-group:") && a.Resource[:len("log-group:")] == "log-group:":
		return "logs", nil
	case a.Service == "s3" && a.Resource != "":
		return "s3", nil
	case a.Service == "firehose" && len(a.Resource) > len("deliverystream/") && a.Resource[:len("deliverystream/")] == "deliverystream/":
		return "firehose", nil
	}
	return "", wire.Invalid(field, "must be the ARN of a CloudWatch Logs log group (arn:aws:logs:…:log-group:NAME), an S3 bucket (arn:aws:s3:::BUCKET) or a Firehose delivery stream (arn:aws:firehose:…:deliverystream/NAME), got %q", arn)
}

type createAccessLogIn struct {
	ClientToken           *string           `json:"clientToken"`
	ResourceIdentifier    string            `json:"resourceIdentifier"`
	DestinationARN        string            `json:"destinationArn"`
	ServiceNetworkLogType *string           `json:"serviceNetworkLogType"`
	Tags                  map[string]string `json:"tags"`
}

func alsView(s *model.AccessLogSubscription, full bool) map[string]any {
	v := map[string]any{"id": s.ID, "arn": s.ARN, "resourceId": s.ResourceID, "resourceArn": s.ResourceARN,
		"destinationArn": s.DestinationARN}
	if s.ServiceNetworkLogType != "" {
		v["serviceNetworkLogType"] = s.ServiceNetworkLogType
	}
	if full {
		v["createdAt"] = wire.Timestamp(s.CreatedAt)
		v["lastUpdatedAt"] = wire.Timestamp(s.UpdatedAt)
	}
	return v
}

func (a *API) createAccessLogSubscription(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	var in createAccessLogIn
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var c model.Checker
	c.ClientToken("clientToken", in.ClientToken)
	requireIdent(&c, "resourceIdentifier", in.ResourceIdentifier)
	if in.ServiceNetworkLogType != nil {
		c.Enum("serviceNetworkLogType", *in.ServiceNetworkLogType, "SERVICE", "RESOURCE")
	}
	c.Tags("tags", in.Tags)
	if err := c.Err(); err != nil {
		return 0, nil, err
	}
	destType, err := destinationType("destinationArn", in.DestinationARN)
	if err != nil {
		return 0, nil, err
	}
	var status int
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		status, out, err = idempotent(tx, cl.Account, "CreateAccessLogSubscription", in.ClientToken, r.HTTP.URL.EscapedPath(), r.Body, func() (int, any, error) {
			t, err := a.resolvePolicyTarget(tx, "resourceIdentifier", in.ResourceIdentifier, cl.Account)
			if err != nil {
				return 0, nil, err
			}
			logType := ""
			if in.ServiceNetworkLogType != nil {
				if model.IsID(t.id, model.PrefixService) {
					return 0, nil, wire.Invalid("serviceNetworkLogType", "applies only to service networks")
				}
				logType = *in.ServiceNetworkLogType
			}
			subs, err := store.ListJSON[model.AccessLogSubscription](tx, key(cl.Account, "als")+"/")
			if err != nil {
				return 0, nil, err
			}
			for _, s := range subs {
				other, _ := destinationType("", s.DestinationARN)
				if s.ResourceID == t.id && other == destType && s.ServiceNetworkLogType == logType {
					return 0, nil, wire.Conflict(rtAccessLog, s.ID, "%s already has an access log subscription to a %s destination (%s)", t.id, destType, s.ID)
				}
			}
			s := model.AccessLogSubscription{Meta: a.newMeta(cl.Account, model.PrefixAccessLogSub, "accesslogsubscription/", in.Tags),
				ResourceID: t.id, ResourceARN: t.arn, DestinationARN: in.DestinationARN, ServiceNetworkLogType: logType}
			if err := store.PutJSON(tx, key(cl.Account, "als", s.ID), s); err != nil {
				return 0, nil, err
			}
			return http.StatusCreated, alsView(&s, false), nil
		})
		return err
	})
	return status, out, err
}

func (a *API) resolveALS(r *wire.Request, account string) (string, error) {
	return a.resolve("accessLogSubscriptionIdentifier", r.Params["accessLogSubscriptionIdentifier"],
		model.PrefixAccessLogSub, "accesslogsubscription", rtAccessLog, account)
}

func (a *API) getAccessLogSubscription(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.resolveALS(r, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	var out any
	err = a.view(ctx, func(tx *store.Tx) error {
		s, err := mustLoad[model.AccessLogSubscription](tx, key(cl.Account, "als", id), rtAccessLog, id)
		if err != nil {
			return err
		}
		out = alsView(s, true)
		return nil
	})
	return http.StatusOK, out, err
}

func (a *API) listAccessLogSubscriptions(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	ident := r.Query("resourceIdentifier")
	if ident == "" {
		return 0, nil, wire.Invalid("resourceIdentifier", "is required")
	}
	var match []*model.AccessLogSubscription
	err = a.view(ctx, func(tx *store.Tx) error {
		t, err := a.resolvePolicyTarget(tx, "resourceIdentifier", ident, cl.Account)
		if err != nil {
			return err
		}
		subs, err := store.ListJSON[model.AccessLogSubscription](tx, key(cl.Account, "als")+"/")
		for _, s := range subs {
			if s.ResourceID == t.id {
				match = append(match, s)
			}
		}
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	page, next, err := paginate(r, "als/"+ident, match, func(s *model.AccessLogSubscription) string { return s.ID })
	if err != nil {
		return 0, nil, err
	}
	items := make([]map[string]any, 0, len(page))
	for _, s := range page {
		items = append(items, alsView(s, true))
	}
	return http.StatusOK, listOut{Items: items, NextToken: next}, nil
}

func (a *API) updateAccessLogSubscription(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.resolveALS(r, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		DestinationARN string `json:"destinationArn"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	newType, err := destinationType("destinationArn", in.DestinationARN)
	if err != nil {
		return 0, nil, err
	}
	var out any
	err = a.update(ctx, func(tx *store.Tx) error {
		s, err := mustLoad[model.AccessLogSubscription](tx, key(cl.Account, "als", id), rtAccessLog, id)
		if err != nil {
			return err
		}
		if oldType, _ := destinationType("", s.DestinationARN); oldType != newType {
			return wire.Conflict(rtAccessLog, id, "the destination type cannot change (%s to %s); create a new subscription", oldType, newType)
		}
		s.DestinationARN = in.DestinationARN
		s.UpdatedAt = a.timestamp()
		v := alsView(s, false)
		delete(v, "serviceNetworkLogType")
		out = v
		return store.PutJSON(tx, key(cl.Account, "als", id), s)
	})
	return http.StatusOK, out, err
}

func (a *API) deleteAccessLogSubscription(ctx context.Context, r *wire.Request) (int, any, error) {
	cl, err := caller(ctx)
	if err != nil {
		return 0, nil, err
	}
	id, err := a.resolveALS(r, cl.Account)
	if err != nil {
		return 0, nil, err
	}
	err = a.update(ctx, func(tx *store.Tx) error {
		if _, err := mustLoad[model.AccessLogSubscription](tx, key(cl.Account, "als", id), rtAccessLog, id); err != nil {
			return err
		}
		tx.Delete(key(cl.Account, "als", id))
		return nil
	})
	return http.StatusNoContent, nil, err
}
