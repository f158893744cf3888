package model

import (
	"strconv"
	"strings"
)

// Limits of the Lattice model (reference/lattice.md §8 "model-level hard limits").
const (
	MaxPriority          = 2000
	MaxHeaderMatches     = 5
	MaxWeightedTGs       = 10
	MaxWeight            = 999
	MaxMethodLen         = 16
	MaxMatchValueLen     = 200
	MaxHeaderNameLen     = 100
	MaxHealthCheckPath   = 2048
	MaxMatcherLen        = 2000
	MaxIdentifierLen     = 2048
	DefaultIdleTimeout   = 60
	MinIdleTimeout       = 60
	MaxIdleTimeout       = 600
	MaxCustomDomainLen   = 255
	MinCustomDomainLen   = 3
	MaxCertificateARNLen = 2048
)

// pathChars is the character set Lattice allows in path matches and
// health-check paths: [a-zA-Z0-9@:%_+.~#?&/=-].
func pathChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("@:%_+.~#?&/=-", rune(c)) {
			return false
		}
	}
	return true
}

// ValidateRuleMatch checks a rule's match. field is the wire member name.
func (c *Checker) RuleMatch(field string, m *RuleMatch) {
	if m == nil {
		c.Addf(field, "is required")
		return
	}
	if m.HTTPMatch == nil {
		c.Addf(field, "must set httpMatch, the only member of the union")
		return
	}
	h := m.HTTPMatch
	f := field + ".httpMatch"
	if h.Method == nil && h.PathMatch == nil && len(h.HeaderMatches) == 0 {
		c.Addf(f, "must set at least one of method, pathMatch and headerMatches")
	}
	if h.Method != nil {
		if n := len(*h.Method); n < 1 || n > MaxMethodLen {
			c.Addf(f+".method", "must be 1 to %d characters long", MaxMethodLen)
		} else if !isToken(*h.Method) {
			c.Addf(f+".method", "must be an HTTP method token such as GET or POST")
		}
	}
	if p := h.PathMatch; p != nil {
		pf := f + ".pathMatch.match"
		switch {
		case p.Match.Exact != nil && p.Match.Prefix != nil:
			c.Addf(pf, "must set exactly one of exact and prefix")
		case p.Match.Exact != nil:
			c.matchPath(pf+".exact", *p.Match.Exact)
		case p.Match.Prefix != nil:
			c.matchPath(pf+".prefix", *p.Match.Prefix)
		default:
			c.Addf(pf, "must set exactly one of exact and prefix")
		}
	}
	if len(h.HeaderMatches) > MaxHeaderMatches {
		c.Addf(f+".headerMatches", "at most %d header matches are allowed, got %d", MaxHeaderMatches, len(h.HeaderMatches))
	}
	for i, hm := range h.HeaderMatches {
		hf := f + ".headerMatches[" + strconv.Itoa(i) + "]"
		if n := len(hm.Name); n < 1 || n > MaxHeaderNameLen {
			c.Addf(hf+".name", "must be 1 to %d characters long", MaxHeaderNameLen)
		} else if !isToken(hm.Name) {
			c.Addf(hf+".name", "must be a valid HTTP header name")
		}
		set := 0
		for _, v := range []*string{hm.Match.Exact, hm.Match.Prefix, hm.Match.Contains} {
			if v != nil {
				set++
				if n := len(*v); n < 1 || n > MaxMatchValueLen {
					c.Addf(hf+".match", "value must be 1 to %d characters long", MaxMatchValueLen)
				}
			}
		}
		if set != 1 {
			c.Addf(hf+".match", "must set exactly one of exact, prefix and contains")
		}
	}
}

func (c *Checker) matchPath(field, v string) {
	switch {
	case len(v) < 1 || len(v) > MaxMatchValueLen:
		c.Addf(field, "must be 1 to %d characters long", MaxMatchValueLen)
	case v[0] != '/':
		c.Addf(field, "must start with /")
	case !pathChars(v):
		c.Addf(field, "may contain only letters, digits and @:%%_+.~#?&/=-")
	}
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return len(s) > 0
}

// RuleAction checks a rule action; target-group identifiers are checked for
// shape only (existence is the API layer's job).
func (c *Checker) RuleAction(field string, a *RuleAction) {
	if a == nil {
		c.Addf(field, "is required")
		return
	}
	switch {
	case a.Forward != nil && a.FixedResponse != nil:
		c.Addf(field, "must set exactly one of forward and fixedResponse")
	case a.Forward != nil:
		tgs := a.Forward.TargetGroups
		f := field + ".forward.targetGroups"
		if len(tgs) < 1 || len(tgs) > MaxWeightedTGs {
			c.Addf(f, "must list 1 to %d target groups, got %d", MaxWeightedTGs, len(tgs))
		}
		seen := map[string]bool{}
		for i, tg := range tgs {
			tf := f + "[" + strconv.Itoa(i) + "]"
			if n := len(tg.TargetGroupIdentifier); n < 17 || n > MaxIdentifierLen {
				c.Addf(tf+".targetGroupIdentifier", "must be a target group ID or ARN")
			} else if seen[tg.TargetGroupIdentifier] {
				c.Addf(tf+".targetGroupIdentifier", "target group %s is listed twice", tg.TargetGroupIdentifier)
			}
			seen[tg.TargetGroupIdentifier] = true
			if tg.Weight != nil {
				c.Range(tf+".weight", int64(*tg.Weight), 0, MaxWeight)
			}
		}
	case a.FixedResponse != nil:
		if s := a.FixedResponse.StatusCode; s != 404 && s != 500 {
			c.Addf(field+".fixedResponse.statusCode", "must be 404 or 500 (the codes Lattice supports), got %d", s)
		}
	default:
		c.Addf(field, "must set exactly one of forward and fixedResponse")
	}
}

// TargetGroupConfig checks a target group's type and config for CreateTargetGroup.
func (c *Checker) TargetGroupConfig(tgType string, cfg *TargetGroupConfig) {
	if tgType == TargetGroupTypeLambda {
		if cfg == nil {
			return
		}
		if cfg.Port != nil || cfg.Protocol != "" || cfg.ProtocolVersion != "" || cfg.IPAddressType != "" || cfg.VpcIdentifier != "" || cfg.HealthCheck != nil {
			c.Addf("config", "a LAMBDA target group takes only lambdaEventStructureVersion")
		}
		if v := cfg.LambdaEventStructureVersion; v != "" {
			c.Enum("config.lambdaEventStructureVersion", v, "V1", "V2")
		}
		return
	}
	if cfg == nil {
		c.Addf("config", "is required for %s target groups", tgType)
		return
	}
	if cfg.LambdaEventStructureVersion != "" {
		c.Addf("config.lambdaEventStructureVersion", "applies only to LAMBDA target groups")
	}
	if cfg.Protocol == "" {
		c.Addf("config.protocol", "is required for %s target groups", tgType)
	} else if tgType == TargetGroupTypeALB {
		c.Enum("config.protocol", cfg.Protocol, ProtocolHTTP, ProtocolHTTPS)
	} else {
		c.Enum("config.protocol", cfg.Protocol, ProtocolHTTP, ProtocolHTTPS, ProtocolTCP)
	}
	if cfg.Port != nil {
		c.Range("config.port", int64(*cfg.Port), 1, 65535)
	}
	if v := cfg.ProtocolVersion; v != "" {
		if cfg.Protocol == ProtocolTCP {
			c.Addf("config.protocolVersion", "does not apply to TCP target groups")
		} else {
			c.Enum("config.protocolVersion", v, ProtocolVersionHTTP1, ProtocolVersionHTTP2, ProtocolVersionGRPC)
		}
	}
	if v := cfg.IPAddressType; v != "" {
		if tgType != TargetGroupTypeIP {
			c.Addf("config.ipAddressType", "applies only to IP target groups")
		} else {
			c.Enum("config.ipAddressType", v, IPAddressTypeIPv4, IPAddressTypeIPv6)
		}
	}
	if cfg.VpcIdentifier == "" {
		c.Addf("config.vpcIdentifier", "is required for %s target groups", tgType)
	} else if !IsID(cfg.VpcIdentifier, PrefixVPC) && !isShortVPCID(cfg.VpcIdentifier) {
		c.Addf("config.vpcIdentifier", "must be a VPC ID (vpc- followed by 8 or 17 characters)")
	}
	if cfg.HealthCheck != nil {
		if tgType == TargetGroupTypeALB {
			c.Addf("config.healthCheck", "ALB target groups do not support Lattice health checks")
		}
		c.HealthCheck("config.healthCheck", cfg.HealthCheck)
	}
}

func isShortVPCID(s string) bool {
	rest, ok := strings.CutPrefix(s, "vpc-")
	if !ok || len(rest) != 8 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if !(rest[i] >= '0' && rest[i] <= '9' || rest[i] >= 'a' && rest[i] <= 'z') {
			return false
		}
	}
	return true
}

// HealthCheck checks a health-check configuration (§4.3). Zero numbers mean
// "reset to the default" as in the Lattice model.
func (c *Checker) HealthCheck(field string, h *HealthCheckConfig) {
	if h.Protocol != "" {
		c.Enum(field+".protocol", h.Protocol, ProtocolHTTP, ProtocolHTTPS)
	}
	if h.ProtocolVersion != "" {
		c.Enum(field+".protocolVersion", h.ProtocolVersion, ProtocolVersionHTTP1, ProtocolVersionHTTP2)
	}
	if h.Port != nil {
		c.Range(field+".port", int64(*h.Port), 0, 65535)
	}
	if h.Path != nil && *h.Path != "" {
		p := *h.Path
		switch {
		case len(p) > MaxHealthCheckPath:
			c.Addf(field+".path", "must be at most %d characters long", MaxHealthCheckPath)
		case p[0] != '/':
			c.Addf(field+".path", "must start with /")
		case !pathChars(p):
			c.Addf(field+".path", "may contain only letters, digits and @:%%_+.~#?&/=-")
		}
	}
	zeroOr := func(name string, v *int32, lo, hi int64) {
		if v != nil && *v != 0 {
			c.Range(field+"."+name, int64(*v), lo, hi)
		}
	}
	zeroOr("healthCheckIntervalSeconds", h.HealthCheckIntervalSeconds, 5, 300)
	zeroOr("healthCheckTimeoutSeconds", h.HealthCheckTimeoutSeconds, 1, 120)
	zeroOr("healthyThresholdCount", h.HealthyThresholdCount, 2, 10)
	zeroOr("unhealthyThresholdCount", h.UnhealthyThresholdCount, 2, 10)
	// Compare the values in effect, defaults included.
	interval, timeout := int32(30), int32(5)
	if v := h.HealthCheckIntervalSeconds; v != nil && *v != 0 {
		interval = *v
	}
	if v := h.HealthCheckTimeoutSeconds; v != nil && *v != 0 {
		timeout = *v
	}
	if interval >= 5 && interval <= 300 && timeout >= 1 && timeout <= 120 && timeout > interval {
		c.Addf(field+".healthCheckTimeoutSeconds", "must not exceed healthCheckIntervalSeconds (%d > %d, defaults included)", timeout, interval)
	}
	if h.Matcher != nil {
		if h.Matcher.HTTPCode == nil {
			c.Addf(field+".matcher", "must set httpCode, the only member of the union")
		} else if err := checkHTTPCodes(*h.Matcher.HTTPCode); err != "" {
			c.Addf(field+".matcher.httpCode", "%s", err)
		}
	}
}

// checkHTTPCodes validates "200", "200,202" or "200-299" with codes 200–499.
func checkHTTPCodes(s string) string {
	if len(s) < 1 || len(s) > MaxMatcherLen {
		return "must be 1 to 2000 characters long"
	}
	if strings.Trim(s, "0123456789-,") != "" {
		return "may contain only digits, '-' and ','; got " + strconv.Quote(s)
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 200 || b > 499 || a > b {
			return "must be codes between 200 and 499, as a list (200,202) or a range (200-299); got " + strconv.Quote(part)
		}
	}
	return ""
}

func i32(v int32) *int32    { return &v }
func boolp(v bool) *bool    { return &v }
func strp(v string) *string { return &v }

// Materialize returns a copy of the config with every default filled in,
// as GetTargetGroup shows it (§1.5, §4.2–4.3).
func (cfg *TargetGroupConfig) Materialize(tgType string) *TargetGroupConfig {
	if cfg == nil {
		return nil
	}
	out := *cfg
	if tgType == TargetGroupTypeLambda {
		if out.LambdaEventStructureVersion == "" {
			out.LambdaEventStructureVersion = "V1"
		}
		return &out
	}
	if out.Port == nil {
		switch out.Protocol {
		case ProtocolHTTPS:
			out.Port = i32(443)
		case ProtocolHTTP:
			out.Port = i32(80)
		}
	}
	if out.ProtocolVersion == "" && out.Protocol != ProtocolTCP {
		out.ProtocolVersion = ProtocolVersionHTTP1
	}
	if out.IPAddressType == "" && tgType == TargetGroupTypeIP {
		out.IPAddressType = IPAddressTypeIPv4
	}
	if tgType != TargetGroupTypeALB {
		out.HealthCheck = out.HealthCheck.materialize(out.Protocol, out.ProtocolVersion)
	}
	return &out
}

func (h *HealthCheckConfig) materialize(protocol, version string) *HealthCheckConfig {
	var out HealthCheckConfig
	if h != nil {
		out = *h
	}
	orDefault := func(v **int32, def int32) {
		if *v == nil || **v == 0 {
			*v = i32(def)
		}
	}
	if out.Enabled == nil {
		out.Enabled = boolp(protocol != ProtocolTCP && version != ProtocolVersionHTTP2)
	}
	if out.Protocol == "" {
		out.Protocol = ProtocolHTTP
	}
	if out.ProtocolVersion == "" {
		out.ProtocolVersion = ProtocolVersionHTTP1
	}
	if out.Path == nil || *out.Path == "" {
		out.Path = strp("/")
	}
	orDefault(&out.HealthCheckIntervalSeconds, 30)
	orDefault(&out.HealthCheckTimeoutSeconds, 5)
	orDefault(&out.HealthyThresholdCount, 5)
	orDefault(&out.UnhealthyThresholdCount, 2)
	if out.Matcher == nil || out.Matcher.HTTPCode == nil {
		out.Matcher = &Matcher{HTTPCode: strp("200")}
	}
	return &out
}
