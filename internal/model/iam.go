package model

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Principal types.
const (
	PrincipalUser = "user"
	PrincipalRole = "role"
)

// Account owns resources; one account cannot see another's.
type Account struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
}

// Principal is an IAM-style user or role of an account.
type Principal struct {
	Name      string            `json:"name"`
	Type      string            `json:"type"`
	Account   string            `json:"account"`
	ARN       string            `json:"arn"`
	Tags      map[string]string `json:"tags,omitempty"`
	Policy    string            `json:"policy,omitempty"`
	Admin     bool              `json:"admin,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
}

// PrincipalARN is arn:aws:iam::<account>:<type>/<name>.
func PrincipalARN(account, typ, name string) string {
	return IAMARN(account, typ+"/"+name)
}

// AccessKey is a long-term credential of a principal. The secret is stored
// because SigV4 verification needs it; it is never logged or listed.
type AccessKey struct {
	ID        string    `json:"id"`
	Secret    string    `json:"secret"`
	Account   string    `json:"account"`
	Principal string    `json:"principal"`
	CreatedAt time.Time `json:"createdAt"`
}

// VPC is a declared network in which gateways serve and targets live.
type VPC struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	CIDRs     []string          `json:"cidrs"`
	Account   string            `json:"account"`
	ARN       string            `json:"arn"`
	Tags      map[string]string `json:"tags,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
}

// PrincipalName checks an IAM user or role name: 1–64 characters of
// [A-Za-z0-9+=,.@_-].
func (c *Checker) PrincipalName(field, v string) {
	if len(v) < 1 || len(v) > 64 {
		c.Addf(field, "must be 1 to 64 characters long")
		return
	}
	for i := 0; i < len(v); i++ {
		ch := v[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.ContainsRune("+=,.@_-", rune(ch))) {
			c.Addf(field, "may contain only letters, digits and +=,.@_-")
			return
		}
	}
}

// CIDRs checks a VPC's address blocks: at least one, each a valid prefix
// in canonical form.
func (c *Checker) CIDRs(field string, cidrs []string) {
	if len(cidrs) == 0 {
		c.Addf(field, "at least one CIDR block is required")
	}
	for i, s := range cidrs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			c.Addf(field+"["+strconv.Itoa(i)+"]", "%q is not a CIDR block such as 10.0.0.0/16", s)
			continue
		}
		if p.Masked() != p {
			c.Addf(field+"["+strconv.Itoa(i)+"]", "%q has host bits set; did you mean %s?", s, p.Masked())
		}
	}
}
