package agent

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	sd "github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	sdtypes "github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/trellis-mesh/trellis/internal/nativeclient"
)

// registry is the agent's view of the Cloud Map–compatible registry: it
// speaks the Cloud Map API, through the AWS SDK, as any other client
// would, plus one Trellis extension (namespaceServices) that reads a whole
// namespace per poll.
type registry struct {
	c      *sd.Client
	native *nativeclient.Client
}

func newRegistry(cfg aws.Config, endpoint string) *registry {
	return &registry{native: &nativeclient.Client{Endpoint: endpoint, Region: cfg.Region, Credentials: cfg.Credentials},
		c: sd.NewFromConfig(cfg, func(o *sd.Options) {
			o.BaseEndpoint = aws.String(endpoint)
			// DiscoverInstances goes to "data-" + host in AWS; Trellis serves
			// every operation on one endpoint (docs/cloudmap.md).
			o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
				return s.Initialize.Add(middleware.InitializeMiddlewareFunc("TrellisNoHostPrefix",
					func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
						return next.HandleInitialize(smithyhttp.DisableEndpointHostPrefix(ctx, true), in)
					}), middleware.Before)
			})
		})}
}

// serviceState is one service of a namespace poll.
type serviceState struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	InstancesRevision int64             `json:"instancesRevision"`
	Attributes        map[string]string `json:"attributes"`
}

// namespaceServices reads every service of namespace nsID with its
// InstancesRevision and attributes in one call (GET
// /trellis/v1/servicediscovery/namespaces/{id}/services): a poll costs one
// request whatever the namespace's size.
func (r *registry) namespaceServices(ctx context.Context, nsID string) ([]serviceState, error) {
	var out struct {
		Services []serviceState `json:"services"`
	}
	if err := r.native.Call(ctx, "GET", "/servicediscovery/namespaces/"+url.PathEscape(nsID)+"/services", nil, &out); err != nil {
		return nil, fmt.Errorf("reading namespace %s: %w", nsID, err)
	}
	return out.Services, nil
}

// namespace finds the HTTP (or DNS) namespace called name, creating an
// HTTP namespace when there is none.
func (r *registry) namespace(ctx context.Context, name string) (id string, err error) {
	find := func() (string, error) {
		p := sd.NewListNamespacesPaginator(r.c, &sd.ListNamespacesInput{Filters: []sdtypes.NamespaceFilter{{
			Name: sdtypes.NamespaceFilterNameName, Values: []string{name}, Condition: sdtypes.FilterConditionEq}}})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return "", fmt.Errorf("listing namespaces: %w", err)
			}
			for _, ns := range page.Namespaces {
				if aws.ToString(ns.Name) == name {
					return aws.ToString(ns.Id), nil
				}
			}
		}
		return "", nil
	}
	if id, err = find(); err != nil || id != "" {
		return id, err
	}
	if _, err := r.c.CreateHttpNamespace(ctx, &sd.CreateHttpNamespaceInput{Name: aws.String(name),
		Description: aws.String("created by a Trellis agent")}); err != nil {
		var dup *sdtypes.NamespaceAlreadyExists
		if !errors.As(err, &dup) {
			return "", fmt.Errorf("creating namespace %s: %w", name, err)
		}
	}
	if id, err = find(); err == nil && id == "" {
		err = fmt.Errorf("namespace %s: created, but not found", name)
	}
	return id, err
}

// namespaceName is the name of the namespace with ID id.
func (r *registry) namespaceName(ctx context.Context, id string) (string, error) {
	out, err := r.c.GetNamespace(ctx, &sd.GetNamespaceInput{Id: aws.String(id)})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.Namespace.Name), nil
}

// service finds service name in namespace nsID, creating it (with a
// custom health check, so that readiness and heartbeats can report
// health) when there is none.
func (r *registry) service(ctx context.Context, nsID, name string) (string, error) {
	svcs, err := r.services(ctx, nsID)
	if err != nil {
		return "", err
	}
	if id, ok := svcs[name]; ok {
		return id, nil
	}
	out, err := r.c.CreateService(ctx, &sd.CreateServiceInput{Name: aws.String(name), NamespaceId: aws.String(nsID),
		HealthCheckCustomConfig: &sdtypes.HealthCheckCustomConfig{}, Description: aws.String("registered by a Trellis agent")})
	if err != nil {
		var dup *sdtypes.ServiceAlreadyExists
		if errors.As(err, &dup) && dup.ServiceId != nil {
			return aws.ToString(dup.ServiceId), nil
		}
		return "", fmt.Errorf("creating service %s: %w", name, err)
	}
	return aws.ToString(out.Service.Id), nil
}

// services lists the services of namespace nsID: name → ID.
func (r *registry) services(ctx context.Context, nsID string) (map[string]string, error) {
	out := map[string]string{}
	p := sd.NewListServicesPaginator(r.c, &sd.ListServicesInput{Filters: []sdtypes.ServiceFilter{{
		Name: sdtypes.ServiceFilterNameNamespaceId, Values: []string{nsID}, Condition: sdtypes.FilterConditionEq}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing services: %w", err)
		}
		for _, s := range page.Services {
			out[aws.ToString(s.Name)] = aws.ToString(s.Id)
		}
	}
	return out, nil
}

// publish writes a service's attributes.
func (r *registry) publish(ctx context.Context, svcID string, attrs map[string]string) error {
	_, err := r.c.UpdateServiceAttributes(ctx, &sd.UpdateServiceAttributesInput{ServiceId: aws.String(svcID), Attributes: attrs})
	if err != nil {
		return fmt.Errorf("publishing attributes of %s: %w", svcID, err)
	}
	return nil
}

// register registers (or renews) an instance.
func (r *registry) register(ctx context.Context, svcID, instID string, attrs map[string]string) error {
	_, err := r.c.RegisterInstance(ctx, &sd.RegisterInstanceInput{ServiceId: aws.String(svcID), InstanceId: aws.String(instID), Attributes: attrs})
	if err != nil {
		return fmt.Errorf("registering %s: %w", instID, err)
	}
	return nil
}

// isInstanceNotFound reports whether err says the instance is gone (its
// lease expired while the agent could not reach the server).
func isInstanceNotFound(err error) bool {
	var nf *sdtypes.InstanceNotFound
	return errors.As(err, &nf)
}

// health reports an instance's health, which also renews its lease.
func (r *registry) health(ctx context.Context, svcID, instID string, healthy bool) error {
	st := sdtypes.CustomHealthStatusUnhealthy
	if healthy {
		st = sdtypes.CustomHealthStatusHealthy
	}
	_, err := r.c.UpdateInstanceCustomHealthStatus(ctx, &sd.UpdateInstanceCustomHealthStatusInput{
		ServiceId: aws.String(svcID), InstanceId: aws.String(instID), Status: st})
	if err != nil {
		return fmt.Errorf("reporting health of %s: %w", instID, err)
	}
	return nil
}

// deregister removes an instance.
func (r *registry) deregister(ctx context.Context, svcID, instID string) error {
	_, err := r.c.DeregisterInstance(ctx, &sd.DeregisterInstanceInput{ServiceId: aws.String(svcID), InstanceId: aws.String(instID)})
	if err != nil {
		var nf *sdtypes.InstanceNotFound
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("deregistering %s: %w", instID, err)
	}
	return nil
}

// endpoint is a discovered instance.
type endpoint struct {
	id, addr string
}

// discover returns the healthy instances of a service with their
// address and port. An instance that is not ready (readiness gating) is
// UNHEALTHY and gets no traffic, even when it is the only one: callers
// then get the agent's 503 rather than an application that is still
// starting.
func (r *registry) discover(ctx context.Context, ns, svc string) ([]endpoint, int64, error) {
	out, err := r.c.DiscoverInstances(ctx, &sd.DiscoverInstancesInput{NamespaceName: aws.String(ns), ServiceName: aws.String(svc),
		HealthStatus: sdtypes.HealthStatusFilterHealthy, MaxResults: aws.Int32(1000)})
	if err != nil {
		return nil, 0, err
	}
	eps := make([]endpoint, 0, len(out.Instances))
	for _, in := range out.Instances {
		ip, port := in.Attributes["AWS_INSTANCE_IPV4"], in.Attributes["AWS_INSTANCE_PORT"]
		if ip == "" || port == "" {
			continue
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			continue
		}
		eps = append(eps, endpoint{id: aws.ToString(in.InstanceId), addr: ip + ":" + port})
	}
	return eps, aws.ToInt64(out.InstancesRevision), nil
}
