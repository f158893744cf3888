package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice/types"

	"github.com/trellis-mesh/trellis/internal/server"
)

func TestSDKDeregistrationDrains(t *testing.T) {
	const delay = 300 * time.Millisecond
	ts := startServerWith(t, server.Config{DataDir: t.TempDir(), DeregistrationDelay: delay})
	ctx, c := context.Background(), ts.admin()
	tg := must[*vpclattice.CreateTargetGroupOutput](t)(c.CreateTargetGroup(ctx, &vpclattice.CreateTargetGroupInput{
		Name: aws.String("web"), Type: types.TargetGroupTypeIp,
		Config: &types.TargetGroupConfig{Protocol: types.TargetGroupProtocolHttp, VpcIdentifier: aws.String(ts.boot.VPCID)}}))
	id := aws.ToString(tg.Id)
	register(t, ts, id, "10.0.0.1", "10.0.0.2", "10.0.0.3")
	deregister := func(ips ...string) {
		t.Helper()
		var targets []types.Target
		for _, ip := range ips {
			targets = append(targets, types.Target{Id: aws.String(ip)})
		}
		out := must[*vpclattice.DeregisterTargetsOutput](t)(c.DeregisterTargets(ctx, &vpclattice.DeregisterTargetsInput{TargetGroupIdentifier: &id, Targets: targets}))
		if len(out.Unsuccessful) > 0 || len(out.Successful) != len(ips) {
			t.Fatalf("deregister %v: %+v", ips, out)
		}
	}

	// Deregistered targets drain, then go.
	deregister("10.0.0.1", "10.0.0.2")
	if got := targetStatus(t, ts, id); got["10.0.0.1"] != "DRAINING" || got["10.0.0.2"] != "DRAINING" || got["10.0.0.3"] != "INITIAL" {
		t.Fatalf("after deregistering: %v", got)
	}
	// Deregistering a draining target again succeeds and keeps its deadline.
	deregister("10.0.0.1")
	// Registering a draining target again takes it back.
	register(t, ts, id, "10.0.0.2")
	if got := targetStatus(t, ts, id)["10.0.0.2"]; got != "INITIAL" {
		t.Errorf("re-registered while draining: %s, want INITIAL", got)
	}
	eventually(t, "the drained target to be removed", func() bool {
		_, present := targetStatus(t, ts, id)["10.0.0.1"]
		return !present
	})
	// 10.0.0.2 was due at the same deadline, which has now been handled.
	if got := targetStatus(t, ts, id); got["10.0.0.2"] != "INITIAL" || got["10.0.0.3"] != "INITIAL" || len(got) != 2 {
		t.Errorf("after the drain: %v", got)
	}
	// An unknown target still fails per target.
	out := must[*vpclattice.DeregisterTargetsOutput](t)(c.DeregisterTargets(ctx, &vpclattice.DeregisterTargetsInput{TargetGroupIdentifier: &id,
		Targets: []types.Target{{Id: aws.String("10.0.0.1")}}}))
	if len(out.Unsuccessful) != 1 || aws.ToString(out.Unsuccessful[0].FailureCode) != "TargetNotFound" {
		t.Errorf("deregistering a removed target: %+v", out)
	}

	// LAMBDA targets do not drain: Lattice fails their in-flight requests.
	fn := must[*vpclattice.CreateTargetGroupOutput](t)(c.CreateTargetGroup(ctx, &vpclattice.CreateTargetGroupInput{
		Name: aws.String("orders-fn"), Type: types.TargetGroupTypeLambda}))
	arn := "arn:aws:lambda:us-east-1:" + ts.boot.Account + ":function:orders"
	register(t, ts, aws.ToString(fn.Id), arn)
	if got := targetStatus(t, ts, aws.ToString(fn.Id)); got[arn] != "UNAVAILABLE" {
		t.Errorf("lambda target: %v, want UNAVAILABLE (no health checks)", got)
	}
	must[*vpclattice.DeregisterTargetsOutput](t)(c.DeregisterTargets(ctx, &vpclattice.DeregisterTargetsInput{TargetGroupIdentifier: fn.Id,
		Targets: []types.Target{{Id: aws.String(arn)}}}))
	if got := targetStatus(t, ts, aws.ToString(fn.Id)); len(got) != 0 {
		t.Errorf("lambda target after deregistering: %v, want none", got)
	}

	// With health checks off, targets are UNAVAILABLE.
	must[*vpclattice.UpdateTargetGroupOutput](t)(c.UpdateTargetGroup(ctx, &vpclattice.UpdateTargetGroupInput{TargetGroupIdentifier: &id,
		HealthCheck: &types.HealthCheckConfig{Enabled: aws.Bool(false)}}))
	if got := targetStatus(t, ts, id); got["10.0.0.2"] != "UNAVAILABLE" || got["10.0.0.3"] != "UNAVAILABLE" {
		t.Errorf("health checks disabled: %v", got)
	}
}

func TestSDKDrainingSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ts := startServerWith(t, server.Config{DataDir: dir, DeregistrationDelay: 3 * time.Second})
	ctx, c := context.Background(), ts.admin()
	tg := must[*vpclattice.CreateTargetGroupOutput](t)(c.CreateTargetGroup(ctx, &vpclattice.CreateTargetGroupInput{
		Name: aws.String("web"), Type: types.TargetGroupTypeIp,
		Config: &types.TargetGroupConfig{Protocol: types.TargetGroupProtocolHttp, VpcIdentifier: aws.String(ts.boot.VPCID)}}))
	id := aws.ToString(tg.Id)
	register(t, ts, id, "10.0.0.1")
	must[*vpclattice.DeregisterTargetsOutput](t)(c.DeregisterTargets(ctx, &vpclattice.DeregisterTargetsInput{TargetGroupIdentifier: &id,
		Targets: []types.Target{{Id: aws.String("10.0.0.1")}}}))
	ts.stop()

	// The deadline is kept in the store: a restarted server whose own delay
	// is an hour still removes the target when the first one said.
	ts = startServerWith(t, server.Config{DataDir: dir, DeregistrationDelay: time.Hour})
	if got := targetStatus(t, ts, id)["10.0.0.1"]; got != "DRAINING" {
		t.Fatalf("after a restart: %q, want DRAINING", got)
	}
	eventually(t, "the target to be removed at its stored deadline", func() bool {
		_, present := targetStatus(t, ts, id)["10.0.0.1"]
		return !present
	})
}
