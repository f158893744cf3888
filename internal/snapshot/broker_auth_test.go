package snapshot_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/snapshot"
)

// runningClock is a clock that runs at real speed from a chosen instant,
// so the broker's real timers and its idea of the date agree.
type runningClock struct {
	mu    sync.Mutex
	start time.Time
	base  time.Time
}

func newRunningClock(start time.Time) *runningClock {
	return &runningClock{start: start, base: time.Now()}
}

func (c *runningClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.start.Add(time.Since(c.base))
}

func dates(s *snapshot.Snapshot) []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range s.Auth.SigningKeys {
		if !seen[k.Date] {
			seen[k.Date] = true
			out = append(out, k.Date)
		}
	}
	return out
}

// TestBrokerSlidesSigningKeysAtMidnight: with no store change, the broker
// rebuilds when its clock passes UTC midnight, and the snapshot's keys
// move on by a day under a higher version.
func TestBrokerSlidesSigningKeysAtMidnight(t *testing.T) {
	e := newEnv(t)
	client, _ := e.world()
	e.identities()
	clk := newRunningClock(time.Date(2026, 11, 26, 23, 59, 59, 700e6, time.UTC))
	b := newBroker(t, e, snapshot.BrokerConfig{Auth: snapshot.AuthOptions{Now: clk.Now}})
	ch, cancel := b.Subscribe(context.Background(), client)
	defer cancel()
	first := recv(t, ch)
	if got := dates(first); len(got) != 3 || got[0] != "20261125" || got[2] != "20261127" {
		t.Fatalf("before midnight: dates %v", got)
	}
	second := recv(t, ch)
	if got := dates(second); len(got) != 3 || got[0] != "20261126" || got[2] != "20261128" {
		t.Errorf("after midnight: dates %v", got)
	}
	if second.Version != first.Version+1 || e.rev() != first.Version {
		t.Errorf("after midnight: version %d (first %d, store at %d)", second.Version, first.Version, e.rev())
	}
}

// TestBrokerPublishesIdentityChanges: a new access key reaches every
// VPC's nodes.
func TestBrokerPublishesIdentityChanges(t *testing.T) {
	e := newEnv(t)
	client, backend := e.world()
	keys := e.identities()
	b := newBroker(t, e, snapshot.BrokerConfig{})
	chA, cancelA := b.Subscribe(context.Background(), client)
	defer cancelA()
	chB, cancelB := b.Subscribe(context.Background(), backend)
	defer cancelB()
	first := recv(t, chA)
	recv(t, chB)
	// A change that concerns no identity keeps the very same material:
	// the broker does not re-encode or re-derive it.
	rev := e.register("orders-v1", "10.1.0.90")
	if s := recvVersion(t, chA, rev); s.Auth != first.Auth {
		t.Error("a target registration rebuilt the auth material")
	}
	recvVersion(t, chB, rev)
	out := e.call("POST", "/trellis/v1/accesskeys", map[string]any{"principal": "role/orders"})
	id := out["AccessKeyId"].(string)
	rev = e.rev()
	for _, ch := range []<-chan *snapshot.Snapshot{chA, chB} {
		s := recvVersion(t, ch, rev)
		n := 0
		for _, k := range s.Auth.SigningKeys {
			if k.AccessKeyID == id {
				n++
			}
		}
		if n != 3 || len(s.Auth.SigningKeys) != 3*(len(keys)+1) {
			t.Errorf("VPC %s: %d keys of the new access key, %d in all", s.VPC.ID, n, len(s.Auth.SigningKeys))
		}
	}
}
