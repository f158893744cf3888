package server_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice/types"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
	"github.com/trellis-mesh/trellis/internal/server"
)

// TestSDKRemainingReads covers the operations the other SDK tests only
// reach indirectly: plain reads, filters and direct deletes.
func TestSDKRemainingReads(t *testing.T) {
	ts := startServer(t, t.TempDir(), lattice.Quotas{})
	c := ts.admin()
	ctx := context.Background()

	svc := must[*vpclattice.CreateServiceOutput](t)(c.CreateService(ctx, &vpclattice.CreateServiceInput{Name: aws.String("orders"),
		CustomDomainName: aws.String("orders.example.com"), CertificateArn: aws.String("arn:aws:acm:us-east-1:111122223333:certificate/abc-123")}))
	gs := must[*vpclattice.GetServiceOutput](t)(c.GetService(ctx, &vpclattice.GetServiceInput{ServiceIdentifier: svc.Arn}))
	if aws.ToString(gs.CustomDomainName) != "orders.example.com" || aws.ToString(gs.CertificateArn) == "" || gs.LastUpdatedAt == nil {
		t.Errorf("get service = %+v", gs)
	}
	us := must[*vpclattice.UpdateServiceOutput](t)(c.UpdateService(ctx, &vpclattice.UpdateServiceInput{ServiceIdentifier: svc.Id, AuthType: types.AuthTypeAwsIam}))
	if us.AuthType != types.AuthTypeAwsIam {
		t.Errorf("update service = %+v", us)
	}
	_, err := c.UpdateService(ctx, &vpclattice.UpdateServiceInput{ServiceIdentifier: svc.Id, CertificateArn: aws.String("not-an-arn")})
	apiErr[*types.ValidationException](t, err)

	fixed := &types.RuleActionMemberFixedResponse{Value: types.FixedResponseAction{StatusCode: aws.Int32(404)}}
	for _, l := range []struct {
		name  string
		proto types.ListenerProtocol
	}{{"http", types.ListenerProtocolHttp}, {"https", types.ListenerProtocolHttps}} {
		must[*vpclattice.CreateListenerOutput](t)(c.CreateListener(ctx, &vpclattice.CreateListenerInput{ServiceIdentifier: svc.Id,
			Name: aws.String(l.name), Protocol: l.proto, DefaultAction: fixed}))
	}
	ll := must[*vpclattice.ListListenersOutput](t)(c.ListListeners(ctx, &vpclattice.ListListenersInput{ServiceIdentifier: svc.Id, MaxResults: aws.Int32(1)}))
	if len(ll.Items) != 1 || ll.NextToken == nil {
		t.Errorf("first page of listeners = %+v", ll)
	}
	ll2 := must[*vpclattice.ListListenersOutput](t)(c.ListListeners(ctx, &vpclattice.ListListenersInput{ServiceIdentifier: svc.Id, NextToken: ll.NextToken}))
	if len(ll2.Items) != 1 || ll2.NextToken != nil || aws.ToString(ll2.Items[0].Id) == aws.ToString(ll.Items[0].Id) {
		t.Errorf("second page of listeners = %+v", ll2)
	}
	// A TLS_PASSTHROUGH listener only forwards to TCP target groups.
	_, err = c.CreateListener(ctx, &vpclattice.CreateListenerInput{ServiceIdentifier: svc.Id, Name: aws.String("tls"),
		Protocol: types.ListenerProtocolTlsPassthrough, Port: aws.Int32(8443), DefaultAction: fixed})
	apiErr[*types.ValidationException](t, err)

	for _, tg := range []struct {
		name string
		typ  types.TargetGroupType
		cfg  *types.TargetGroupConfig
	}{
		{"web", types.TargetGroupTypeIp, &types.TargetGroupConfig{Protocol: types.TargetGroupProtocolHttp, VpcIdentifier: aws.String(ts.boot.VPCID)}},
		{"func", types.TargetGroupTypeLambda, nil},
	} {
		must[*vpclattice.CreateTargetGroupOutput](t)(c.CreateTargetGroup(ctx, &vpclattice.CreateTargetGroupInput{Name: aws.String(tg.name), Type: tg.typ, Config: tg.cfg}))
	}
	ltg := must[*vpclattice.ListTargetGroupsOutput](t)(c.ListTargetGroups(ctx, &vpclattice.ListTargetGroupsInput{TargetGroupType: types.TargetGroupTypeLambda}))
	if len(ltg.Items) != 1 || aws.ToString(ltg.Items[0].Name) != "func" {
		t.Errorf("lambda target groups = %+v", ltg.Items)
	}
	ltg = must[*vpclattice.ListTargetGroupsOutput](t)(c.ListTargetGroups(ctx, &vpclattice.ListTargetGroupsInput{VpcIdentifier: aws.String(ts.boot.VPCID)}))
	if len(ltg.Items) != 1 || aws.ToInt32(ltg.Items[0].Port) != 80 {
		t.Errorf("target groups in the VPC = %+v", ltg.Items)
	}

	sn := must[*vpclattice.CreateServiceNetworkOutput](t)(c.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{Name: aws.String("shop")}))
	va := must[*vpclattice.CreateServiceNetworkVpcAssociationOutput](t)(c.CreateServiceNetworkVpcAssociation(ctx,
		&vpclattice.CreateServiceNetworkVpcAssociationInput{ServiceNetworkIdentifier: sn.Arn, VpcIdentifier: aws.String(ts.boot.VPCID),
			SecurityGroupIds: []string{"sg-0123456789abcdef0"}}))
	gva := must[*vpclattice.GetServiceNetworkVpcAssociationOutput](t)(c.GetServiceNetworkVpcAssociation(ctx,
		&vpclattice.GetServiceNetworkVpcAssociationInput{ServiceNetworkVpcAssociationIdentifier: va.Arn}))
	if aws.ToString(gva.VpcId) != ts.boot.VPCID || len(gva.SecurityGroupIds) != 1 || aws.ToString(gva.ServiceNetworkName) != "shop" {
		t.Errorf("get snva = %+v", gva)
	}
	ve := must[*vpclattice.ListServiceNetworkVpcEndpointAssociationsOutput](t)(c.ListServiceNetworkVpcEndpointAssociations(ctx,
		&vpclattice.ListServiceNetworkVpcEndpointAssociationsInput{ServiceNetworkIdentifier: sn.Id}))
	if len(ve.Items) != 0 {
		t.Errorf("endpoint associations = %+v", ve.Items)
	}
	lsn := must[*vpclattice.ListServiceNetworksOutput](t)(c.ListServiceNetworks(ctx, &vpclattice.ListServiceNetworksInput{}))
	if len(lsn.Items) != 1 || aws.ToInt64(lsn.Items[0].NumberOfAssociatedVPCs) != 1 {
		t.Errorf("list networks = %+v", lsn.Items)
	}

	als := must[*vpclattice.CreateAccessLogSubscriptionOutput](t)(c.CreateAccessLogSubscription(ctx, &vpclattice.CreateAccessLogSubscriptionInput{
		ResourceIdentifier: svc.Arn, DestinationArn: aws.String("arn:aws:s3:::orders-logs")}))
	gal := must[*vpclattice.GetAccessLogSubscriptionOutput](t)(c.GetAccessLogSubscription(ctx, &vpclattice.GetAccessLogSubscriptionInput{AccessLogSubscriptionIdentifier: als.Arn}))
	if aws.ToString(gal.ResourceId) != aws.ToString(svc.Id) || gal.CreatedAt == nil {
		t.Errorf("get als = %+v", gal)
	}
	_, err = c.CreateAccessLogSubscription(ctx, &vpclattice.CreateAccessLogSubscriptionInput{ResourceIdentifier: svc.Id,
		DestinationArn: aws.String("arn:aws:s3:::x-logs"), ServiceNetworkLogType: types.ServiceNetworkLogTypeService})
	apiErr[*types.ValidationException](t, err)
	must[*vpclattice.DeleteAccessLogSubscriptionOutput](t)(c.DeleteAccessLogSubscription(ctx, &vpclattice.DeleteAccessLogSubscriptionInput{AccessLogSubscriptionIdentifier: als.Id}))
	_, err = c.DeleteAccessLogSubscription(ctx, &vpclattice.DeleteAccessLogSubscriptionInput{AccessLogSubscriptionIdentifier: als.Id})
	apiErr[*types.ResourceNotFoundException](t, err)
}

func TestSDKThrottling(t *testing.T) {
	// The server clock is real time plus a skew the test advances, so
	// signatures stay fresh while the bucket refills on demand.
	var mu sync.Mutex
	var skew time.Duration
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(skew) }
	ts := startServerWith(t, server.Config{DataDir: t.TempDir(), RateLimit: 1, Now: clock})
	c := ts.admin()
	ctx := context.Background()
	// A burst of two, then 429 with Retry-After.
	for range 2 {
		must[*vpclattice.ListServicesOutput](t)(c.ListServices(ctx, &vpclattice.ListServicesInput{}))
	}
	_, err := c.ListServices(ctx, &vpclattice.ListServicesInput{})
	th := apiErr[*types.ThrottlingException](t, err)
	if aws.ToInt32(th.RetryAfterSeconds) != 1 {
		t.Errorf("retryAfterSeconds = %d, want 1", aws.ToInt32(th.RetryAfterSeconds))
	}
	// One second later one more request fits.
	mu.Lock()
	skew += time.Second
	mu.Unlock()
	must[*vpclattice.ListServicesOutput](t)(c.ListServices(ctx, &vpclattice.ListServicesInput{}))
}
