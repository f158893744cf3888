package config

import (
	"errors"
	"strings"
	"testing"
)

// want is one expected problem: its exact path and a fragment of its
// message.
type want struct {
	path string
	msg  string
}

// checkProblems asserts that err lists exactly the wanted problems, in
// order.
func checkProblems(t *testing.T, err error, wants []want) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got error %T %v, want *ValidationError", err, err)
	}
	ok := len(ve.Problems) == len(wants)
	for i := 0; ok && i < len(wants); i++ {
		p := ve.Problems[i]
		ok = p.Path == wants[i].path && strings.Contains(p.Message, wants[i].msg)
	}
	if !ok {
		var w strings.Builder
		for _, x := range wants {
			w.WriteString(x.path + ": …" + x.msg + "…\n")
		}
		t.Errorf("got problems:\n%v\nwant:\n%s", err, w.String())
	}
}

const (
	scs  = "serviceConnectConfiguration"
	svc0 = scs + ".services[0]"
	svc1 = scs + ".services[1]"
	al0  = svc0 + ".clientAliases[0]"
	pm0  = "portMappings[0]"
	ts0  = "trellis.services[0]"
)

// invalidCase is a rejected document and the problems it must yield.
type invalidCase struct {
	name string
	doc  string
	want []want
}

func TestParseInvalid(t *testing.T) {
	runInvalid(t, invalidECSCases())
}

func TestParseInvalidTrellis(t *testing.T) {
	runInvalid(t, invalidTrellisCases())
}

func runInvalid(t *testing.T, cases []invalidCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.doc))
			if cfg != nil {
				t.Errorf("Parse returned a Config with an error")
			}
			checkProblems(t, err, tc.want)
		})
	}
}

func invalidECSCases() []invalidCase {
	long := func(n int) string { return strings.Repeat("a", n) }
	return []invalidCase{
		// Syntax and decoding.
		{"empty", ``, []want{{"", "document is empty"}}},
		{"syntax error", "{\n  \"a\": ]\n}", []want{{"", "invalid JSON at line 2, column 8"}}},
		{"truncated", `{"serviceConnectConfiguration":`, []want{{"", "unexpected end of document"}}},
		{"trailing data", `{} {}`, []want{{"", "unexpected data after the top-level value"}}},
		{"not an object", `[1]`, []want{{"", "document must be a JSON object, not an array"}}},
		{"too deep", `{"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, []want{{"", "nested more than 32 levels deep"}}},
		{"too large", `{"x":"` + strings.Repeat("a", MaxDocumentBytes) + `"}`, []want{{"", "larger than the limit"}}},
		{"unknown top-level member", `{"serviceConnectConfiguration":{"enabled":false},"address":"x"}`,
			[]want{{"address", `unknown member "address"`}}},
		{"unknown member with odd name", `{"serviceConnectConfiguration":{"enabled":false},"a b":1}`,
			[]want{{`["a b"]`, `unknown member "a b"`}}},
		{"unknown service member", one(`{"portName":"api","discoverName":"x"}`, pmHTTP),
			[]want{{svc0 + ".discoverName", `unknown member "discoverName"`}}},
		{"member name case slip", one(`{"PortName":"api"}`, pmHTTP),
			[]want{{svc0 + ".PortName", `did you mean "portName"?`}, {svc0 + ".portName", "is required"}}},
		{"unknown port mapping member", one(`{"portName":"api"}`, `{"name":"api","containerPort":80,"hostPortRange":"1-2"}`),
			[]want{{pm0 + ".hostPortRange", "unknown member"}}},
		{"address belongs to a flag", doc(sc(""), "", `{"address":"10.0.0.1"}`),
			[]want{{"trellis.address", `unknown member "address"`}}},
		{"unknown member deep", one(`{"portName":"api","clientAliases":[{"port":80,"testTrafficRules":{"header":{"name":"x","value":{"exact":"1","prefix":"2"}}}}]}`, pmHTTP),
			[]want{{al0 + ".testTrafficRules.header.value.prefix", "unknown member"}}},
		{"wrong types", `{"serviceConnectConfiguration":{"enabled":"true","namespace":5,"services":{}},"portMappings":[{"name":"api","containerPort":"80"}],"trellis":[]}`,
			[]want{
				{pm0 + ".containerPort", "must be an integer, not a string"},
				{scs + ".enabled", "must be true or false, not a string"},
				{scs + ".namespace", "must be a string, not a number"},
				{scs + ".services", "must be an array, not an object"},
				{"trellis", "must be an object, not an array"},
			}},
		{"fraction", one(`{"portName":"api"}`, `{"name":"api","containerPort":80.0}`),
			[]want{{pm0 + ".containerPort", "must be an integer, not 80.0"}}},
		{"exponent", one(`{"portName":"api"}`, `{"name":"api","containerPort":8e3}`),
			[]want{{pm0 + ".containerPort", "must be an integer, not 8e3"}}},
		{"huge integer", one(`{"portName":"api"}`, `{"name":"api","containerPort":99999999999999999999}`),
			[]want{{pm0 + ".containerPort", "out of range"}}},
		{"duplicate member", `{"serviceConnectConfiguration":{"enabled":true,"enabled":false}}`,
			[]want{{scs + ".enabled", `duplicate member "enabled"`}}},
		{"duplicate map key", doc(`{"enabled":true,"logConfiguration":{"logDriver":"awslogs","options":{"a":"1","a":"2"}}}`, "", ""),
			[]want{{scs + ".logConfiguration.options.a", "duplicate member"}}},
		{"null element", doc(`{"enabled":true,"services":[null]}`, "", ""),
			[]want{{svc0, "must be an object, not null"}}},
		{"null map value", doc(`{"enabled":true,"logConfiguration":{"logDriver":"awslogs","options":{"a":null}}}`, "", ""),
			[]want{{scs + ".logConfiguration.options.a", "must be a string, not null"}}},

		// serviceConnectConfiguration.
		{"missing serviceConnectConfiguration", `{"portMappings":[]}`, []want{{scs, "is required"}}},
		{"missing enabled", doc(`{"namespace":"shop"}`, "", ""), []want{{scs + ".enabled", "is required"}}},
		{"namespace with a space", doc(`{"enabled":true,"namespace":"my shop"}`, "", ""),
			[]want{{scs + ".namespace", "visible ASCII"}}},
		{"namespace empty", doc(`{"enabled":true,"namespace":""}`, "", ""), []want{{scs + ".namespace", "must not be empty"}}},
		{"namespace too long", doc(`{"enabled":true,"namespace":"`+long(1025)+`"}`, "", ""), []want{{scs + ".namespace", "at most 1024"}}},
		{"namespace ARN of another service", doc(`{"enabled":true,"namespace":"arn:aws:iam::1:role/x"}`, "", ""),
			[]want{{scs + ".namespace", `must be an ARN of service "servicediscovery"`}}},
		{"namespace ARN of a service", doc(`{"enabled":true,"namespace":"arn:aws:servicediscovery:eu-west-1:1:service/srv-1"}`, "", ""),
			[]want{{scs + ".namespace", "namespace/<id>"}}},
		{"namespace broken ARN", doc(`{"enabled":true,"namespace":"arn:aws"}`, "", ""),
			[]want{{scs + ".namespace", "must be an ARN"}}},

		// services[].portName and discoveryName.
		{"portName missing", one(`{}`, pmHTTP), []want{{svc0 + ".portName", "is required"}}},
		{"portName pattern", one(`{"portName":"API"}`, pmHTTP), []want{{svc0 + ".portName", "lowercase"}}},
		{"portName unmapped", one(`{"portName":"web"}`, pmHTTP), []want{{svc0 + ".portName", `no portMappings entry is named "web"`}}},
		{"portName on a range", one(`{"portName":"r"}`, `{"name":"r","containerPortRange":"8000-8010"}`),
			[]want{{svc0 + ".portName", "portMappings[0] has a containerPortRange"}}},
		{"portName on udp", one(`{"portName":"d"}`, `{"name":"d","containerPort":53,"protocol":"udp"}`),
			[]want{{svc0 + ".portName", "portMappings[0] is udp"}}},
		{"discoveryName uppercase", one(`{"portName":"api","discoveryName":"Orders"}`, pmHTTP),
			[]want{{svc0 + ".discoveryName", "lowercase"}}},
		{"discoveryName too long", one(`{"portName":"api","discoveryName":"`+long(64)+`"}`, pmHTTP),
			[]want{{svc0 + ".discoveryName", "at most 63 characters, got 64"}}},
		{"discoveryName leading hyphen", one(`{"portName":"api","discoveryName":"-a"}`, pmHTTP),
			[]want{{svc0 + ".discoveryName", "must not start or end with '-'"}}},
		{"discoveryName trailing hyphen", one(`{"portName":"api","discoveryName":"a-"}`, pmHTTP),
			[]want{{svc0 + ".discoveryName", "must not start or end with '-'"}}},
		{"discoveryName lone underscore", one(`{"portName":"api","discoveryName":"_"}`, pmHTTP),
			[]want{{svc0 + ".discoveryName", "letter or digit"}}},
		{"discoveryName empty", one(`{"portName":"api","discoveryName":""}`, pmHTTP),
			[]want{{svc0 + ".discoveryName", "must not be empty"}}},
		{"default discoveryName invalid", doc(sc(`{"portName":"`+long(64)+`"}`), `{"name":"`+long(64)+`","containerPort":80}`, ""),
			[]want{{svc0 + ".discoveryName", "cannot be the default discoveryName"}}},
		{"duplicate discoveryName", doc(sc(`{"portName":"api","discoveryName":"x"},{"portName":"api","discoveryName":"x","ingressPortOverride":9000}`), pmHTTP, ""),
			// The default aliases, x.shop:8080, clash as a consequence.
			[]want{{svc1 + ".clientAliases", "x.shop:8080 is already the client alias of " + svc0}, {svc1 + ".discoveryName", `duplicate discoveryName "x" (also services[0])`}}},
		{"duplicate default discoveryName", doc(sc(`{"portName":"api"},{"portName":"api","clientAliases":[{"port":81}],"ingressPortOverride":9000}`), pmHTTP, ""),
			[]want{{svc1 + ".discoveryName", `the default, portName "api", is already the discoveryName of services[0]`}}},

		// clientAliases.
		{"two aliases", one(`{"portName":"api","clientAliases":[{"port":80},{"port":81}]}`, pmHTTP),
			[]want{{svc0 + ".clientAliases", "at most 1 entry, got 2"}}},
		{"alias port missing", one(`{"portName":"api","clientAliases":[{"dnsName":"a"}]}`, pmHTTP),
			[]want{{al0 + ".port", "is required"}}},
		{"alias port zero", one(`{"portName":"api","clientAliases":[{"port":0}]}`, pmHTTP),
			[]want{{al0 + ".port", "between 1 and 65535, got 0"}}},
		{"alias port too big", one(`{"portName":"api","clientAliases":[{"port":65536}]}`, pmHTTP),
			[]want{{al0 + ".port", "between 1 and 65535, got 65536"}}},
		{"dnsName uppercase", one(`{"portName":"api","clientAliases":[{"port":80,"dnsName":"Orders"}]}`, pmHTTP),
			[]want{{al0 + ".dnsName", "lowercase"}}},
		{"dnsName empty label", one(`{"portName":"api","clientAliases":[{"port":80,"dnsName":"a..b"}]}`, pmHTTP),
			[]want{{al0 + ".dnsName", "empty label"}}},
		{"dnsName trailing dot", one(`{"portName":"api","clientAliases":[{"port":80,"dnsName":"a.b."}]}`, pmHTTP),
			[]want{{al0 + ".dnsName", "empty label"}}},
		{"dnsName leading hyphen", one(`{"portName":"api","clientAliases":[{"port":80,"dnsName":"-a"}]}`, pmHTTP),
			[]want{{al0 + ".dnsName", `label "-a" must not start or end with '-'`}}},
		{"dnsName too long", one(`{"portName":"api","clientAliases":[{"port":80,"dnsName":"`+long(60)+"."+long(67)+`"}]}`, pmHTTP),
			[]want{{al0 + ".dnsName", "at most 127 characters, got 128"}}},
		{"dnsName label too long", one(`{"portName":"api","clientAliases":[{"port":80,"dnsName":"`+long(64)+`.b"}]}`, pmHTTP),
			[]want{{al0 + ".dnsName", "longer than 63"}}},
		{"default dnsName invalid", doc(`{"enabled":true,"namespace":"Shop","services":[{"portName":"api","clientAliases":[{"port":80}]}]}`, pmHTTP, ""),
			[]want{{al0 + ".dnsName", `the default, "api.Shop" (discoveryName.namespace), is not a valid dnsName`}}},
		{"default alias invalid", doc(`{"enabled":true,"namespace":"Shop","services":[{"portName":"api"}]}`, pmHTTP, ""),
			[]want{{svc0 + ".clientAliases", `must have an entry: the default, "api.Shop"`}}},
		{"dnsName needed with namespace ARN", doc(`{"enabled":true,"namespace":"arn:aws:servicediscovery:eu-west-1:1:namespace/ns-1","services":[{"portName":"api","clientAliases":[{"port":80}]}]}`, pmHTTP, ""),
			[]want{{al0 + ".dnsName", "is required when serviceConnectConfiguration.namespace is an ARN"}}},
		{"alias needed without namespace", doc(`{"enabled":true,"services":[{"portName":"api"}]}`, pmHTTP, ""),
			[]want{{svc0 + ".clientAliases", "must have an entry when serviceConnectConfiguration.namespace is absent"}}},
		{"duplicate endpoint", doc(sc(`{"portName":"api","clientAliases":[{"port":80,"dnsName":"db"}]},{"portName":"b","clientAliases":[{"port":80,"dnsName":"db"}]}`), pmHTTP+`,{"name":"b","containerPort":81}`, ""),
			[]want{{svc1 + ".clientAliases[0]", "db:80 is already the client alias of " + svc0}}},
		{"duplicate default endpoint", doc(sc(`{"portName":"api","clientAliases":[{"port":8080,"dnsName":"b.shop"}]},{"portName":"api","discoveryName":"b","ingressPortOverride":9000}`), pmHTTP, ""),
			[]want{{svc1 + ".clientAliases", "b.shop:8080 is already the client alias of " + svc0}}},

		// Test traffic rules.
		{"test traffic without header", one(`{"portName":"api","clientAliases":[{"port":80,"testTrafficRules":{}}]}`, pmHTTP),
			[]want{{al0 + ".testTrafficRules.header", "is required"}}},
		{"test header without name", one(`{"portName":"api","clientAliases":[{"port":80,"testTrafficRules":{"header":{}}}]}`, pmHTTP),
			[]want{{al0 + ".testTrafficRules.header.name", "is required"}}},
		{"test header bad name", one(`{"portName":"api","clientAliases":[{"port":80,"testTrafficRules":{"header":{"name":"x y"}}}]}`, pmHTTP),
			[]want{{al0 + ".testTrafficRules.header.name", "RFC 9110 token"}}},
		{"test header value without exact", one(`{"portName":"api","clientAliases":[{"port":80,"testTrafficRules":{"header":{"name":"x","value":{}}}}]}`, pmHTTP),
			[]want{{al0 + ".testTrafficRules.header.value.exact", "is required"}}},
		{"test header value control character", one(`{"portName":"api","clientAliases":[{"port":80,"testTrafficRules":{"header":{"name":"x","value":{"exact":"a\nb"}}}}]}`, pmHTTP),
			[]want{{al0 + ".testTrafficRules.header.value.exact", "control characters"}}},
		{"test traffic on tcp", one(`{"portName":"api","clientAliases":[{"port":80,"testTrafficRules":{"header":{"name":"x"}}}]}`, pmTCP),
			[]want{{al0 + ".testTrafficRules", "applies only to http, http2 and grpc services; portMappings[0] has no appProtocol"}}},

		// ingressPortOverride.
		{"ingress port zero", one(`{"portName":"api","ingressPortOverride":0}`, pmHTTP),
			[]want{{svc0 + ".ingressPortOverride", "between 1 and 65535, got 0"}}},
		{"ingress port too big", one(`{"portName":"api","ingressPortOverride":70000}`, pmHTTP),
			[]want{{svc0 + ".ingressPortOverride", "got 70000"}}},
		{"ingress port clash", doc(sc(`{"portName":"api"},{"portName":"b","ingressPortOverride":8080}`), pmHTTP+`,{"name":"b","containerPort":81}`, ""),
			[]want{{svc1 + ".ingressPortOverride", "ingress port 8080 is also the ingress port of services[0]"}}},
		{"ingress port clash on one mapping", doc(sc(`{"portName":"api"},{"portName":"api","discoveryName":"v2"}`), pmHTTP, ""),
			[]want{{svc1 + ".portName", "ingress port 8080 is also the ingress port of services[0]; give one of them an ingressPortOverride"}}},
		{"ingress port clash by default", doc(sc(`{"portName":"api","ingressPortOverride":81},{"portName":"b"}`), pmHTTP+`,{"name":"b","containerPort":81}`, ""),
			[]want{{svc1 + ".portName", "ingress port 81 is also the ingress port of services[0]"}}},

		// timeout.
		{"idle timeout negative", one(`{"portName":"api","timeout":{"idleTimeoutSeconds":-1}}`, pmHTTP),
			[]want{{svc0 + ".timeout.idleTimeoutSeconds", "between 0 and 2147483647, got -1"}}},
		{"idle timeout too big", one(`{"portName":"api","timeout":{"idleTimeoutSeconds":2147483648}}`, pmHTTP),
			[]want{{svc0 + ".timeout.idleTimeoutSeconds", "got 2147483648"}}},
		{"per-request timeout negative", one(`{"portName":"api","timeout":{"perRequestTimeoutSeconds":-5}}`, pmHTTP),
			[]want{{svc0 + ".timeout.perRequestTimeoutSeconds", "got -5"}}},
		{"per-request timeout on tcp", one(`{"portName":"api","timeout":{"perRequestTimeoutSeconds":10}}`, pmTCP),
			[]want{{svc0 + ".timeout.perRequestTimeoutSeconds", "not allowed for TCP services"}}},
		{"zero per-request timeout on tcp", one(`{"portName":"api","timeout":{"perRequestTimeoutSeconds":0}}`, pmTCP),
			[]want{{svc0 + ".timeout.perRequestTimeoutSeconds", "not allowed for TCP services"}}},

		// tls.
		{"tls without CA", one(`{"portName":"api","tls":{}}`, pmHTTP),
			[]want{{svc0 + ".tls.issuerCertificateAuthority", "is required"}}},
		{"tls bad CA ARN", one(`{"portName":"api","tls":{"issuerCertificateAuthority":{"awsPcaAuthorityArn":"my-ca"}}}`, pmHTTP),
			[]want{{svc0 + ".tls.issuerCertificateAuthority.awsPcaAuthorityArn", "must be an ARN"}}},
		{"tls CA ARN of something else", one(`{"portName":"api","tls":{"issuerCertificateAuthority":{"awsPcaAuthorityArn":"arn:aws:acm-pca:eu-west-1:1:key/x"}}}`, pmHTTP),
			[]want{{svc0 + ".tls.issuerCertificateAuthority.awsPcaAuthorityArn", "certificate-authority/<id>"}}},
		{"tls bad role", one(`{"portName":"api","tls":{"issuerCertificateAuthority":{},"roleArn":"arn:aws:iam::1:user/bob"}}`, pmHTTP),
			[]want{{svc0 + ".tls.roleArn", "role/<id>"}}},
		{"tls empty kms key", one(`{"portName":"api","tls":{"issuerCertificateAuthority":{},"kmsKey":""}}`, pmHTTP),
			[]want{{svc0 + ".tls.kmsKey", "must not be empty"}}},

		// logConfiguration and accessLogConfiguration.
		{"log driver missing", doc(`{"enabled":true,"logConfiguration":{}}`, "", ""),
			[]want{{scs + ".logConfiguration.logDriver", "is required"}}},
		{"log driver unknown", doc(`{"enabled":true,"logConfiguration":{"logDriver":"loki"}}`, "", ""),
			[]want{{scs + ".logConfiguration.logDriver", `must be one of awslogs,`}}},
		{"log option empty key", doc(`{"enabled":true,"logConfiguration":{"logDriver":"syslog","options":{"":"x"}}}`, "", ""),
			[]want{{scs + ".logConfiguration.options", "empty key"}}},
		{"secret option incomplete", doc(`{"enabled":true,"logConfiguration":{"logDriver":"splunk","secretOptions":[{}]}}`, "", ""),
			[]want{{scs + ".logConfiguration.secretOptions[0].name", "is required"}, {scs + ".logConfiguration.secretOptions[0].valueFrom", "is required"}}},
		{"access log without format", doc(`{"enabled":true,"logConfiguration":{"logDriver":"gelf"},"accessLogConfiguration":{}}`, "", ""),
			[]want{{scs + ".accessLogConfiguration.format", "is required"}}},
		{"access log bad enums", doc(`{"enabled":true,"logConfiguration":{"logDriver":"gelf"},"accessLogConfiguration":{"format":"json","includeQueryParameters":"YES"}}`, "", ""),
			[]want{{scs + ".accessLogConfiguration.format", `must be TEXT or JSON, got "json"`}, {scs + ".accessLogConfiguration.includeQueryParameters", "must be ENABLED or DISABLED"}}},
		{"access log needs log configuration", doc(`{"enabled":true,"accessLogConfiguration":{"format":"TEXT"}}`, "", ""),
			[]want{{scs + ".logConfiguration", "is required when accessLogConfiguration is set"}}},

		// portMappings.
		{"container port missing", doc(sc(""), `{"name":"api"}`, ""), []want{{pm0 + ".containerPort", "is required (or containerPortRange)"}}},
		{"container port zero", doc(sc(""), `{"containerPort":0}`, ""), []want{{pm0 + ".containerPort", "got 0"}}},
		{"container port too big", doc(sc(""), `{"containerPort":65536}`, ""), []want{{pm0 + ".containerPort", "got 65536"}}},
		{"host port negative", doc(sc(""), `{"containerPort":80,"hostPort":-1}`, ""), []want{{pm0 + ".hostPort", "between 0 and 65535, got -1"}}},
		{"range malformed", doc(sc(""), `{"containerPortRange":"80"}`, ""), []want{{pm0 + ".containerPortRange", "must be first-last"}}},
		{"range reversed", doc(sc(""), `{"containerPortRange":"90-80"}`, ""), []want{{pm0 + ".containerPortRange", "first < last"}}},
		{"range with leading zero", doc(sc(""), `{"containerPortRange":"080-90"}`, ""), []want{{pm0 + ".containerPortRange", "must be first-last"}}},
		{"range with ports", doc(sc(""), `{"containerPortRange":"80-90","containerPort":80,"hostPort":80}`, ""),
			[]want{{pm0 + ".containerPort", "together with containerPortRange"}, {pm0 + ".hostPort", "together with containerPortRange"}}},
		{"protocol", doc(sc(""), `{"containerPort":80,"protocol":"sctp"}`, ""), []want{{pm0 + ".protocol", "must be tcp or udp"}}},
		{"appProtocol", doc(sc(""), `{"containerPort":80,"appProtocol":"HTTP"}`, ""), []want{{pm0 + ".appProtocol", "must be http, http2 or grpc"}}},
		{"mapping name", doc(sc(""), `{"name":"-api","containerPort":80}`, ""), []want{{pm0 + ".name", "must not start with '-'"}}},
		{"mapping name too long", doc(sc(""), `{"name":"`+long(65)+`","containerPort":80}`, ""), []want{{pm0 + ".name", "at most 64"}}},
		{"duplicate mapping name", doc(sc(""), `{"name":"a","containerPort":80},{"name":"a","containerPort":81}`, ""),
			[]want{{"portMappings[1].name", `duplicate name "a" (also portMappings[0].name)`}}},
		{"duplicate container port", doc(sc(""), `{"containerPort":80},{"containerPort":80,"protocol":"udp"},{"containerPort":80,"protocol":"tcp"}`, ""),
			[]want{{"portMappings[2].containerPort", "80/tcp is also mapped by portMappings[0]"}}},
	}
}

func invalidTrellisCases() []invalidCase {
	return []invalidCase{
		// Agent-wide.
		{"drain too short", doc(sc(""), "", `{"drainSeconds":4}`), []want{{"trellis.drainSeconds", "between 5 and 110, got 4"}}},
		{"drain too long", doc(sc(""), "", `{"drainSeconds":111}`), []want{{"trellis.drainSeconds", "got 111"}}},
		{"vip not a CIDR", doc(sc(""), "", `{"vipCidr":"127.255.0.0"}`), []want{{"trellis.vipCidr", "must be a CIDR"}}},
		{"vip IPv6", doc(sc(""), "", `{"vipCidr":"fd00::/64"}`), []want{{"trellis.vipCidr", "must be an IPv4 range"}}},
		{"vip IPv4-mapped", doc(sc(""), "", `{"vipCidr":"::ffff:10.0.0.0/104"}`), []want{{"trellis.vipCidr", "must be an IPv4 range"}}},
		{"vip too small", doc(sc(""), "", `{"vipCidr":"127.255.0.0/25"}`), []want{{"trellis.vipCidr", "at least 256 addresses"}}},
		{"vip host bits", doc(sc(""), "", `{"vipCidr":"127.255.1.0/16"}`), []want{{"trellis.vipCidr", "host bits set; the range is 127.255.0.0/16"}}},
		{"vip public", doc(sc(""), "", `{"vipCidr":"8.8.0.0/16"}`), []want{{"trellis.vipCidr", "must lie inside"}}},
		{"vip wider than a private block", doc(sc(""), "", `{"vipCidr":"172.0.0.0/8"}`), []want{{"trellis.vipCidr", "must lie inside"}}},
		{"vip holds localhost", doc(sc(""), "", `{"vipCidr":"127.0.0.0/8"}`), []want{{"trellis.vipCidr", "must not contain 127.0.0.1"}}},
		{"admin without port", doc(sc(""), "", `{"adminAddr":"127.0.0.1"}`), []want{{"trellis.adminAddr", "must be host:port"}}},
		{"admin host name", doc(sc(""), "", `{"adminAddr":"admin.local:9901"}`), []want{{"trellis.adminAddr", "IP address or localhost"}}},
		{"admin empty host", doc(sc(""), "", `{"adminAddr":":9901"}`), []want{{"trellis.adminAddr", "IP address or localhost"}}},
		{"admin port", doc(sc(""), "", `{"adminAddr":"127.0.0.1:99999"}`), []want{{"trellis.adminAddr", "port must be a number from 0 to 65535"}}},
		{"admin named port", doc(sc(""), "", `{"adminAddr":"127.0.0.1:http"}`), []want{{"trellis.adminAddr", "port must be a number"}}},

		// services[] entries.
		{"entry without name", doc(sc(`{"portName":"api"}`), pmHTTP, `{"services":[{}]}`),
			[]want{{ts0 + ".discoveryName", "is required"}}},
		{"entry for unknown service", doc(sc(`{"portName":"api"}`), pmHTTP, `{"services":[{"discoveryName":"web","retryPolicy":{"numRetries":99}}]}`),
			[]want{{ts0 + ".discoveryName", `no service in serviceConnectConfiguration.services has discoveryName "web"`}, {ts0 + ".retryPolicy.numRetries", "got 99"}}},
		{"entry by portName when discoveryName differs", doc(sc(`{"portName":"api","discoveryName":"orders"}`), pmHTTP, `{"services":[{"discoveryName":"api"}]}`),
			[]want{{ts0 + ".discoveryName", `has discoveryName "api"`}}},
		{"duplicate entry", doc(sc(`{"portName":"api"}`), pmHTTP, `{"services":[{"discoveryName":"api"},{"discoveryName":"api"}]}`),
			[]want{{"trellis.services[1].discoveryName", `duplicate entry for "api" (also trellis.services[0])`}}},

		// retryPolicy.
		{"retries negative", withTrellis(pmHTTP, `"retryPolicy":{"numRetries":-1}`), []want{{ts0 + ".retryPolicy.numRetries", "between 0 and 10, got -1"}}},
		{"retries too many", withTrellis(pmHTTP, `"retryPolicy":{"numRetries":11}`), []want{{ts0 + ".retryPolicy.numRetries", "got 11"}}},
		{"retryOn empty", withTrellis(pmHTTP, `"retryPolicy":{"retryOn":[]}`), []want{{ts0 + ".retryPolicy.retryOn", "set numRetries to 0"}}},
		{"retryOn unknown", withTrellis(pmHTTP, `"retryPolicy":{"retryOn":["5xx","server-error"]}`),
			[]want{{ts0 + ".retryPolicy.retryOn[1]", `unknown retry event "server-error"; the events are 5xx, gateway-error`}}},
		{"retryOn duplicate", withTrellis(pmHTTP, `"retryPolicy":{"retryOn":["reset","reset"]}`), []want{{ts0 + ".retryPolicy.retryOn[1]", `duplicate event "reset"`}}},
		{"retryOn grpc event on http", withTrellis(pmHTTP2, `"retryPolicy":{"retryOn":["unavailable"]}`),
			[]want{{ts0 + ".retryPolicy.retryOn[0]", `"unavailable" applies only to grpc services, and "api" is http2`}}},
		{"retryOn http event on tcp", withTrellis(pmTCP, `"retryPolicy":{"retryOn":["connect-failure","5xx"]}`),
			[]want{{ts0 + ".retryPolicy.retryOn[1]", "only connect-failure does"}}},
		{"per-try negative", withTrellis(pmHTTP, `"retryPolicy":{"perTryTimeoutSeconds":-1}`), []want{{ts0 + ".retryPolicy.perTryTimeoutSeconds", "got -1"}}},
		{"per-try beyond per-request", withTrellis(pmHTTP, `"retryPolicy":{"perTryTimeoutSeconds":16}`),
			[]want{{ts0 + ".retryPolicy.perTryTimeoutSeconds", "must not exceed the service's per-request timeout (15 s)"}}},
		{"per-try on tcp", withTrellis(pmTCP, `"retryPolicy":{"perTryTimeoutSeconds":1}`),
			[]want{{ts0 + ".retryPolicy.perTryTimeoutSeconds", `applies only to http, http2 and grpc services, and "api" is TCP`}}},
		{"budget over 100", withTrellis(pmHTTP, `"retryPolicy":{"budgetPercent":101}`), []want{{ts0 + ".retryPolicy.budgetPercent", "between 0 and 100, got 101"}}},
		{"non-idempotent on tcp", withTrellis(pmTCP, `"retryPolicy":{"retryNonIdempotent":false}`),
			[]want{{ts0 + ".retryPolicy.retryNonIdempotent", "applies only to http"}}},

		// outlierDetection.
		{"outlier negative", withTrellis(pmHTTP, `"outlierDetection":{"consecutive5xx":-1,"consecutiveGatewayFailure":-2}`),
			[]want{{ts0 + ".outlierDetection.consecutive5xx", "got -1"}, {ts0 + ".outlierDetection.consecutiveGatewayFailure", "got -2"}}},
		{"outlier gateway failures on tcp", withTrellis(pmTCP, `"outlierDetection":{"consecutiveGatewayFailure":3}`),
			[]want{{ts0 + ".outlierDetection.consecutiveGatewayFailure", "use consecutive5xx"}}},
		{"outlier zero interval", withTrellis(pmHTTP, `"outlierDetection":{"intervalSeconds":0,"baseEjectionSeconds":0}`),
			[]want{{ts0 + ".outlierDetection.baseEjectionSeconds", "between 1 and"}, {ts0 + ".outlierDetection.intervalSeconds", "between 1 and"}}},
		{"outlier percent", withTrellis(pmHTTP, `"outlierDetection":{"maxEjectionPercent":101}`), []want{{ts0 + ".outlierDetection.maxEjectionPercent", "got 101"}}},
		{"outlier count too big", withTrellis(pmHTTP, `"outlierDetection":{"consecutive5xx":2147483648}`), []want{{ts0 + ".outlierDetection.consecutive5xx", "between 0 and 2147483647"}}},

		// circuitBreaker.
		{"breaker zero", withTrellis(pmHTTP, `"circuitBreaker":{"maxConnections":0,"maxPendingRequests":0,"maxRequests":0}`),
			[]want{{ts0 + ".circuitBreaker.maxConnections", "between 1 and"}, {ts0 + ".circuitBreaker.maxPendingRequests", "between 1 and"}, {ts0 + ".circuitBreaker.maxRequests", "between 1 and"}}},
		{"breaker requests on tcp", withTrellis(pmTCP, `"circuitBreaker":{"maxConnections":10,"maxRequests":5}`),
			[]want{{ts0 + ".circuitBreaker.maxRequests", "applies only to http"}}},

		// readiness.
		{"readiness relative path", withTrellis(pmHTTP, `"readiness":{"path":"health"}`), []want{{ts0 + ".readiness.path", "must start with '/'"}}},
		{"readiness path with space", withTrellis(pmHTTP, `"readiness":{"path":"/a b"}`), []want{{ts0 + ".readiness.path", "percent-encode"}}},
		{"readiness path on tcp", withTrellis(pmTCP, `"readiness":{"path":"/health"}`),
			[]want{{ts0 + ".readiness.path", "a TCP service is ready when its port accepts a connection"}}},
		{"readiness port", withTrellis(pmHTTP, `"readiness":{"port":0}`), []want{{ts0 + ".readiness.port", "between 1 and 65535"}}},
		{"readiness interval", withTrellis(pmHTTP, `"readiness":{"intervalSeconds":301}`), []want{{ts0 + ".readiness.intervalSeconds", "between 1 and 300, got 301"}}},
		{"readiness timeout", withTrellis(pmHTTP, `"readiness":{"timeoutSeconds":0}`), []want{{ts0 + ".readiness.timeoutSeconds", "between 1 and 60, got 0"}}},
		{"readiness timeout over interval", withTrellis(pmHTTP, `"readiness":{"intervalSeconds":5,"timeoutSeconds":6}`),
			[]want{{ts0 + ".readiness.timeoutSeconds", "must not exceed intervalSeconds (5)"}}},
		{"readiness timeout over default interval", withTrellis(pmHTTP, `"readiness":{"timeoutSeconds":11}`),
			[]want{{ts0 + ".readiness.timeoutSeconds", "must not exceed intervalSeconds (10)"}}},
		{"readiness threshold", withTrellis(pmHTTP, `"readiness":{"healthyThreshold":11}`), []want{{ts0 + ".readiness.healthyThreshold", "between 1 and 10, got 11"}}},
	}
}

// TestParseManyProblems checks that one run reports every problem,
// decoding and validation alike, sorted by path with numeric indexes.
func TestParseManyProblems(t *testing.T) {
	d := `{
  "serviceConnectConfiguration": {
    "enabled": true,
    "namespace": "shop",
    "services": [
      {"portName": "api", "clientAliases": [{"port": 0}]},
      {"portName": "api", "discoveryName": "b", "ingressPortOverride": 9001, "timeout": {"idleTimeoutSeconds": -1}},
      {"portName": "nope"},
      {"portName": "tcp", "timeout": {"perRequestTimeoutSeconds": 5}},
      {"portName": "api", "discoveryName": "e", "ingressPortOverride": 9004},
      {"portName": "api", "discoveryName": "f", "ingressPortOverride": 9005},
      {"portName": "api", "discoveryName": "g", "ingressPortOverride": 9006},
      {"portName": "api", "discoveryName": "h", "ingressPortOverride": 9007},
      {"portName": "api", "discoveryName": "i", "ingressPortOverride": 9008},
      {"portName": "api", "discoveryName": "j", "ingressPortOverride": 9009},
      {"portName": "api", "discoveryName": "k", "ingressPortOverride": 9010, "clientAliases": [{"port": 1, "dnsname": "x"}]}
    ]
  },
  "portMappings": [
    {"name": "api", "containerPort": 8080, "appProtocol": "http"},
    {"name": "tcp", "containerPort": 9000, "appProtocol": "tcp"}
  ],
  "trellis": {"drainSeconds": 1, "services": [{"discoveryName": "api", "retryPolicy": {"retryOn": ["nope"]}}]}
}`
	_, err := Parse([]byte(d))
	checkProblems(t, err, []want{
		{"portMappings[1].appProtocol", "must be http, http2 or grpc"},
		{svc0 + ".clientAliases[0].port", "got 0"},
		{svc1 + ".timeout.idleTimeoutSeconds", "got -1"},
		{scs + ".services[2].portName", "no portMappings entry"},
		{scs + ".services[10].clientAliases[0].dnsname", `did you mean "dnsName"?`},
		{"trellis.drainSeconds", "got 1"},
		{ts0 + ".retryPolicy.retryOn[0]", "unknown retry event"},
	})
	if n := strings.Count(err.Error(), "\n"); n != 6 {
		t.Errorf("Error() has %d newlines, want one line per problem:\n%s", n, err)
	}
}
