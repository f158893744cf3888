package server_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice/types"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
)

func TestNativePrincipalsKeysVPCs(t *testing.T) {
	ts := startServer(t, t.TempDir(), lattice.Quotas{})
	call := func(method, path string, in, out any) int {
		return nativeCall(t, ts, ts.boot.AccessKeyID, ts.secret, method, path, in, out)
	}

	var p map[string]any
	if code := call("POST", "/principals", map[string]any{"name": "deployer", "type": "role", "tags": map[string]string{"team": "orders"},
		"policy": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"vpc-lattice-svcs:Invoke","Resource":"*"}]}`}, &p); code != 201 {
		t.Fatalf("create principal: %d", code)
	}
	if p["arn"] != "arn:aws:iam::"+ts.boot.Account+":role/deployer" {
		t.Errorf("principal = %v", p)
	}
	if code := call("POST", "/principals", map[string]any{"name": "deployer", "type": "role"}, nil); code != 409 {
		t.Errorf("duplicate principal: %d, want 409", code)
	}
	if code := call("POST", "/principals", map[string]any{"name": "bad name!", "type": "group"}, nil); code != 400 {
		t.Errorf("invalid principal: %d, want 400", code)
	}
	if code := call("POST", "/principals", map[string]any{"name": "x", "type": "user", "policy": `{"Statement":"nope"}`}, nil); code != 400 {
		t.Errorf("invalid identity policy: %d, want 400", code)
	}

	var key struct{ AccessKeyId, SecretAccessKey string }
	if code := call("POST", "/accesskeys", map[string]string{"principal": "deployer"}, &key); code != 201 || len(key.SecretAccessKey) != 40 {
		t.Fatalf("create key: %d %+v", code, key)
	}
	ctx := context.Background()
	c := ts.client(key.AccessKeyId, key.SecretAccessKey)
	must[*vpclattice.ListServicesOutput](t)(c.ListServices(ctx, &vpclattice.ListServicesInput{}))
	var keys struct{ Items []map[string]any }
	call("GET", "/accesskeys", nil, &keys)
	if len(keys.Items) != 2 {
		t.Errorf("keys = %v, want the admin's and the deployer's", keys.Items)
	}
	for _, k := range keys.Items {
		if _, leaked := k["SecretAccessKey"]; leaked {
			t.Errorf("listing shows a secret")
		}
	}
	// Deleting the principal revokes its keys at once.
	if code := call("DELETE", "/principals/role/deployer", nil, nil); code != 204 {
		t.Fatalf("delete principal: %d", code)
	}
	_, err := c.ListServices(ctx, &vpclattice.ListServicesInput{})
	apiErr[*types.AccessDeniedException](t, err)

	// VPCs: declared, listed, refused while associated.
	var vpc map[string]any
	if code := call("POST", "/vpcs", map[string]any{"name": "payments", "cidrs": []string{"10.1.0.0/16", "fd00:1::/64"}}, &vpc); code != 201 {
		t.Fatalf("create vpc: %d", code)
	}
	if code := call("POST", "/vpcs", map[string]any{"name": "bad", "cidrs": []string{"10.1.0.1/16"}}, nil); code != 400 {
		t.Errorf("CIDR with host bits: %d, want 400", code)
	}
	var vpcs struct{ Items []map[string]any }
	call("GET", "/vpcs", nil, &vpcs)
	if len(vpcs.Items) != 2 {
		t.Errorf("vpcs = %v", vpcs.Items)
	}
	id := vpc["id"].(string)
	admin := ts.admin()
	sn := must[*vpclattice.CreateServiceNetworkOutput](t)(admin.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{Name: aws.String("pay")}))
	as := must[*vpclattice.CreateServiceNetworkVpcAssociationOutput](t)(admin.CreateServiceNetworkVpcAssociation(ctx,
		&vpclattice.CreateServiceNetworkVpcAssociationInput{ServiceNetworkIdentifier: sn.Id, VpcIdentifier: aws.String(id)}))
	if code := call("DELETE", "/vpcs/"+id, nil, nil); code != 409 {
		t.Errorf("delete associated VPC: %d, want 409", code)
	}
	must[*vpclattice.DeleteServiceNetworkVpcAssociationOutput](t)(admin.DeleteServiceNetworkVpcAssociation(ctx,
		&vpclattice.DeleteServiceNetworkVpcAssociationInput{ServiceNetworkVpcAssociationIdentifier: as.Id}))
	if code := call("DELETE", "/vpcs/"+id, nil, nil); code != 204 {
		t.Errorf("delete VPC: %d, want 204", code)
	}
	// Accounts are admin business.
	if code := call("POST", "/accounts", map[string]any{"name": "admin"}, nil); code != 409 {
		t.Errorf("duplicate account name: %d, want 409", code)
	}
}
