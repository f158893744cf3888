package model

import (
	"fmt"
	"strings"
)

// ARN is an Amazon Resource Name: arn:partition:service:region:account:resource.
type ARN struct {
	Partition string
	Service   string
	Region    string
	Account   string
	Resource  string
}

// ParseARN splits an ARN into its parts. The resource part may contain colons.
func ParseARN(s string) (ARN, error) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return ARN{}, fmt.Errorf("%q is not an ARN (want arn:partition:service:region:account:resource)", s)
	}
	a := ARN{Partition: parts[1], Service: parts[2], Region: parts[3], Account: parts[4], Resource: parts[5]}
	if a.Partition == "" || a.Service == "" || a.Resource == "" {
		return ARN{}, fmt.Errorf("%q is not an ARN: partition, service and resource must not be empty", s)
	}
	return a, nil
}

func (a ARN) String() string {
	return "arn:" + a.Partition + ":" + a.Service + ":" + a.Region + ":" + a.Account + ":" + a.Resource
}

// LatticeARN builds arn:aws:vpc-lattice:<region>:<account>:<resource>.
func LatticeARN(region, account, resource string) string {
	return ARN{Partition: "aws", Service: "vpc-lattice", Region: region, Account: account, Resource: resource}.String()
}

// IAMARN builds arn:aws:iam::<account>:<resource>, e.g. role/deployer.
func IAMARN(account, resource string) string {
	return ARN{Partition: "aws", Service: "iam", Account: account, Resource: resource}.String()
}

// VPCARN builds arn:aws:ec2:<region>:<account>:vpc/<id>, the form Lattice
// uses in x-amzn-lattice-network and access logs.
func VPCARN(region, account, id string) string {
	return ARN{Partition: "aws", Service: "ec2", Region: region, Account: account, Resource: "vpc/" + id}.String()
}
