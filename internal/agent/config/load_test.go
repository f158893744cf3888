package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	cfg, err := Load(write("good.json", ecsExample))
	if err != nil || len(cfg.Services) != 2 {
		t.Fatalf("Load(good) = %v, %v", cfg, err)
	}

	bad := write("bad.json", `{"serviceConnectConfiguration":{"enabled":1}}`)
	_, err = Load(bad)
	if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "agent config "+bad+": serviceConnectConfiguration.enabled: ") {
		t.Errorf("Load(bad) = %v", err)
	}

	_, err = Load(filepath.Join(dir, "missing.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}

	huge := write("huge.json", `{"x":"`+strings.Repeat(" ", 2*MaxDocumentBytes)+`"}`)
	_, err = Load(huge)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "larger than the limit") {
		t.Errorf("Load(huge) = %v", err)
	}
}

// TestValidate checks Config.Validate on hand-made breakage of a good
// Config.
func TestValidate(t *testing.T) {
	base := func(t *testing.T) *Config {
		return mustParse(t, doc(sc(`{"portName":"api"},{"portName":"b"}`), pmHTTP+`,{"name":"b","containerPort":9000}`,
			`{"services":[{"discoveryName":"api","readiness":{}}]}`))
	}
	for _, tc := range []struct {
		name   string
		break_ func(c *Config)
		want   []want
	}{
		{"good", func(*Config) {}, nil},
		{"namespace both", func(c *Config) { c.Namespace.ARN = "arn:aws:servicediscovery:r:1:namespace/ns-1" },
			[]want{{"Namespace", "has both Name and ARN"}}},
		{"namespace bad", func(c *Config) { c.Namespace = Namespace{ARN: "arn:x"} }, []want{{"Namespace.ARN", "must be an ARN"}}},
		{"namespace name bad", func(c *Config) { c.Namespace = Namespace{Name: "a b"} }, []want{{"Namespace.Name", "visible ASCII"}}},
		{"agent-wide", func(c *Config) {
			c.Drain = time.Second
			c.VIPCIDR = netip.Prefix{}
			c.AdminAddr = "nope"
			c.AccessLog = &AccessLog{Format: "XML"}
		}, []want{
			{"AccessLog.Format", "must be TEXT or JSON"},
			{"AdminAddr", "must be host:port"},
			{"Drain", "between 5s and 110s, got 1s"},
			{"VIPCIDR", "must be a CIDR"},
		}},
		{"service", func(c *Config) {
			s := &c.Services[0]
			s.PortName, s.DiscoveryName, s.Protocol = "", "b", 7
			s.ContainerPort, s.IngressPort = 0, 0
			s.IdleTimeout, s.PerRequestTimeout = -1, -1
		}, []want{
			{"Services[0].ContainerPort", "must not be 0"},
			{"Services[0].IdleTimeout", "got -1ns"},
			{"Services[0].IngressPort", "must not be 0"},
			{"Services[0].PerRequestTimeout", "got -1ns"},
			{"Services[0].PortName", "must not be empty"},
			{"Services[0].Protocol", "unknown protocol Protocol(7)"},
			{"Services[1].DiscoveryName", "duplicates Services[0]"},
		}},
		{"aliases", func(c *Config) {
			c.Services[0].Aliases = nil
			c.Services[1].Aliases = []Alias{{DNSName: "b.", TestTraffic: &HeaderMatch{Name: "a b", Exact: " x"}}, {DNSName: "b.", Port: 1}}
		}, []want{
			{"Services[0].Aliases", "at most 1 entries, got 0"},
			{"Services[1].Aliases", "got 2"},
			{"Services[1].Aliases[0].DNSName", "empty label"},
			{"Services[1].Aliases[0].Port", "must not be 0"},
			{"Services[1].Aliases[0].TestTraffic", "needs an HTTP-family protocol, got tcp"},
			{"Services[1].Aliases[0].TestTraffic.Exact", "whitespace"},
			{"Services[1].Aliases[0].TestTraffic.Name", "RFC 9110 token"},
			{"Services[1].Aliases[1].DNSName", "empty label"},
		}},
		{"duplicates", func(c *Config) {
			c.Services[1].DiscoveryName = "api"
			c.Services[1].Aliases = c.Services[0].Aliases
			c.Services[1].IngressPort = 8080
		}, []want{
			{"Services[1].Aliases[0]", `"api.shop:8080" duplicates Services[0].Aliases[0]`},
			{"Services[1].DiscoveryName", "duplicates Services[0]"},
			{"Services[1].IngressPort", "8080 is also the ingress port of Services[0]"},
		}},
		{"tcp", func(c *Config) {
			s := &c.Services[1]
			s.PerRequestTimeout = time.Second
			s.Retry = RetryPolicy{NumRetries: 11, RetryOn: Retry5xx, PerTryTimeout: time.Minute, BudgetPercent: -1, RetryNonIdempotent: true}
			s.Readiness = &Readiness{Path: "/", Port: 1, Interval: time.Second, Timeout: time.Second, HealthyThreshold: 1}
		}, []want{
			{"Services[1].PerRequestTimeout", "must be 0 for TCP"},
			{"Services[1].Readiness.Path", "must be empty for TCP"},
			{"Services[1].Retry.BudgetPercent", "got -1"},
			{"Services[1].Retry.NumRetries", "got 11"},
			{"Services[1].Retry.PerTryTimeout", "must not exceed PerRequestTimeout (1s)"},
			{"Services[1].Retry.PerTryTimeout", "must be 0 for TCP"},
			{"Services[1].Retry.RetryNonIdempotent", "must be false for TCP"},
			{"Services[1].Retry.RetryOn", "events 5xx do not apply to tcp"},
		}},
		{"policies", func(c *Config) {
			s := &c.Services[0]
			s.Retry.RetryOn = 0
			s.Outlier = OutlierDetection{Consecutive5xx: -1, ConsecutiveGatewayFailure: -1, MaxEjectionPercent: 200}
			s.Breaker = CircuitBreaker{}
			s.Readiness = &Readiness{Path: "x", Timeout: time.Hour}
		}, []want{
			{"Services[0].Breaker.MaxConnections", "at least 1"},
			{"Services[0].Breaker.MaxPendingRequests", "at least 1"},
			{"Services[0].Breaker.MaxRequests", "at least 1"},
			{"Services[0].Outlier.BaseEjection", "got 0s"},
			{"Services[0].Outlier.Consecutive5xx", "negative"},
			{"Services[0].Outlier.ConsecutiveGatewayFailure", "negative"},
			{"Services[0].Outlier.Interval", "got 0s"},
			{"Services[0].Outlier.MaxEjectionPercent", "got 200"},
			{"Services[0].Readiness.HealthyThreshold", "got 0"},
			{"Services[0].Readiness.Interval", "got 0s"},
			{"Services[0].Readiness.Path", "must start with '/'"},
			{"Services[0].Readiness.Port", "must not be 0"},
			{"Services[0].Readiness.Timeout", "got 1h0m0s"},
			{"Services[0].Readiness.Timeout", "must not exceed Interval"},
			{"Services[0].Retry.RetryOn", "must not be empty when NumRetries > 0"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base(t)
			tc.break_(c)
			err := c.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			checkProblems(t, err, tc.want)
		})
	}
}

func TestServiceString(t *testing.T) {
	cfg := mustParse(t, one(`{"portName":"api","discoveryName":"orders","clientAliases":[{"port":80}],"ingressPortOverride":9090}`, pmHTTP))
	if got, want := cfg.Services[0].String(), "orders (http) :9090 -> 8080 as orders.shop:80"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
