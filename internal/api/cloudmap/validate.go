package cloudmap

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/trellis-mesh/trellis/internal/model"
)

// Limits of the model and of Cloud Map's documentation (reference §5).
const (
	maxResourceID       = 64
	maxDescription      = 1024
	maxHTTPName         = 1024
	maxDNSName          = 253
	maxAttrKey          = 255
	maxAttrValue        = 1024
	maxCustomAttributes = 30
	maxAttributesChars  = 5000
	maxServiceAttrs     = 30
	maxTagsPerRequest   = 200
	maxTagsPerResource  = 50
	maxTTL              = 2147483647
	maxResourceARN      = 1011
)

// required records that a member is missing.
func required(c *model.Checker, field string, v *string) bool {
	if v == nil || *v == "" {
		c.Addf(field, "is required")
		return false
	}
	return true
}

// maxLen checks an optional string's length in characters.
func maxLen(c *model.Checker, field string, v *string, n int) {
	if v != nil && len([]rune(*v)) > n {
		c.Addf(field, "must be at most %d characters long, got %d", n, len([]rune(*v)))
	}
}

// requestID checks a CreatorRequestId or UpdaterRequestId: at most 64
// characters (an idempotency token; the SDKs fill in a UUID).
func requestID(c *model.Checker, field string, v *string) {
	if v != nil && (len(*v) == 0 || len([]rune(*v)) > maxResourceID) {
		c.Addf(field, "must be 1 to %d characters long", maxResourceID)
	}
}

// printable reports whether s is 1+ characters of [!-~] (visible ASCII).
func printable(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' {
			return false
		}
	}
	return true
}

// checkHTTPNamespaceName: ^[!-~]{1,1024}$.
func checkHTTPNamespaceName(c *model.Checker, field string, v *string) {
	if !required(c, field, v) {
		return
	}
	if len(*v) > maxHTTPName || !printable(*v) {
		c.Addf(field, "must be 1 to %d visible ASCII characters (no spaces), got %q", maxHTTPName, *v)
	}
}

// checkPrivateDNSName: ^[!-~]{1,253}$.
func checkPrivateDNSName(c *model.Checker, field string, v *string) {
	if !required(c, field, v) {
		return
	}
	if len(*v) > maxDNSName || !printable(*v) {
		c.Addf(field, "must be 1 to %d visible ASCII characters (no spaces), got %q", maxDNSName, *v)
	}
}

// checkPublicDNSName: a domain name of two or more labels of letters,
// digits and inner hyphens, each 1 to 63 characters.
func checkPublicDNSName(c *model.Checker, field string, v *string) {
	if !required(c, field, v) {
		return
	}
	labels := strings.Split(*v, ".")
	ok := len(*v) <= maxDNSName && len(labels) >= 2
	for _, l := range labels {
		if !ok {
			break
		}
		ok = len(l) >= 1 && len(l) <= 63 && l[0] != '-' && l[len(l)-1] != '-'
		for i := 0; ok && i < len(l); i++ {
			ch := l[i]
			ok = ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-'
		}
	}
	if !ok {
		c.Addf(field, "must be a domain name such as example.com (labels of letters, digits and inner hyphens, at most %d characters), got %q", maxDNSName, *v)
	}
}

// checkServiceName follows the model's pattern: 1 to 127 characters of
// dot-separated labels, each a single letter or digit or 2 to 63 of
// [a-zA-Z0-9_-] that neither start nor end with a hyphen; or ".".
func checkServiceName(c *model.Checker, field string, v *string) {
	if !required(c, field, v) {
		return
	}
	if !validServiceName(*v) {
		c.Addf(field, "must be 1 to 127 characters of dot-separated labels of letters, digits, '_' and inner '-' (each at most 63), got %q", *v)
	}
}

func validServiceName(s string) bool {
	if s == "." {
		return true
	}
	if len(s) < 1 || len(s) > 127 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		switch {
		case len(l) == 1:
			if !alnum(l[0]) {
				return false
			}
		case len(l) >= 2 && len(l) <= 63:
			if l[0] == '-' || l[len(l)-1] == '-' {
				return false
			}
			for i := 0; i < len(l); i++ {
				if !alnum(l[i]) && l[i] != '_' && l[i] != '-' {
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}

func alnum(ch byte) bool {
	return ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9'
}

// checkTags checks a TagList and returns it as a map. Keys are 1 to 128
// characters and not "aws:"-prefixed, values at most 256; a request
// carries at most 200 tags.
func checkTags(c *model.Checker, field string, tags []tagIn) map[string]string {
	if len(tags) > maxTagsPerRequest {
		c.Addf(field, "must have at most %d tags, got %d", maxTagsPerRequest, len(tags))
		return nil
	}
	out := make(map[string]string, len(tags))
	for i, t := range tags {
		f := field + "." + strconv.Itoa(i+1)
		if t.Key == nil || t.Value == nil {
			c.Addf(f, "a tag needs both Key and Value")
			continue
		}
		k, v := *t.Key, *t.Value
		switch n := len([]rune(k)); {
		case n < 1 || n > 128:
			c.Addf(f+".Key", "must be 1 to 128 characters long")
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			c.Addf(f+".Key", "tag keys starting with \"aws:\" are reserved")
		}
		if len([]rune(v)) > 256 {
			c.Addf(f+".Value", "must be at most 256 characters long")
		}
		if _, dup := out[k]; dup {
			c.Addf(f+".Key", "tag key %q appears more than once", k)
		}
		out[k] = v
	}
	return out
}

// tooManyTags is the error of a resource that would carry more than 50 tags.
func tooManyTags(arn string, n int) *Error {
	return with(errorf(TypeTooManyTags, "a resource can have at most %d tags; this request would give it %d", maxTagsPerResource, n),
		"ResourceName", arn)
}

// validAttrKey follows ^[a-zA-Z0-9!-~]+$ with at most 255 characters.
func validAttrKey(k string) bool { return len(k) <= maxAttrKey && printable(k) }

// validAttrValue follows the model's pattern: at most 1024 characters of
// visible ASCII with inner spaces and tabs, not starting with whitespace.
func validAttrValue(v string) bool {
	if len(v) > maxAttrValue {
		return false
	}
	for i := 0; i < len(v); i++ {
		ch := v[i]
		if ch >= '!' && ch <= '~' {
			continue
		}
		if (ch == ' ' || ch == '\t') && i > 0 {
			continue
		}
		return false
	}
	return true
}

// checkAttributeMap checks the keys and values of an Attributes map
// (QueryParameters, OptionalParameters, instance attributes).
func checkAttributeMap(c *model.Checker, field string, m map[string]string) {
	for _, k := range sortedKeys(m) {
		if !validAttrKey(k) {
			c.Addf(field, "key %q must be 1 to %d visible ASCII characters", k, maxAttrKey)
			continue
		}
		if !validAttrValue(m[k]) {
			c.Addf(field+"."+k, "must be at most %d visible ASCII characters, spaces and tabs, not starting with whitespace", maxAttrValue)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkInstanceAttributes checks a RegisterInstance's attributes against
// the rules of the reserved keys and the service's DNS and health
// configuration (reference §5.5).
func checkInstanceAttributes(c *model.Checker, svc *service, attrs map[string]string) {
	const f = "Attributes"
	if len(attrs) == 0 {
		c.Addf(f, "is required: at least one attribute (for example %s and %s)", AttrIPv4, AttrPort)
		return
	}
	checkAttributeMap(c, f, attrs)
	custom, chars := 0, 0
	for k, v := range attrs {
		chars += len(k) + len(v)
		if !strings.HasPrefix(k, "AWS_") {
			custom++
		}
	}
	if custom > maxCustomAttributes {
		c.Addf(f, "at most %d custom attributes are allowed, got %d", maxCustomAttributes, custom)
	}
	if chars > maxAttributesChars {
		c.Addf(f, "keys and values together must be at most %d characters, got %d", maxAttributesChars, chars)
	}
	v4, hasV4 := attrs[AttrIPv4]
	v6, hasV6 := attrs[AttrIPv6]
	port, hasPort := attrs[AttrPort]
	if hasV4 {
		if a, err := netip.ParseAddr(v4); err != nil || !a.Is4() {
			c.Addf(f+"."+AttrIPv4, "must be an IPv4 address such as 192.0.2.44, got %q", v4)
		}
	}
	if hasV6 {
		if a, err := netip.ParseAddr(v6); err != nil || !a.Is6() || a.Is4In6() {
			c.Addf(f+"."+AttrIPv6, "must be an IPv6 address such as 2001:db8::1, got %q", v6)
		}
	}
	if hasPort {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			c.Addf(f+"."+AttrPort, "must be a port number from 1 to 65535, got %q", port)
		}
	}
	if s, ok := attrs[AttrInitHealthStat]; ok && s != Healthy && s != Unhealthy {
		c.Addf(f+"."+AttrInitHealthStat, "must be HEALTHY or UNHEALTHY, got %q", s)
	}
	if _, ok := attrs[AttrEC2InstanceID]; ok {
		c.Addf(f+"."+AttrEC2InstanceID, "is not supported: Trellis cannot look up EC2 instances; register %s (and %s) instead", AttrIPv4, AttrPort)
	}
	if alias, ok := attrs[AttrAliasDNSName]; ok {
		checkAlias(c, svc, attrs, alias)
	}
	if svc.DNS != nil {
		for _, r := range svc.DNS.DNSRecords {
			switch r.Type {
			case "A":
				if !hasV4 && attrs[AttrAliasDNSName] == "" {
					c.Addf(f, "%s is required: service %s has an A record", AttrIPv4, svc.ID)
				}
			case "AAAA":
				if !hasV6 && attrs[AttrAliasDNSName] == "" {
					c.Addf(f, "%s is required: service %s has an AAAA record", AttrIPv6, svc.ID)
				}
			case "SRV":
				if !hasPort || !hasV4 && !hasV6 {
					c.Addf(f, "%s and %s or %s are required: service %s has an SRV record", AttrPort, AttrIPv4, AttrIPv6, svc.ID)
				}
			case "CNAME":
				if attrs[AttrCNAME] == "" {
					c.Addf(f, "%s is required: service %s has a CNAME record", AttrCNAME, svc.ID)
				}
			}
		}
	}
	if svc.HealthCheck != nil && (!hasPort || !hasV4) && attrs[AttrAliasDNSName] == "" {
		c.Addf(f, "%s and %s are required: service %s has a health check", AttrIPv4, AttrPort, svc.ID)
	}
}

func checkAlias(c *model.Checker, svc *service, attrs map[string]string, alias string) {
	const f = "Attributes." + AttrAliasDNSName
	if svc.DNS == nil || svc.DNS.RoutingPolicy != "WEIGHTED" {
		c.Addf(f, "needs a service with DNS records and the WEIGHTED routing policy")
	} else {
		for _, r := range svc.DNS.DNSRecords {
			if r.Type != "A" && r.Type != "AAAA" {
				c.Addf(f, "needs a service whose DNS records are A or AAAA, not %s", r.Type)
			}
		}
	}
	if svc.HealthCheck != nil {
		c.Addf(f, "cannot be used with a Route 53 health check")
	}
	for _, k := range []string{AttrIPv4, AttrIPv6, AttrPort, AttrCNAME} {
		if _, ok := attrs[k]; ok {
			c.Addf(f, "cannot be combined with %s", k)
		}
	}
	if alias == "" {
		c.Addf(f, "must be a DNS name")
	}
}

// checkDNSConfig checks a DnsConfig (or DnsConfigChange when change).
func checkDNSConfig(c *model.Checker, field string, d *dnsConfigIn) *dnsConfig {
	out := &dnsConfig{RoutingPolicy: "MULTIVALUE"}
	if d.RoutingPolicy != nil {
		c.Enum(field+".RoutingPolicy", *d.RoutingPolicy, "MULTIVALUE", "WEIGHTED")
		out.RoutingPolicy = *d.RoutingPolicy
	}
	out.DNSRecords = checkDNSRecords(c, field+".DnsRecords", d.DNSRecords)
	for _, r := range out.DNSRecords {
		if r.Type == "CNAME" && out.RoutingPolicy != "WEIGHTED" {
			c.Addf(field+".RoutingPolicy", "must be WEIGHTED for a CNAME record")
		}
	}
	return out
}

// checkDNSRecords checks a DnsRecords list: one of the combinations A,
// AAAA, A and AAAA, SRV, or CNAME, each with a TTL of 0 to 2147483647.
func checkDNSRecords(c *model.Checker, field string, recs []dnsRecordIn) []dnsRecord {
	if len(recs) == 0 {
		c.Addf(field, "is required: at least one record")
		return nil
	}
	out := make([]dnsRecord, 0, len(recs))
	seen := map[string]bool{}
	for i, r := range recs {
		f := fmt.Sprintf("%s.%d", field, i+1)
		c.Enum(f+".Type", r.Type, "SRV", "A", "AAAA", "CNAME")
		if r.TTL == nil {
			c.Addf(f+".TTL", "is required")
		} else {
			c.Range(f+".TTL", *r.TTL, 0, maxTTL)
		}
		if seen[r.Type] {
			c.Addf(f+".Type", "record type %s appears more than once", r.Type)
		}
		seen[r.Type] = true
		out = append(out, dnsRecord{Type: r.Type, TTL: derefOr(r.TTL, 0)})
	}
	if len(seen) > 1 && !(len(seen) == 2 && seen["A"] && seen["AAAA"]) {
		c.Addf(field, "record types may be A, AAAA, A and AAAA, SRV, or CNAME")
	}
	return out
}

// checkHealthCheckConfig checks a Route 53 health check configuration.
func checkHealthCheckConfig(c *model.Checker, field string, h *healthCheckConfigIn) *healthCheckConfig {
	c.Enum(field+".Type", h.Type, "HTTP", "HTTPS", "TCP")
	out := &healthCheckConfig{Type: h.Type, FailureThreshold: 1}
	if h.FailureThreshold != nil {
		c.Range(field+".FailureThreshold", int64(*h.FailureThreshold), 1, 10)
		out.FailureThreshold = *h.FailureThreshold
	}
	if h.ResourcePath != nil {
		maxLen(c, field+".ResourcePath", h.ResourcePath, 255)
		if h.Type == "TCP" {
			c.Addf(field+".ResourcePath", "cannot be set for a TCP health check")
		}
		out.ResourcePath = *h.ResourcePath
	}
	if out.ResourcePath == "" && h.Type != "TCP" {
		out.ResourcePath = "/"
	}
	return out
}

// checkSOA checks a namespace's SOA TTL.
func checkSOA(c *model.Checker, field string, p *dnsNamespacePropertiesIn) *int64 {
	if p == nil {
		return nil
	}
	if p.DNSProperties == nil {
		c.Addf(field+".DnsProperties", "is required")
		return nil
	}
	if p.DNSProperties.SOA == nil {
		c.Addf(field+".DnsProperties.SOA", "is required")
		return nil
	}
	if p.DNSProperties.SOA.TTL == nil {
		c.Addf(field+".DnsProperties.SOA.TTL", "is required")
		return nil
	}
	c.Range(field+".DnsProperties.SOA.TTL", *p.DNSProperties.SOA.TTL, 0, maxTTL)
	return p.DNSProperties.SOA.TTL
}

// checkMaxResults checks an optional MaxResults against 1..hi and
// returns it or def.
func checkMaxResults(c *model.Checker, v *int32, hi, def int) int {
	if v == nil {
		return def
	}
	c.Range("MaxResults", int64(*v), 1, int64(hi))
	return int(*v)
}

// condition returns a filter's condition (default EQ) after checking it
// is one of allowed and that values has a fitting length.
func condition(c *model.Checker, field string, f filterIn, allowed ...string) string {
	cond := "EQ"
	if f.Condition != nil {
		cond = *f.Condition
	}
	c.Enum(field+".Condition", cond, allowed...)
	if len(f.Values) == 0 {
		c.Addf(field+".Values", "is required")
	}
	for _, v := range f.Values {
		if len(v) < 1 || len(v) > 255 {
			c.Addf(field+".Values", "each value must be 1 to 255 characters long")
			break
		}
	}
	switch cond {
	case "EQ", "BEGINS_WITH":
		if len(f.Values) > 1 {
			c.Addf(field+".Values", "%s takes exactly one value, got %d", cond, len(f.Values))
		}
	case "BETWEEN":
		if len(f.Values) != 2 {
			c.Addf(field+".Values", "BETWEEN takes two values (start and end), got %d", len(f.Values))
		}
	}
	return cond
}

func derefOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
