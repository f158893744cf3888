package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sd "github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	sdtypes "github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"
)

// TestPrivateDNSNamespace: a Cloud Map private DNS namespace of the
// default VPC, made with the AWS SDK, is answered by `trellis up`'s DNS
// responder: a service's A record lists its instances within a moment of
// their registration, with the service's TTL; an SRV service answers its
// targets and their addresses, a CNAME service its alias; a name the
// namespace does not hold is NXDOMAIN.
func TestPrivateDNSNamespace(t *testing.T) {
	if _, err := exec.LookPath("dig"); err != nil {
		t.Skip("dig not installed")
	}
	e := startUp(t)
	vpc := regexp.MustCompile(`vpc-[0-9a-z]+`).FindString(run(t, dataEnv(e.data), e.bin, "get", "vpcs", "--data", e.data))
	if vpc == "" {
		t.Fatal("no VPC in 'trellis get vpcs'")
	}
	ctx := context.Background()
	c := discoveryClient(t, e.data)
	if _, err := c.CreatePrivateDnsNamespace(ctx, &sd.CreatePrivateDnsNamespaceInput{Name: aws.String("corp.internal"), Vpc: aws.String(vpc)}); err != nil {
		t.Fatal(err)
	}
	nss, err := c.ListNamespaces(ctx, &sd.ListNamespacesInput{})
	if err != nil || len(nss.Namespaces) != 1 {
		t.Fatalf("ListNamespaces: %v %v", nss, err)
	}
	svc, err := c.CreateService(ctx, &sd.CreateServiceInput{Name: aws.String("db"), NamespaceId: nss.Namespaces[0].Id,
		DnsConfig: &sdtypes.DnsConfig{RoutingPolicy: sdtypes.RoutingPolicyMultivalue,
			DnsRecords: []sdtypes.DnsRecord{{Type: sdtypes.RecordTypeA, TTL: aws.Int64(30)}}}})
	if err != nil {
		t.Fatal(err)
	}
	for i, ip := range []string{"10.0.0.5", "10.0.0.6"} {
		if _, err := c.RegisterInstance(ctx, &sd.RegisterInstanceInput{ServiceId: svc.Service.Id, InstanceId: aws.String(fmt.Sprint("db-", i)),
			Attributes: map[string]string{"AWS_INSTANCE_IPV4": ip}}); err != nil {
			t.Fatal(err)
		}
	}
	host, port := splitPort(e.dns)
	dig := func(args ...string) string {
		return run(t, nil, "dig", append([]string{"@" + host, "-p", port, "+tries=1", "+time=2"}, args...)...)
	}
	eventually(t, 10*time.Second, func() error {
		if got := strings.Fields(dig("+short", "db.corp.internal")); strings.Join(got, " ") != "10.0.0.5 10.0.0.6" {
			return fmt.Errorf("dig db.corp.internal = %q", got)
		}
		return nil
	})
	if out := dig("+noall", "+answer", "db.corp.internal"); !strings.Contains(out, "\t30\tIN\tA\t10.0.0.5") {
		t.Errorf("the answer does not carry the service's TTL of 30:\n%s", out)
	}
	if out := dig("nope.corp.internal"); !strings.Contains(out, "NXDOMAIN") {
		t.Errorf("a name the namespace does not hold:\n%s", out)
	}
	// An SRV service: its targets, <instance-id>.<service>.<namespace> at
	// each instance's port, and their addresses alongside.
	pg, err := c.CreateService(ctx, &sd.CreateServiceInput{Name: aws.String("_pg._tcp"), NamespaceId: nss.Namespaces[0].Id,
		DnsConfig: &sdtypes.DnsConfig{RoutingPolicy: sdtypes.RoutingPolicyMultivalue,
			DnsRecords: []sdtypes.DnsRecord{{Type: sdtypes.RecordTypeSrv, TTL: aws.Int64(25)}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterInstance(ctx, &sd.RegisterInstanceInput{ServiceId: pg.Service.Id, InstanceId: aws.String("pg-1"),
		Attributes: map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.7", "AWS_INSTANCE_PORT": "5432"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if got := strings.TrimSpace(dig("+short", "SRV", "_pg._tcp.corp.internal")); got != "1 1 5432 pg-1._pg._tcp.corp.internal." {
			return fmt.Errorf("dig SRV _pg._tcp.corp.internal = %q", got)
		}
		return nil
	})
	if out := dig("+noall", "+additional", "SRV", "_pg._tcp.corp.internal"); strings.Join(strings.Fields(out), " ") !=
		"pg-1._pg._tcp.corp.internal. 25 IN A 10.0.0.7" {
		t.Errorf("the SRV answer's additional section is not its target's address at the SRV TTL:\n%s", out)
	}
	if got := strings.TrimSpace(dig("+short", "pg-1._pg._tcp.corp.internal")); got != "10.0.0.7" {
		t.Errorf("dig pg-1._pg._tcp.corp.internal = %q", got)
	}
	// A CNAME service (WEIGHTED, as Cloud Map requires) aliases its
	// instance's AWS_INSTANCE_CNAME; an alias of db follows to its address.
	www, err := c.CreateService(ctx, &sd.CreateServiceInput{Name: aws.String("www"), NamespaceId: nss.Namespaces[0].Id,
		DnsConfig: &sdtypes.DnsConfig{RoutingPolicy: sdtypes.RoutingPolicyWeighted,
			DnsRecords: []sdtypes.DnsRecord{{Type: sdtypes.RecordTypeCname, TTL: aws.Int64(45)}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterInstance(ctx, &sd.RegisterInstanceInput{ServiceId: www.Service.Id, InstanceId: aws.String("w-1"),
		Attributes: map[string]string{"AWS_INSTANCE_CNAME": "db.corp.internal"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if got := strings.Join(strings.Fields(dig("+noall", "+answer", "www.corp.internal")), " "); !strings.HasPrefix(got,
			"www.corp.internal. 45 IN CNAME db.corp.internal. db.corp.internal. 30 IN A 10.0.0.") {
			return fmt.Errorf("dig www.corp.internal = %q", got)
		}
		return nil
	})
	if _, err := c.DeregisterInstance(ctx, &sd.DeregisterInstanceInput{ServiceId: svc.Service.Id, InstanceId: aws.String("db-0")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if got := strings.TrimSpace(dig("+short", "db.corp.internal")); got != "10.0.0.6" {
			return fmt.Errorf("after deregistration, dig db.corp.internal = %q", got)
		}
		return nil
	})
}
