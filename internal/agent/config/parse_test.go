package config

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Document builders for the tables. A test names only what it is about.

const (
	pmHTTP  = `{"name":"api","containerPort":8080,"appProtocol":"http"}`
	pmHTTP2 = `{"name":"api","containerPort":8080,"appProtocol":"http2"}`
	pmGRPC  = `{"name":"api","containerPort":8080,"appProtocol":"grpc"}`
	pmTCP   = `{"name":"api","containerPort":8080}`
)

// doc assembles a document from the serviceConnectConfiguration object,
// the port mappings (comma-separated objects) and the trellis object;
// empty parts are left out.
func doc(sc, pms, tr string) string {
	var b strings.Builder
	b.WriteString(`{"serviceConnectConfiguration":` + sc)
	if pms != "" {
		b.WriteString(`,"portMappings":[` + pms + `]`)
	}
	if tr != "" {
		b.WriteString(`,"trellis":` + tr)
	}
	b.WriteString("}")
	return b.String()
}

// sc is an enabled serviceConnectConfiguration in namespace "shop" with
// the given services (comma-separated objects).
func sc(services string) string {
	return `{"enabled":true,"namespace":"shop","services":[` + services + `]}`
}

// one is a document with one service on one port mapping.
func one(service, pm string) string { return doc(sc(service), pm, "") }

// withTrellis is one service "api" on pm, with a trellis.services entry
// for it holding policy (members of the entry, without braces).
func withTrellis(pm, policy string) string {
	return doc(sc(`{"portName":"api"}`), pm, `{"services":[{"discoveryName":"api",`+policy+`}]}`)
}

func mustParse(t *testing.T, d string) *Config {
	t.Helper()
	cfg, err := Parse([]byte(d))
	if err != nil {
		t.Fatalf("Parse:\n%v\ndocument: %s", err, d)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate of a parsed Config:\n%v", err)
	}
	return cfg
}

// ecsExample is a realistic document: the reference skeleton's shape
// (§1.1) with a second, gRPC service and a client-side TCP mapping.
const ecsExample = `{
  "serviceConnectConfiguration": {
    "enabled": true,
    "namespace": "orders.local",
    "services": [
      {
        "portName": "api",
        "discoveryName": "orders-api",
        "clientAliases": [
          {
            "port": 80,
            "dnsName": "orders",
            "testTrafficRules": {
              "header": {"name": "x-canary", "value": {"exact": "1"}}
            }
          }
        ],
        "ingressPortOverride": 9090,
        "timeout": {"idleTimeoutSeconds": 120, "perRequestTimeoutSeconds": 60},
        "tls": {
          "issuerCertificateAuthority": {
            "awsPcaAuthorityArn": "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/0f4a2b6c-1111-2222-3333-444455556666"
          },
          "kmsKey": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
          "roleArn": "arn:aws:iam::123456789012:role/ecsInfrastructureRole"
        }
      },
      {"portName": "rpc"}
    ],
    "logConfiguration": {
      "logDriver": "awslogs",
      "options": {
        "awslogs-group": "/ecs/orders",
        "awslogs-region": "eu-west-1",
        "awslogs-stream-prefix": "sc"
      },
      "secretOptions": [{"name": "token", "valueFrom": "arn:aws:ssm:eu-west-1:123456789012:parameter/token"}]
    },
    "accessLogConfiguration": {"format": "JSON", "includeQueryParameters": "DISABLED"}
  },
  "portMappings": [
    {"name": "api", "containerPort": 8080, "hostPort": 8080, "protocol": "tcp", "appProtocol": "http"},
    {"name": "rpc", "containerPort": 50051, "appProtocol": "grpc"},
    {"name": "metrics", "containerPort": 9100},
    {"containerPortRange": "7000-7010", "protocol": "udp"}
  ]
}`

func TestParseECSExample(t *testing.T) {
	cfg := mustParse(t, ecsExample)
	if !cfg.Enabled || cfg.Namespace != (Namespace{Name: "orders.local"}) {
		t.Errorf("Enabled %v, Namespace %+v", cfg.Enabled, cfg.Namespace)
	}
	if len(cfg.Services) != 2 {
		t.Fatalf("got %d services, want 2", len(cfg.Services))
	}
	api := cfg.Services[0]
	wantAPI := Service{
		PortName:      "api",
		DiscoveryName: "orders-api",
		Protocol:      ProtocolHTTP,
		ContainerPort: 8080,
		IngressPort:   9090,
		Aliases: []Alias{{DNSName: "orders", Port: 80,
			TestTraffic: &HeaderMatch{Name: "x-canary", Exact: "1"}}},
		IdleTimeout:       120 * time.Second,
		PerRequestTimeout: 60 * time.Second,
		TLS: &TLS{
			CertificateAuthorityARN: "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/0f4a2b6c-1111-2222-3333-444455556666",
			KMSKey:                  "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
			RoleARN:                 "arn:aws:iam::123456789012:role/ecsInfrastructureRole",
		},
		Retry:   RetryPolicy{NumRetries: 2, RetryOn: Retry503 | RetryConnectFailure | RetryRefusedStream, BudgetPercent: 20},
		Outlier: OutlierDetection{Consecutive5xx: 5, Interval: 10 * time.Second, BaseEjection: 30 * time.Second, MaxEjectionPercent: 10},
		Breaker: CircuitBreaker{MaxConnections: 1024, MaxPendingRequests: 1024, MaxRequests: 1024},
	}
	if !reflect.DeepEqual(api, wantAPI) {
		t.Errorf("services[0]:\n got %+v\nwant %+v", api, wantAPI)
	}
	rpc := cfg.Services[1]
	if rpc.DiscoveryName != "rpc" || rpc.Protocol != ProtocolGRPC || rpc.IngressPort != 50051 ||
		!reflect.DeepEqual(rpc.Aliases, []Alias{{DNSName: "rpc.orders.local", Port: 50051}}) {
		t.Errorf("services[1]: %v %+v", &rpc, rpc.Aliases)
	}
	if got := rpc.Retry.RetryOn; got != DefaultRetryOnGRPC {
		t.Errorf("grpc RetryOn = %v, want %v", got, DefaultRetryOnGRPC)
	}
	if *cfg.AccessLog != (AccessLog{Format: AccessLogJSON}) {
		t.Errorf("AccessLog = %+v", *cfg.AccessLog)
	}
	if got := cfg.Source.ServiceConnectConfiguration.LogConfiguration.Options["awslogs-group"]; got != "/ecs/orders" {
		t.Errorf("Source keeps the log options: got %q", got)
	}
	if s, ok := cfg.Service("rpc"); !ok || s.PortName != "rpc" {
		t.Errorf("Service(rpc) = %v, %v", s, ok)
	}
	if _, ok := cfg.Service("nope"); ok {
		t.Error("Service(nope) found something")
	}
}

// TestDefaults pins every default, per protocol: the golden values a
// minimal document resolves to.
func TestDefaults(t *testing.T) {
	outlier := OutlierDetection{
		Consecutive5xx:            5,
		ConsecutiveGatewayFailure: 0,
		Interval:                  10 * time.Second,
		BaseEjection:              30 * time.Second,
		MaxEjectionPercent:        10,
	}
	breaker := CircuitBreaker{MaxConnections: 1024, MaxPendingRequests: 1024, MaxRequests: 1024}
	base := func(p Protocol) Service {
		return Service{
			PortName: "api", DiscoveryName: "api", Protocol: p,
			ContainerPort: 8080, IngressPort: 8080,
			Aliases: []Alias{{DNSName: "api.shop", Port: 8080}},
			Outlier: outlier, Breaker: breaker,
		}
	}
	httpRetry := RetryPolicy{NumRetries: 2, RetryOn: Retry503 | RetryConnectFailure | RetryRefusedStream, BudgetPercent: 20}

	wantHTTP := base(ProtocolHTTP)
	wantHTTP.IdleTimeout, wantHTTP.PerRequestTimeout, wantHTTP.Retry = 300*time.Second, 15*time.Second, httpRetry
	wantHTTP2 := base(ProtocolHTTP2)
	wantHTTP2.IdleTimeout, wantHTTP2.PerRequestTimeout, wantHTTP2.Retry = 300*time.Second, 15*time.Second, httpRetry
	wantGRPC := base(ProtocolGRPC)
	wantGRPC.IdleTimeout, wantGRPC.PerRequestTimeout = 300*time.Second, 15*time.Second
	wantGRPC.Retry = httpRetry
	wantGRPC.Retry.RetryOn |= RetryUnavailable
	wantTCP := base(ProtocolTCP)
	wantTCP.IdleTimeout, wantTCP.PerRequestTimeout = 3600*time.Second, 0
	wantTCP.Retry = RetryPolicy{NumRetries: 2, RetryOn: RetryConnectFailure, BudgetPercent: 20}

	for _, tc := range []struct {
		name string
		pm   string
		want Service
	}{
		{"http", pmHTTP, wantHTTP},
		{"http2", pmHTTP2, wantHTTP2},
		{"grpc", pmGRPC, wantGRPC},
		{"tcp", pmTCP, wantTCP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustParse(t, one(`{"portName":"api"}`, tc.pm))
			if got := cfg.Services[0]; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("\n got %+v\nwant %+v", got, tc.want)
			}
			if cfg.Drain != 20*time.Second || cfg.VIPCIDR != netip.MustParsePrefix("127.255.0.0/16") ||
				cfg.AdminAddr != "127.0.0.1:9901" || cfg.AccessLog != nil {
				t.Errorf("agent-wide defaults: Drain %v VIPCIDR %v AdminAddr %q AccessLog %v",
					cfg.Drain, cfg.VIPCIDR, cfg.AdminAddr, cfg.AccessLog)
			}
		})
	}

	t.Run("readiness", func(t *testing.T) {
		cfg := mustParse(t, withTrellis(pmHTTP, `"readiness":{}`))
		want := &Readiness{Port: 8080, Interval: 10 * time.Second, Timeout: time.Second, HealthyThreshold: 1}
		if got := cfg.Services[0].Readiness; !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
}

// validCase is an accepted document and a check of what it resolves to.
type validCase struct {
	name  string
	doc   string
	check func(t *testing.T, c *Config)
}

// TestParseValid covers accepted documents and what they resolve to.
func TestParseValid(t *testing.T) {
	for _, tc := range validCases() {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustParse(t, tc.doc)
			if tc.check != nil {
				tc.check(t, cfg)
			}
		})
	}
}

func validCases() []validCase {
	return []validCase{
		{"client only", `{"serviceConnectConfiguration":{"enabled":true,"namespace":"shop"}}`,
			func(t *testing.T, c *Config) {
				if !c.Enabled || len(c.Services) != 0 || c.Namespace.Name != "shop" {
					t.Errorf("%+v", c)
				}
			}},
		{"disabled", `{"serviceConnectConfiguration":{"enabled":false}}`,
			func(t *testing.T, c *Config) {
				if c.Enabled || !c.Namespace.IsNodeDefault() {
					t.Errorf("%+v", c)
				}
			}},
		{"namespace absent with explicit dnsName",
			doc(`{"enabled":true,"services":[{"portName":"api","clientAliases":[{"port":80,"dnsName":"api"}]}]}`, pmHTTP, ""),
			func(t *testing.T, c *Config) {
				if !c.Namespace.IsNodeDefault() || c.Services[0].Aliases[0].DNSName != "api" {
					t.Errorf("%+v", c)
				}
			}},
		{"namespace ARN with explicit dnsName",
			doc(`{"enabled":true,"namespace":"arn:aws:servicediscovery:eu-west-1:123456789012:namespace/ns-abc","services":[{"portName":"api","clientAliases":[{"port":80,"dnsName":"api.shop"}]}]}`, pmHTTP, ""),
			func(t *testing.T, c *Config) {
				if c.Namespace.ARN == "" || c.Namespace.Name != "" {
					t.Errorf("%+v", c.Namespace)
				}
			}},
		{"dnsName defaults to discoveryName.namespace",
			one(`{"portName":"api","discoveryName":"orders","clientAliases":[{"port":80}]}`, pmHTTP),
			func(t *testing.T, c *Config) {
				if got := c.Services[0].Aliases[0]; got.DNSName != "orders.shop" || got.Port != 80 {
					t.Errorf("%+v", got)
				}
			}},
		{"zero timeouts disable", one(`{"portName":"api","timeout":{"idleTimeoutSeconds":0,"perRequestTimeoutSeconds":0}}`, pmHTTP),
			func(t *testing.T, c *Config) {
				if s := c.Services[0]; s.IdleTimeout != 0 || s.PerRequestTimeout != 0 {
					t.Errorf("%v %v", s.IdleTimeout, s.PerRequestTimeout)
				}
			}},
		{"tcp idle only", one(`{"portName":"api","timeout":{"idleTimeoutSeconds":2147483647}}`, pmTCP),
			func(t *testing.T, c *Config) {
				if s := c.Services[0]; s.IdleTimeout != 2147483647*time.Second || s.PerRequestTimeout != 0 {
					t.Errorf("%v %v", s.IdleTimeout, s.PerRequestTimeout)
				}
			}},
		{"empty timeout block keeps defaults", one(`{"portName":"api","timeout":{}}`, pmHTTP),
			func(t *testing.T, c *Config) {
				if s := c.Services[0]; s.IdleTimeout != DefaultIdleTimeoutHTTP || s.PerRequestTimeout != DefaultPerRequestTimeout {
					t.Errorf("%v %v", s.IdleTimeout, s.PerRequestTimeout)
				}
			}},
		{"one port mapping, two discovery names", doc(sc(`{"portName":"api"},{"portName":"api","discoveryName":"api-v2","ingressPortOverride":8081}`), pmHTTP, ""),
			func(t *testing.T, c *Config) {
				if c.Services[1].IngressPort != 8081 || c.Services[1].ContainerPort != 8080 || c.Services[1].Aliases[0].DNSName != "api-v2.shop" {
					t.Errorf("%v / %v", &c.Services[0], &c.Services[1])
				}
			}},
		{"same dnsName on two ports", doc(sc(`{"portName":"api","clientAliases":[{"port":80,"dnsName":"db"}]},{"portName":"b","clientAliases":[{"port":81,"dnsName":"db"}]}`),
			pmHTTP+`,{"name":"b","containerPort":8081}`, ""), nil},
		{"test traffic without value", one(`{"portName":"api","clientAliases":[{"port":80,"testTrafficRules":{"header":{"name":"X-Test"}}}]}`, pmHTTP2),
			func(t *testing.T, c *Config) {
				if got := c.Services[0].Aliases[0].TestTraffic; *got != (HeaderMatch{Name: "X-Test", AnyValue: true}) {
					t.Errorf("%+v", got)
				}
			}},
		{"test traffic with empty exact value", one(`{"portName":"api","clientAliases":[{"port":80,"testTrafficRules":{"header":{"name":"x","value":{"exact":""}}}}]}`, pmHTTP),
			func(t *testing.T, c *Config) {
				if got := c.Services[0].Aliases[0].TestTraffic; *got != (HeaderMatch{Name: "x"}) {
					t.Errorf("%+v", got)
				}
			}},
		{"tls without a CA ARN uses the Trellis CA", one(`{"portName":"api","tls":{"issuerCertificateAuthority":{}}}`, pmTCP),
			func(t *testing.T, c *Config) {
				if got := c.Services[0].TLS; got == nil || *got != (TLS{}) {
					t.Errorf("%+v", got)
				}
			}},
		{"access log", doc(`{"enabled":true,"namespace":"shop","logConfiguration":{"logDriver":"json-file"},"accessLogConfiguration":{"format":"TEXT","includeQueryParameters":"ENABLED"}}`, "", ""),
			func(t *testing.T, c *Config) {
				if *c.AccessLog != (AccessLog{Format: AccessLogText, IncludeQueryParameters: true}) {
					t.Errorf("%+v", c.AccessLog)
				}
			}},
		{"null members are absent", `{"serviceConnectConfiguration":{"enabled":true,"namespace":null,"services":null},"portMappings":null,"trellis":null}`,
			func(t *testing.T, c *Config) {
				if !c.Namespace.IsNodeDefault() || c.Source.Trellis != nil {
					t.Errorf("%+v", c)
				}
			}},
		{"udp and ranged mappings may exist unused", doc(sc(`{"portName":"api"}`), pmHTTP+`,{"name":"dns","containerPort":53,"protocol":"udp"},{"containerPortRange":"6000-6100"},{"containerPort":53}`, ""), nil},
		{"port bounds", one(`{"portName":"api","clientAliases":[{"port":65535}],"ingressPortOverride":1}`, `{"name":"api","containerPort":65535,"hostPort":0}`), nil},
		{"name bounds", doc(sc(`{"portName":"`+strings.Repeat("p", 64)+`","discoveryName":"`+strings.Repeat("d", 63)+`","clientAliases":[{"port":1,"dnsName":"`+strings.Repeat("a", 63)+"."+strings.Repeat("b", 63)+`"}]}`),
			`{"name":"`+strings.Repeat("p", 64)+`","containerPort":1}`, ""), nil},
		{"name characters", one(`{"portName":"a_1-b","discoveryName":"_x-1_","clientAliases":[{"port":5,"dnsName":"_db._tcp.x-1"}]}`, `{"name":"a_1-b","containerPort":5}`), nil},
		{"trellis overrides", withTrellis(pmGRPC, `"retryPolicy":{"numRetries":0,"retryOn":["5xx","cancelled","reset"],"perTryTimeoutSeconds":15,"budgetPercent":0,"retryNonIdempotent":true},
			"outlierDetection":{"consecutive5xx":0,"consecutiveGatewayFailure":3,"intervalSeconds":1,"baseEjectionSeconds":60,"maxEjectionPercent":100},
			"circuitBreaker":{"maxConnections":1,"maxPendingRequests":2,"maxRequests":3},
			"readiness":{"path":"/ready?full=1","port":9000,"intervalSeconds":300,"timeoutSeconds":60,"healthyThreshold":10}`),
			func(t *testing.T, c *Config) {
				s := c.Services[0]
				want := Service{
					PortName: "api", DiscoveryName: "api", Protocol: ProtocolGRPC, ContainerPort: 8080, IngressPort: 8080,
					Aliases:     []Alias{{DNSName: "api.shop", Port: 8080}},
					IdleTimeout: DefaultIdleTimeoutHTTP, PerRequestTimeout: DefaultPerRequestTimeout,
					Retry:     RetryPolicy{RetryOn: Retry5xx | RetryCancelled | RetryReset, PerTryTimeout: 15 * time.Second, RetryNonIdempotent: true},
					Outlier:   OutlierDetection{ConsecutiveGatewayFailure: 3, Interval: time.Second, BaseEjection: time.Minute, MaxEjectionPercent: 100},
					Breaker:   CircuitBreaker{MaxConnections: 1, MaxPendingRequests: 2, MaxRequests: 3},
					Readiness: &Readiness{Path: "/ready?full=1", Port: 9000, Interval: 300 * time.Second, Timeout: time.Minute, HealthyThreshold: 10},
				}
				if !reflect.DeepEqual(s, want) {
					t.Errorf("\n got %+v\nwant %+v", s, want)
				}
				if s.Outlier.Enabled() != true {
					t.Error("outlier detection with a gateway-failure threshold reports disabled")
				}
			}},
		{"tcp retry on connect-failure", withTrellis(pmTCP, `"retryPolicy":{"numRetries":5,"retryOn":["connect-failure"],"budgetPercent":50}`),
			func(t *testing.T, c *Config) {
				if got := c.Services[0].Retry; got != (RetryPolicy{NumRetries: 5, RetryOn: RetryConnectFailure, BudgetPercent: 50}) {
					t.Errorf("%+v", got)
				}
			}},
		{"per-try timeout with per-request disabled", doc(sc(`{"portName":"api","timeout":{"perRequestTimeoutSeconds":0}}`), pmHTTP,
			`{"services":[{"discoveryName":"api","retryPolicy":{"perTryTimeoutSeconds":100}}]}`), nil},
		{"agent-wide", doc(sc(`{"portName":"api"}`), pmHTTP, `{"drainSeconds":110,"vipCidr":"10.200.0.0/16","adminAddr":"[::1]:0"}`),
			func(t *testing.T, c *Config) {
				if c.Drain != 110*time.Second || c.VIPCIDR.String() != "10.200.0.0/16" || c.AdminAddr != "[::1]:0" {
					t.Errorf("%v %v %v", c.Drain, c.VIPCIDR, c.AdminAddr)
				}
			}},
		{"vip ranges", doc(sc(""), "", `{"vipCidr":"192.168.0.0/16"}`), nil},
		{"vip 172.16/12", doc(sc(""), "", `{"vipCidr":"172.16.0.0/12"}`), nil},
		{"vip /24 on loopback", doc(sc(""), "", `{"vipCidr":"127.1.2.0/24","adminAddr":"localhost:9000"}`), nil},
		{"drain minimum", doc(sc(""), "", `{"drainSeconds":5}`), nil},
	}
}

func TestRetryOnString(t *testing.T) {
	if got := DefaultRetryOnGRPC.String(); got != "503,connect-failure,refused-stream,unavailable" {
		t.Errorf("got %q", got)
	}
	if got := RetryOn(0).String(); got != "" {
		t.Errorf("got %q", got)
	}
	if !DefaultRetryOnHTTP.Has(Retry503|RetryRefusedStream) || DefaultRetryOnHTTP.Has(RetryUnavailable) {
		t.Error("Has")
	}
}

func TestProtocol(t *testing.T) {
	for p, want := range map[Protocol]string{ProtocolTCP: "tcp", ProtocolHTTP: "http", ProtocolHTTP2: "http2", ProtocolGRPC: "grpc", 9: "Protocol(9)"} {
		if p.String() != want {
			t.Errorf("%d: got %q, want %q", p, p, want)
		}
	}
	if ProtocolTCP.IsHTTP() || !ProtocolGRPC.IsHTTP() || Protocol(9).IsHTTP() {
		t.Error("IsHTTP")
	}
}

func TestValidationErrorFormat(t *testing.T) {
	_, err := Parse([]byte(`{"serviceConnectConfiguration":{},"x":1}`))
	var ve *ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %T %v", err, err)
	}
	want := "serviceConnectConfiguration.enabled: is required\nx: unknown member \"x\""
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
}
