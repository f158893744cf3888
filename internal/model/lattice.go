package model

import "time"

// Enumerations of the Lattice API (reference/lattice.md §1.3–1.4).
const (
	AuthTypeNone   = "NONE"
	AuthTypeAWSIAM = "AWS_IAM"

	StatusActive = "ACTIVE"

	ProtocolHTTP           = "HTTP"
	ProtocolHTTPS          = "HTTPS"
	ProtocolTLSPassthrough = "TLS_PASSTHROUGH"
	ProtocolTCP            = "TCP"

	TargetGroupTypeIP       = "IP"
	TargetGroupTypeLambda   = "LAMBDA"
	TargetGroupTypeInstance = "INSTANCE"
	TargetGroupTypeALB      = "ALB"

	ProtocolVersionHTTP1 = "HTTP1"
	ProtocolVersionHTTP2 = "HTTP2"
	ProtocolVersionGRPC  = "GRPC"

	IPAddressTypeIPv4 = "IPV4"
	IPAddressTypeIPv6 = "IPV6"

	TargetStatusInitial     = "INITIAL"
	TargetStatusUnavailable = "UNAVAILABLE"

	AuthPolicyActive   = "Active"
	AuthPolicyInactive = "Inactive"
)

// Meta is what every stored resource carries.
type Meta struct {
	ID        string            `json:"id"`
	ARN       string            `json:"arn"`
	Account   string            `json:"account"`
	CreatedAt time.Time         `json:"createdAt"`
	UpdatedAt time.Time         `json:"lastUpdatedAt"`
	Tags      map[string]string `json:"tags,omitempty"`
}

// ServiceNetwork is a logical boundary that services join and VPCs attach to.
type ServiceNetwork struct {
	Meta
	Name          string         `json:"name"`
	AuthType      string         `json:"authType"`
	SharingConfig *SharingConfig `json:"sharingConfig,omitempty"`
}

// SharingConfig says whether a service network may be shared.
type SharingConfig struct {
	Enabled *bool `json:"enabled,omitempty"`
}

// Service is an application reachable through service networks.
type Service struct {
	Meta
	Name               string   `json:"name"`
	AuthType           string   `json:"authType"`
	CustomDomainName   string   `json:"customDomainName,omitempty"`
	CertificateARN     string   `json:"certificateArn,omitempty"`
	IdleTimeoutSeconds int32    `json:"idleTimeoutSeconds"`
	DNSEntry           DNSEntry `json:"dnsEntry"`
	Status             string   `json:"status"`
}

// DNSEntry is a generated DNS name.
type DNSEntry struct {
	DomainName   string `json:"domainName,omitempty"`
	HostedZoneID string `json:"hostedZoneId,omitempty"`
}

// Listener accepts connections for a service on one port and protocol.
type Listener struct {
	Meta
	Name          string     `json:"name"`
	ServiceID     string     `json:"serviceId"`
	ServiceARN    string     `json:"serviceArn"`
	Protocol      string     `json:"protocol"`
	Port          int32      `json:"port"`
	DefaultAction RuleAction `json:"defaultAction"`
	DefaultRuleID string     `json:"defaultRuleId"`
}

// Rule routes matching requests of a listener. The default rule of a
// listener is stored as a Rule with IsDefault set and no match.
type Rule struct {
	Meta
	Name       string     `json:"name"`
	ServiceID  string     `json:"serviceId"`
	ListenerID string     `json:"listenerId"`
	IsDefault  bool       `json:"isDefault"`
	Priority   int32      `json:"priority"`
	Match      *RuleMatch `json:"match,omitempty"`
	Action     RuleAction `json:"action"`
}

// RuleAction is a union: exactly one of Forward and FixedResponse.
type RuleAction struct {
	Forward       *ForwardAction       `json:"forward,omitempty"`
	FixedResponse *FixedResponseAction `json:"fixedResponse,omitempty"`
}

// ForwardAction spreads requests over weighted target groups.
type ForwardAction struct {
	TargetGroups []WeightedTargetGroup `json:"targetGroups"`
}

// WeightedTargetGroup is one target group of a forward action. The stored
// identifier is always the target group's ID.
type WeightedTargetGroup struct {
	TargetGroupIdentifier string `json:"targetGroupIdentifier"`
	Weight                *int32 `json:"weight,omitempty"`
}

// FixedResponseAction answers with a status code.
type FixedResponseAction struct {
	StatusCode int32 `json:"statusCode"`
}

// RuleMatch is a union with one member, httpMatch.
type RuleMatch struct {
	HTTPMatch *HTTPMatch `json:"httpMatch,omitempty"`
}

// HTTPMatch ANDs its parts. HeaderMatches is always present on the wire
// (empty list when none), as Lattice returns it.
type HTTPMatch struct {
	Method        *string       `json:"method,omitempty"`
	PathMatch     *PathMatch    `json:"pathMatch,omitempty"`
	HeaderMatches []HeaderMatch `json:"headerMatches"`
}

// PathMatch matches the request path.
type PathMatch struct {
	Match         PathMatchType `json:"match"`
	CaseSensitive *bool         `json:"caseSensitive,omitempty"`
}

// PathMatchType is a union: exact or prefix.
type PathMatchType struct {
	Exact  *string `json:"exact,omitempty"`
	Prefix *string `json:"prefix,omitempty"`
}

// HeaderMatch matches one request header.
type HeaderMatch struct {
	Name          string          `json:"name"`
	Match         HeaderMatchType `json:"match"`
	CaseSensitive *bool           `json:"caseSensitive,omitempty"`
}

// HeaderMatchType is a union: exact, prefix or contains.
type HeaderMatchType struct {
	Exact    *string `json:"exact,omitempty"`
	Prefix   *string `json:"prefix,omitempty"`
	Contains *string `json:"contains,omitempty"`
}

// TargetGroup is a set of targets with a protocol and health check.
type TargetGroup struct {
	Meta
	Name   string             `json:"name"`
	Type   string             `json:"type"`
	Config *TargetGroupConfig `json:"config,omitempty"`
	Status string             `json:"status"`
	// ServiceID is the one service whose rules forward to this group
	// (a target group serves a single service); empty when unused.
	ServiceID string `json:"serviceId,omitempty"`
	// RuleRefs lists the rules (default rules included) that forward here.
	RuleRefs []string `json:"ruleRefs,omitempty"`
}

// TargetGroupConfig is the target group's protocol configuration. Absent
// members take defaults on reads (see Materialize).
type TargetGroupConfig struct {
	Port                        *int32             `json:"port,omitempty"`
	Protocol                    string             `json:"protocol,omitempty"`
	ProtocolVersion             string             `json:"protocolVersion,omitempty"`
	IPAddressType               string             `json:"ipAddressType,omitempty"`
	VpcIdentifier               string             `json:"vpcIdentifier,omitempty"`
	HealthCheck                 *HealthCheckConfig `json:"healthCheck,omitempty"`
	LambdaEventStructureVersion string             `json:"lambdaEventStructureVersion,omitempty"`
}

// HealthCheckConfig configures active health checks of a target group.
type HealthCheckConfig struct {
	Enabled                    *bool    `json:"enabled,omitempty"`
	Protocol                   string   `json:"protocol,omitempty"`
	ProtocolVersion            string   `json:"protocolVersion,omitempty"`
	Port                       *int32   `json:"port,omitempty"`
	Path                       *string  `json:"path,omitempty"`
	HealthCheckIntervalSeconds *int32   `json:"healthCheckIntervalSeconds,omitempty"`
	HealthCheckTimeoutSeconds  *int32   `json:"healthCheckTimeoutSeconds,omitempty"`
	HealthyThresholdCount      *int32   `json:"healthyThresholdCount,omitempty"`
	UnhealthyThresholdCount    *int32   `json:"unhealthyThresholdCount,omitempty"`
	Matcher                    *Matcher `json:"matcher,omitempty"`
}

// Matcher is a union with one member, httpCode.
type Matcher struct {
	HTTPCode *string `json:"httpCode,omitempty"`
}

// Target is a registered target of a target group.
type Target struct {
	ID            string    `json:"id"`
	Port          int32     `json:"port,omitempty"`
	Status        string    `json:"status"`
	ReasonCode    string    `json:"reasonCode,omitempty"`
	RegisteredAt  time.Time `json:"registeredAt"`
	TargetGroupID string    `json:"targetGroupId"`
	// DrainUntil is when a DRAINING target is removed (nil otherwise).
	DrainUntil *time.Time `json:"drainUntil,omitempty"`
}

// ServiceNetworkServiceAssociation publishes a service into a network.
type ServiceNetworkServiceAssociation struct {
	Meta
	Status             string `json:"status"`
	CreatedBy          string `json:"createdBy"`
	ServiceID          string `json:"serviceId"`
	ServiceNetworkID   string `json:"serviceNetworkId"`
	ServiceAccount     string `json:"serviceAccount"`
	ServiceNetworkAcct string `json:"serviceNetworkAccount"`
}

// ServiceNetworkVpcAssociation attaches a VPC to a network.
type ServiceNetworkVpcAssociation struct {
	Meta
	Status           string      `json:"status"`
	CreatedBy        string      `json:"createdBy"`
	ServiceNetworkID string      `json:"serviceNetworkId"`
	VpcID            string      `json:"vpcId"`
	SecurityGroupIDs []string    `json:"securityGroupIds,omitempty"`
	PrivateDNS       *bool       `json:"privateDnsEnabled,omitempty"`
	DNSOptions       *DNSOptions `json:"dnsOptions,omitempty"`
}

// DNSOptions are the private DNS preferences of a VPC association.
type DNSOptions struct {
	PrivateDNSPreference       string   `json:"privateDnsPreference,omitempty"`
	PrivateDNSSpecifiedDomains []string `json:"privateDnsSpecifiedDomains,omitempty"`
}

// Policy is a stored auth or resource policy document.
type Policy struct {
	ResourceARN string    `json:"resourceArn"`
	Document    string    `json:"policy"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"lastUpdatedAt"`
}

// AccessLogSubscription sends access logs of a service or network to a destination.
type AccessLogSubscription struct {
	Meta
	ResourceID            string `json:"resourceId"`
	ResourceARN           string `json:"resourceArn"`
	DestinationARN        string `json:"destinationArn"`
	ServiceNetworkLogType string `json:"serviceNetworkLogType,omitempty"`
}
