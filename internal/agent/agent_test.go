package agent

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/agent/config"
	"github.com/trellis-mesh/trellis/internal/agent/egress"
)

func TestPublishRoundTrip(t *testing.T) {
	cfg, err := config.Parse([]byte(`{"serviceConnectConfiguration":{"enabled":true,"namespace":"shop","services":[
		{"portName":"api","discoveryName":"payments","clientAliases":[{"dnsName":"payments","port":8080}],
		 "timeout":{"perRequestTimeoutSeconds":7}}]},
		"portMappings":[{"name":"api","containerPort":9000,"appProtocol":"grpc"}],
		"trellis":{"services":[{"discoveryName":"payments","retryPolicy":{"numRetries":3},
		 "circuitBreaker":{"maxRequests":50}}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := publishAttributes(&cfg.Services[0])
	if err != nil {
		t.Fatal(err)
	}
	p, err := parsePublished(attrs)
	if err != nil {
		t.Fatal(err)
	}
	pol := p.egressPolicy()
	if pol.Protocol != egress.GRPC || pol.PerRequestTimeout != 7*time.Second || pol.Retry.NumRetries != 3 ||
		!pol.Retry.On.Has(egress.RetryUnavailable) || pol.Breaker.MaxRequests != 50 {
		t.Errorf("client policy %+v", pol)
	}
	if err := pol.Validate(); err != nil {
		t.Errorf("published policy does not validate: %v", err)
	}
	if p.Aliases[0] != (publishAlias{"payments", 8080}) {
		t.Errorf("aliases %+v", p.Aliases)
	}
	for _, bad := range []map[string]string{
		{attrConnect: `{`}, {attrConnect: `{"v":2,"aliases":[{"dnsName":"a","port":1}]}`}, {attrConnect: `{"v":1,"aliases":[]}`},
	} {
		if _, err := parsePublished(bad); err == nil {
			t.Errorf("parsePublished(%v): no error", bad)
		}
	}
	if p, err := parsePublished(map[string]string{"other": "x"}); p != nil || err != nil {
		t.Errorf("no attribute: %v %v", p, err)
	}
}

func TestVIPs(t *testing.T) {
	v, err := newVIPs(netip.MustParsePrefix("127.255.0.0/30"), "a") // two usable addresses
	if err != nil {
		t.Fatal(err)
	}
	a, _ := v.get("payments")
	b, _ := v.get("orders")
	if a == b || !netip.MustParsePrefix("127.255.0.0/30").Contains(a) || a.As4()[3] == 0 || a.As4()[3] == 3 || b.As4()[3] == 0 || b.As4()[3] == 3 {
		t.Errorf("addresses %s %s: want two distinct host addresses", a, b)
	}
	if again, _ := v.get("payments"); again != a {
		t.Errorf("payments moved from %s to %s", a, again)
	}
	if _, err := v.get("third"); err == nil {
		t.Error("a full range gave an address")
	}
	v.release("orders")
	if _, err := v.get("third"); err != nil {
		t.Errorf("after a release: %v", err)
	}
	// The address of a name does not depend on other names.
	w, _ := newVIPs(netip.MustParsePrefix("127.255.0.0/16"), "a")
	x, _ := newVIPs(netip.MustParsePrefix("127.255.0.0/16"), "a")
	_, _ = x.get("zzz")
	wa, _ := w.get("payments")
	xa, _ := x.get("payments")
	if wa != xa {
		t.Errorf("payments is %s in one agent and %s in another with the same salt", wa, xa)
	}
	y, _ := newVIPs(netip.MustParsePrefix("127.255.0.0/16"), "b")
	if ya, _ := y.get("payments"); ya == wa {
		t.Errorf("two salts gave payments the same address %s", ya)
	}
	// A blocked address is skipped.
	y.block("payments", wa)
	if ya, _ := y.get("payments"); ya == wa {
		t.Errorf("blocked address %s handed out again", ya)
	}
}

func TestHostsFile(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "etc-hosts")
	if err := os.WriteFile(base, []byte("127.0.0.1 localhost"), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := newHostsFile(filepath.Join(dir, "hosts"), base)
	if err != nil {
		t.Fatal(err)
	}
	long := map[string]netip.Addr{"payments": netip.MustParseAddr("127.255.0.7"), "orders.shop": netip.MustParseAddr("127.255.0.9")}
	if err := h.write(long); err != nil {
		t.Fatal(err)
	}
	if err := h.write(map[string]netip.Addr{"orders.shop": netip.MustParseAddr("127.255.0.9")}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(h.path)
	got := string(b)
	if !strings.HasPrefix(got, "127.0.0.1 localhost\n") || !strings.Contains(got, "127.255.0.9\torders.shop\n") || strings.Contains(got, "payments") {
		t.Errorf("hosts file after shrinking:\n%s", got)
	}
}

// TestPublishedAliasIsAHostName: an alias read from the registry goes into
// hosts files, so anything but a host name is refused.
func TestPublishedAliasIsAHostName(t *testing.T) {
	for name, ok := range map[string]bool{
		"payments": true, "payments.shop": true, "a-b.c1": true,
		"": false, "x\n6.6.6.6 api.stripe.com": false, "a b": false, "-a": false, "a-": false, "a..b": false, ".a": false,
		strings.Repeat("a", 64): false, strings.Repeat("a.", 127) + "a": false,
	} {
		attrs := map[string]string{attrConnect: `{"v":1,"aliases":[{"dnsName":` + strconv.Quote(name) + `,"port":80}]}`}
		if _, err := parsePublished(attrs); (err == nil) != ok {
			t.Errorf("alias %q: err %v, want ok=%t", name, err, ok)
		}
	}
}
