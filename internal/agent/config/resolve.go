package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// resolver checks a decoded Document against the ECS rules and the
// Trellis extension rules, and builds the Config while it goes: several
// rules (duplicate discovery names, the default dnsName's validity, a
// per-try timeout against the per-request one) are about defaulted
// values, so checking and defaulting are one walk. Problems go to ps; the
// Config is only meaningful if none were found.
type resolver struct {
	ps  *problems
	doc *Document
	// mappings indexes the named port mappings by name.
	mappings map[string]mapping
	// known[i] is set when Services[i]'s port mapping resolved, so its
	// protocol and container port are real rather than zero values.
	known []bool
}

// mapping is what a service needs from its port mapping.
type mapping struct {
	index    int
	port     uint16 // 0 when containerPort is absent or invalid
	protocol Protocol
	ranged   bool // has containerPortRange
	udp      bool
	broken   bool // protocol or appProtocol is invalid (already reported)
}

const (
	scPath = "serviceConnectConfiguration"
	pmPath = "portMappings"
)

// resolve validates doc and returns the Config it describes.
func resolve(doc *Document, ps *problems) *Config {
	r := &resolver{ps: ps, doc: doc, mappings: make(map[string]mapping)}
	cfg := &Config{Source: doc}
	r.portMappings()
	r.serviceConnect(cfg)
	r.trellis(cfg)
	return cfg
}

// intIn returns *v if it is within lo..hi, recording a problem if not.
// ok is false when v is absent or out of range.
func (r *resolver) intIn(at string, v *int, lo, hi int) (n int, ok bool) {
	if v == nil {
		return 0, false
	}
	if *v < lo || *v > hi {
		r.ps.addf(at, "must be between %d and %d, got %d", lo, hi, *v)
		return 0, false
	}
	return *v, true
}

// seconds is intIn for a whole number of seconds.
func (r *resolver) seconds(at string, v *int, lo, hi int) (time.Duration, bool) {
	n, ok := r.intIn(at, v, lo, hi)
	return time.Duration(n) * time.Second, ok
}

// port is intIn for a port number.
func (r *resolver) port(at string, v *int) (uint16, bool) {
	n, ok := r.intIn(at, v, 1, 65535)
	return uint16(n), ok
}

// check records msg at path unless it is "".
func (r *resolver) check(at, msg string) bool {
	if msg != "" {
		r.ps.addf(at, "%s", msg)
		return false
	}
	return true
}

// portMappings checks the task's port mappings and indexes them by name.
func (r *resolver) portMappings() {
	ports := make(map[string]int) // "8080/tcp" -> index
	for i := range r.doc.PortMappings {
		pm := &r.doc.PortMappings[i]
		at := index(pmPath, i)
		m := mapping{index: i}

		switch {
		case pm.Protocol == nil || *pm.Protocol == "tcp":
		case *pm.Protocol == "udp":
			m.udp = true
		default:
			m.broken = true
			r.ps.addf(field(at, "protocol"), "must be tcp or udp, got %q", *pm.Protocol)
		}
		if pm.AppProtocol != nil {
			switch *pm.AppProtocol {
			case "http":
				m.protocol = ProtocolHTTP
			case "http2":
				m.protocol = ProtocolHTTP2
			case "grpc":
				m.protocol = ProtocolGRPC
			default:
				m.broken = true
				r.ps.addf(field(at, "appProtocol"), "must be http, http2 or grpc (omit it for TCP), got %q", *pm.AppProtocol)
			}
		}

		if pm.ContainerPortRange != nil {
			m.ranged = true
			r.check(field(at, "containerPortRange"), checkPortRange(*pm.ContainerPortRange))
			if pm.ContainerPort != nil {
				r.ps.addf(field(at, "containerPort"), "must not be set together with containerPortRange")
			}
			if pm.HostPort != nil {
				r.ps.addf(field(at, "hostPort"), "must not be set together with containerPortRange")
			}
		} else if pm.ContainerPort == nil {
			r.ps.addf(field(at, "containerPort"), "is required (or containerPortRange)")
		} else if p, ok := r.port(field(at, "containerPort"), pm.ContainerPort); ok {
			m.port = p
			proto := "tcp"
			if m.udp {
				proto = "udp"
			}
			key := strconv.Itoa(int(p)) + "/" + proto
			if j, dup := ports[key]; dup {
				r.ps.addf(field(at, "containerPort"), "%s is also mapped by portMappings[%d]", key, j)
			} else {
				ports[key] = i
			}
		}
		r.intIn(field(at, "hostPort"), pm.HostPort, 0, 65535)

		if pm.Name != nil {
			at := field(at, "name")
			if !r.check(at, checkPortName(*pm.Name)) {
				continue
			}
			if prev, dup := r.mappings[*pm.Name]; dup {
				r.ps.addf(at, "duplicate name %q (also portMappings[%d].name)", *pm.Name, prev.index)
				continue
			}
			r.mappings[*pm.Name] = m
		}
	}
}

// checkPortRange checks a containerPortRange: "first-last", both ports,
// first below last.
func checkPortRange(s string) string {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || strconv.Itoa(lo) != a || strconv.Itoa(hi) != b {
		return fmt.Sprintf("must be first-last, for example 8000-8010, got %q", s)
	}
	if lo < 1 || hi > 65535 || lo >= hi {
		return fmt.Sprintf("must have 1 <= first < last <= 65535, got %q", s)
	}
	return ""
}

// serviceConnect resolves serviceConnectConfiguration.
func (r *resolver) serviceConnect(cfg *Config) {
	sc := r.doc.ServiceConnectConfiguration
	if sc == nil {
		r.ps.addf(scPath, "is required")
		return
	}
	if sc.Enabled == nil {
		r.ps.addf(field(scPath, "enabled"), "is required")
	} else {
		cfg.Enabled = *sc.Enabled
	}

	// nsNote says why the namespace name is unknown; "" when it is known.
	nsNote := "absent"
	if sc.Namespace != nil {
		at := field(scPath, "namespace")
		ns := *sc.Namespace
		if strings.HasPrefix(ns, "arn:") {
			nsNote = "an ARN"
			if r.check(at, checkARN(ns, "servicediscovery", "namespace/")) {
				cfg.Namespace.ARN = ns
			}
		} else if r.check(at, checkNamespaceName(ns)) {
			nsNote = ""
			cfg.Namespace.Name = ns
		} else {
			nsNote = "invalid"
		}
	}

	servicesAt := field(scPath, "services")
	cfg.Services = make([]Service, len(sc.Services))
	r.known = make([]bool, len(sc.Services))
	for i := range sc.Services {
		cfg.Services[i], r.known[i] = r.service(index(servicesAt, i), &sc.Services[i], cfg.Namespace.Name, nsNote)
	}
	r.crossServiceChecks(cfg, servicesAt)

	if lc := sc.LogConfiguration; lc != nil {
		r.logConfiguration(field(scPath, "logConfiguration"), lc)
	}
	if al := sc.AccessLogConfiguration; al != nil {
		at := field(scPath, "accessLogConfiguration")
		cfg.AccessLog = &AccessLog{Format: AccessLogFormat(al.Format)}
		switch al.Format {
		case "":
			r.ps.addf(field(at, "format"), "is required")
		case string(AccessLogText), string(AccessLogJSON):
		default:
			r.ps.addf(field(at, "format"), "must be TEXT or JSON, got %q", al.Format)
		}
		if q := al.IncludeQueryParameters; q != nil {
			switch *q {
			case "ENABLED":
				cfg.AccessLog.IncludeQueryParameters = true
			case "DISABLED":
			default:
				r.ps.addf(field(at, "includeQueryParameters"), "must be ENABLED or DISABLED, got %q", *q)
			}
		}
		if sc.LogConfiguration == nil {
			r.ps.addf(field(scPath, "logConfiguration"), "is required when accessLogConfiguration is set")
		}
	}
}

// service resolves one services[] entry. known reports whether its port
// mapping resolved, so that Protocol and ContainerPort are real.
func (r *resolver) service(at string, in *ServiceConnectService, nsName, nsNote string) (svc Service, known bool) {
	svc.PortName = in.PortName
	var m mapping
	pat := field(at, "portName")
	switch {
	case in.PortName == "":
		r.ps.addf(pat, "is required")
	case !r.check(pat, checkPortName(in.PortName)):
	default:
		var found bool
		m, found = r.mappings[in.PortName]
		switch {
		case !found:
			r.ps.addf(pat, "no portMappings entry is named %q", in.PortName)
		case m.ranged:
			r.ps.addf(pat, "portMappings[%d] has a containerPortRange; a service needs a single containerPort", m.index)
		case m.udp:
			r.ps.addf(pat, "portMappings[%d] is udp; Service Connect proxies TCP only", m.index)
		case m.port == 0 || m.broken:
			// Already reported at the port mapping.
		default:
			known = true
			svc.Protocol = m.protocol
			svc.ContainerPort = m.port
		}
	}

	// discoveryName ← portName (§1.5 step 1).
	dat := field(at, "discoveryName")
	nameOK := false
	if in.DiscoveryName != nil {
		svc.DiscoveryName = *in.DiscoveryName
		nameOK = r.check(dat, checkDiscoveryName(svc.DiscoveryName))
	} else if checkPortName(in.PortName) == "" {
		svc.DiscoveryName = in.PortName
		if msg := checkDiscoveryName(svc.DiscoveryName); msg != "" {
			r.ps.addf(dat, "must be set: portName %q cannot be the default discoveryName: %s", in.PortName, msg)
		} else {
			nameOK = true
		}
	}

	// tcpNote names the reason a service is TCP, for messages.
	tcpNote := ""
	if known && svc.Protocol == ProtocolTCP {
		tcpNote = fmt.Sprintf("portMappings[%d] has no appProtocol, so the service is TCP", m.index)
	}

	// clientAliases: dnsName ← discoveryName.namespace, port ← containerPort
	// (§1.5 steps 2 and 3).
	aat := field(at, "clientAliases")
	if n := len(in.ClientAliases); n > MaxClientAliases {
		r.ps.addf(aat, "must have at most %d entry, got %d", MaxClientAliases, n)
	}
	defaultDNS := func(at, what string) (string, bool) {
		if !nameOK {
			return "", false
		}
		if nsNote != "" {
			if nsNote != "invalid" {
				r.ps.addf(at, "%s when serviceConnectConfiguration.namespace is %s: the default, discoveryName.namespace, needs the namespace name", what, nsNote)
			}
			return "", false
		}
		name := svc.DiscoveryName + "." + nsName
		if msg := checkDNSName(name); msg != "" {
			r.ps.addf(at, "%s: the default, %q (discoveryName.namespace), is not a valid dnsName: %s", what, name, msg)
			return "", false
		}
		return name, true
	}
	for j := range in.ClientAliases {
		ca := &in.ClientAliases[j]
		cat := index(aat, j)
		var a Alias
		a.Port, _ = r.port(field(cat, "port"), ca.Port)
		if ca.Port == nil {
			r.ps.addf(field(cat, "port"), "is required")
		}
		if ca.DNSName != nil {
			a.DNSName = *ca.DNSName
			r.check(field(cat, "dnsName"), checkDNSName(a.DNSName))
		} else {
			a.DNSName, _ = defaultDNS(field(cat, "dnsName"), "is required")
		}
		if tr := ca.TestTrafficRules; tr != nil {
			tat := field(cat, "testTrafficRules")
			a.TestTraffic = r.testTraffic(tat, tr)
			if tcpNote != "" {
				r.ps.addf(tat, "applies only to http, http2 and grpc services; %s", tcpNote)
			}
		}
		svc.Aliases = append(svc.Aliases, a)
	}
	if len(in.ClientAliases) == 0 && known {
		if name, ok := defaultDNS(aat, "must have an entry"); ok {
			svc.Aliases = []Alias{{DNSName: name, Port: svc.ContainerPort}}
		}
	}

	// ingress port ← ingressPortOverride ?: containerPort (§1.5 step 4;
	// the agent always behaves as ECS does in awsvpc mode).
	svc.IngressPort = svc.ContainerPort
	if p, ok := r.port(field(at, "ingressPortOverride"), in.IngressPortOverride); ok {
		svc.IngressPort = p
	}

	// Timeouts (§2.9).
	svc.IdleTimeout = defaultIdleTimeout(svc.Protocol)
	svc.PerRequestTimeout = defaultPerRequestTimeout(svc.Protocol)
	if t := in.Timeout; t != nil {
		tat := field(at, "timeout")
		if d, ok := r.seconds(field(tat, "idleTimeoutSeconds"), t.IdleTimeoutSeconds, 0, MaxTimeoutSeconds); ok {
			svc.IdleTimeout = d
		}
		pat := field(tat, "perRequestTimeoutSeconds")
		if d, ok := r.seconds(pat, t.PerRequestTimeoutSeconds, 0, MaxTimeoutSeconds); ok {
			if tcpNote != "" {
				r.ps.addf(pat, "is not allowed for TCP services; %s", tcpNote)
			} else {
				svc.PerRequestTimeout = d
			}
		}
	}

	if t := in.TLS; t != nil {
		svc.TLS = r.tls(field(at, "tls"), t)
	}
	return svc, known
}

// testTraffic resolves a client alias's testTrafficRules.
func (r *resolver) testTraffic(at string, in *ServiceConnectTestTrafficRules) *HeaderMatch {
	hat := field(at, "header")
	h := in.Header
	if h == nil {
		r.ps.addf(hat, "is required")
		return nil
	}
	m := &HeaderMatch{Name: h.Name, AnyValue: true}
	if h.Name == "" {
		r.ps.addf(field(hat, "name"), "is required")
	} else {
		r.check(field(hat, "name"), checkHeaderName(h.Name))
	}
	if v := h.Value; v != nil {
		eat := field(field(hat, "value"), "exact")
		if v.Exact == nil {
			r.ps.addf(eat, "is required")
		} else if r.check(eat, checkHeaderValue(*v.Exact)) {
			m.Exact, m.AnyValue = *v.Exact, false
		}
	}
	return m
}

// tls resolves a service's tls block (§2.12).
func (r *resolver) tls(at string, in *ServiceConnectTLSConfiguration) *TLS {
	t := &TLS{}
	ca := in.IssuerCertificateAuthority
	if ca == nil {
		r.ps.addf(field(at, "issuerCertificateAuthority"), "is required")
	} else if ca.AWSPCAAuthorityARN != nil {
		t.CertificateAuthorityARN = *ca.AWSPCAAuthorityARN
		r.check(field(field(at, "issuerCertificateAuthority"), "awsPcaAuthorityArn"),
			checkARN(t.CertificateAuthorityARN, "", "certificate-authority/"))
	}
	if in.KMSKey != nil {
		t.KMSKey = *in.KMSKey
		r.check(field(at, "kmsKey"), checkLength(t.KMSKey, maxKMSKeyLen))
	}
	if in.RoleARN != nil {
		t.RoleARN = *in.RoleARN
		r.check(field(at, "roleArn"), checkARN(t.RoleARN, "iam", "role/"))
	}
	return t
}

// crossServiceChecks finds what must be unique across services:
// discovery names, dnsName:port pairs and ingress ports.
func (r *resolver) crossServiceChecks(cfg *Config, at string) {
	names := make(map[string]int)
	endpoints := make(map[string]string)
	ingress := make(map[uint16]int)
	for i := range cfg.Services {
		s := &cfg.Services[i]
		sat := index(at, i)
		if s.DiscoveryName != "" {
			if j, dup := names[s.DiscoveryName]; dup {
				msg := fmt.Sprintf("duplicate discoveryName %q (also services[%d])", s.DiscoveryName, j)
				if r.doc.ServiceConnectConfiguration.Services[i].DiscoveryName == nil {
					msg = fmt.Sprintf("must be set: the default, portName %q, is already the discoveryName of services[%d]", s.PortName, j)
				}
				r.ps.addf(field(sat, "discoveryName"), "%s", msg)
			} else {
				names[s.DiscoveryName] = i
			}
		}
		explicit := len(r.doc.ServiceConnectConfiguration.Services[i].ClientAliases) > 0
		for k, a := range s.Aliases {
			if a.Port == 0 || checkDNSName(a.DNSName) != "" {
				continue // already reported
			}
			key := a.DNSName + ":" + strconv.Itoa(int(a.Port))
			p := field(sat, "clientAliases")
			if explicit {
				p = index(p, k)
			}
			if other, dup := endpoints[key]; dup {
				r.ps.addf(p, "%s is already the client alias of %s; each dnsName:port must be unique in the namespace", key, other)
			} else {
				endpoints[key] = sat
			}
		}
		if !r.known[i] {
			continue
		}
		// Each service gets its own inbound listener (as each gets its own
		// ingress entry in ECS, whose agent rejects colliding ports), so
		// two services on one port mapping need an ingressPortOverride.
		if j, dup := ingress[s.IngressPort]; dup {
			p := field(sat, "ingressPortOverride")
			if r.doc.ServiceConnectConfiguration.Services[i].IngressPortOverride == nil {
				p = field(sat, "portName")
			}
			r.ps.addf(p, "ingress port %d is also the ingress port of services[%d]; give one of them an ingressPortOverride", s.IngressPort, j)
		} else {
			ingress[s.IngressPort] = i
		}
	}
}

// logDrivers are the log drivers ECS accepts.
var logDrivers = [...]string{"awslogs", "fluentd", "gelf", "json-file", "journald", "syslog", "splunk", "awsfirelens"}

// logConfiguration checks the proxy container's log configuration.
func (r *resolver) logConfiguration(at string, lc *LogConfiguration) {
	dat := field(at, "logDriver")
	switch {
	case lc.LogDriver == "":
		r.ps.addf(dat, "is required")
	case !slices.Contains(logDrivers[:], lc.LogDriver):
		r.ps.addf(dat, "must be one of %s, got %q", strings.Join(logDrivers[:], ", "), lc.LogDriver)
	}
	for k := range lc.Options {
		if k == "" {
			r.ps.addf(field(at, "options"), "must not have an empty key")
		}
	}
	for i, s := range lc.SecretOptions {
		sat := index(field(at, "secretOptions"), i)
		if s.Name == "" {
			r.ps.addf(field(sat, "name"), "is required")
		}
		if s.ValueFrom == "" {
			r.ps.addf(field(sat, "valueFrom"), "is required")
		}
	}
}
