package snapshot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
	"github.com/trellis-mesh/trellis/internal/api/native"
	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/snapshot"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/bolt"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const (
	account   = "111122223333"
	region    = "us-east-1"
	partition = "0abcdef"
)

// env is a real bolt store with the Lattice and native API handlers over
// it, called in-process as an admin of account.
type env struct {
	t   *testing.T
	st  store.Store
	la  *lattice.API
	na  *native.API
	ctx context.Context
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, bolt.Options{})
}

func newEnvWith(t *testing.T, opts bolt.Options) *env {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "trellis.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	return &env{t: t, st: st,
		la: lattice.New(lattice.Config{Store: st, Region: region, DNSPartition: partition,
			Now: func() time.Time { return now }, DeregistrationDelay: time.Hour}),
		na:  native.New(st, region, nil, nil),
		ctx: iam.WithCaller(context.Background(), iam.Caller{Account: account, ARN: "arn:aws:iam::" + account + ":user/admin", Admin: true}),
	}
}

// call sends one API request and returns the decoded answer; it fails the
// test on an error status.
func (e *env) call(method, path string, body any) map[string]any {
	e.t.Helper()
	var h http.Handler = e.la
	if strings.HasPrefix(path, native.Prefix) {
		h = e.na
	}
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req := httptest.NewRequestWithContext(e.ctx, method, path, rd)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code >= 300 {
		e.t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
	}
	out := map[string]any{}
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			e.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return out
}

func (e *env) id(method, path string, body any) string {
	e.t.Helper()
	return e.call(method, path, body)["id"].(string)
}

func (e *env) build(vpc string, certs snapshot.CertSource) *snapshot.Snapshot {
	e.t.Helper()
	snap, err := snapshot.Build(context.Background(), e.st, snapshot.BuildOptions{VPCID: vpc, Region: region, Certs: certs})
	if err != nil {
		e.t.Fatalf("Build: %v", err)
	}
	return snap
}

func forward(weights ...any) map[string]any {
	var tgs []map[string]any
	for i := 0; i < len(weights); i += 2 {
		tgs = append(tgs, map[string]any{"targetGroupIdentifier": weights[i], "weight": weights[i+1]})
	}
	return map[string]any{"forward": map[string]any{"targetGroups": tgs}}
}

// fakeCerts issues a recognisable certificate per service, or fails.
type fakeCerts struct{ fail bool }

func (f fakeCerts) ServiceCertificate(_ context.Context, svc *model.Service) (*snapshot.Certificate, error) {
	if f.fail {
		return nil, fmt.Errorf("no CA yet")
	}
	return &snapshot.Certificate{ARN: svc.CertificateARN, CertPEM: "CERT for " + svc.DNSEntry.DomainName, KeyPEM: "KEY", NotAfter: "2030-01-01T00:00:00Z"}, nil
}

// world creates, through the APIs, a service network "shop" associated
// with VPC "client", two services in it and one outside, target groups in
// both VPCs, targets with recorded health, a draining target, and an
// instance. It returns the client VPC's ID.
func (e *env) world() (clientVPC, backendVPC string) {
	clientVPC = e.id("POST", "/trellis/v1/vpcs", map[string]any{"name": "client", "cidrs": []string{"10.0.0.0/16"}})
	backendVPC = e.id("POST", "/trellis/v1/vpcs", map[string]any{"name": "backend", "cidrs": []string{"10.1.0.0/16", "fd00:1::/64"}})
	e.call("POST", "/trellis/v1/instances", map[string]any{"id": "i-0123456789abcdef0", "vpc": clientVPC, "address": "10.0.0.7", "name": "billing-1"})

	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Invoke","Resource":"*"}]}`
	sn := e.id("POST", "/servicenetworks", map[string]any{"name": "shop", "authType": "AWS_IAM"})
	e.call("PUT", "/authpolicy/"+sn, map[string]any{"policy": policy})
	e.call("POST", "/accesslogsubscriptions", map[string]any{"resourceIdentifier": sn, "destinationArn": "arn:aws:s3:::shop-logs"})
	e.call("POST", "/servicenetworkvpcassociations", map[string]any{"serviceNetworkIdentifier": sn, "vpcIdentifier": clientVPC})

	orders := e.id("POST", "/services", map[string]any{"name": "orders", "authType": "AWS_IAM", "customDomainName": "orders.example.com",
		"tags": map[string]string{"team": "orders"}, "idleTimeoutSeconds": 120})
	e.call("PUT", "/authpolicy/"+orders, map[string]any{"policy": policy})
	e.call("POST", "/accesslogsubscriptions", map[string]any{"resourceIdentifier": orders, "destinationArn": "arn:aws:logs:us-east-1:" + account + ":log-group:orders"})
	billing := e.id("POST", "/services", map[string]any{"name": "billing"})
	e.id("POST", "/services", map[string]any{"name": "hidden"}) // in no network
	// A policy under auth type NONE is not in effect.
	e.call("PUT", "/authpolicy/"+billing, map[string]any{"policy": policy})
	for _, svc := range []string{orders, billing} {
		e.call("POST", "/servicenetworkserviceassociations", map[string]any{"serviceNetworkIdentifier": sn, "serviceIdentifier": svc})
	}

	v1 := e.id("POST", "/targetgroups", map[string]any{"name": "orders-v1", "type": "IP", "config": map[string]any{
		"protocol": "HTTP", "port": 8080, "vpcIdentifier": backendVPC,
		"healthCheck": map[string]any{"path": "/health", "healthCheckIntervalSeconds": 10}}})
	v6 := e.id("POST", "/targetgroups", map[string]any{"name": "orders-v6", "type": "IP", "config": map[string]any{
		"protocol": "HTTPS", "protocolVersion": "HTTP2", "ipAddressType": "IPV6", "vpcIdentifier": backendVPC}})
	inst := e.id("POST", "/targetgroups", map[string]any{"name": "billing-inst", "type": "INSTANCE", "config": map[string]any{
		"protocol": "HTTP", "port": 9000, "vpcIdentifier": clientVPC}})
	local := e.id("POST", "/targetgroups", map[string]any{"name": "local-only", "type": "IP", "config": map[string]any{
		"protocol": "TCP", "port": 5432, "vpcIdentifier": clientVPC}})
	e.id("POST", "/targetgroups", map[string]any{"name": "elsewhere", "type": "IP", "config": map[string]any{
		"protocol": "HTTP", "vpcIdentifier": backendVPC}})

	register := func(tg string, targets ...map[string]any) {
		out := e.call("POST", "/targetgroups/"+tg+"/registertargets", map[string]any{"targets": targets})
		if f := out["unsuccessful"].([]any); len(f) > 0 {
			e.t.Fatalf("register: %v", f)
		}
	}
	register(v1, map[string]any{"id": "10.1.0.11", "port": 8081}, map[string]any{"id": "10.1.0.10"}, map[string]any{"id": "10.1.0.12"})
	e.call("POST", "/targetgroups/"+v1+"/deregistertargets", map[string]any{"targets": []map[string]any{{"id": "10.1.0.12"}}})
	register(v6, map[string]any{"id": "fd00:1::5"})
	register(inst, map[string]any{"id": "i-deadbeef"}, map[string]any{"id": "i-0123456789abcdef0"})
	register(local, map[string]any{"id": "10.0.0.20"})
	// The backend VPC's gateway reports what its checks found.
	e.call("POST", "/trellis/v1/nodes/backend-gw/health", snapshot.HealthReport{VPC: backendVPC, Targets: []snapshot.TargetHealth{
		{TargetGroupID: v1, ID: "10.1.0.10", Port: 8080, Status: "HEALTHY"},
		{TargetGroupID: v1, ID: "10.1.0.11", Port: 8081, Status: "UNHEALTHY", Reason: "HealthCheck.Timeout"},
	}})

	https := e.id("POST", "/services/"+orders+"/listeners", map[string]any{"name": "https", "protocol": "HTTPS", "port": 443,
		"defaultAction": forward(v1, 80, v6, 20)})
	e.id("POST", "/services/"+orders+"/listeners", map[string]any{"name": "http", "protocol": "HTTP", "port": 80,
		"defaultAction": map[string]any{"fixedResponse": map[string]any{"statusCode": 404}}})
	e.id("POST", "/services/"+orders+"/listeners/"+https+"/rules", map[string]any{"name": "v2-path", "priority": 20,
		"match":  map[string]any{"httpMatch": map[string]any{"pathMatch": map[string]any{"match": map[string]any{"prefix": "/v2"}}}},
		"action": forward(v6, 1)})
	e.id("POST", "/services/"+orders+"/listeners/"+https+"/rules", map[string]any{"name": "canary", "priority": 10,
		"match": map[string]any{"httpMatch": map[string]any{"method": "GET",
			"headerMatches": []map[string]any{{"name": "x-canary", "match": map[string]any{"exact": "1"}}}}},
		"action": forward(v1, 1)})
	e.id("POST", "/services/"+billing+"/listeners", map[string]any{"name": "http", "protocol": "HTTP", "port": 8080,
		"defaultAction": forward(inst, 100)})
	return clientVPC, backendVPC
}

// normalize replaces the random IDs in a snapshot's JSON with stable
// labels derived from names, and sorts the ID-sorted lists by label, so
// the golden file does not depend on the IDs. Whatever 17-hex ID is left
// over fails the test.
func normalize(t *testing.T, snap *snapshot.Snapshot) []byte {
	t.Helper()
	// 17-hex part of an ID -> label; the instance ID is chosen by the test.
	labels := map[string]string{"0123456789abcdef0": "0123456789abcdef0"}
	hexOf := func(id string) string { return id[strings.LastIndex(id, "-")+1:] }
	labels[hexOf(snap.VPC.ID)] = "client"
	for _, s := range snap.Services {
		labels[hexOf(s.ID)] = s.Name
		for _, n := range s.Networks {
			labels[hexOf(n.ID)] = n.Name
			for _, l := range n.AccessLogs {
				labels[hexOf(l.ARN)] = n.Name + "-log"
			}
		}
		for _, l := range s.AccessLogs {
			labels[hexOf(l.ARN)] = s.Name + "-log"
		}
		for _, l := range s.Listeners {
			labels[hexOf(l.ID)] = s.Name + "-" + l.Name
			for _, r := range l.Rules {
				prio := fmt.Sprint(r.Priority)
				if r.IsDefault {
					prio = "default"
				}
				labels[hexOf(r.ID)] = s.Name + "-" + l.Name + "-" + prio
			}
		}
	}
	for _, g := range snap.TargetGroups {
		labels[hexOf(g.ID)] = g.Name
		if g.VpcID != snap.VPC.ID {
			labels[hexOf(g.VpcID)] = "backend"
		}
	}
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	hex := regexp.MustCompile(`[0-9a-f]{17}`)
	b = hex.ReplaceAllFunc(b, func(m []byte) []byte {
		if l, ok := labels[string(m)]; ok {
			return []byte(l)
		}
		t.Errorf("unlabelled ID part %s in the snapshot", m)
		return m
	})
	var out snapshot.Snapshot
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(out.Services, func(a, b snapshot.Service) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(out.TargetGroups, func(a, b snapshot.TargetGroup) int { return strings.Compare(a.ID, b.ID) })
	out.Version = 0
	b, err = json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it); got:\n%s", path, got)
	}
}

func TestBuildGolden(t *testing.T) {
	e := newEnv(t)
	client, backend := e.world()
	t.Run("client", func(t *testing.T) {
		snap := e.build(client, fakeCerts{})
		checkSorted(t, snap)
		golden(t, "client", normalize(t, snap))
	})
	// The backend VPC is in no network: it serves no service, but its
	// gateways check the groups whose targets live there.
	t.Run("backend", func(t *testing.T) {
		snap := e.build(backend, nil)
		if len(snap.Services) != 0 || len(snap.TargetGroups) != 3 {
			t.Fatalf("backend: %d services, %d groups; want 0 and orders-v1, orders-v6, elsewhere", len(snap.Services), len(snap.TargetGroups))
		}
		for _, g := range snap.TargetGroups {
			if !g.Checked {
				t.Errorf("group %s of the backend VPC is not Checked there", g.Name)
			}
		}
	})
}

// checkSorted asserts the order the snapshot promises, which the golden
// file (sorted by label) cannot show.
func checkSorted(t *testing.T, snap *snapshot.Snapshot) {
	t.Helper()
	if !slices.IsSortedFunc(snap.Services, func(a, b snapshot.Service) int { return strings.Compare(a.ID, b.ID) }) {
		t.Error("services are not sorted by ID")
	}
	if !slices.IsSortedFunc(snap.TargetGroups, func(a, b snapshot.TargetGroup) int { return strings.Compare(a.ID, b.ID) }) {
		t.Error("target groups are not sorted by ID")
	}
}

func TestBuildIsDeterministicAcrossRevisions(t *testing.T) {
	e := newEnv(t)
	client, _ := e.world()
	first := e.build(client, fakeCerts{})
	// Writes that do not concern the client VPC's snapshot.
	e.call("POST", "/trellis/v1/vpcs", map[string]any{"name": "other", "cidrs": []string{"10.9.0.0/16"}})
	e.call("POST", "/servicenetworks", map[string]any{"name": "unrelated"})
	second := e.build(client, fakeCerts{})
	if second.Version <= first.Version {
		t.Fatalf("versions %d then %d: want the later build at a later revision", first.Version, second.Version)
	}
	a, b := *first, *second
	a.Version, b.Version = 0, 0
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Errorf("same content, different snapshots:\n%s\n%s", ja, jb)
	}
}

func TestBuildTargetStatus(t *testing.T) {
	e := newEnv(t)
	vpc := e.id("POST", "/trellis/v1/vpcs", map[string]any{"name": "v", "cidrs": []string{"10.0.0.0/16"}})
	tg := e.id("POST", "/targetgroups", map[string]any{"name": "web", "type": "IP", "config": map[string]any{
		"protocol": "HTTP", "vpcIdentifier": vpc}})
	e.call("POST", "/targetgroups/"+tg+"/registertargets", map[string]any{"targets": []map[string]any{{"id": "10.0.0.1"}, {"id": "10.0.0.2"}}})
	status := func() map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, g := range e.build(vpc, nil).TargetGroups {
			for _, tt := range g.Targets {
				out[tt.ID] = tt.Status
			}
		}
		return out
	}
	if got := status(); got["10.0.0.1"] != "INITIAL" || got["10.0.0.2"] != "INITIAL" {
		t.Errorf("new targets: %v, want INITIAL", got)
	}
	e.call("POST", "/trellis/v1/nodes/gw/health", snapshot.HealthReport{VPC: vpc, Targets: []snapshot.TargetHealth{
		{TargetGroupID: tg, ID: "10.0.0.1", Port: 80, Status: "HEALTHY"}}})
	if got := status(); got["10.0.0.1"] != "HEALTHY" {
		t.Errorf("after a report: %v", got)
	}
	// Disabling health checks makes every target UNAVAILABLE; re-enabling
	// shows the last report again.
	e.call("PATCH", "/targetgroups/"+tg, map[string]any{"healthCheck": map[string]any{"enabled": false}})
	if got := status(); got["10.0.0.1"] != "UNAVAILABLE" || got["10.0.0.2"] != "UNAVAILABLE" {
		t.Errorf("health checks disabled: %v", got)
	}
	e.call("PATCH", "/targetgroups/"+tg, map[string]any{"healthCheck": map[string]any{"enabled": true}})
	if got := status(); got["10.0.0.1"] != "HEALTHY" {
		t.Errorf("re-enabled: %v", got)
	}
	// A draining target is left out; registering it again brings it back.
	e.call("POST", "/targetgroups/"+tg+"/deregistertargets", map[string]any{"targets": []map[string]any{{"id": "10.0.0.1"}}})
	if got := status(); len(got) != 1 || got["10.0.0.2"] == "" {
		t.Errorf("after deregistering 10.0.0.1: %v", got)
	}
	e.call("POST", "/targetgroups/"+tg+"/registertargets", map[string]any{"targets": []map[string]any{{"id": "10.0.0.1"}}})
	if got := status(); got["10.0.0.1"] != "INITIAL" {
		t.Errorf("registered again while draining: %v, want INITIAL", got)
	}
}

func TestBuildErrors(t *testing.T) {
	e := newEnv(t)
	client, _ := e.world()
	if _, err := snapshot.Build(context.Background(), e.st, snapshot.BuildOptions{VPCID: "vpc-0000000000000000f"}); !errors.Is(err, snapshot.ErrVPCNotFound) {
		t.Errorf("unknown VPC: %v, want ErrVPCNotFound", err)
	}
	// A failing certificate source fails only the certificate.
	snap, err := snapshot.Build(context.Background(), e.st, snapshot.BuildOptions{VPCID: client, Region: region, Certs: fakeCerts{fail: true}})
	if !errors.Is(err, snapshot.ErrCertificate) || snap == nil {
		t.Fatalf("failing CertSource: %v, %v; want a snapshot and ErrCertificate", snap, err)
	}
	for _, s := range snap.Services {
		if s.Certificate != nil || len(s.Listeners) == 0 {
			t.Errorf("service %s: certificate %v, %d listeners", s.Name, s.Certificate, len(s.Listeners))
		}
	}
}
