package config

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/fieldpath"
)

// FuzzParse feeds Parse arbitrary bytes, seeded with every document of
// the tables. Whatever arrives:
//   - Parse does not panic, and returns exactly one of a Config and an
//     error;
//   - an error is a *ValidationError of one-line problems sorted by path,
//     and the same input yields the same error;
//   - a Config passes Validate, has the invariants the agent relies on,
//     and its Source marshals back to a document that parses to the same
//     Config.
func FuzzParse(f *testing.F) {
	f.Add([]byte(ecsExample))
	for _, tc := range validCases() {
		f.Add([]byte(tc.doc))
	}
	for _, tc := range slices.Concat(invalidECSCases(), invalidTrellisCases()) {
		if len(tc.doc) < 4096 { // skip the oversize seed: it slows every run
			f.Add([]byte(tc.doc))
		}
	}
	f.Fuzz(fuzzOne)
}

// FuzzDocumentFields reaches the validator faster than FuzzParse: it builds
// well-formed documents and fuzzes the values in them. present picks
// which optional members are written.
func FuzzDocumentFields(f *testing.F) {
	f.Add(uint16(0xffff), "http", "api", "orders", "orders", "shop", int64(8080), int64(80), int64(9090), int64(300), int64(15), `{"numRetries":2,"retryOn":["5xx"]}`, `{"path":"/"}`, "127.255.0.0/16")
	f.Add(uint16(0), "", "api", "", "", "", int64(8080), int64(0), int64(0), int64(0), int64(0), ``, ``, ``)
	f.Add(uint16(0x0f0f), "grpc", "a-", "-b", "c..d", "arn:aws:servicediscovery:r:1:namespace/ns-1", int64(0), int64(65536), int64(-1), int64(-1), int64(2147483648), `{"retryOn":[]}`, `{"timeoutSeconds":20}`, "10.0.0.0/8")
	f.Fuzz(func(t *testing.T, present uint16, appProtocol, portName, discoveryName, dnsName, namespace string,
		containerPort, aliasPort, ingress, idle, perRequest int64, retry, readiness, vip string) {
		has := func(bit uint) bool { return present&(1<<bit) != 0 }
		pm := map[string]any{"name": portName, "containerPort": containerPort}
		if has(0) {
			pm["appProtocol"] = appProtocol
		}
		svc := map[string]any{"portName": portName}
		if has(1) {
			svc["discoveryName"] = discoveryName
		}
		if has(2) {
			alias := map[string]any{"port": aliasPort}
			if has(3) {
				alias["dnsName"] = dnsName
			}
			svc["clientAliases"] = []any{alias}
		}
		if has(4) {
			svc["ingressPortOverride"] = ingress
		}
		if has(5) {
			timeout := map[string]any{"idleTimeoutSeconds": idle}
			if has(6) {
				timeout["perRequestTimeoutSeconds"] = perRequest
			}
			svc["timeout"] = timeout
		}
		services := []any{svc}
		if has(7) { // a second service on the same mapping
			services = append(services, map[string]any{"portName": portName, "discoveryName": dnsName})
		}
		scc := map[string]any{"enabled": has(8), "services": services}
		if has(9) {
			scc["namespace"] = namespace
		}
		ext := map[string]any{}
		entry := map[string]any{"discoveryName": discoveryName}
		if has(10) && json.Valid([]byte(retry)) {
			entry["retryPolicy"] = json.RawMessage(retry)
		}
		if has(11) && json.Valid([]byte(readiness)) {
			entry["readiness"] = json.RawMessage(readiness)
		}
		if has(12) {
			ext["services"] = []any{entry}
		}
		if has(13) {
			ext["vipCidr"] = vip
		}
		d := map[string]any{"serviceConnectConfiguration": scc, "portMappings": []any{pm}, "trellis": ext}
		data, err := json.Marshal(d)
		if err != nil {
			t.Skip()
		}
		fuzzOne(t, data)
	})
}

// fuzzOne checks the properties FuzzParse promises for one input.
func fuzzOne(t *testing.T, data []byte) {
	cfg, err := Parse(data)
	if err != nil {
		checkError(t, data, cfg, err)
		return
	}
	checkConfig(t, cfg)
	again, err := json.Marshal(cfg.Source)
	if err != nil {
		t.Fatalf("marshal Source: %v", err)
	}
	cfg2, err := Parse(again)
	if err != nil {
		t.Fatalf("Source %s does not parse back:\n%v", again, err)
	}
	a, b := *cfg, *cfg2
	a.Source, b.Source = nil, nil
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("Source %s parses back to a different Config:\n%+v\n%+v", again, a, b)
	}
}

func checkError(t *testing.T, data []byte, cfg *Config, err error) {
	t.Helper()
	if cfg != nil {
		t.Fatal("Parse returned both a Config and an error")
	}
	var ve *ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) || len(ve.Problems) == 0 {
		t.Fatalf("error %T %v is not a non-empty *ValidationError", err, err)
	}
	for i, p := range ve.Problems {
		if p.Message == "" || strings.ContainsAny(p.String(), "\r\n") {
			t.Fatalf("problem %d is empty or spans lines: %q", i, p.String())
		}
		if i > 0 && fieldpath.Compare(ve.Problems[i-1].Path, p.Path) > 0 {
			t.Fatalf("problems out of order: %q before %q", ve.Problems[i-1].Path, p.Path)
		}
	}
	if _, err2 := Parse(data); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("second Parse gave a different result:\n%v\n%v", err, err2)
	}
}

func checkConfig(t *testing.T, cfg *Config) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("a parsed Config fails Validate:\n%v", err)
	}
	if cfg.Source == nil || cfg.Source.ServiceConnectConfiguration == nil {
		t.Fatal("Config without its Source")
	}
	if len(cfg.Services) != len(cfg.Source.ServiceConnectConfiguration.Services) {
		t.Fatalf("%d services resolved from %d", len(cfg.Services), len(cfg.Source.ServiceConnectConfiguration.Services))
	}
	// Spelled out again, independently of Validate: what the agent
	// dereferences and divides by.
	for i, s := range cfg.Services {
		if len(s.Aliases) == 0 || s.ContainerPort == 0 || s.IngressPort == 0 || s.DiscoveryName == "" {
			t.Fatalf("services[%d] is incomplete: %+v", i, s)
		}
		for _, a := range s.Aliases {
			if a.Port == 0 || a.DNSName == "" {
				t.Fatalf("services[%d] has alias %+v", i, a)
			}
		}
		if s.IdleTimeout < 0 || s.PerRequestTimeout < 0 || s.Retry.PerTryTimeout < 0 {
			t.Fatalf("services[%d] has a negative timeout: %+v", i, s)
		}
		if s.Outlier.Interval <= 0 || s.Outlier.BaseEjection <= 0 {
			t.Fatalf("services[%d] has a non-positive outlier interval: %+v", i, s.Outlier)
		}
		if r := s.Readiness; r != nil && (r.Interval <= 0 || r.Timeout <= 0 || r.Timeout > r.Interval || r.HealthyThreshold < 1) {
			t.Fatalf("services[%d] has readiness %+v", i, r)
		}
	}
	if cfg.Drain <= 0 || !cfg.VIPCIDR.IsValid() || cfg.AdminAddr == "" {
		t.Fatalf("agent-wide settings unset: %v %v %q", cfg.Drain, cfg.VIPCIDR, cfg.AdminAddr)
	}
}
