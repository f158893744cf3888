package native_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
	"github.com/trellis-mesh/trellis/internal/api/native"
	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/snapshot"
	"github.com/trellis-mesh/trellis/internal/store/bolt"
)

// FuzzNodeAndInstanceRequests sends arbitrary bodies and node IDs to the
// node protocol's ack and health calls and to the instance registry: each
// must answer a client error or success, never a server error or a panic,
// whatever a node or script sends.
func FuzzNodeAndInstanceRequests(f *testing.F) {
	st, err := bolt.Open(filepath.Join(f.TempDir(), "trellis.db"), bolt.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	const acct = "111122223333"
	ctx := iam.WithCaller(context.Background(), iam.Caller{Account: acct, ARN: "arn:aws:iam::" + acct + ":user/dev"})
	vpc, err := native.CreateVPC(ctx, st, "us-east-1", acct, "v", []string{"10.0.0.0/16", "fd00::/64"}, nil, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	la := lattice.New(lattice.Config{Store: st, Region: "us-east-1", DeregistrationDelay: time.Minute})
	broker := snapshot.NewBroker(context.Background(), snapshot.BrokerConfig{Store: st, Region: "us-east-1"})
	f.Cleanup(broker.Close)
	na := native.New(st, "us-east-1", nil, nil, native.WithNodes(native.NodeOptions{Broker: broker}))

	do := func(h http.Handler, method, path string, body []byte) (int, []byte) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, method, path, bytes.NewReader(body)))
		return rec.Code, rec.Body.Bytes()
	}
	code, out := do(la, "POST", "/targetgroups", []byte(`{"name":"web","type":"IP","config":{"protocol":"HTTP","vpcIdentifier":"`+vpc.ID+`"}}`))
	if code != 201 {
		f.Fatalf("create target group: %d %s", code, out)
	}
	var tg struct{ ID string }
	_ = json.Unmarshal(out, &tg)
	do(la, "POST", "/targetgroups/"+tg.ID+"/registertargets", []byte(`{"targets":[{"id":"10.0.0.1"},{"id":"10.0.0.2"}]}`))

	f.Add(uint8(0), "gw-1", `{"vpc":"`+vpc.ID+`","version":3,"address":"10.0.0.9","ports":[80,443]}`)
	f.Add(uint8(0), "gw-1", `{"vpc":"`+vpc.ID+`","version":-1,"error":"x","ports":[0]}`)
	f.Add(uint8(1), "gw-1", `{"vpc":"`+vpc.ID+`","targets":[{"targetGroupId":"`+tg.ID+`","id":"10.0.0.1","port":80,"status":"HEALTHY","reason":"ok"}]}`)
	f.Add(uint8(1), "gw 1", `{"vpc":"","targets":[{"targetGroupId":"tg-x","id":"","port":-1,"status":""}]}`)
	f.Add(uint8(2), "", `{"vpc":"`+vpc.ID+`","address":"10.0.0.7","id":"i-0123456789abcdef0","name":"a","tags":{"k":"v"}}`)
	f.Add(uint8(2), "", `{"vpc":"`+vpc.ID+`","address":"fd00::1%eth0"}`)
	f.Add(uint8(3), "i-0123456789abcdef0", ``)
	f.Add(uint8(0), "gw-1", `[]`)
	f.Fuzz(func(t *testing.T, op uint8, node, body string) {
		var method, path string
		switch op % 4 {
		case 0:
			method, path = "POST", "/nodes/"+url.PathEscape(node)+"/ack"
		case 1:
			method, path = "POST", "/nodes/"+url.PathEscape(node)+"/health"
		case 2:
			method, path = "POST", "/instances"
		default:
			method, path = "DELETE", "/instances/"+url.PathEscape(node)
		}
		code, out := do(na, method, native.Prefix+path, []byte(body))
		if code >= 500 || code < 200 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, code, out)
		}
	})
}
