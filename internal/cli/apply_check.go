package cli

import (
	"encoding/json"
	"fmt"
	"strings"
)

// problems collects what is wrong with the input, each line naming the
// document and field.
type problems struct{ lines []string }

func (p *problems) add(r *resource, format string, args ...any) {
	p.lines = append(p.lines, r.errorf(format, args...).Error())
}

func (p *problems) err() error {
	switch len(p.lines) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("nothing was changed: %s", p.lines[0])
	}
	return fmt.Errorf("nothing was changed; the input has %d problems:\n  %s", len(p.lines), strings.Join(p.lines, "\n  "))
}

// validateAll checks every document on its own and for duplicates,
// before anything is read from or written to the server.
func validateAll(docs []*resource) error {
	var p problems
	seen := map[string]*resource{}
	for i, r := range docs {
		r.seq = i
		r.validate(&p)
		if prev, dup := seen[r.label]; dup {
			p.add(r, "declared twice (also %s)", prev.pos)
		}
		seen[r.label] = r
	}
	return p.err()
}

func (r *resource) validate(p *problems) {
	switch d := r.doc.(type) {
	case *snDoc:
		checkName(p, r, "name", d.Name, "")
		checkEnum(p, r, "authType", d.AuthType, "NONE", "AWS_IAM")
	case *serviceDoc:
		checkName(p, r, "name", d.Name, "svc")
		checkEnum(p, r, "authType", d.AuthType, "NONE", "AWS_IAM")
		if d.CertificateArn != "" && d.CustomDomainName == "" {
			p.add(r, "certificateArn needs customDomainName: the certificate is served for the custom domain")
		}
	case *tgDoc:
		checkName(p, r, "name", d.Name, "tg")
		checkTargetGroup(p, r, d)
	case *listenerDoc:
		require(p, r, "service", d.Service)
		checkName(p, r, "name", d.Name, "listener")
		if require(p, r, "protocol", d.Protocol) {
			checkEnum(p, r, "protocol", d.Protocol, "HTTP", "HTTPS", "TLS_PASSTHROUGH")
		}
		if d.Protocol == "TLS_PASSTHROUGH" && d.Port == nil {
			p.add(r, "port is required for TLS_PASSTHROUGH listeners")
		}
		checkPort(p, r, "port", d.Port)
		checkAction(p, r, "defaultAction", d.DefaultAction)
		checkRules(p, r, d.Rules)
	case *snsaDoc:
		require(p, r, "serviceNetwork", d.ServiceNetwork)
		require(p, r, "service", d.Service)
	case *snvaDoc:
		require(p, r, "serviceNetwork", d.ServiceNetwork)
		require(p, r, "vpc", d.VPC)
	case *authPolicyDoc:
		checkOwner(p, r, d.ServiceNetwork, d.Service)
		if _, err := policyValue(d.Policy); err != nil {
			p.add(r, "policy: %v", err)
		}
	case *alsDoc:
		checkOwner(p, r, d.ServiceNetwork, d.Service)
		if require(p, r, "destinationArn", d.DestinationArn) && !strings.HasPrefix(d.DestinationArn, "arn:") {
			p.add(r, "destinationArn must be the ARN of a log group, S3 bucket or Firehose stream, got %q", d.DestinationArn)
		}
		if d.ServiceNetworkLogType != "" {
			checkEnum(p, r, "serviceNetworkLogType", d.ServiceNetworkLogType, "SERVICE", "RESOURCE")
			if d.ServiceNetwork == "" {
				p.add(r, "serviceNetworkLogType applies only to service networks")
			}
		}
	}
}

func require(p *problems, r *resource, field, v string) bool {
	if v == "" {
		p.add(r, "%s is required", field)
		return false
	}
	return true
}

// checkName checks the shape Lattice requires of names: lower-case
// letters, digits and single hyphens, not at either end, and not starting
// with the kind's ID prefix (reserved, e.g. "svc-").
func checkName(p *problems, r *resource, field, v, reserved string) {
	if !require(p, r, field, v) {
		return
	}
	if reserved != "" && strings.HasPrefix(v, reserved+"-") {
		p.add(r, "%s %q: names must not start with %q, the prefix of IDs", field, v, reserved+"-")
	}
	ok := v[0] != '-' && v[len(v)-1] != '-' && !strings.Contains(v, "--") &&
		strings.Trim(v, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
	if !ok {
		p.add(r, "%s %q: names are lower-case letters, digits and single hyphens, not starting or ending with a hyphen", field, v)
	}
}

func checkEnum(p *problems, r *resource, field, v string, allowed ...string) {
	if v == "" {
		return
	}
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	p.add(r, "%s %q: want one of %s", field, v, strings.Join(allowed, ", "))
}

func checkPort(p *problems, r *resource, field string, v *int32) {
	if v != nil && (*v < 1 || *v > 65535) {
		p.add(r, "%s %d: want 1 to 65535", field, *v)
	}
}

func checkOwner(p *problems, r *resource, sn, svc string) {
	if (sn == "") == (svc == "") {
		p.add(r, "name exactly one of serviceNetwork and service")
	}
}

func checkTargetGroup(p *problems, r *resource, d *tgDoc) {
	if !require(p, r, "type", d.Type) {
		return
	}
	checkEnum(p, r, "type", d.Type, "IP", "INSTANCE", "LAMBDA", "ALB")
	c := d.Config
	if d.Type == "LAMBDA" {
		if c != nil && (c.Port != nil || c.Protocol != "" || c.ProtocolVersion != "" || c.IPAddressType != "" || c.VPC != "" || c.HealthCheck != nil) {
			p.add(r, "a LAMBDA target group's config takes only lambdaEventStructureVersion")
		}
	} else {
		if c == nil {
			p.add(r, "config is required for %s target groups (protocol, port, vpc)", d.Type)
			return
		}
		if require(p, r, "config.protocol", c.Protocol) {
			checkEnum(p, r, "config.protocol", c.Protocol, "HTTP", "HTTPS", "TCP")
		}
		require(p, r, "config.vpc", c.VPC)
		checkPort(p, r, "config.port", c.Port)
		if c.HealthCheck != nil && d.Type == "ALB" {
			p.add(r, "config.healthCheck: ALB target groups do not support Lattice health checks")
		}
	}
	seen := map[string]bool{}
	for i, t := range d.Targets {
		f := fmt.Sprintf("targets[%d]", i)
		if !require(p, r, f+".id", t.ID) {
			continue
		}
		checkPort(p, r, f+".port", t.Port)
		k := t.ID
		if t.Port != nil {
			k += fmt.Sprintf(":%d", *t.Port)
		}
		if seen[k] {
			p.add(r, "%s: target %s is listed twice", f, k)
		}
		seen[k] = true
	}
}

func checkAction(p *problems, r *resource, field string, a *actionDoc) {
	switch {
	case a == nil:
		p.add(r, "%s is required", field)
	case (a.Forward == nil) == (a.FixedResponse == nil):
		p.add(r, "%s: set exactly one of forward and fixedResponse", field)
	case a.Forward != nil:
		tgs := a.Forward.TargetGroups
		if len(tgs) < 1 || len(tgs) > 10 {
			p.add(r, "%s.forward.targetGroups: list 1 to 10 target groups, got %d", field, len(tgs))
		}
		seen := map[string]bool{}
		for i, t := range tgs {
			f := fmt.Sprintf("%s.forward.targetGroups[%d]", field, i)
			if require(p, r, f+".targetGroup", t.TargetGroup) && seen[t.TargetGroup] {
				p.add(r, "%s: target group %s is listed twice", f, t.TargetGroup)
			}
			seen[t.TargetGroup] = true
		}
	}
}

func checkRules(p *problems, r *resource, rules []ruleDoc) {
	names, prios := map[string]bool{}, map[int32]string{}
	for i, rd := range rules {
		f := fmt.Sprintf("rules[%d]", i)
		checkName(p, r, f+".name", rd.Name, "rule")
		if rd.Name == "default" {
			p.add(r, "%s: \"default\" names the listener's default rule; set defaultAction instead", f)
		}
		if names[rd.Name] {
			p.add(r, "%s: rule %q is declared twice", f, rd.Name)
		}
		names[rd.Name] = true
		if rd.Priority == nil {
			p.add(r, "%s.priority is required", f)
		} else if other, dup := prios[*rd.Priority]; dup {
			p.add(r, "%s: priority %d is also used by rule %q", f, *rd.Priority, other)
		} else {
			prios[*rd.Priority] = rd.Name
		}
		checkMatch(p, r, f+".match", rd.Match)
		checkAction(p, r, f+".action", rd.Action)
	}
}

func checkMatch(p *problems, r *resource, field string, m *matchDoc) {
	if m == nil || m.HTTPMatch == nil {
		p.add(r, "%s.httpMatch is required", field)
		return
	}
	h := m.HTTPMatch
	if h.Method == "" && h.PathMatch == nil && len(h.HeaderMatches) == 0 {
		p.add(r, "%s.httpMatch: set at least one of method, pathMatch and headerMatches", field)
	}
	if pm := h.PathMatch; pm != nil && (pm.Match.Exact == nil) == (pm.Match.Prefix == nil) {
		p.add(r, "%s.httpMatch.pathMatch.match: set exactly one of exact and prefix", field)
	}
	for i, hm := range h.HeaderMatches {
		f := fmt.Sprintf("%s.httpMatch.headerMatches[%d]", field, i)
		require(p, r, f+".name", hm.Name)
		n := 0
		for _, v := range []*string{hm.Match.Exact, hm.Match.Prefix, hm.Match.Contains} {
			if v != nil {
				n++
			}
		}
		if n != 1 {
			p.add(r, "%s.match: set exactly one of exact, prefix and contains", f)
		}
	}
}

// policyValue is the policy of an AuthPolicy document as a JSON value: a
// mapping, or a string holding one.
func policyValue(raw json.RawMessage) (any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fmt.Errorf("is required")
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	if s, ok := v.(string); ok {
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, fmt.Errorf("the string is not JSON: %w", err)
		}
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, fmt.Errorf("want a policy document (a mapping with Version and Statement)")
	}
	return v, nil
}
