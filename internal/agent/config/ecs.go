package config

// This file holds the raw document shapes that follow ECS's API exactly:
// ServiceConnectConfiguration and its nested shapes (CreateService /
// UpdateService request members) and the task definition's PortMapping.
// Type names follow the ECS shape names; JSON member names are ECS's
// camelCase spelling. Optional members are pointers, so that "absent" and
// "present but zero" stay distinct and the Document marshals back to what
// was read. Nothing here is defaulted: see Config for the resolved form.

// Document is the agent's configuration file as decoded, before defaults.
type Document struct {
	// ServiceConnectConfiguration is required.
	ServiceConnectConfiguration *ServiceConnectConfiguration `json:"serviceConnectConfiguration,omitempty"`
	// PortMappings are the task's port mappings; every services[].portName
	// must name one of them. It may be omitted for a client-only agent.
	PortMappings []PortMapping `json:"portMappings,omitempty"`
	// Trellis holds the optional Trellis extensions.
	Trellis *TrellisExtensions `json:"trellis,omitempty"`
}

// ServiceConnectConfiguration is ECS's ServiceConnectConfiguration.
type ServiceConnectConfiguration struct {
	// Enabled is required. When false the agent starts no listeners and
	// registers nothing, but the rest of the document is still validated.
	Enabled *bool `json:"enabled,omitempty"`
	// Namespace is the Cloud Map namespace name or ARN. When absent, the
	// agent joins the default namespace of its node (the Trellis analogue
	// of a cluster's serviceConnectDefaults).
	Namespace *string `json:"namespace,omitempty"`
	// Services are the endpoints this task serves; omit for a client-only
	// agent.
	Services []ServiceConnectService `json:"services,omitempty"`
	// LogConfiguration is the proxy container's log configuration. It
	// tells the container runtime where the agent's output goes; the
	// agent validates it and keeps it for printing back, but does not act
	// on it.
	LogConfiguration *LogConfiguration `json:"logConfiguration,omitempty"`
	// AccessLogConfiguration turns on access logs; it requires
	// LogConfiguration, as in ECS.
	AccessLogConfiguration *ServiceConnectAccessLogConfiguration `json:"accessLogConfiguration,omitempty"`
}

// ServiceConnectService is ECS's ServiceConnectService: one endpoint this
// task serves.
type ServiceConnectService struct {
	// PortName is required and must equal some PortMapping.Name.
	PortName string `json:"portName,omitempty"`
	// DiscoveryName is the Cloud Map service name; default PortName.
	DiscoveryName *string `json:"discoveryName,omitempty"`
	// ClientAliases holds at most one alias (an ECS limit). With none, the
	// agent publishes discoveryName.namespace on the container port.
	ClientAliases []ServiceConnectClientAlias `json:"clientAliases,omitempty"`
	// IngressPortOverride is the port the agent listens on for inbound
	// traffic; default the container port.
	IngressPortOverride *int `json:"ingressPortOverride,omitempty"`
	// Timeout overrides the idle and per-request timeouts.
	Timeout *TimeoutConfiguration `json:"timeout,omitempty"`
	// TLS turns on TLS between proxies for this service.
	TLS *ServiceConnectTLSConfiguration `json:"tls,omitempty"`
}

// ServiceConnectClientAlias is ECS's ServiceConnectClientAlias: the name
// and port clients dial.
type ServiceConnectClientAlias struct {
	// Port is required, 1 to 65535.
	Port *int `json:"port,omitempty"`
	// DNSName defaults to discoveryName.namespace.
	DNSName *string `json:"dnsName,omitempty"`
	// TestTrafficRules selects test traffic in a blue/green deployment
	// (HTTP-family services only).
	TestTrafficRules *ServiceConnectTestTrafficRules `json:"testTrafficRules,omitempty"`
}

// ServiceConnectTestTrafficRules is ECS's ServiceConnectTestTrafficRules.
type ServiceConnectTestTrafficRules struct {
	// Header is required.
	Header *ServiceConnectTestTrafficHeaderRules `json:"header,omitempty"`
}

// ServiceConnectTestTrafficHeaderRules is ECS's
// ServiceConnectTestTrafficHeaderRules.
type ServiceConnectTestTrafficHeaderRules struct {
	// Name is the header name; required.
	Name string `json:"name,omitempty"`
	// Value, when absent, matches any value of the header.
	Value *ServiceConnectTestTrafficHeaderMatchRules `json:"value,omitempty"`
}

// ServiceConnectTestTrafficHeaderMatchRules is ECS's
// ServiceConnectTestTrafficHeaderMatchRules.
type ServiceConnectTestTrafficHeaderMatchRules struct {
	// Exact is required; the header value must equal it.
	Exact *string `json:"exact,omitempty"`
}

// TimeoutConfiguration is ECS's TimeoutConfiguration. Both members are
// whole seconds, 0 to 2147483647; 0 disables that timeout.
type TimeoutConfiguration struct {
	IdleTimeoutSeconds *int `json:"idleTimeoutSeconds,omitempty"`
	// PerRequestTimeoutSeconds is not allowed for TCP services.
	PerRequestTimeoutSeconds *int `json:"perRequestTimeoutSeconds,omitempty"`
}

// ServiceConnectTLSConfiguration is ECS's ServiceConnectTlsConfiguration.
type ServiceConnectTLSConfiguration struct {
	// IssuerCertificateAuthority is required.
	IssuerCertificateAuthority *ServiceConnectTLSCertificateAuthority `json:"issuerCertificateAuthority,omitempty"`
	KMSKey                     *string                                `json:"kmsKey,omitempty"`
	RoleARN                    *string                                `json:"roleArn,omitempty"`
}

// ServiceConnectTLSCertificateAuthority is ECS's
// ServiceConnectTlsCertificateAuthority.
type ServiceConnectTLSCertificateAuthority struct {
	// AWSPCAAuthorityARN names the issuing CA. When absent the Trellis
	// server's own CA issues the service's certificates.
	AWSPCAAuthorityARN *string `json:"awsPcaAuthorityArn,omitempty"`
}

// LogConfiguration is ECS's LogConfiguration.
type LogConfiguration struct {
	// LogDriver is required: awslogs, fluentd, gelf, json-file, journald,
	// syslog, splunk or awsfirelens.
	LogDriver     string            `json:"logDriver,omitempty"`
	Options       map[string]string `json:"options,omitempty"`
	SecretOptions []Secret          `json:"secretOptions,omitempty"`
}

// Secret is ECS's Secret (a LogConfiguration secret option).
type Secret struct {
	Name      string `json:"name,omitempty"`
	ValueFrom string `json:"valueFrom,omitempty"`
}

// ServiceConnectAccessLogConfiguration is ECS's
// ServiceConnectAccessLogConfiguration.
type ServiceConnectAccessLogConfiguration struct {
	// Format is required: TEXT or JSON.
	Format string `json:"format,omitempty"`
	// IncludeQueryParameters is ENABLED or DISABLED (the default).
	IncludeQueryParameters *string `json:"includeQueryParameters,omitempty"`
}

// PortMapping is ECS's PortMapping from the task definition.
type PortMapping struct {
	// Name is what ServiceConnectService.PortName refers to.
	Name *string `json:"name,omitempty"`
	// ContainerPort is the port the application listens on; exactly one
	// of ContainerPort and ContainerPortRange is set.
	ContainerPort *int `json:"containerPort,omitempty"`
	// HostPort is kept for printing back; the agent does not use it.
	HostPort *int `json:"hostPort,omitempty"`
	// Protocol is tcp (the default) or udp. Service Connect proxies TCP
	// only, so a udp mapping cannot back a service.
	Protocol *string `json:"protocol,omitempty"`
	// AppProtocol is http, http2 or grpc; absent means plain TCP.
	AppProtocol *string `json:"appProtocol,omitempty"`
	// ContainerPortRange is "first-last"; such a mapping cannot back a
	// service, which needs a single port.
	ContainerPortRange *string `json:"containerPortRange,omitempty"`
}
