package lattice

import "net/http"

// routes is the whole route table of the Lattice API (reference/lattice.md §2.3).
func (a *API) routes() {
	const (
		get, post, put, patch, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
		sn                         = "/servicenetworks/{serviceNetworkIdentifier}"
		svc                        = "/services/{serviceIdentifier}"
		lis                        = svc + "/listeners/{listenerIdentifier}"
		rule                       = lis + "/rules/{ruleIdentifier}"
		tg                         = "/targetgroups/{targetGroupIdentifier}"
	)
	h := a.router.Handle

	h(post, "/servicenetworks", "CreateServiceNetwork", a.createServiceNetwork)
	h(get, "/servicenetworks", "ListServiceNetworks", a.listServiceNetworks)
	h(get, sn, "GetServiceNetwork", a.getServiceNetwork)
	h(patch, sn, "UpdateServiceNetwork", a.updateServiceNetwork)
	h(del, sn, "DeleteServiceNetwork", a.deleteServiceNetwork)

	h(post, "/services", "CreateService", a.createService)
	h(get, "/services", "ListServices", a.listServices)
	h(get, svc, "GetService", a.getService)
	h(patch, svc, "UpdateService", a.updateService)
	h(del, svc, "DeleteService", a.deleteService)

	h(post, svc+"/listeners", "CreateListener", a.createListener)
	h(get, svc+"/listeners", "ListListeners", a.listListeners)
	h(get, lis, "GetListener", a.getListener)
	h(patch, lis, "UpdateListener", a.updateListener)
	h(del, lis, "DeleteListener", a.deleteListener)

	h(post, lis+"/rules", "CreateRule", a.createRule)
	h(get, lis+"/rules", "ListRules", a.listRules)
	h(patch, lis+"/rules", "BatchUpdateRule", a.batchUpdateRule)
	h(get, rule, "GetRule", a.getRule)
	h(patch, rule, "UpdateRule", a.updateRule)
	h(del, rule, "DeleteRule", a.deleteRule)

	h(post, "/targetgroups", "CreateTargetGroup", a.createTargetGroup)
	h(get, "/targetgroups", "ListTargetGroups", a.listTargetGroups)
	h(get, tg, "GetTargetGroup", a.getTargetGroup)
	h(patch, tg, "UpdateTargetGroup", a.updateTargetGroup)
	h(del, tg, "DeleteTargetGroup", a.deleteTargetGroup)
	h(post, tg+"/registertargets", "RegisterTargets", a.registerTargets)
	h(post, tg+"/deregistertargets", "DeregisterTargets", a.deregisterTargets)
	h(post, tg+"/listtargets", "ListTargets", a.listTargets)

	const snsa = "/servicenetworkserviceassociations"
	h(post, snsa, "CreateServiceNetworkServiceAssociation", a.createSNSA)
	h(get, snsa, "ListServiceNetworkServiceAssociations", a.listSNSAs)
	h(get, snsa+"/{serviceNetworkServiceAssociationIdentifier}", "GetServiceNetworkServiceAssociation", a.getSNSA)
	h(del, snsa+"/{serviceNetworkServiceAssociationIdentifier}", "DeleteServiceNetworkServiceAssociation", a.deleteSNSA)

	const snva = "/servicenetworkvpcassociations"
	h(post, snva, "CreateServiceNetworkVpcAssociation", a.createSNVA)
	h(get, snva, "ListServiceNetworkVpcAssociations", a.listSNVAs)
	h(get, snva+"/{serviceNetworkVpcAssociationIdentifier}", "GetServiceNetworkVpcAssociation", a.getSNVA)
	h(patch, snva+"/{serviceNetworkVpcAssociationIdentifier}", "UpdateServiceNetworkVpcAssociation", a.updateSNVA)
	h(del, snva+"/{serviceNetworkVpcAssociationIdentifier}", "DeleteServiceNetworkVpcAssociation", a.deleteSNVA)
	h(get, "/servicenetworkvpcendpointassociations", "ListServiceNetworkVpcEndpointAssociations", a.listSNVpcEndpointAssociations)

	h(put, "/authpolicy/{resourceIdentifier}", "PutAuthPolicy", a.putAuthPolicy)
	h(get, "/authpolicy/{resourceIdentifier}", "GetAuthPolicy", a.getAuthPolicy)
	h(del, "/authpolicy/{resourceIdentifier}", "DeleteAuthPolicy", a.deleteAuthPolicy)
	h(put, "/resourcepolicy/{resourceArn}", "PutResourcePolicy", a.putResourcePolicy)
	h(get, "/resourcepolicy/{resourceArn}", "GetResourcePolicy", a.getResourcePolicy)
	h(del, "/resourcepolicy/{resourceArn}", "DeleteResourcePolicy", a.deleteResourcePolicy)

	const als = "/accesslogsubscriptions"
	h(post, als, "CreateAccessLogSubscription", a.createAccessLogSubscription)
	h(get, als, "ListAccessLogSubscriptions", a.listAccessLogSubscriptions)
	h(get, als+"/{accessLogSubscriptionIdentifier}", "GetAccessLogSubscription", a.getAccessLogSubscription)
	h(patch, als+"/{accessLogSubscriptionIdentifier}", "UpdateAccessLogSubscription", a.updateAccessLogSubscription)
	h(del, als+"/{accessLogSubscriptionIdentifier}", "DeleteAccessLogSubscription", a.deleteAccessLogSubscription)

	h(post, "/tags/{resourceArn}", "TagResource", a.tagResource)
	h(del, "/tags/{resourceArn}", "UntagResource", a.untagResource)
	h(get, "/tags/{resourceArn}", "ListTagsForResource", a.listTagsForResource)

	// Out of scope for now: every operation answers with a clear error.
	for _, u := range []struct{ method, path, op string }{
		{post, "/resourceconfigurations", "CreateResourceConfiguration"},
		{get, "/resourceconfigurations", "ListResourceConfigurations"},
		{get, "/resourceconfigurations/{id}", "GetResourceConfiguration"},
		{patch, "/resourceconfigurations/{id}", "UpdateResourceConfiguration"},
		{del, "/resourceconfigurations/{id}", "DeleteResourceConfiguration"},
		{post, "/resourcegateways", "CreateResourceGateway"},
		{get, "/resourcegateways", "ListResourceGateways"},
		{get, "/resourcegateways/{id}", "GetResourceGateway"},
		{patch, "/resourcegateways/{id}", "UpdateResourceGateway"},
		{del, "/resourcegateways/{id}", "DeleteResourceGateway"},
		{get, "/resourceendpointassociations", "ListResourceEndpointAssociations"},
		{del, "/resourceendpointassociations/{id}", "DeleteResourceEndpointAssociation"},
		{post, "/servicenetworkresourceassociations", "CreateServiceNetworkResourceAssociation"},
		{get, "/servicenetworkresourceassociations", "ListServiceNetworkResourceAssociations"},
		{get, "/servicenetworkresourceassociations/{id}", "GetServiceNetworkResourceAssociation"},
		{del, "/servicenetworkresourceassociations/{id}", "DeleteServiceNetworkResourceAssociation"},
		{post, "/domainverifications", "StartDomainVerification"},
		{get, "/domainverifications", "ListDomainVerifications"},
		{get, "/domainverifications/{id}", "GetDomainVerification"},
		{del, "/domainverifications/{id}", "DeleteDomainVerification"},
	} {
		h(u.method, u.path, u.op, unsupported(u.op))
	}
}
