package cloudmap

// routes is the whole operation table of the Cloud Map API: the
// X-Amz-Target operation name (after Route53AutoNaming_v20170314.) to its
// handler (reference §5.2).
func (a *API) routes() map[string]handler {
	return map[string]handler{
		"CreateHttpNamespace":       bind(a.createHTTPNamespace),
		"CreatePrivateDnsNamespace": bind(a.createPrivateDNSNamespace),
		"CreatePublicDnsNamespace":  bind(a.createPublicDNSNamespace),
		"GetNamespace":              bind(a.getNamespace),
		"ListNamespaces":            bind(a.listNamespaces),
		"DeleteNamespace":           bind(a.deleteNamespace),
		"UpdateHttpNamespace":       bind(a.updateHTTPNamespace),
		"UpdatePrivateDnsNamespace": bind(a.updateDNSNamespace(NamespaceDNSPrivate, "UpdatePrivateDnsNamespace")),
		"UpdatePublicDnsNamespace":  bind(a.updateDNSNamespace(NamespaceDNSPublic, "UpdatePublicDnsNamespace")),

		"CreateService":           bind(a.createService),
		"GetService":              bind(a.getService),
		"ListServices":            bind(a.listServices),
		"UpdateService":           bind(a.updateService),
		"DeleteService":           bind(a.deleteService),
		"GetServiceAttributes":    bind(a.getServiceAttributes),
		"UpdateServiceAttributes": bind(a.updateServiceAttributes),
		"DeleteServiceAttributes": bind(a.deleteServiceAttributes),

		"RegisterInstance":                 bind(a.registerInstance),
		"DeregisterInstance":               bind(a.deregisterInstance),
		"GetInstance":                      bind(a.getInstance),
		"ListInstances":                    bind(a.listInstances),
		"GetInstancesHealthStatus":         bind(a.getInstancesHealthStatus),
		"UpdateInstanceCustomHealthStatus": bind(a.updateInstanceCustomHealthStatus),
		"DiscoverInstances":                bind(a.discoverInstances),
		"DiscoverInstancesRevision":        bind(a.discoverInstancesRevision),

		"GetOperation":   bind(a.getOperation),
		"ListOperations": bind(a.listOperations),

		"TagResource":         bind(a.tagResource),
		"UntagResource":       bind(a.untagResource),
		"ListTagsForResource": bind(a.listTagsForResource),
	}
}
