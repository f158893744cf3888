package model_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/model"
)

func i32(v int32) *int32           { return &v }
func str(v string) *string         { return &v }
func boolp(v bool) *bool           { return &v }
func code(s string) *model.Matcher { return &model.Matcher{HTTPCode: &s} }

// fieldNames returns the names of the fields c flagged, sorted.
func fieldNames(t *testing.T, c *model.Checker) []string {
	t.Helper()
	err := c.Err()
	if c.OK() != (err == nil) {
		t.Fatalf("OK() = %v but Err() = %v", c.OK(), err)
	}
	if err == nil {
		return nil
	}
	var ve *model.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Err() is %T, want *model.ValidationError", err)
	}
	var names []string
	for _, f := range ve.Fields {
		if f.Message == "" {
			t.Errorf("field %q has no message", f.Name)
		}
		if !strings.Contains(ve.Error(), f.Name+": "+f.Message) {
			t.Errorf("Error() %q does not mention %q", ve.Error(), f.Name)
		}
		names = append(names, f.Name)
	}
	slices.Sort(names)
	return names
}

// wantFields compares the flagged fields with want (nil: valid).
func wantFields(t *testing.T, name string, c *model.Checker, want ...string) {
	t.Helper()
	got := fieldNames(t, c)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: invalid fields %q, want %q (%v)", name, got, want, c.Err())
	}
}

func TestResourceName(t *testing.T) {
	for _, tc := range []struct {
		name, v  string
		min, max int
		reserved string
		ok       bool
	}{
		{"shortest", "abc", 3, 63, "", true},
		{"digits", "123", 3, 63, "", true},
		{"inner hyphen", "a-b-c", 3, 63, "", true},
		{"longest", strings.Repeat("a", 63), 3, 63, "", true},
		{"too short", "ab", 3, 63, "", false},
		{"empty", "", 3, 63, "", false},
		{"too long", strings.Repeat("a", 64), 3, 63, "", false},
		{"leading hyphen", "-abc", 3, 63, "", false},
		{"trailing hyphen", "abc-", 3, 63, "", false},
		{"only hyphens", "---", 3, 63, "", false},
		{"double hyphen", "a--b", 3, 63, "", false},
		{"uppercase", "Abc", 3, 63, "", false},
		{"all uppercase", "SHOP", 3, 63, "", false},
		{"underscore", "a_b", 3, 63, "", false},
		{"dot", "a.b", 3, 63, "", false},
		{"space", "a b", 3, 63, "", false},
		{"non-ASCII", "ábc", 3, 63, "", false},
		{"NUL", "ab\x00", 3, 63, "", false},
		{"reserved prefix", "svc-orders", 3, 40, "svc", false},
		{"reserved prefix exactly", "tg-", 3, 128, "tg", false},
		{"prefix without hyphen", "svcorders", 3, 40, "svc", true},
		{"prefix not at start", "my-svc-x", 3, 40, "svc", true},
		{"other prefix", "svc-orders", 3, 40, "tg", true},
		{"listener prefix", "listener-1", 3, 63, "listener", false},
		{"multibyte counts bytes", strings.Repeat("é", 2), 3, 63, "", false},
		{"zero minimum, empty", "", 0, 10, "", true},
		{"zero minimum, hyphen", "-", 0, 10, "", false},
		{"one character", "a", 1, 63, "", true},
	} {
		var c model.Checker
		c.ResourceName("name", tc.v, tc.min, tc.max, tc.reserved)
		if tc.ok {
			wantFields(t, tc.name, &c)
		} else {
			wantFields(t, tc.name, &c, "name")
		}
	}
}

func TestEnumRangeLengthClientTokenTags(t *testing.T) {
	var c model.Checker
	c.Enum("a", "HTTP", "HTTP", "HTTPS")
	c.Range("b", 5, 5, 300)
	c.Length("c", "ééé", 1, 3)
	c.ClientToken("d", nil)
	c.ClientToken("e", str("abc-123_~!"))
	c.Tags("f", map[string]string{"team": "", "k": strings.Repeat("v", 256)})
	wantFields(t, "valid", &c)

	c = model.Checker{}
	c.Enum("a", "http", "HTTP", "HTTPS")
	c.Range("b", 301, 5, 300)
	c.Length("c", "éééé", 1, 3)
	c.ClientToken("d", str(""))
	c.ClientToken("e", str("has space"))
	c.ClientToken("g", str(strings.Repeat("x", 65)))
	c.Tags("f", map[string]string{"aws:x": "", "AWS:y": "", "": "v", "k": strings.Repeat("v", 257)})
	wantFields(t, "invalid", &c, "a", "b", "c", "d", "e", "g", "f.aws:x", "f.AWS:y", "f.", "f.k")

	tags := map[string]string{}
	for i := range model.MaxTags + 1 {
		tags[strings.Repeat("k", i+1)] = ""
	}
	c = model.Checker{}
	c.Tags("tags", tags)
	wantFields(t, "too many tags", &c, "tags")
}

func TestRuleMatch(t *testing.T) {
	hm := func(h model.HTTPMatch) *model.RuleMatch { return &model.RuleMatch{HTTPMatch: &h} }
	exact := func(s string) *model.PathMatch { return &model.PathMatch{Match: model.PathMatchType{Exact: &s}} }
	prefix := func(s string) *model.PathMatch { return &model.PathMatch{Match: model.PathMatchType{Prefix: &s}} }
	header := func(name string, m model.HeaderMatchType) model.HeaderMatch {
		return model.HeaderMatch{Name: name, Match: m}
	}
	const f = "match.httpMatch"
	for _, tc := range []struct {
		name string
		m    *model.RuleMatch
		want []string
	}{
		{"nil", nil, []string{"match"}},
		{"empty union", &model.RuleMatch{}, []string{"match"}},
		{"empty httpMatch", hm(model.HTTPMatch{}), []string{f}},
		{"empty header list", hm(model.HTTPMatch{HeaderMatches: []model.HeaderMatch{}}), []string{f}},
		{"method", hm(model.HTTPMatch{Method: str("GET")}), nil},
		{"custom method token", hm(model.HTTPMatch{Method: str("PURGE")}), nil},
		{"empty method", hm(model.HTTPMatch{Method: str("")}), []string{f + ".method"}},
		{"long method", hm(model.HTTPMatch{Method: str(strings.Repeat("A", 17))}), []string{f + ".method"}},
		{"16-character method", hm(model.HTTPMatch{Method: str(strings.Repeat("A", 16))}), nil},
		{"method with space", hm(model.HTTPMatch{Method: str("GE T")}), []string{f + ".method"}},
		{"exact path", hm(model.HTTPMatch{PathMatch: exact("/orders/1")}), nil},
		{"prefix path", hm(model.HTTPMatch{PathMatch: prefix("/")}), nil},
		{"path with every allowed character", hm(model.HTTPMatch{PathMatch: prefix("/aZ09@:%_+.~#?&/=-")}), nil},
		{"exact and prefix", hm(model.HTTPMatch{PathMatch: &model.PathMatch{Match: model.PathMatchType{Exact: str("/a"), Prefix: str("/a")}}}), []string{f + ".pathMatch.match"}},
		{"neither exact nor prefix", hm(model.HTTPMatch{PathMatch: &model.PathMatch{}}), []string{f + ".pathMatch.match"}},
		{"relative path", hm(model.HTTPMatch{PathMatch: exact("orders")}), []string{f + ".pathMatch.match.exact"}},
		{"empty path", hm(model.HTTPMatch{PathMatch: prefix("")}), []string{f + ".pathMatch.match.prefix"}},
		{"path with space", hm(model.HTTPMatch{PathMatch: prefix("/a b")}), []string{f + ".pathMatch.match.prefix"}},
		{"path with non-ASCII", hm(model.HTTPMatch{PathMatch: prefix("/é")}), []string{f + ".pathMatch.match.prefix"}},
		{"path of 200", hm(model.HTTPMatch{PathMatch: prefix("/" + strings.Repeat("a", 199))}), nil},
		{"path of 201", hm(model.HTTPMatch{PathMatch: prefix("/" + strings.Repeat("a", 200))}), []string{f + ".pathMatch.match.prefix"}},
		{"header exact", hm(model.HTTPMatch{HeaderMatches: []model.HeaderMatch{header("x-env", model.HeaderMatchType{Exact: str("prod")})}}), nil},
		{"header contains", hm(model.HTTPMatch{HeaderMatches: []model.HeaderMatch{header("X-Env", model.HeaderMatchType{Contains: str("pr")})}}), nil},
		{"header without match", hm(model.HTTPMatch{HeaderMatches: []model.HeaderMatch{header("x", model.HeaderMatchType{})}}), []string{f + ".headerMatches[0].match"}},
		{"header with two matches", hm(model.HTTPMatch{HeaderMatches: []model.HeaderMatch{header("x", model.HeaderMatchType{Exact: str("a"), Prefix: str("a")})}}), []string{f + ".headerMatches[0].match"}},
		{"header empty value", hm(model.HTTPMatch{HeaderMatches: []model.HeaderMatch{header("x", model.HeaderMatchType{Prefix: str("")})}}), []string{f + ".headerMatches[0].match"}},
		{"header long value", hm(model.HTTPMatch{HeaderMatches: []model.HeaderMatch{header("x", model.HeaderMatchType{Exact: str(strings.Repeat("v", 201))})}}), []string{f + ".headerMatches[0].match"}},
		{"header empty name", hm(model.HTTPMatch{HeaderMatches: []model.HeaderMatch{header("", model.HeaderMatchType{Exact: str("a")})}}), []string{f + ".headerMatches[0].name"}},
		{"header name with colon", hm(model.HTTPMatch{HeaderMatches: []model.HeaderMatch{header("x:y", model.HeaderMatchType{Exact: str("a")})}}), []string{f + ".headerMatches[0].name"}},
		{"header long name", hm(model.HTTPMatch{HeaderMatches: []model.HeaderMatch{header(strings.Repeat("h", 101), model.HeaderMatchType{Exact: str("a")})}}), []string{f + ".headerMatches[0].name"}},
		{"five headers", hm(model.HTTPMatch{HeaderMatches: slices.Repeat([]model.HeaderMatch{header("x", model.HeaderMatchType{Exact: str("a")})}, 5)}), nil},
		{"six headers", hm(model.HTTPMatch{HeaderMatches: slices.Repeat([]model.HeaderMatch{header("x", model.HeaderMatchType{Exact: str("a")})}, 6)}), []string{f + ".headerMatches"}},
		{"second header bad", hm(model.HTTPMatch{Method: str("GET"), HeaderMatches: []model.HeaderMatch{
			header("x", model.HeaderMatchType{Exact: str("a")}), header("y", model.HeaderMatchType{})}}), []string{f + ".headerMatches[1].match"}},
		{"everything wrong", hm(model.HTTPMatch{Method: str(""), PathMatch: exact("x"), HeaderMatches: []model.HeaderMatch{header("", model.HeaderMatchType{})}}),
			[]string{f + ".method", f + ".pathMatch.match.exact", f + ".headerMatches[0].name", f + ".headerMatches[0].match"}},
	} {
		var c model.Checker
		c.RuleMatch("match", tc.m)
		wantFields(t, tc.name, &c, tc.want...)
	}
}

func TestRuleAction(t *testing.T) {
	const tgA, tgB = "tg-0123456789abcdef0", "tg-0123456789abcdef1"
	tgARN := "arn:aws:vpc-lattice:us-east-1:111122223333:targetgroup/" + tgA
	fwd := func(tgs ...model.WeightedTargetGroup) *model.RuleAction {
		return &model.RuleAction{Forward: &model.ForwardAction{TargetGroups: tgs}}
	}
	w := func(id string, weight *int32) model.WeightedTargetGroup {
		return model.WeightedTargetGroup{TargetGroupIdentifier: id, Weight: weight}
	}
	const f = "action.forward.targetGroups"
	many := make([]model.WeightedTargetGroup, 11)
	for i := range many {
		many[i] = w("tg-0123456789abcde"+string(rune('a'+i)), nil)
	}
	for _, tc := range []struct {
		name string
		a    *model.RuleAction
		want []string
	}{
		{"nil", nil, []string{"action"}},
		{"empty union", &model.RuleAction{}, []string{"action"}},
		{"both members", &model.RuleAction{Forward: &model.ForwardAction{TargetGroups: []model.WeightedTargetGroup{w(tgA, nil)}},
			FixedResponse: &model.FixedResponseAction{StatusCode: 404}}, []string{"action"}},
		{"fixed 404", &model.RuleAction{FixedResponse: &model.FixedResponseAction{StatusCode: 404}}, nil},
		{"fixed 500", &model.RuleAction{FixedResponse: &model.FixedResponseAction{StatusCode: 500}}, nil},
		{"fixed 200", &model.RuleAction{FixedResponse: &model.FixedResponseAction{StatusCode: 200}}, []string{"action.fixedResponse.statusCode"}},
		{"fixed 0", &model.RuleAction{FixedResponse: &model.FixedResponseAction{}}, []string{"action.fixedResponse.statusCode"}},
		{"forward one", fwd(w(tgA, nil)), nil},
		{"forward by ARN", fwd(w(tgARN, i32(10))), nil},
		{"weights 0 and 999", fwd(w(tgA, i32(0)), w(tgB, i32(999))), nil},
		{"forward none", fwd(), []string{f}},
		{"forward eleven", fwd(many...), []string{f}},
		{"forward ten", fwd(many[:10]...), nil},
		{"short identifier", fwd(w("tg-1", nil)), []string{f + "[0].targetGroupIdentifier"}},
		{"empty identifier", fwd(w("", nil)), []string{f + "[0].targetGroupIdentifier"}},
		{"long identifier", fwd(w(strings.Repeat("a", 2049), nil)), []string{f + "[0].targetGroupIdentifier"}},
		{"duplicate", fwd(w(tgA, nil), w(tgA, nil)), []string{f + "[1].targetGroupIdentifier"}},
		{"negative weight", fwd(w(tgA, i32(-1))), []string{f + "[0].weight"}},
		{"weight 1000", fwd(w(tgA, nil), w(tgB, i32(1000))), []string{f + "[1].weight"}},
	} {
		var c model.Checker
		c.RuleAction("action", tc.a)
		wantFields(t, tc.name, &c, tc.want...)
	}
}

func TestTargetGroupConfig(t *testing.T) {
	const vpc = "vpc-0123456789abcdef0"
	httpCfg := func(mod func(*model.TargetGroupConfig)) *model.TargetGroupConfig {
		c := &model.TargetGroupConfig{Protocol: model.ProtocolHTTP, VpcIdentifier: vpc}
		if mod != nil {
			mod(c)
		}
		return c
	}
	for _, tc := range []struct {
		name, typ string
		cfg       *model.TargetGroupConfig
		want      []string
	}{
		{"lambda without config", model.TargetGroupTypeLambda, nil, nil},
		{"lambda V2", model.TargetGroupTypeLambda, &model.TargetGroupConfig{LambdaEventStructureVersion: "V2"}, nil},
		{"lambda V3", model.TargetGroupTypeLambda, &model.TargetGroupConfig{LambdaEventStructureVersion: "V3"}, []string{"config.lambdaEventStructureVersion"}},
		{"lambda with port", model.TargetGroupTypeLambda, &model.TargetGroupConfig{Port: i32(80)}, []string{"config"}},
		{"lambda with health check", model.TargetGroupTypeLambda, &model.TargetGroupConfig{HealthCheck: &model.HealthCheckConfig{}}, []string{"config"}},
		{"IP without config", model.TargetGroupTypeIP, nil, []string{"config"}},
		{"IP minimal", model.TargetGroupTypeIP, httpCfg(nil), nil},
		{"IP short VPC ID", model.TargetGroupTypeIP, httpCfg(func(c *model.TargetGroupConfig) { c.VpcIdentifier = "vpc-0123abcd" }), nil},
		{"IP bad VPC ID", model.TargetGroupTypeIP, httpCfg(func(c *model.TargetGroupConfig) { c.VpcIdentifier = "vpc-123" }), []string{"config.vpcIdentifier"}},
		{"IP VPC ID uppercase", model.TargetGroupTypeIP, httpCfg(func(c *model.TargetGroupConfig) { c.VpcIdentifier = "vpc-0123ABCD" }), []string{"config.vpcIdentifier"}},
		{"IP no VPC", model.TargetGroupTypeIP, httpCfg(func(c *model.TargetGroupConfig) { c.VpcIdentifier = "" }), []string{"config.vpcIdentifier"}},
		{"IP no protocol", model.TargetGroupTypeIP, httpCfg(func(c *model.TargetGroupConfig) { c.Protocol = "" }), []string{"config.protocol"}},
		{"IP lowercase protocol", model.TargetGroupTypeIP, httpCfg(func(c *model.TargetGroupConfig) { c.Protocol = "http" }), []string{"config.protocol"}},
		{"IP TCP", model.TargetGroupTypeIP, httpCfg(func(c *model.TargetGroupConfig) { c.Protocol = model.ProtocolTCP }), nil},
		{"TCP with version", model.TargetGroupTypeIP, httpCfg(func(c *model.TargetGroupConfig) {
			c.Protocol, c.ProtocolVersion = model.ProtocolTCP, model.ProtocolVersionHTTP1
		}), []string{"config.protocolVersion"}},
		{"HTTPS GRPC", model.TargetGroupTypeInstance, httpCfg(func(c *model.TargetGroupConfig) {
			c.Protocol, c.ProtocolVersion = model.ProtocolHTTPS, model.ProtocolVersionGRPC
		}), nil},
		{"bad version", model.TargetGroupTypeIP, httpCfg(func(c *model.TargetGroupConfig) { c.ProtocolVersion = "HTTP3" }), []string{"config.protocolVersion"}},
		{"ALB TCP", model.TargetGroupTypeALB, httpCfg(func(c *model.TargetGroupConfig) { c.Protocol = model.ProtocolTCP }), []string{"config.protocol"}},
		{"ALB HTTPS", model.TargetGroupTypeALB, httpCfg(func(c *model.TargetGroupConfig) { c.Protocol = model.ProtocolHTTPS }), nil},
		{"ALB health check", model.TargetGroupTypeALB, httpCfg(func(c *model.TargetGroupConfig) { c.HealthCheck = &model.HealthCheckConfig{} }), []string{"config.healthCheck"}},
		{"port 1", model.TargetGroupTypeIP, httpCfg(func(c *model.TargetGroupConfig) { c.Port = i32(1) }), nil},
		{"port 0", model.TargetGroupTypeIP, httpCfg(func(c *model.TargetGroupConfig) { c.Port = i32(0) }), []string{"config.port"}},
		{"port 65536", model.TargetGroupTypeIP, httpCfg(func(c *model.TargetGroupConfig) { c.Port = i32(65536) }), []string{"config.port"}},
		{"IPv6", model.TargetGroupTypeIP, httpCfg(func(c *model.TargetGroupConfig) { c.IPAddressType = model.IPAddressTypeIPv6 }), nil},
		{"bad address type", model.TargetGroupTypeIP, httpCfg(func(c *model.TargetGroupConfig) { c.IPAddressType = "IPV5" }), []string{"config.ipAddressType"}},
		{"address type on INSTANCE", model.TargetGroupTypeInstance, httpCfg(func(c *model.TargetGroupConfig) { c.IPAddressType = model.IPAddressTypeIPv4 }), []string{"config.ipAddressType"}},
		{"lambda version on IP", model.TargetGroupTypeIP, httpCfg(func(c *model.TargetGroupConfig) { c.LambdaEventStructureVersion = "V1" }), []string{"config.lambdaEventStructureVersion"}},
		{"health check checked", model.TargetGroupTypeIP, httpCfg(func(c *model.TargetGroupConfig) {
			c.HealthCheck = &model.HealthCheckConfig{Path: str("x"), HealthCheckIntervalSeconds: i32(2)}
		}), []string{"config.healthCheck.path", "config.healthCheck.healthCheckIntervalSeconds"}},
		{"everything wrong", model.TargetGroupTypeIP, &model.TargetGroupConfig{Port: i32(-1), Protocol: "UDP", IPAddressType: "x"},
			[]string{"config.port", "config.protocol", "config.ipAddressType", "config.vpcIdentifier"}},
	} {
		var c model.Checker
		c.TargetGroupConfig(tc.typ, tc.cfg)
		wantFields(t, tc.name, &c, tc.want...)
	}
}

func TestHealthCheck(t *testing.T) {
	const f = "hc"
	for _, tc := range []struct {
		name string
		h    model.HealthCheckConfig
		want []string
	}{
		{"empty", model.HealthCheckConfig{}, nil},
		{"all zero means defaults", model.HealthCheckConfig{Port: i32(0), Path: str(""), HealthCheckIntervalSeconds: i32(0), HealthCheckTimeoutSeconds: i32(0),
			HealthyThresholdCount: i32(0), UnhealthyThresholdCount: i32(0)}, nil},
		{"lowest", model.HealthCheckConfig{HealthCheckIntervalSeconds: i32(5), HealthCheckTimeoutSeconds: i32(1), HealthyThresholdCount: i32(2), UnhealthyThresholdCount: i32(2)}, nil},
		{"highest", model.HealthCheckConfig{Port: i32(65535), HealthCheckIntervalSeconds: i32(300), HealthCheckTimeoutSeconds: i32(120),
			HealthyThresholdCount: i32(10), UnhealthyThresholdCount: i32(10)}, nil},
		{"interval 4", model.HealthCheckConfig{HealthCheckIntervalSeconds: i32(4)}, []string{f + ".healthCheckIntervalSeconds"}},
		{"interval 301", model.HealthCheckConfig{HealthCheckIntervalSeconds: i32(301)}, []string{f + ".healthCheckIntervalSeconds"}},
		{"interval -1", model.HealthCheckConfig{HealthCheckIntervalSeconds: i32(-1)}, []string{f + ".healthCheckIntervalSeconds"}},
		{"timeout 121", model.HealthCheckConfig{HealthCheckTimeoutSeconds: i32(121)}, []string{f + ".healthCheckTimeoutSeconds"}},
		{"timeout -5", model.HealthCheckConfig{HealthCheckTimeoutSeconds: i32(-5)}, []string{f + ".healthCheckTimeoutSeconds"}},
		{"healthy 1", model.HealthCheckConfig{HealthyThresholdCount: i32(1)}, []string{f + ".healthyThresholdCount"}},
		{"healthy 11", model.HealthCheckConfig{HealthyThresholdCount: i32(11)}, []string{f + ".healthyThresholdCount"}},
		{"unhealthy 1", model.HealthCheckConfig{UnhealthyThresholdCount: i32(1)}, []string{f + ".unhealthyThresholdCount"}},
		{"unhealthy 11", model.HealthCheckConfig{UnhealthyThresholdCount: i32(11)}, []string{f + ".unhealthyThresholdCount"}},
		{"timeout above interval", model.HealthCheckConfig{HealthCheckIntervalSeconds: i32(10), HealthCheckTimeoutSeconds: i32(11)}, []string{f + ".healthCheckTimeoutSeconds"}},
		{"timeout equals interval", model.HealthCheckConfig{HealthCheckIntervalSeconds: i32(10), HealthCheckTimeoutSeconds: i32(10)}, nil},
		// The interval left to its default (30) still bounds the timeout.
		{"timeout above default interval", model.HealthCheckConfig{HealthCheckIntervalSeconds: i32(0), HealthCheckTimeoutSeconds: i32(60)}, []string{f + ".healthCheckTimeoutSeconds"}},
		{"interval below default timeout", model.HealthCheckConfig{HealthCheckIntervalSeconds: i32(5)}, nil},
		{"port -1", model.HealthCheckConfig{Port: i32(-1)}, []string{f + ".port"}},
		{"port 65536", model.HealthCheckConfig{Port: i32(65536)}, []string{f + ".port"}},
		{"HTTPS HTTP2", model.HealthCheckConfig{Protocol: model.ProtocolHTTPS, ProtocolVersion: model.ProtocolVersionHTTP2}, nil},
		{"TCP protocol", model.HealthCheckConfig{Protocol: model.ProtocolTCP}, []string{f + ".protocol"}},
		{"GRPC version", model.HealthCheckConfig{ProtocolVersion: model.ProtocolVersionGRPC}, []string{f + ".protocolVersion"}},
		{"path", model.HealthCheckConfig{Path: str("/healthz?full=1")}, nil},
		{"relative path", model.HealthCheckConfig{Path: str("healthz")}, []string{f + ".path"}},
		{"path with space", model.HealthCheckConfig{Path: str("/a b")}, []string{f + ".path"}},
		{"path of 2048", model.HealthCheckConfig{Path: str("/" + strings.Repeat("p", 2047))}, nil},
		{"path of 2049", model.HealthCheckConfig{Path: str("/" + strings.Repeat("p", 2048))}, []string{f + ".path"}},
		{"matcher union empty", model.HealthCheckConfig{Matcher: &model.Matcher{}}, []string{f + ".matcher"}},
		{"enabled false", model.HealthCheckConfig{Enabled: boolp(false)}, nil},
	} {
		var c model.Checker
		c.HealthCheck(f, &tc.h)
		wantFields(t, tc.name, &c, tc.want...)
	}
}

func TestHealthCheckMatcher(t *testing.T) {
	for _, tc := range []struct {
		code string
		ok   bool
	}{
		{"200", true},
		{"200,202", true},
		{"200-299", true},
		{"200-200", true},
		{"499", true},
		{"200,202-204,302", true},
		{"200-499", true},
		{"199", false},
		{"500", false},
		{"2x0", false},
		{"+200", false},
		{"200-+299", false},
		{"", false},
		{"200,", false},
		{",200", false},
		{"200,,202", false},
		{"200-", false},
		{"-200", false},
		{"299-200", false},
		{"200-500", false},
		{"200-299-300", false},
		{" 200", false},
		{"200 ", false},
		{"2OO", false},
		{"1e3", false},
		{"0x12C", false},
		{"99999999999999999999", false},
		{strings.Repeat("200,", 500) + "2000", false}, // 2004 characters
	} {
		var c model.Checker
		c.HealthCheck("hc", &model.HealthCheckConfig{Matcher: code(tc.code)})
		if tc.ok {
			wantFields(t, "matcher "+tc.code, &c)
		} else {
			wantFields(t, "matcher "+tc.code, &c, "hc.matcher.httpCode")
		}
	}
}

func TestCIDRs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cidrs []string
		want  []string
	}{
		{"one", []string{"10.0.0.0/16"}, nil},
		{"several", []string{"10.0.0.0/16", "192.168.0.0/24", "fd00::/8", "0.0.0.0/0"}, nil},
		{"host route", []string{"10.1.2.3/32"}, nil},
		{"none", nil, []string{"cidrs"}},
		{"empty list", []string{}, []string{"cidrs"}},
		{"host bits", []string{"10.0.0.0/16", "10.0.0.1/16"}, []string{"cidrs[1]"}},
		{"IPv6 host bits", []string{"fd00::1/64"}, []string{"cidrs[0]"}},
		{"address without length", []string{"10.0.0.0"}, []string{"cidrs[0]"}},
		{"length 33", []string{"10.0.0.0/33"}, []string{"cidrs[0]"}},
		{"garbage", []string{"", "x/16", "10.0.0.0/-1"}, []string{"cidrs[0]", "cidrs[1]", "cidrs[2]"}},
		{"zone", []string{"fe80::%eth0/64"}, []string{"cidrs[0]"}},
		{"leading zeros", []string{"010.0.0.0/8"}, []string{"cidrs[0]"}},
	} {
		var c model.Checker
		c.CIDRs("cidrs", tc.cidrs)
		wantFields(t, tc.name, &c, tc.want...)
	}
}

// clone deep-copies a config through JSON (every member is a JSON member).
func clone(t testing.TB, cfg *model.TargetGroupConfig) *model.TargetGroupConfig {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out *model.TargetGroupConfig
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMaterializeDefaults(t *testing.T) {
	var none *model.TargetGroupConfig
	if none.Materialize(model.TargetGroupTypeIP) != nil {
		t.Error("Materialize of nil is not nil")
	}
	for _, tc := range []struct {
		name, typ, protocol, version string
		port, wantPort               int32
		wantVersion                  string
		enabled                      bool
	}{
		{"HTTP1", model.TargetGroupTypeIP, model.ProtocolHTTP, "", 0, 80, model.ProtocolVersionHTTP1, true},
		{"explicit HTTP1", model.TargetGroupTypeInstance, model.ProtocolHTTP, model.ProtocolVersionHTTP1, 0, 80, model.ProtocolVersionHTTP1, true},
		{"HTTPS", model.TargetGroupTypeIP, model.ProtocolHTTPS, "", 0, 443, model.ProtocolVersionHTTP1, true},
		{"HTTP2", model.TargetGroupTypeIP, model.ProtocolHTTPS, model.ProtocolVersionHTTP2, 8443, 8443, model.ProtocolVersionHTTP2, false},
		{"GRPC", model.TargetGroupTypeIP, model.ProtocolHTTPS, model.ProtocolVersionGRPC, 0, 443, model.ProtocolVersionGRPC, true},
		{"TCP", model.TargetGroupTypeIP, model.ProtocolTCP, "", 5432, 5432, "", false},
	} {
		in := &model.TargetGroupConfig{Protocol: tc.protocol, ProtocolVersion: tc.version, VpcIdentifier: "vpc-0123456789abcdef0"}
		if tc.port != 0 {
			in.Port = i32(tc.port)
		}
		before := clone(t, in)
		out := in.Materialize(tc.typ)
		if !reflect.DeepEqual(in, before) {
			t.Errorf("%s: Materialize changed its receiver: %+v, was %+v", tc.name, in, before)
		}
		if out.Port == nil || *out.Port != tc.wantPort || out.ProtocolVersion != tc.wantVersion || out.VpcIdentifier != in.VpcIdentifier {
			t.Errorf("%s: config %+v, want port %d version %q", tc.name, out, tc.wantPort, tc.wantVersion)
		}
		if want := map[bool]string{true: model.IPAddressTypeIPv4, false: ""}[tc.typ == model.TargetGroupTypeIP]; out.IPAddressType != want {
			t.Errorf("%s: ipAddressType %q, want %q", tc.name, out.IPAddressType, want)
		}
		hc := out.HealthCheck
		if hc == nil {
			t.Errorf("%s: no health check", tc.name)
			continue
		}
		want := model.HealthCheckConfig{Enabled: boolp(tc.enabled), Protocol: model.ProtocolHTTP, ProtocolVersion: model.ProtocolVersionHTTP1,
			Path: str("/"), HealthCheckIntervalSeconds: i32(30), HealthCheckTimeoutSeconds: i32(5), HealthyThresholdCount: i32(5),
			UnhealthyThresholdCount: i32(2), Matcher: code("200")}
		if !reflect.DeepEqual(*hc, want) {
			t.Errorf("%s: health check\n %s\nwant\n %s", tc.name, mustJSON(t, hc), mustJSON(t, want))
		}
		var c model.Checker
		c.HealthCheck("hc", hc)
		wantFields(t, tc.name+" materialised", &c)
	}

	// Zeros and empty strings mean "default" as well.
	zero := &model.TargetGroupConfig{Protocol: model.ProtocolHTTP, HealthCheck: &model.HealthCheckConfig{Path: str(""),
		HealthCheckIntervalSeconds: i32(0), HealthCheckTimeoutSeconds: i32(0), HealthyThresholdCount: i32(0), UnhealthyThresholdCount: i32(0)}}
	hc := zero.Materialize(model.TargetGroupTypeInstance).HealthCheck
	if *hc.Path != "/" || *hc.HealthCheckIntervalSeconds != 30 || *hc.HealthCheckTimeoutSeconds != 5 || *hc.HealthyThresholdCount != 5 || *hc.UnhealthyThresholdCount != 2 {
		t.Errorf("zeros not defaulted: %s", mustJSON(t, hc))
	}
	if *zero.HealthCheck.HealthCheckIntervalSeconds != 0 || *zero.HealthCheck.Path != "" {
		t.Errorf("Materialize wrote through the receiver's pointers: %s", mustJSON(t, zero))
	}

	// LAMBDA: only the event structure version; ALB: no Lattice health check.
	if got := (&model.TargetGroupConfig{}).Materialize(model.TargetGroupTypeLambda); got.LambdaEventStructureVersion != "V1" || got.HealthCheck != nil || got.Port != nil {
		t.Errorf("lambda = %+v", got)
	}
	if got := (&model.TargetGroupConfig{LambdaEventStructureVersion: "V2"}).Materialize(model.TargetGroupTypeLambda); got.LambdaEventStructureVersion != "V2" {
		t.Errorf("lambda V2 = %+v", got)
	}
	if got := (&model.TargetGroupConfig{Protocol: model.ProtocolHTTPS}).Materialize(model.TargetGroupTypeALB); got.HealthCheck != nil || *got.Port != 443 {
		t.Errorf("ALB = %+v", got)
	}
}

func TestMaterializeKeepsSetValues(t *testing.T) {
	set := &model.TargetGroupConfig{Port: i32(8080), Protocol: model.ProtocolHTTPS, ProtocolVersion: model.ProtocolVersionHTTP2,
		IPAddressType: model.IPAddressTypeIPv6, VpcIdentifier: "vpc-0123abcd",
		HealthCheck: &model.HealthCheckConfig{Enabled: boolp(true), Protocol: model.ProtocolHTTPS, ProtocolVersion: model.ProtocolVersionHTTP2,
			Port: i32(9090), Path: str("/ready"), HealthCheckIntervalSeconds: i32(10), HealthCheckTimeoutSeconds: i32(3),
			HealthyThresholdCount: i32(3), UnhealthyThresholdCount: i32(4), Matcher: code("200-299")}}
	for _, typ := range []string{model.TargetGroupTypeIP, model.TargetGroupTypeInstance} {
		before := clone(t, set)
		got := set.Materialize(typ)
		if !reflect.DeepEqual(set, before) {
			t.Errorf("%s: receiver changed", typ)
		}
		// Everything was set, so nothing changes (ipAddressType is kept
		// even on INSTANCE, where the checker rejects it).
		if want := clone(t, set); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Materialize changed set values:\n got %s\nwant %s", typ, mustJSON(t, got), mustJSON(t, want))
		}
	}
	// Enabled=false on an HTTP1 group stays false; Enabled=true on TCP stays true.
	off := &model.TargetGroupConfig{Protocol: model.ProtocolHTTP, HealthCheck: &model.HealthCheckConfig{Enabled: boolp(false)}}
	if got := off.Materialize(model.TargetGroupTypeIP).HealthCheck.Enabled; got == nil || *got {
		t.Errorf("enabled=false became %v", got)
	}
	on := &model.TargetGroupConfig{Protocol: model.ProtocolTCP, HealthCheck: &model.HealthCheckConfig{Enabled: boolp(true)}}
	if got := on.Materialize(model.TargetGroupTypeIP).HealthCheck.Enabled; got == nil || !*got {
		t.Errorf("enabled=true became %v", got)
	}
}

// TestValidHealthCheckMaterialisesValid: whatever the checker accepts
// stays valid once the defaults are filled in.
func TestValidHealthCheckMaterialisesValid(t *testing.T) {
	for _, hc := range []*model.HealthCheckConfig{
		{HealthCheckTimeoutSeconds: i32(30)},
		{HealthCheckIntervalSeconds: i32(5)},
		{HealthCheckIntervalSeconds: i32(0), HealthCheckTimeoutSeconds: i32(0)},
	} {
		cfg := &model.TargetGroupConfig{Protocol: model.ProtocolHTTP, VpcIdentifier: "vpc-0123abcd", HealthCheck: hc}
		var c model.Checker
		c.TargetGroupConfig(model.TargetGroupTypeIP, cfg)
		if err := c.Err(); err != nil {
			t.Fatalf("%+v rejected: %v", hc, err)
		}
		var again model.Checker
		again.HealthCheck("hc", cfg.Materialize(model.TargetGroupTypeIP).HealthCheck)
		if err := again.Err(); err != nil {
			t.Errorf("%+v materialises into an invalid health check: %v", hc, err)
		}
	}
	var c model.Checker
	c.HealthCheck("hc", &model.HealthCheckConfig{HealthCheckTimeoutSeconds: i32(60)})
	if c.OK() {
		t.Errorf("timeout 60 with the default interval 30 was accepted")
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var tgTypes = []string{model.TargetGroupTypeIP, model.TargetGroupTypeInstance, model.TargetGroupTypeLambda, model.TargetGroupTypeALB}

func FuzzValidateTargetGroup(f *testing.F) {
	for _, s := range []struct{ typ, cfg string }{
		{"IP", `{"protocol":"HTTP","vpcIdentifier":"vpc-0123456789abcdef0"}`},
		{"IP", `{"port":8080,"protocol":"HTTPS","protocolVersion":"HTTP2","ipAddressType":"IPV6","vpcIdentifier":"vpc-0123abcd",` +
			`"healthCheck":{"enabled":true,"protocol":"HTTPS","protocolVersion":"HTTP2","port":9090,"path":"/ready",` +
			`"healthCheckIntervalSeconds":10,"healthCheckTimeoutSeconds":3,"healthyThresholdCount":3,"unhealthyThresholdCount":4,"matcher":{"httpCode":"200-299"}}}`},
		{"INSTANCE", `{"protocol":"TCP","port":5432,"vpcIdentifier":"vpc-0123abcd","healthCheck":{"enabled":false}}`},
		{"LAMBDA", `{}`},
		{"LAMBDA", `{"lambdaEventStructureVersion":"V2"}`},
		{"ALB", `{"protocol":"HTTPS","port":443,"vpcIdentifier":"vpc-0123abcd"}`},
		{"IP", `null`},
		{"IP", `{"healthCheck":{"healthCheckIntervalSeconds":0,"healthCheckTimeoutSeconds":0,"path":"","matcher":{}}}`},
		{"IP", `{"protocol":"HTTP","vpcIdentifier":"vpc-0123abcd","healthCheck":{"healthCheckTimeoutSeconds":60}}`},
		{"IP", `{"protocol":"HTTP","vpcIdentifier":"vpc-0123abcd","healthCheck":{"matcher":{"httpCode":"200,202,299-300"}}}`},
		{"IP", `{"protocol":"HTTP","vpcIdentifier":"vpc-0123abcd","healthCheck":{"path":"/%"}}`},
		{"", `{"protocol":""}`},
		{"UDP", `{"port":-1}`},
	} {
		f.Add(s.typ, []byte(s.cfg))
	}
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		var cfg *model.TargetGroupConfig
		if err := json.Unmarshal(data, &cfg); err != nil {
			return
		}
		types := append([]string{typ}, tgTypes...)
		for _, typ := range types {
			var c model.Checker
			c.TargetGroupConfig(typ, cfg)
			if cfg != nil && cfg.HealthCheck != nil {
				c.HealthCheck("healthCheck", cfg.HealthCheck) // as UpdateTargetGroup does
			}
			_ = c.Err()

			var before *model.TargetGroupConfig
			if cfg != nil {
				before = clone(t, cfg)
			}
			out := cfg.Materialize(typ)
			if cfg == nil {
				if out != nil {
					t.Fatalf("Materialize(nil) = %+v", out)
				}
				continue
			}
			if !reflect.DeepEqual(cfg, before) {
				t.Fatalf("%s: Materialize changed its receiver:\n%s\nwas\n%s", typ, mustJSON(t, cfg), mustJSON(t, before))
			}
			if out == nil || out == cfg {
				t.Fatalf("%s: Materialize returned %p for %p", typ, out, cfg)
			}
			checkMaterialized(t, typ, cfg, out)
			// Materialising twice changes nothing more.
			if again := out.Materialize(typ); !reflect.DeepEqual(again, out) {
				t.Fatalf("%s: Materialize is not idempotent:\n%s\n%s", typ, mustJSON(t, out), mustJSON(t, again))
			}

			if !c.OK() || typ != model.TargetGroupTypeIP && typ != model.TargetGroupTypeInstance {
				continue
			}
			// A valid config stays valid once its defaults are filled in,
			// except for the known timeout/default-interval gap.
			var vc model.Checker
			vc.TargetGroupConfig(typ, out)
			if err := vc.Err(); err != nil {
				h := cfg.HealthCheck
				gap := h != nil && (h.HealthCheckIntervalSeconds == nil || *h.HealthCheckIntervalSeconds == 0) &&
					h.HealthCheckTimeoutSeconds != nil && *h.HealthCheckTimeoutSeconds > 30
				if !gap {
					t.Fatalf("%s: valid config %s materialises into invalid %s: %v", typ, mustJSON(t, cfg), mustJSON(t, out), err)
				}
			}
		}
	})
}

// checkMaterialized checks out = cfg with defaults: every value cfg set is
// kept, and every health-check member is present.
func checkMaterialized(t *testing.T, typ string, cfg, out *model.TargetGroupConfig) {
	t.Helper()
	keep := func(name string, set, got any) {
		if !reflect.ValueOf(set).IsZero() && !reflect.DeepEqual(set, got) {
			t.Fatalf("%s: %s was %s, materialised %s", typ, name, mustJSON(t, set), mustJSON(t, got))
		}
	}
	keep("lambdaEventStructureVersion", cfg.LambdaEventStructureVersion, out.LambdaEventStructureVersion)
	if typ == model.TargetGroupTypeLambda {
		if out.LambdaEventStructureVersion == "" {
			t.Fatalf("lambda: no event structure version")
		}
		return
	}
	keep("port", cfg.Port, out.Port)
	keep("protocol", cfg.Protocol, out.Protocol)
	keep("protocolVersion", cfg.ProtocolVersion, out.ProtocolVersion)
	keep("ipAddressType", cfg.IPAddressType, out.IPAddressType)
	keep("vpcIdentifier", cfg.VpcIdentifier, out.VpcIdentifier)
	if typ == model.TargetGroupTypeIP && out.IPAddressType == "" {
		t.Fatalf("IP: no ipAddressType")
	}
	if typ == model.TargetGroupTypeALB {
		keep("healthCheck", cfg.HealthCheck, out.HealthCheck)
		return
	}
	hc := out.HealthCheck
	if hc == nil || hc.Enabled == nil || hc.Protocol == "" || hc.ProtocolVersion == "" || hc.Path == nil || *hc.Path == "" ||
		hc.HealthCheckIntervalSeconds == nil || hc.HealthCheckTimeoutSeconds == nil || hc.HealthyThresholdCount == nil ||
		hc.UnhealthyThresholdCount == nil || hc.Matcher == nil || hc.Matcher.HTTPCode == nil {
		t.Fatalf("%s: health check not fully materialised: %s", typ, mustJSON(t, hc))
	}
	for name, v := range map[string]*int32{"interval": hc.HealthCheckIntervalSeconds, "timeout": hc.HealthCheckTimeoutSeconds,
		"healthy": hc.HealthyThresholdCount, "unhealthy": hc.UnhealthyThresholdCount} {
		if *v == 0 {
			t.Fatalf("%s: %s left at 0", typ, name)
		}
	}
	if in := cfg.HealthCheck; in != nil {
		keep("healthCheck.enabled", in.Enabled, hc.Enabled)
		keep("healthCheck.protocol", in.Protocol, hc.Protocol)
		keep("healthCheck.protocolVersion", in.ProtocolVersion, hc.ProtocolVersion)
		keep("healthCheck.port", in.Port, hc.Port)
		if in.Path != nil && *in.Path != "" {
			keep("healthCheck.path", in.Path, hc.Path)
		}
		for name, pair := range map[string][2]*int32{
			"interval":  {in.HealthCheckIntervalSeconds, hc.HealthCheckIntervalSeconds},
			"timeout":   {in.HealthCheckTimeoutSeconds, hc.HealthCheckTimeoutSeconds},
			"healthy":   {in.HealthyThresholdCount, hc.HealthyThresholdCount},
			"unhealthy": {in.UnhealthyThresholdCount, hc.UnhealthyThresholdCount},
		} {
			if pair[0] != nil && *pair[0] != 0 {
				keep("healthCheck."+name, pair[0], pair[1])
			}
		}
		if in.Matcher != nil && in.Matcher.HTTPCode != nil {
			keep("healthCheck.matcher", in.Matcher, hc.Matcher)
		}
	}
}

func FuzzRuleMatch(f *testing.F) {
	for _, s := range []struct{ match, action string }{
		{`{"httpMatch":{"method":"GET"}}`, `{"fixedResponse":{"statusCode":404}}`},
		{`{"httpMatch":{"pathMatch":{"match":{"prefix":"/api"},"caseSensitive":true},"headerMatches":[{"name":"x-env","match":{"exact":"prod"}}]}}`,
			`{"forward":{"targetGroups":[{"targetGroupIdentifier":"tg-0123456789abcdef0","weight":90},{"targetGroupIdentifier":"tg-0123456789abcdef1","weight":10}]}}`},
		{`{"httpMatch":{"pathMatch":{"match":{"exact":"/a","prefix":"/b"}}}}`, `{"forward":{"targetGroups":[]}}`},
		{`{"httpMatch":{"headerMatches":[{"name":"","match":{}},{"name":"a b","match":{"contains":""}}]}}`, `{}`},
		{`{"httpMatch":{}}`, `{"forward":{"targetGroups":[{"targetGroupIdentifier":"tg-0123456789abcdef0"},{"targetGroupIdentifier":"tg-0123456789abcdef0"}]}}`},
		{`{}`, `{"forward":null,"fixedResponse":{"statusCode":500}}`},
		{`null`, `null`},
		{`{"httpMatch":{"method":"","pathMatch":{"match":{}}}}`, `{"fixedResponse":{}}`},
	} {
		f.Add([]byte(s.match), []byte(s.action))
	}
	f.Fuzz(func(t *testing.T, matchJSON, actionJSON []byte) {
		var m *model.RuleMatch
		if err := json.Unmarshal(matchJSON, &m); err == nil {
			var c model.Checker
			c.RuleMatch("match", m)
			if c.OK() {
				// What passes is stored as JSON and read back: it must
				// still pass.
				var back *model.RuleMatch
				if err := json.Unmarshal([]byte(mustJSON(t, m)), &back); err != nil {
					t.Fatal(err)
				}
				var c2 model.Checker
				c2.RuleMatch("match", back)
				if !c2.OK() {
					t.Fatalf("match %s is valid but its stored form is not: %v", matchJSON, c2.Err())
				}
			}
		}
		var a *model.RuleAction
		if err := json.Unmarshal(actionJSON, &a); err == nil {
			var c model.Checker
			c.RuleAction("action", a)
			if c.OK() {
				if (a.Forward == nil) == (a.FixedResponse == nil) {
					t.Fatalf("action %s accepted with %v forward and %v fixed response", actionJSON, a.Forward != nil, a.FixedResponse != nil)
				}
				if a.Forward != nil {
					n := len(a.Forward.TargetGroups)
					if n < 1 || n > model.MaxWeightedTGs {
						t.Fatalf("action %s accepted with %d target groups", actionJSON, n)
					}
				}
			}
		}
	})
}
