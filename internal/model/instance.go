package model

import (
	"net/netip"
	"strings"
	"time"
)

// PrefixInstance is the prefix of EC2-style instance IDs (i-0123456789abcdef0).
const PrefixInstance = "i"

// InstancesPrefix is the store prefix of registered instances.
const InstancesPrefix = "/instances/"

// InstanceKey is where an instance is stored.
func InstanceKey(id string) string { return InstancesPrefix + id }

// Instance is a compute instance declared to Trellis, so that the targets
// of INSTANCE target groups (registered by instance ID, as in Lattice)
// resolve to an address a gateway can dial. It belongs to the account that
// owns its VPC.
type Instance struct {
	ID        string            `json:"id"`
	VpcID     string            `json:"vpc"`
	Address   string            `json:"address"`
	Name      string            `json:"name,omitempty"`
	Account   string            `json:"account"`
	ARN       string            `json:"arn"`
	Tags      map[string]string `json:"tags,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
}

// InstanceARN builds arn:aws:ec2:<region>:<account>:instance/<id>.
func InstanceARN(region, account, id string) string {
	return ARN{Partition: "aws", Service: "ec2", Region: region, Account: account, Resource: "instance/" + id}.String()
}

// IsInstanceID reports whether s is "i-" followed by 8 or 17 lowercase hex
// digits, the two forms EC2 has used.
func IsInstanceID(s string) bool {
	rest, ok := strings.CutPrefix(s, PrefixInstance+"-")
	if !ok || (len(rest) != 8 && len(rest) != 17) {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if !(rest[i] >= '0' && rest[i] <= '9' || rest[i] >= 'a' && rest[i] <= 'f') {
			return false
		}
	}
	return true
}

// NewInstanceID returns "i-" followed by 17 random lowercase hex digits.
func NewInstanceID() string { return NewID(PrefixInstance) }

// InstanceAddress checks an instance's address: an IP address (no zone)
// inside one of the VPC's CIDR blocks.
func (c *Checker) InstanceAddress(field, v string, vpc *VPC) {
	addr, err := netip.ParseAddr(v)
	if err != nil || addr.Zone() != "" {
		c.Addf(field, "must be an IPv4 or IPv6 address, got %q", v)
		return
	}
	if vpc == nil {
		return
	}
	for _, s := range vpc.CIDRs {
		if p, err := netip.ParsePrefix(s); err == nil && p.Contains(addr) {
			return
		}
	}
	c.Addf(field, "%s is outside the CIDR blocks of %s (%s)", v, vpc.ID, strings.Join(vpc.CIDRs, ", "))
}
