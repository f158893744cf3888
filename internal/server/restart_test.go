package server_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice/types"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
)

// TestRestartKeepsEverything stops the server and starts a new one on the
// same data directory: every acknowledged write, the admin credentials and
// the default VPC are still there, and bootstrap does not run again.
func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	first := startServer(t, dir, lattice.Quotas{})
	c := first.admin()
	sn := must[*vpclattice.CreateServiceNetworkOutput](t)(c.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{Name: aws.String("shop")}))
	svc := must[*vpclattice.CreateServiceOutput](t)(c.CreateService(ctx, &vpclattice.CreateServiceInput{Name: aws.String("orders")}))
	must[*vpclattice.CreateServiceNetworkServiceAssociationOutput](t)(c.CreateServiceNetworkServiceAssociation(ctx,
		&vpclattice.CreateServiceNetworkServiceAssociationInput{ServiceIdentifier: svc.Id, ServiceNetworkIdentifier: sn.Id}))
	must[*vpclattice.TagResourceOutput](t)(c.TagResource(ctx, &vpclattice.TagResourceInput{ResourceArn: sn.Arn, Tags: map[string]string{"k": "v"}}))
	first.stop()

	second := startServer(t, dir, lattice.Quotas{})
	if second.boot.Created || second.boot.Account != first.boot.Account || second.boot.AccessKeyID != first.boot.AccessKeyID || second.boot.VPCID != first.boot.VPCID {
		t.Fatalf("bootstrap after restart = %+v, want the first one's %+v", second.boot, first.boot)
	}
	c = second.admin()
	got := must[*vpclattice.GetServiceNetworkOutput](t)(c.GetServiceNetwork(ctx, &vpclattice.GetServiceNetworkInput{ServiceNetworkIdentifier: sn.Arn}))
	if aws.ToInt64(got.NumberOfAssociatedServices) != 1 {
		t.Errorf("association lost across restart: %+v", got)
	}
	tags := must[*vpclattice.ListTagsForResourceOutput](t)(c.ListTagsForResource(ctx, &vpclattice.ListTagsForResourceInput{ResourceArn: sn.Arn}))
	if tags.Tags["k"] != "v" {
		t.Errorf("tags lost across restart: %v", tags.Tags)
	}
	gs := must[*vpclattice.GetServiceOutput](t)(c.GetService(ctx, &vpclattice.GetServiceInput{ServiceIdentifier: svc.Id}))
	if aws.ToString(gs.DnsEntry.DomainName) != aws.ToString(svc.DnsEntry.DomainName) {
		t.Errorf("DNS name changed across restart: %s vs %s", aws.ToString(gs.DnsEntry.DomainName), aws.ToString(svc.DnsEntry.DomainName))
	}
	_, err := c.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{Name: aws.String("shop")})
	apiErr[*types.ConflictException](t, err)
}
