package cloudmap

import (
	"sort"
	"strconv"
	"time"
)

// Enumerations of the model (reference §5.3).
const (
	NamespaceHTTP       = "HTTP"
	NamespaceDNSPrivate = "DNS_PRIVATE"
	NamespaceDNSPublic  = "DNS_PUBLIC"

	ServiceTypeHTTP    = "HTTP"
	ServiceTypeDNSHTTP = "DNS_HTTP"

	Healthy   = "HEALTHY"
	Unhealthy = "UNHEALTHY"
	Unknown   = "UNKNOWN"

	FilterAll              = "ALL"
	FilterHealthyOrElseAll = "HEALTHY_OR_ELSE_ALL"

	OpCreateNamespace    = "CREATE_NAMESPACE"
	OpDeleteNamespace    = "DELETE_NAMESPACE"
	OpUpdateNamespace    = "UPDATE_NAMESPACE"
	OpUpdateService      = "UPDATE_SERVICE"
	OpRegisterInstance   = "REGISTER_INSTANCE"
	OpDeregisterInstance = "DEREGISTER_INSTANCE"

	StatusSuccess = "SUCCESS"
)

// Reserved instance attributes (reference §5.5).
const (
	AttrIPv4           = "AWS_INSTANCE_IPV4"
	AttrIPv6           = "AWS_INSTANCE_IPV6"
	AttrPort           = "AWS_INSTANCE_PORT"
	AttrCNAME          = "AWS_INSTANCE_CNAME"
	AttrAliasDNSName   = "AWS_ALIAS_DNS_NAME"
	AttrEC2InstanceID  = "AWS_EC2_INSTANCE_ID"
	AttrInitHealthStat = "AWS_INIT_HEALTH_STATUS"
)

// epoch encodes a time as Cloud Map does: epoch seconds with a millisecond
// fraction (1516925490.087).
type epoch time.Time

func (e epoch) MarshalJSON() ([]byte, error) {
	ms := time.Time(e).UnixMilli()
	return []byte(strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)), nil
}

// Stored records. They use the wire's member names where a record's part
// is returned as is (DnsRecord, HealthCheckConfig).

type namespace struct {
	ID               string            `json:"id"`
	ARN              string            `json:"arn"`
	Account          string            `json:"account"`
	Name             string            `json:"name"`
	Type             string            `json:"type"`
	Description      string            `json:"description,omitempty"`
	HTTPName         string            `json:"httpName"`
	VPC              string            `json:"vpc,omitempty"`
	HostedZoneID     string            `json:"hostedZoneId,omitempty"`
	SOATTL           *int64            `json:"soaTtl,omitempty"`
	CreatorRequestID string            `json:"creatorRequestId,omitempty"`
	ServiceCount     int               `json:"serviceCount"`
	Tags             map[string]string `json:"tags,omitempty"`
	CreateDate       time.Time         `json:"createDate"`
}

type dnsRecord struct {
	Type string `json:"Type"`
	TTL  int64  `json:"TTL"`
}

type dnsConfig struct {
	RoutingPolicy string      `json:"RoutingPolicy"`
	DNSRecords    []dnsRecord `json:"DnsRecords"`
}

type healthCheckConfig struct {
	Type             string `json:"Type"`
	ResourcePath     string `json:"ResourcePath,omitempty"`
	FailureThreshold int32  `json:"FailureThreshold"`
}

type customHealthConfig struct {
	FailureThreshold int32 `json:"FailureThreshold"`
}

type service struct {
	ID               string              `json:"id"`
	ARN              string              `json:"arn"`
	Account          string              `json:"account"`
	Name             string              `json:"name"`
	NamespaceID      string              `json:"namespaceId"`
	Description      string              `json:"description,omitempty"`
	Type             string              `json:"type"`
	DNS              *dnsConfig          `json:"dns,omitempty"`
	HealthCheck      *healthCheckConfig  `json:"healthCheck,omitempty"`
	CustomHealth     *customHealthConfig `json:"customHealth,omitempty"`
	InstanceCount    int                 `json:"instanceCount"`
	Attributes       map[string]string   `json:"attributes,omitempty"`
	CreatorRequestID string              `json:"creatorRequestId,omitempty"`
	Tags             map[string]string   `json:"tags,omitempty"`
	CreateDate       time.Time           `json:"createDate"`
}

type instance struct {
	ID               string            `json:"id"`
	ServiceID        string            `json:"serviceId"`
	Attributes       map[string]string `json:"attributes"`
	CreatorRequestID string            `json:"creatorRequestId,omitempty"`
	// Health is HEALTHY or UNHEALTHY for services with a custom health
	// check, "" for the others (see healthOf).
	Health     string    `json:"health,omitempty"`
	CreatedBy  string    `json:"createdBy"`
	CreateDate time.Time `json:"createDate"`
	UpdateDate time.Time `json:"updateDate"`
	// LeaseUntil and LeaseKey are set for an instance registered with
	// TRELLIS_LEASE_SECONDS (lease.go): when it is removed unless renewed,
	// and its entry in the lease index.
	LeaseUntil time.Time `json:"leaseUntil,omitzero"`
	LeaseKey   string    `json:"leaseKey,omitempty"`
}

type operation struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	Status     string            `json:"status"`
	CreateDate time.Time         `json:"createDate"`
	UpdateDate time.Time         `json:"updateDate"`
	Targets    map[string]string `json:"targets"`
	// Token is the store key of the idempotency record that names this
	// operation, deleted with it.
	Token string `json:"token,omitempty"`
}

// Wire shapes shared by several operations.

type tagIn struct {
	Key   *string `json:"Key"`
	Value *string `json:"Value"`
}

type tagOut struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

func tagsOut(tags map[string]string) []tagOut {
	out := make([]tagOut, 0, len(tags))
	for k, v := range tags {
		out = append(out, tagOut{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

type soaIn struct {
	TTL *int64 `json:"TTL"`
}

type dnsPropertiesIn struct {
	SOA *soaIn `json:"SOA"`
}

type dnsNamespacePropertiesIn struct {
	DNSProperties *dnsPropertiesIn `json:"DnsProperties"`
}

type filterIn struct {
	Name      string   `json:"Name"`
	Values    []string `json:"Values"`
	Condition *string  `json:"Condition"`
}

type dnsRecordIn struct {
	Type string `json:"Type"`
	TTL  *int64 `json:"TTL"`
}

type dnsConfigIn struct {
	NamespaceID   *string       `json:"NamespaceId"`
	RoutingPolicy *string       `json:"RoutingPolicy"`
	DNSRecords    []dnsRecordIn `json:"DnsRecords"`
}

type healthCheckConfigIn struct {
	Type             string  `json:"Type"`
	ResourcePath     *string `json:"ResourcePath"`
	FailureThreshold *int32  `json:"FailureThreshold"`
}

type customHealthConfigIn struct {
	FailureThreshold *int32 `json:"FailureThreshold"`
}
