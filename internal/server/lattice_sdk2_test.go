package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice/types"
	"github.com/aws/smithy-go"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
)

func TestSDKAssociationsPoliciesLogsTags(t *testing.T) {
	ts := startServer(t, t.TempDir(), lattice.Quotas{})
	c := ts.admin()
	ctx := context.Background()
	sn := must[*vpclattice.CreateServiceNetworkOutput](t)(c.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{Name: aws.String("shop")}))
	sn2 := must[*vpclattice.CreateServiceNetworkOutput](t)(c.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{Name: aws.String("other")}))
	svc := must[*vpclattice.CreateServiceOutput](t)(c.CreateService(ctx, &vpclattice.CreateServiceInput{Name: aws.String("orders"), AuthType: types.AuthTypeAwsIam}))

	// Service association.
	snsa := must[*vpclattice.CreateServiceNetworkServiceAssociationOutput](t)(c.CreateServiceNetworkServiceAssociation(ctx,
		&vpclattice.CreateServiceNetworkServiceAssociationInput{ServiceIdentifier: svc.Arn, ServiceNetworkIdentifier: sn.Id}))
	if snsa.Status != types.ServiceNetworkServiceAssociationStatusActive || aws.ToString(snsa.DnsEntry.DomainName) != aws.ToString(svc.DnsEntry.DomainName) {
		t.Errorf("snsa = %+v", snsa)
	}
	_, err := c.CreateServiceNetworkServiceAssociation(ctx, &vpclattice.CreateServiceNetworkServiceAssociationInput{ServiceIdentifier: svc.Id, ServiceNetworkIdentifier: sn.Id})
	apiErr[*types.ConflictException](t, err)
	gsa := must[*vpclattice.GetServiceNetworkServiceAssociationOutput](t)(c.GetServiceNetworkServiceAssociation(ctx,
		&vpclattice.GetServiceNetworkServiceAssociationInput{ServiceNetworkServiceAssociationIdentifier: snsa.Arn}))
	if aws.ToString(gsa.ServiceName) != "orders" || aws.ToString(gsa.ServiceNetworkName) != "shop" {
		t.Errorf("get snsa = %+v", gsa)
	}
	lsa := must[*vpclattice.ListServiceNetworkServiceAssociationsOutput](t)(c.ListServiceNetworkServiceAssociations(ctx,
		&vpclattice.ListServiceNetworkServiceAssociationsInput{ServiceIdentifier: svc.Id}))
	if len(lsa.Items) != 1 {
		t.Errorf("list snsa = %+v", lsa.Items)
	}

	// VPC association: one per VPC.
	snva := must[*vpclattice.CreateServiceNetworkVpcAssociationOutput](t)(c.CreateServiceNetworkVpcAssociation(ctx,
		&vpclattice.CreateServiceNetworkVpcAssociationInput{ServiceNetworkIdentifier: sn.Id, VpcIdentifier: aws.String(ts.boot.VPCID)}))
	_, err = c.CreateServiceNetworkVpcAssociation(ctx, &vpclattice.CreateServiceNetworkVpcAssociationInput{ServiceNetworkIdentifier: sn2.Id, VpcIdentifier: aws.String(ts.boot.VPCID)})
	apiErr[*types.ConflictException](t, err)
	_, err = c.CreateServiceNetworkVpcAssociation(ctx, &vpclattice.CreateServiceNetworkVpcAssociationInput{ServiceNetworkIdentifier: sn2.Id, VpcIdentifier: aws.String("vpc-0123456789abcdef0")})
	apiErr[*types.ResourceNotFoundException](t, err)
	_, err = c.UpdateServiceNetworkVpcAssociation(ctx, &vpclattice.UpdateServiceNetworkVpcAssociationInput{ServiceNetworkVpcAssociationIdentifier: snva.Id, SecurityGroupIds: []string{"nope"}})
	apiErr[*types.ValidationException](t, err)
	usva := must[*vpclattice.UpdateServiceNetworkVpcAssociationOutput](t)(c.UpdateServiceNetworkVpcAssociation(ctx,
		&vpclattice.UpdateServiceNetworkVpcAssociationInput{ServiceNetworkVpcAssociationIdentifier: snva.Id, SecurityGroupIds: []string{"sg-0123456789abcdef0"}}))
	if len(usva.SecurityGroupIds) != 1 {
		t.Errorf("update snva = %+v", usva)
	}
	lva := must[*vpclattice.ListServiceNetworkVpcAssociationsOutput](t)(c.ListServiceNetworkVpcAssociations(ctx,
		&vpclattice.ListServiceNetworkVpcAssociationsInput{VpcIdentifier: aws.String(ts.boot.VPCID)}))
	if len(lva.Items) != 1 || aws.ToString(lva.Items[0].ServiceNetworkName) != "shop" {
		t.Errorf("list snva = %+v", lva.Items)
	}
	gsn := must[*vpclattice.GetServiceNetworkOutput](t)(c.GetServiceNetwork(ctx, &vpclattice.GetServiceNetworkInput{ServiceNetworkIdentifier: sn.Id}))
	if aws.ToInt64(gsn.NumberOfAssociatedServices) != 1 || aws.ToInt64(gsn.NumberOfAssociatedVPCs) != 1 {
		t.Errorf("counts = %d services, %d VPCs", aws.ToInt64(gsn.NumberOfAssociatedServices), aws.ToInt64(gsn.NumberOfAssociatedVPCs))
	}
	// Relationship rules: neither the network nor the service can go while associated.
	_, err = c.DeleteServiceNetwork(ctx, &vpclattice.DeleteServiceNetworkInput{ServiceNetworkIdentifier: sn.Id})
	apiErr[*types.ConflictException](t, err)
	_, err = c.DeleteService(ctx, &vpclattice.DeleteServiceInput{ServiceIdentifier: svc.Id})
	apiErr[*types.ConflictException](t, err)

	// Auth policies: validated, state follows the auth type.
	pol := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Invoke","Resource":"*"}]}`
	pa := must[*vpclattice.PutAuthPolicyOutput](t)(c.PutAuthPolicy(ctx, &vpclattice.PutAuthPolicyInput{ResourceIdentifier: svc.Id, Policy: aws.String(pol)}))
	if pa.State != types.AuthPolicyStateActive {
		t.Errorf("state = %s, want Active for an AWS_IAM service", pa.State)
	}
	pn := must[*vpclattice.PutAuthPolicyOutput](t)(c.PutAuthPolicy(ctx, &vpclattice.PutAuthPolicyInput{ResourceIdentifier: sn.Arn, Policy: aws.String(pol)}))
	if pn.State != types.AuthPolicyStateInactive {
		t.Errorf("state = %s, want Inactive for a NONE network", pn.State)
	}
	_, err = c.PutAuthPolicy(ctx, &vpclattice.PutAuthPolicyInput{ResourceIdentifier: svc.Id,
		Policy: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Invoke","Resource":"*","Condition":{"StringEqualz":{"aws:PrincipalType":"x"}}}]}`)})
	ve := apiErr[*types.ValidationException](t, err)
	if len(ve.FieldList) == 0 || aws.ToString(ve.FieldList[0].Name) != "policy.Statement[0].Condition.StringEqualz" {
		t.Errorf("policy validation = %+v", ve.FieldList)
	}
	gp := must[*vpclattice.GetAuthPolicyOutput](t)(c.GetAuthPolicy(ctx, &vpclattice.GetAuthPolicyInput{ResourceIdentifier: svc.Id}))
	if aws.ToString(gp.Policy) != pol {
		t.Errorf("policy = %s", aws.ToString(gp.Policy))
	}
	must[*vpclattice.DeleteAuthPolicyOutput](t)(c.DeleteAuthPolicy(ctx, &vpclattice.DeleteAuthPolicyInput{ResourceIdentifier: svc.Id}))
	_, err = c.GetAuthPolicy(ctx, &vpclattice.GetAuthPolicyInput{ResourceIdentifier: svc.Id})
	apiErr[*types.ResourceNotFoundException](t, err)

	// Resource policy.
	rp := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":["vpc-lattice:CreateServiceNetworkVpcAssociation","vpc-lattice:GetServiceNetwork"],"Resource":"*"}]}`
	must[*vpclattice.PutResourcePolicyOutput](t)(c.PutResourcePolicy(ctx, &vpclattice.PutResourcePolicyInput{ResourceArn: sn.Arn, Policy: aws.String(rp)}))
	grp := must[*vpclattice.GetResourcePolicyOutput](t)(c.GetResourcePolicy(ctx, &vpclattice.GetResourcePolicyInput{ResourceArn: sn.Arn}))
	if aws.ToString(grp.Policy) != rp {
		t.Errorf("resource policy = %s", aws.ToString(grp.Policy))
	}
	must[*vpclattice.DeleteResourcePolicyOutput](t)(c.DeleteResourcePolicy(ctx, &vpclattice.DeleteResourcePolicyInput{ResourceArn: sn.Arn}))

	// Access-log subscriptions.
	dest := "arn:aws:logs:us-east-1:" + ts.boot.Account + ":log-group:shop"
	als := must[*vpclattice.CreateAccessLogSubscriptionOutput](t)(c.CreateAccessLogSubscription(ctx, &vpclattice.CreateAccessLogSubscriptionInput{
		ResourceIdentifier: sn.Id, DestinationArn: aws.String(dest)}))
	if aws.ToString(als.ResourceArn) != aws.ToString(sn.Arn) {
		t.Errorf("als = %+v", als)
	}
	_, err = c.CreateAccessLogSubscription(ctx, &vpclattice.CreateAccessLogSubscriptionInput{ResourceIdentifier: sn.Id, DestinationArn: aws.String(dest + "-2")})
	apiErr[*types.ConflictException](t, err)
	_, err = c.CreateAccessLogSubscription(ctx, &vpclattice.CreateAccessLogSubscriptionInput{ResourceIdentifier: sn.Id, DestinationArn: aws.String("arn:aws:sqs:us-east-1:111122223333:q")})
	apiErr[*types.ValidationException](t, err)
	must[*vpclattice.UpdateAccessLogSubscriptionOutput](t)(c.UpdateAccessLogSubscription(ctx, &vpclattice.UpdateAccessLogSubscriptionInput{
		AccessLogSubscriptionIdentifier: als.Id, DestinationArn: aws.String(dest + "-v2")}))
	lal := must[*vpclattice.ListAccessLogSubscriptionsOutput](t)(c.ListAccessLogSubscriptions(ctx, &vpclattice.ListAccessLogSubscriptionsInput{ResourceIdentifier: sn.Arn}))
	if len(lal.Items) != 1 || aws.ToString(lal.Items[0].DestinationArn) != dest+"-v2" {
		t.Errorf("list als = %+v", lal.Items)
	}

	// Tags through the percent-encoded ARN path.
	must[*vpclattice.TagResourceOutput](t)(c.TagResource(ctx, &vpclattice.TagResourceInput{ResourceArn: svc.Arn, Tags: map[string]string{"team": "orders", "env": "prod"}}))
	must[*vpclattice.UntagResourceOutput](t)(c.UntagResource(ctx, &vpclattice.UntagResourceInput{ResourceArn: svc.Arn, TagKeys: []string{"env"}}))
	lt := must[*vpclattice.ListTagsForResourceOutput](t)(c.ListTagsForResource(ctx, &vpclattice.ListTagsForResourceInput{ResourceArn: svc.Arn}))
	if len(lt.Tags) != 1 || lt.Tags["team"] != "orders" {
		t.Errorf("tags = %v", lt.Tags)
	}
	_, err = c.TagResource(ctx, &vpclattice.TagResourceInput{ResourceArn: aws.String("arn:aws:vpc-lattice:us-east-1:" + ts.boot.Account + ":service/svc-0123456789abcdef0"), Tags: map[string]string{"a": "b"}})
	apiErr[*types.ResourceNotFoundException](t, err)

	// Disassociate, then the network deletes and takes its log subscriptions with it.
	must[*vpclattice.DeleteServiceNetworkServiceAssociationOutput](t)(c.DeleteServiceNetworkServiceAssociation(ctx, &vpclattice.DeleteServiceNetworkServiceAssociationInput{ServiceNetworkServiceAssociationIdentifier: snsa.Id}))
	must[*vpclattice.DeleteServiceNetworkVpcAssociationOutput](t)(c.DeleteServiceNetworkVpcAssociation(ctx, &vpclattice.DeleteServiceNetworkVpcAssociationInput{ServiceNetworkVpcAssociationIdentifier: snva.Id}))
	must[*vpclattice.DeleteServiceNetworkOutput](t)(c.DeleteServiceNetwork(ctx, &vpclattice.DeleteServiceNetworkInput{ServiceNetworkIdentifier: sn.Id}))
	_, err = c.GetAccessLogSubscription(ctx, &vpclattice.GetAccessLogSubscriptionInput{AccessLogSubscriptionIdentifier: als.Id})
	apiErr[*types.ResourceNotFoundException](t, err)
	// The VPC is free for another network now.
	must[*vpclattice.CreateServiceNetworkVpcAssociationOutput](t)(c.CreateServiceNetworkVpcAssociation(ctx,
		&vpclattice.CreateServiceNetworkVpcAssociationInput{ServiceNetworkIdentifier: sn2.Id, VpcIdentifier: aws.String(ts.boot.VPCID)}))
}

func TestSDKQuotas(t *testing.T) {
	ts := startServer(t, t.TempDir(), lattice.Quotas{ServiceNetworks: 2, ListenersPerService: 1})
	c := ts.admin()
	ctx := context.Background()
	for _, n := range []string{"one", "two"} {
		must[*vpclattice.CreateServiceNetworkOutput](t)(c.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{Name: aws.String(n)}))
	}
	_, err := c.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{Name: aws.String("three")})
	q := apiErr[*types.ServiceQuotaExceededException](t, err)
	if aws.ToString(q.QuotaCode) != "L-9CAD07FB" || aws.ToString(q.ServiceCode) != "vpc-lattice" {
		t.Errorf("quota error = %+v", q)
	}
	svc := must[*vpclattice.CreateServiceOutput](t)(c.CreateService(ctx, &vpclattice.CreateServiceInput{Name: aws.String("orders")}))
	fixed := &types.RuleActionMemberFixedResponse{Value: types.FixedResponseAction{StatusCode: aws.Int32(404)}}
	must[*vpclattice.CreateListenerOutput](t)(c.CreateListener(ctx, &vpclattice.CreateListenerInput{ServiceIdentifier: svc.Id, Name: aws.String("a" + "bc"), Protocol: types.ListenerProtocolHttp, DefaultAction: fixed}))
	_, err = c.CreateListener(ctx, &vpclattice.CreateListenerInput{ServiceIdentifier: svc.Id, Name: aws.String("def"), Protocol: types.ListenerProtocolHttps, DefaultAction: fixed})
	apiErr[*types.ServiceQuotaExceededException](t, err)
}

// nativeCall signs a request to the native API with the given key.
func nativeCall(t *testing.T, ts *testServer, keyID, secret, method, path string, in, out any) int {
	t.Helper()
	var body []byte
	if in != nil {
		body, _ = json.Marshal(in)
	}
	req, _ := http.NewRequest(method, ts.endpoint+"/trellis/v1"+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}, req, hex.EncodeToString(sum[:]), "trellis", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("decoding %s: %v", raw, err)
		}
	}
	return resp.StatusCode
}

func TestSDKCrossAccountInvisible(t *testing.T) {
	ts := startServer(t, t.TempDir(), lattice.Quotas{})
	ctx := context.Background()
	admin := ts.admin()
	sn := must[*vpclattice.CreateServiceNetworkOutput](t)(admin.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{Name: aws.String("shop")}))

	var acct struct{ ID string }
	if code := nativeCall(t, ts, ts.boot.AccessKeyID, ts.secret, "POST", "/accounts", map[string]string{"name": "tenant"}, &acct); code != 201 {
		t.Fatalf("create account: %d", code)
	}
	if code := nativeCall(t, ts, ts.boot.AccessKeyID, ts.secret, "POST", "/principals", map[string]any{"name": "dev", "type": "role", "account": acct.ID}, nil); code != 201 {
		t.Fatalf("create principal: %d", code)
	}
	var key struct{ AccessKeyId, SecretAccessKey string }
	if code := nativeCall(t, ts, ts.boot.AccessKeyID, ts.secret, "POST", "/accesskeys", map[string]string{"principal": "role/dev", "account": acct.ID}, &key); code != 201 {
		t.Fatalf("create key: %d", code)
	}
	tenant := ts.client(key.AccessKeyId, key.SecretAccessKey)

	// The tenant sees none of the admin account's resources, by ID or ARN...
	_, err := tenant.GetServiceNetwork(ctx, &vpclattice.GetServiceNetworkInput{ServiceNetworkIdentifier: sn.Id})
	apiErr[*types.ResourceNotFoundException](t, err)
	_, err = tenant.GetServiceNetwork(ctx, &vpclattice.GetServiceNetworkInput{ServiceNetworkIdentifier: sn.Arn})
	apiErr[*types.ResourceNotFoundException](t, err)
	_, err = tenant.DeleteServiceNetwork(ctx, &vpclattice.DeleteServiceNetworkInput{ServiceNetworkIdentifier: sn.Arn})
	apiErr[*types.ResourceNotFoundException](t, err)
	list := must[*vpclattice.ListServiceNetworksOutput](t)(tenant.ListServiceNetworks(ctx, &vpclattice.ListServiceNetworksInput{}))
	if len(list.Items) != 0 {
		t.Errorf("tenant lists %d networks, want 0", len(list.Items))
	}
	// ...and may use the same names in its own account.
	own := must[*vpclattice.CreateServiceNetworkOutput](t)(tenant.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{Name: aws.String("shop")}))
	if aws.ToString(own.Arn) == aws.ToString(sn.Arn) {
		t.Errorf("tenant network has the admin's ARN")
	}
	// Non-admins cannot act in other accounts.
	if code := nativeCall(t, ts, key.AccessKeyId, key.SecretAccessKey, "POST", "/principals", map[string]any{"name": "x", "type": "role", "account": ts.boot.Account}, nil); code != 403 {
		t.Errorf("tenant creating a principal in the admin account: %d, want 403", code)
	}

	// STS GetCallerIdentity answers for each key.
	stsc := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(ts.endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(key.AccessKeyId, key.SecretAccessKey, "")})
	id := must[*sts.GetCallerIdentityOutput](t)(stsc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))
	if aws.ToString(id.Account) != acct.ID || aws.ToString(id.Arn) != "arn:aws:iam::"+acct.ID+":role/dev" {
		t.Errorf("caller identity = %s %s", aws.ToString(id.Account), aws.ToString(id.Arn))
	}
}

func TestSDKRejectsBadSignatures(t *testing.T) {
	ts := startServer(t, t.TempDir(), lattice.Quotas{})
	ctx := context.Background()
	cases := map[string]*vpclattice.Client{
		"wrong secret": ts.client(ts.boot.AccessKeyID, "not-the-secret"),
		"unknown key":  ts.client("AKIAAAAAAAAAAAAAAAAA", ts.secret),
		"wrong region": vpclattice.New(vpclattice.Options{Region: "eu-west-1", BaseEndpoint: aws.String(ts.endpoint), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(ts.boot.AccessKeyID, ts.secret, "")}),
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := c.ListServiceNetworks(ctx, &vpclattice.ListServiceNetworksInput{})
			apiErr[*types.AccessDeniedException](t, err)
		})
	}
	t.Run("unsigned", func(t *testing.T) {
		resp, err := http.Get(ts.endpoint + "/servicenetworks")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 || resp.Header.Get("x-amzn-ErrorType") != "AccessDeniedException" || resp.Header.Get("x-amzn-RequestId") == "" {
			t.Errorf("unsigned request: %d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("stale date", func(t *testing.T) {
		c := vpclattice.New(vpclattice.Options{Region: "us-east-1", BaseEndpoint: aws.String(ts.endpoint), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(ts.boot.AccessKeyID, ts.secret, "")},
			func(o *vpclattice.Options) {
				o.HTTPSignerV4 = signerAt{v4.NewSigner(), time.Now().Add(-time.Hour)}
			})
		_, err := c.ListServiceNetworks(ctx, &vpclattice.ListServiceNetworksInput{})
		apiErr[*types.AccessDeniedException](t, err)
	})
}

// signerAt signs as if the clock said at.
type signerAt struct {
	s  *v4.Signer
	at time.Time
}

func (s signerAt) SignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string, _ time.Time, opts ...func(*v4.SignerOptions)) error {
	return s.s.SignHTTP(ctx, creds, r, payloadHash, service, region, s.at, opts...)
}

func TestSDKOutOfScopeOperations(t *testing.T) {
	ts := startServer(t, t.TempDir(), lattice.Quotas{})
	_, err := ts.admin().CreateResourceGateway(context.Background(), &vpclattice.CreateResourceGatewayInput{Name: aws.String("rgw"), VpcIdentifier: aws.String(ts.boot.VPCID)})
	ve := apiErr[*types.ValidationException](t, err)
	if ve.Reason != types.ValidationExceptionReasonUnknownOperation {
		t.Errorf("reason = %s", ve.Reason)
	}
	var ae smithy.APIError
	_, err = ts.admin().ListDomainVerifications(context.Background(), &vpclattice.ListDomainVerificationsInput{})
	if !errorsAs(err, &ae) || ae.ErrorCode() != "ValidationException" {
		t.Errorf("ListDomainVerifications: %v", err)
	}
}
