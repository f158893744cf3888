package server_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice/types"

	"github.com/trellis-mesh/trellis/internal/controlclient"
	"github.com/trellis-mesh/trellis/internal/server"
	"github.com/trellis-mesh/trellis/internal/snapshot"
)

const (
	heartbeat = 50 * time.Millisecond
	waitLimit = 10 * time.Second
)

func startNodeServer(t *testing.T) *testServer {
	t.Helper()
	return startServerWith(t, server.Config{DataDir: t.TempDir(), NodeHeartbeat: heartbeat})
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// key is an access key for signing.
type key struct{ id, secret string }

func (ts *testServer) adminKey() key { return key{ts.boot.AccessKeyID, ts.secret} }

// stream is an open snapshot stream read line by line.
type stream struct {
	t      *testing.T
	resp   *http.Response
	msgs   chan snapshot.StreamMessage
	cancel context.CancelFunc
}

// openStream requests GET /trellis/v1/nodes/{node}/snapshots. For a
// status other than 200 it returns nil and the status and body.
func openStream(t *testing.T, ts *testServer, k key, node, query string) (*stream, int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.endpoint+"/trellis/v1/nodes/"+node+"/snapshots?"+query, nil)
	sum := sha256.Sum256(nil)
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: k.id, SecretAccessKey: k.secret}, req, hex.EncodeToString(sum[:]), "trellis", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, resp.StatusCode, string(body)
	}
	s := &stream{t: t, resp: resp, msgs: make(chan snapshot.StreamMessage, 64), cancel: cancel}
	go func() {
		defer close(s.msgs)
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			var m snapshot.StreamMessage
			if err := json.Unmarshal(line, &m); err != nil {
				t.Errorf("bad stream line %q: %v", line, err)
				return
			}
			s.msgs <- m
		}
	}()
	t.Cleanup(s.close)
	return s, http.StatusOK, ""
}

func (s *stream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next returns the next line; ok is false when the stream ended.
func (s *stream) next() (snapshot.StreamMessage, bool) {
	s.t.Helper()
	select {
	case m, ok := <-s.msgs:
		return m, ok
	case <-time.After(waitLimit):
		s.t.Fatal("no stream line within the wait limit")
	}
	return snapshot.StreamMessage{}, false
}

// nextSnapshot skips heartbeats up to the next snapshot.
func (s *stream) nextSnapshot() *snapshot.Snapshot {
	s.t.Helper()
	for {
		m, ok := s.next()
		if !ok {
			s.t.Fatal("stream ended before a snapshot")
		}
		if m.Snapshot != nil {
			return m.Snapshot
		}
	}
}

// nodeWorld creates, in the default VPC, a network with service orders,
// an HTTP listener forwarding to IP group web with target 127.0.0.10:8080.
func nodeWorld(t *testing.T, ts *testServer) (tgID string) {
	t.Helper()
	ctx, c := context.Background(), ts.admin()
	sn := must[*vpclattice.CreateServiceNetworkOutput](t)(c.CreateServiceNetwork(ctx, &vpclattice.CreateServiceNetworkInput{Name: aws.String("shop")}))
	must[*vpclattice.CreateServiceNetworkVpcAssociationOutput](t)(c.CreateServiceNetworkVpcAssociation(ctx,
		&vpclattice.CreateServiceNetworkVpcAssociationInput{ServiceNetworkIdentifier: sn.Id, VpcIdentifier: aws.String(ts.boot.VPCID)}))
	svc := must[*vpclattice.CreateServiceOutput](t)(c.CreateService(ctx, &vpclattice.CreateServiceInput{Name: aws.String("orders")}))
	must[*vpclattice.CreateServiceNetworkServiceAssociationOutput](t)(c.CreateServiceNetworkServiceAssociation(ctx,
		&vpclattice.CreateServiceNetworkServiceAssociationInput{ServiceNetworkIdentifier: sn.Id, ServiceIdentifier: svc.Id}))
	tg := must[*vpclattice.CreateTargetGroupOutput](t)(c.CreateTargetGroup(ctx, &vpclattice.CreateTargetGroupInput{
		Name: aws.String("web"), Type: types.TargetGroupTypeIp,
		Config: &types.TargetGroupConfig{Protocol: types.TargetGroupProtocolHttp, Port: aws.Int32(8080), VpcIdentifier: aws.String(ts.boot.VPCID)}}))
	register(t, ts, aws.ToString(tg.Id), "127.0.0.10")
	must[*vpclattice.CreateListenerOutput](t)(c.CreateListener(ctx, &vpclattice.CreateListenerInput{
		ServiceIdentifier: svc.Id, Name: aws.String("http"), Protocol: types.ListenerProtocolHttp, Port: aws.Int32(80),
		DefaultAction: &types.RuleActionMemberForward{Value: types.ForwardAction{TargetGroups: []types.WeightedTargetGroup{{TargetGroupIdentifier: tg.Id}}}}}))
	return aws.ToString(tg.Id)
}

func register(t *testing.T, ts *testServer, tgID string, ips ...string) {
	t.Helper()
	var targets []types.Target
	for _, ip := range ips {
		targets = append(targets, types.Target{Id: aws.String(ip)})
	}
	out := must[*vpclattice.RegisterTargetsOutput](t)(ts.admin().RegisterTargets(context.Background(),
		&vpclattice.RegisterTargetsInput{TargetGroupIdentifier: aws.String(tgID), Targets: targets}))
	if len(out.Unsuccessful) > 0 {
		t.Fatalf("register %v: %+v", ips, out.Unsuccessful)
	}
}

// targetStatus is the status ListTargets shows per target ID ("ID" -> "STATUS REASON").
func targetStatus(t *testing.T, ts *testServer, tgID string) map[string]string {
	t.Helper()
	out := must[*vpclattice.ListTargetsOutput](t)(ts.admin().ListTargets(context.Background(), &vpclattice.ListTargetsInput{TargetGroupIdentifier: aws.String(tgID)}))
	m := map[string]string{}
	for _, it := range out.Items {
		m[aws.ToString(it.Id)] = strings.TrimSpace(string(it.Status) + " " + aws.ToString(it.ReasonCode))
	}
	return m
}

func nodes(t *testing.T, ts *testServer, k key) map[string]snapshot.NodeStatus {
	t.Helper()
	var out struct{ Items []snapshot.NodeStatus }
	if code := nativeCall(t, ts, k.id, k.secret, "GET", "/nodes", nil, &out); code != 200 {
		t.Fatalf("list nodes: %d", code)
	}
	m := map[string]snapshot.NodeStatus{}
	for _, n := range out.Items {
		m[n.ID] = n
	}
	return m
}

func hasTarget(s *snapshot.Snapshot, ip string) bool {
	for _, g := range s.TargetGroups {
		for _, t := range g.Targets {
			if t.ID == ip {
				return true
			}
		}
	}
	return false
}

func TestNodeStreamAckAndList(t *testing.T) {
	ts := startNodeServer(t)
	tg := nodeWorld(t, ts)
	vpc := ts.boot.VPCID
	admin := ts.adminKey()

	s, code, body := openStream(t, ts, admin, "gw-1", "vpc="+vpc+"&version=0")
	if code != 200 {
		t.Fatalf("stream: %d %s", code, body)
	}
	if ct := s.resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type %q", ct)
	}
	first := s.nextSnapshot()
	if len(first.Services) != 1 || first.Services[0].Name != "orders" || len(first.TargetGroups) != 1 ||
		first.TargetGroups[0].Targets[0].Address != "127.0.0.10:8080" || !first.TargetGroups[0].Checked {
		t.Fatalf("first snapshot: %+v", first)
	}
	// A quiet stream carries heartbeats.
	if m, ok := s.next(); !ok || m.Snapshot != nil || m.Heartbeat < time.Now().Add(-time.Minute).UnixMilli() {
		t.Errorf("after the snapshot: %+v, want a heartbeat", m)
	}
	n := nodes(t, ts, admin)["gw-1"]
	if !n.Connected || n.VPC != vpc || n.LatestVersion != first.Version || n.AppliedVersion != 0 || n.Lag != first.Version || n.LastSeen.IsZero() {
		t.Errorf("node before its ack: %+v", n)
	}

	ack := func(body map[string]any) {
		t.Helper()
		if code := nativeCall(t, ts, admin.id, admin.secret, "POST", "/nodes/gw-1/ack", body, nil); code != 200 {
			t.Fatalf("ack: %d", code)
		}
	}
	ack(map[string]any{"vpc": vpc, "version": first.Version, "address": "127.0.0.1", "ports": []int{8443, 80, 80}})
	n = nodes(t, ts, admin)["gw-1"]
	if n.AppliedVersion != first.Version || n.Lag != 0 || n.Address != "127.0.0.1" || fmt.Sprint(n.Ports) != "[80 8443]" {
		t.Errorf("node after its ack: %+v", n)
	}

	// A change reaches the stream; a failed apply keeps the applied version.
	register(t, ts, tg, "127.0.0.11")
	second := s.nextSnapshot()
	if second.Version <= first.Version || !hasTarget(second, "127.0.0.11") {
		t.Fatalf("second snapshot: version %d after %d, target present %v", second.Version, first.Version, hasTarget(second, "127.0.0.11"))
	}
	ack(map[string]any{"vpc": vpc, "version": second.Version, "error": "listener 80: address in use"})
	n = nodes(t, ts, admin)["gw-1"]
	if n.AppliedVersion != first.Version || n.LastError != "listener 80: address in use" || n.Lag != second.Version-first.Version {
		t.Errorf("node after a failed apply: %+v", n)
	}

	// Closing the stream disconnects the node.
	s.close()
	eventually(t, "the node to show disconnected", func() bool { return !nodes(t, ts, admin)["gw-1"].Connected })

	// A node that has the latest version is not sent it again: the first
	// line is a heartbeat, and the next change comes as a snapshot.
	s, _, _ = openStream(t, ts, admin, "gw-1", "vpc="+vpc+"&version="+fmt.Sprint(second.Version))
	if m, ok := s.next(); !ok || m.Snapshot != nil {
		t.Fatalf("reconnecting with the latest version: %+v, want a heartbeat first", m)
	}
	register(t, ts, tg, "127.0.0.12")
	if third := s.nextSnapshot(); !hasTarget(third, "127.0.0.12") {
		t.Errorf("third snapshot lacks the new target")
	}
	// A node with an older version gets the latest at once.
	s2, _, _ := openStream(t, ts, admin, "gw-2", "vpc="+vpc+"&version=1")
	if m, ok := s2.next(); !ok || m.Snapshot == nil || !hasTarget(m.Snapshot, "127.0.0.12") {
		t.Errorf("reconnecting with an old version: %+v, want the latest snapshot", m)
	}
}

func TestNodeStreamEndsOnShutdown(t *testing.T) {
	ts := startNodeServer(t)
	s, code, body := openStream(t, ts, ts.adminKey(), "gw-1", "vpc="+ts.boot.VPCID)
	if code != 200 {
		t.Fatalf("stream: %d %s", code, body)
	}
	s.nextSnapshot()
	start := time.Now()
	ts.stop()
	// Shutdown waits up to 10 s for open requests; a stream must not hold it.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown with an open stream took %v", d)
	}
	for {
		if _, ok := s.next(); !ok {
			break
		}
	}
}

func TestNodeHealthReports(t *testing.T) {
	ts := startNodeServer(t)
	web := nodeWorld(t, ts)
	vpc := ts.boot.VPCID
	admin := ts.adminKey()
	ctx := context.Background()
	var other struct{ ID string }
	if code := nativeCall(t, ts, admin.id, admin.secret, "POST", "/vpcs", map[string]any{"name": "other", "cidrs": []string{"10.20.0.0/16"}}, &other); code != 201 {
		t.Fatalf("create vpc: %d", code)
	}
	far := must[*vpclattice.CreateTargetGroupOutput](t)(ts.admin().CreateTargetGroup(ctx, &vpclattice.CreateTargetGroupInput{
		Name: aws.String("far"), Type: types.TargetGroupTypeIp,
		Config: &types.TargetGroupConfig{Protocol: types.TargetGroupProtocolHttp, VpcIdentifier: aws.String(other.ID)}}))
	register(t, ts, aws.ToString(far.Id), "10.20.0.5")

	report := func(targets ...snapshot.TargetHealth) int {
		t.Helper()
		return nativeCall(t, ts, admin.id, admin.secret, "POST", "/nodes/gw-1/health", snapshot.HealthReport{VPC: vpc, Targets: targets}, nil)
	}
	code := report(
		snapshot.TargetHealth{TargetGroupID: web, ID: "127.0.0.10", Port: 8080, Status: "HEALTHY"},
		// Skipped: a target that is not registered, and one of a group in another VPC.
		snapshot.TargetHealth{TargetGroupID: web, ID: "127.0.0.99", Port: 8080, Status: "UNHEALTHY"},
		snapshot.TargetHealth{TargetGroupID: aws.ToString(far.Id), ID: "10.20.0.5", Port: 80, Status: "UNHEALTHY"},
	)
	if code != 200 {
		t.Fatalf("report: %d", code)
	}
	if got := targetStatus(t, ts, web); got["127.0.0.10"] != "HEALTHY" || len(got) != 1 {
		t.Errorf("web after the report: %v", got)
	}
	if got := targetStatus(t, ts, aws.ToString(far.Id)); got["10.20.0.5"] != "INITIAL" {
		t.Errorf("a report for another VPC's group changed it: %v", got)
	}
	report(snapshot.TargetHealth{TargetGroupID: web, ID: "127.0.0.10", Port: 8080, Status: "UNHEALTHY", Reason: "HealthCheck.Timeout"})
	if got := targetStatus(t, ts, web); got["127.0.0.10"] != "UNHEALTHY HealthCheck.Timeout" {
		t.Errorf("web after an unhealthy report: %v", got)
	}
	// The same status again writes nothing.
	before, _ := ts.srv.Store().Revision(ctx)
	report(snapshot.TargetHealth{TargetGroupID: web, ID: "127.0.0.10", Port: 8080, Status: "UNHEALTHY", Reason: "HealthCheck.Timeout"})
	if after, _ := ts.srv.Store().Revision(ctx); after != before {
		t.Errorf("an unchanged report wrote to the store (revision %d -> %d)", before, after)
	}

	// Every invalid member is named.
	var ve struct {
		FieldList []struct{ Name string }
	}
	code = nativeCallErr(t, ts, admin, "POST", "/nodes/gw-1/health", map[string]any{"targets": []map[string]any{
		{"targetGroupId": "web", "id": "", "port": 70000, "status": "SICK", "reason": "timed out"}}}, &ve)
	names := fieldNames(ve.FieldList)
	if code != 400 || names != "targets[0].id,targets[0].port,targets[0].reason,targets[0].status,targets[0].targetGroupId,vpc" {
		t.Errorf("invalid report: %d, fields %s", code, names)
	}
}

// nativeCallErr is nativeCall that also decodes error bodies.
func nativeCallErr(t *testing.T, ts *testServer, k key, method, path string, in, out any) int {
	t.Helper()
	var body []byte
	if in != nil {
		body, _ = json.Marshal(in)
	}
	req, _ := http.NewRequest(method, ts.endpoint+"/trellis/v1"+path, strings.NewReader(string(body)))
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: k.id, SecretAccessKey: k.secret}, req, hex.EncodeToString(sum[:]), "trellis", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("decoding %s: %v", raw, err)
		}
	}
	return resp.StatusCode
}

func fieldNames(fs []struct{ Name string }) string {
	var names []string
	for _, f := range fs {
		names = append(names, f.Name)
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

func TestNodeRequestValidation(t *testing.T) {
	ts := startNodeServer(t)
	admin := ts.adminKey()
	vpc := ts.boot.VPCID
	for _, c := range []struct {
		name, query, node string
		status            int
		field             string
	}{
		{"bad node ID", "vpc=" + vpc, "gw%20one", 400, "node"},
		{"long node ID", "vpc=" + vpc, strings.Repeat("n", 129), 400, "node"},
		{"no VPC", "", "gw-1", 400, "vpc"},
		{"negative version", "vpc=" + vpc + "&version=-1", "gw-1", 400, "version"},
		{"version not a number", "vpc=" + vpc + "&version=latest", "gw-1", 400, "version"},
		{"unknown VPC", "vpc=vpc-0000000000000000f", "gw-1", 404, ""},
	} {
		t.Run("stream "+c.name, func(t *testing.T) {
			_, code, body := openStream(t, ts, admin, c.node, c.query)
			if code != c.status || !strings.Contains(body, `"name":"`+c.field+`"`) && c.field != "" {
				t.Errorf("%d %s, want %d naming %q", code, body, c.status, c.field)
			}
		})
	}
	for _, c := range []struct {
		name   string
		body   any
		fields string
	}{
		{"empty", map[string]any{}, "vpc"},
		{"bad members", map[string]any{"vpc": vpc, "version": -3, "ports": []int{80, 0, 70000}, "address": "a b", "error": strings.Repeat("e", 5000)},
			"address,error,ports[1],ports[2],version"},
		{"unknown member", map[string]any{"vpc": vpc, "versions": 1}, "versions"},
	} {
		t.Run("ack "+c.name, func(t *testing.T) {
			var ve struct{ FieldList []struct{ Name string } }
			if code := nativeCallErr(t, ts, admin, "POST", "/nodes/gw-1/ack", c.body, &ve); code != 400 || fieldNames(ve.FieldList) != c.fields {
				t.Errorf("%d, fields %s, want 400 naming %s", code, fieldNames(ve.FieldList), c.fields)
			}
		})
	}
}

func TestNodeAuthorization(t *testing.T) {
	ts := startNodeServer(t)
	admin := ts.adminKey()
	vpc := ts.boot.VPCID
	var acct struct{ ID string }
	nativeCall(t, ts, admin.id, admin.secret, "POST", "/accounts", map[string]string{"name": "tenant"}, &acct)
	nativeCall(t, ts, admin.id, admin.secret, "POST", "/principals", map[string]any{"name": "gw", "type": "role", "account": acct.ID}, nil)
	var k struct{ AccessKeyId, SecretAccessKey string }
	if code := nativeCall(t, ts, admin.id, admin.secret, "POST", "/accesskeys", map[string]string{"principal": "role/gw", "account": acct.ID}, &k); code != 201 {
		t.Fatalf("create key: %d", code)
	}
	tenant := key{k.AccessKeyId, k.SecretAccessKey}

	// The tenant may not serve the admin account's VPC.
	if _, code, body := openStream(t, ts, tenant, "gw-t", "vpc="+vpc); code != 403 || !strings.Contains(body, "may serve only VPCs of its account") {
		t.Errorf("tenant stream of another account's VPC: %d %s", code, body)
	}
	if code := nativeCall(t, ts, tenant.id, tenant.secret, "POST", "/nodes/gw-t/ack", map[string]any{"vpc": vpc, "version": 1}, nil); code != 403 {
		t.Errorf("tenant ack for another account's VPC: %d", code)
	}
	if code := nativeCall(t, ts, tenant.id, tenant.secret, "POST", "/nodes/gw-t/health", map[string]any{"vpc": vpc, "targets": []any{}}, nil); code != 403 {
		t.Errorf("tenant health report for another account's VPC: %d", code)
	}
	if _, code, _ := openStream(t, ts, key{"AKIAUNKNOWNUNKNOWN00", "x"}, "gw-t", "vpc="+vpc); code != 403 {
		t.Errorf("unknown key: %d", code)
	}

	// Its own VPC it may serve; a node ID the admin account holds it may not take.
	var own struct{ ID string }
	if code := nativeCall(t, ts, tenant.id, tenant.secret, "POST", "/vpcs", map[string]any{"name": "mine", "cidrs": []string{"10.7.0.0/16"}}, &own); code != 201 {
		t.Fatalf("tenant vpc: %d", code)
	}
	s, code, body := openStream(t, ts, tenant, "gw-t", "vpc="+own.ID)
	if code != 200 {
		t.Fatalf("tenant stream of its VPC: %d %s", code, body)
	}
	if snap := s.nextSnapshot(); snap.VPC.ID != own.ID || snap.VPC.Account != acct.ID || len(snap.Services) != 0 {
		t.Errorf("tenant snapshot: %+v", snap)
	}
	nativeCall(t, ts, admin.id, admin.secret, "POST", "/nodes/gw-a/ack", map[string]any{"vpc": vpc, "version": 1}, nil)
	if code := nativeCall(t, ts, tenant.id, tenant.secret, "POST", "/nodes/gw-a/ack", map[string]any{"vpc": own.ID, "version": 1}, nil); code != 409 {
		t.Errorf("tenant taking the admin's node ID: %d, want 409", code)
	}
	// Each sees its own nodes; the admin sees all.
	if got := nodes(t, ts, tenant); len(got) != 1 || got["gw-t"].VPC != own.ID {
		t.Errorf("tenant's nodes: %v", got)
	}
	if got := nodes(t, ts, admin); len(got) != 2 {
		t.Errorf("admin's nodes: %v", got)
	}
}

// TestNodeClient drives the protocol with the node side's own client.
func TestNodeClient(t *testing.T) {
	ts := startNodeServer(t)
	web := nodeWorld(t, ts)
	admin := ts.adminKey()
	cc, err := controlclient.New(controlclient.Config{Endpoint: ts.endpoint, NodeID: "gw-e2e", VPCID: ts.boot.VPCID,
		Credentials: credentials.NewStaticCredentialsProvider(admin.id, admin.secret, ""), StateDir: t.TempDir(),
		Address: "127.0.0.1", SilenceTimeout: 3 * heartbeat, MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cc.SetPorts([]int32{80})
	applied := make(chan *snapshot.Snapshot, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- cc.Run(ctx, func(s *snapshot.Snapshot) error { applied <- s; return nil })
	}()
	defer func() {
		cancel()
		<-done
	}()
	eventually(t, "the node to apply and acknowledge the latest snapshot", func() bool {
		n := nodes(t, ts, admin)["gw-e2e"]
		return n.Connected && n.AppliedVersion > 0 && n.Lag == 0 && fmt.Sprint(n.Ports) == "[80]"
	})

	// Health the node's checks find shows in ListTargets and comes back in
	// the next snapshot.
	cc.ReportHealth(snapshot.TargetHealth{TargetGroupID: web, ID: "127.0.0.10", Port: 8080, Status: "HEALTHY"})
	eventually(t, "ListTargets to show the reported health", func() bool { return targetStatus(t, ts, web)["127.0.0.10"] == "HEALTHY" })
	eventually(t, "a snapshot with the reported health", func() bool {
		select {
		case s := <-applied:
			return len(s.TargetGroups) == 1 && s.TargetGroups[0].Targets[0].Status == "HEALTHY"
		default:
			return false
		}
	})
}
