package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Checks on single values, shared by the resolver (on the document) and
// Config.Validate (on the resolved form). Each returns "" for a good
// value, or a message saying what is wrong.

const (
	maxPortNameLen      = 64   // ECS PortMapping.name
	maxDiscoveryNameLen = 63   // ECS allows 64; a Cloud Map service-name label is at most 63
	maxDNSNameLen       = 127  // ECS ServiceConnectClientAlias.dnsName
	maxDNSLabelLen      = 63   // RFC 1035
	maxNamespaceNameLen = 1024 // Cloud Map HTTP namespace name
	maxKMSKeyLen        = 2048 // KMS key ID, ARN or alias
	maxReadinessPathLen = 2048
)

// checkPortName checks a PortMapping name or a portName: 1 to 64
// characters of [a-z0-9_-], not starting with '-' (ECS).
func checkPortName(s string) string {
	if msg := checkLength(s, maxPortNameLen); msg != "" {
		return msg
	}
	if !onlyChars(s, "_-") {
		return "may contain only lowercase letters, digits, '_' and '-'"
	}
	if s[0] == '-' {
		return "must not start with '-'"
	}
	return ""
}

// checkDiscoveryName checks a discoveryName. ECS allows 64 characters of
// [a-z0-9_-] not starting with '-'; the name becomes a Cloud Map service
// name, whose pattern further caps it at 63 characters and forbids a
// trailing '-' and a lone '_'. We enforce both, so that a name the
// registry would refuse fails here rather than at registration.
func checkDiscoveryName(s string) string {
	if msg := checkLength(s, maxDiscoveryNameLen); msg != "" {
		return msg
	}
	if !onlyChars(s, "_-") {
		return "may contain only lowercase letters, digits, '_' and '-'"
	}
	if s[0] == '-' || s[len(s)-1] == '-' {
		return "must not start or end with '-'"
	}
	if s == "_" {
		return "a one-character name must be a letter or digit"
	}
	return ""
}

// checkDNSName checks a client alias dnsName: at most 127 characters of
// [a-z0-9_.-] (ECS), forming a DNS name of non-empty labels of at most 63
// characters that neither start nor end with '-'. It need not be fully
// qualified, and a trailing dot is not allowed.
func checkDNSName(s string) string {
	if msg := checkLength(s, maxDNSNameLen); msg != "" {
		return msg
	}
	if !onlyChars(s, "_.-") {
		return "may contain only lowercase letters, digits, '_', '.' and '-'"
	}
	for label := range strings.SplitSeq(s, ".") {
		switch {
		case label == "":
			return "must not have an empty label (a leading, trailing or doubled '.')"
		case len(label) > maxDNSLabelLen:
			return fmt.Sprintf("label %q is longer than %d characters", label, maxDNSLabelLen)
		case label[0] == '-' || label[len(label)-1] == '-':
			return fmt.Sprintf("label %q must not start or end with '-'", label)
		}
	}
	return ""
}

// checkLength checks that s has 1 to maxLen bytes.
func checkLength(s string, maxLen int) string {
	if s == "" {
		return "must not be empty"
	}
	if len(s) > maxLen {
		return fmt.Sprintf("must be at most %d characters, got %d", maxLen, len(s))
	}
	return ""
}

// onlyChars reports whether s has only lowercase ASCII letters, digits
// and bytes of extra.
func onlyChars(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

// checkNamespaceName checks a namespace name: 1 to 1024 visible ASCII
// characters, Cloud Map's rule for HTTP namespaces (the type Trellis
// namespaces have).
func checkNamespaceName(s string) string {
	if msg := checkLength(s, maxNamespaceNameLen); msg != "" {
		return msg
	}
	if !visibleASCII(s) {
		return "may contain only visible ASCII characters (no spaces)"
	}
	return ""
}

func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' {
			return false
		}
	}
	return true
}

// checkARN checks that s is an ARN of the given service (any service if
// "") whose resource starts with resourcePrefix:
// arn:partition:service:region:account:resource.
func checkARN(s, service, resourcePrefix string) string {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[2] == "" || parts[5] == "" || !visibleASCII(s) {
		return fmt.Sprintf("must be an ARN (arn:partition:service:region:account:resource), got %q", s)
	}
	if service != "" && parts[2] != service {
		return fmt.Sprintf("must be an ARN of service %q, got %q", service, parts[2])
	}
	if !strings.HasPrefix(parts[5], resourcePrefix) || len(parts[5]) == len(resourcePrefix) {
		return fmt.Sprintf("must be an ARN whose resource is %s<id>, got %q", resourcePrefix, parts[5])
	}
	return ""
}

// checkHeaderName checks an HTTP header field name: an RFC 9110 token.
func checkHeaderName(s string) string {
	if s == "" {
		return "must not be empty"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return fmt.Sprintf("must be an HTTP header name (an RFC 9110 token), got %q", s)
		}
	}
	return ""
}

// checkHeaderValue checks an HTTP header field value: visible ASCII,
// spaces and tabs, with no whitespace at either end (RFC 9110 §5.5).
func checkHeaderValue(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return "must not contain control characters"
		}
	}
	if strings.TrimSpace(s) != s {
		return "must not start or end with whitespace"
	}
	return ""
}

// checkReadinessPath checks a readiness request target: an origin-form
// path starting with '/', visible ASCII, at most 2048 characters.
func checkReadinessPath(s string) string {
	switch {
	case !strings.HasPrefix(s, "/"):
		return fmt.Sprintf("must start with '/', got %q", s)
	case len(s) > maxReadinessPathLen:
		return fmt.Sprintf("must be at most %d characters, got %d", maxReadinessPathLen, len(s))
	case !visibleASCII(s):
		return "may contain only visible ASCII characters (no spaces); percent-encode the rest"
	}
	return ""
}

// vipBlocks are the ranges a VIP CIDR may lie in: IPv4 loopback and the
// RFC 1918 private ranges.
var vipBlocks = [...]netip.Prefix{
	netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 0, 0, 0}), 8),
	netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, 0}), 8),
	netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, 0, 0}), 12),
	netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, 0, 0}), 16),
}

// checkVIPCIDR checks a VIP range: an IPv4 prefix with no host bits set,
// of at least 256 addresses (at most /24), inside loopback or an RFC 1918
// range, not containing 127.0.0.1.
func checkVIPCIDR(p netip.Prefix) string {
	// Applications reach their own task on 127.0.0.1; no VIP may shadow it.
	localhost := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	switch {
	case !p.IsValid():
		return "must be a CIDR such as 127.255.0.0/16"
	case !p.Addr().Is4():
		return fmt.Sprintf("must be an IPv4 range, got %s", p)
	case p.Masked() != p:
		return fmt.Sprintf("has host bits set; the range is %s", p.Masked())
	case p.Bits() > MaxVIPPrefixBits:
		return fmt.Sprintf("must hold at least 256 addresses (a prefix of at most /%d), got /%d", MaxVIPPrefixBits, p.Bits())
	case p.Contains(localhost):
		return fmt.Sprintf("must not contain %s", localhost)
	}
	for _, b := range vipBlocks {
		if b.Bits() <= p.Bits() && b.Contains(p.Addr()) {
			return ""
		}
	}
	return fmt.Sprintf("must lie inside 127.0.0.0/8, 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16, got %s", p)
}

// checkAdminAddr checks the admin listen address: host:port, where host
// is an IP address or "localhost" (0.0.0.0 or :: for every interface, to
// be explicit about exposing it) and port is 0 to 65535 (0 picks a free
// port).
func checkAdminAddr(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("must be host:port, got %q", s)
	}
	if host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Sprintf("host must be an IP address or localhost (0.0.0.0 for every interface), got %q", host)
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || strconv.Itoa(n) != port {
		return fmt.Sprintf("port must be a number from 0 to 65535, got %q", port)
	}
	return ""
}
