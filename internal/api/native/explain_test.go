package native_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
	"github.com/trellis-mesh/trellis/internal/api/native"
	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/store/bolt"
)

// FuzzExplain sends arbitrary bodies to the explain call against a small
// installation (a network and a service, both AWS_IAM with auth policies,
// a listener, the VPC associated, a principal with tags and an identity
// policy): whatever a user sends must be answered with a decision or a
// client error, never a server error or a panic.
func FuzzExplain(f *testing.F) {
	st, err := bolt.Open(filepath.Join(f.TempDir(), "trellis.db"), bolt.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	const acct = "111122223333"
	ctx := iam.WithCaller(context.Background(), iam.Caller{Account: acct, ARN: "arn:aws:iam::" + acct + ":user/root", Admin: true})
	vpc, err := native.CreateVPC(ctx, st, "us-east-1", acct, "default", []string{"10.0.0.0/16"}, nil, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	la := lattice.New(lattice.Config{Store: st, Region: "us-east-1", DeregistrationDelay: time.Minute})
	na := native.New(st, "us-east-1", nil, nil)
	do := func(h http.Handler, method, path string, body string) (int, []byte) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, method, path, bytes.NewReader([]byte(body))))
		return rec.Code, rec.Body.Bytes()
	}
	id := func(code int, out []byte) string {
		var v struct{ ID string }
		if code >= 300 || json.Unmarshal(out, &v) != nil {
			f.Fatalf("setup: %d %s", code, out)
		}
		return v.ID
	}
	const allowAll = `{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"vpc-lattice-svcs:Invoke\",\"Resource\":\"*\",` +
		`\"Condition\":{\"StringEquals\":{\"aws:PrincipalTag/team\":\"${aws:PrincipalTag/team}\"}}}]}`
	sn := id(do(la, "POST", "/servicenetworks", `{"name":"shop","authType":"AWS_IAM"}`))
	svc := id(do(la, "POST", "/services", `{"name":"orders","authType":"AWS_IAM"}`))
	id(do(la, "POST", "/servicenetworkserviceassociations", `{"serviceNetworkIdentifier":"`+sn+`","serviceIdentifier":"`+svc+`"}`))
	id(do(la, "POST", "/servicenetworkvpcassociations", `{"serviceNetworkIdentifier":"`+sn+`","vpcIdentifier":"`+vpc.ID+`"}`))
	id(do(la, "POST", "/services/"+svc+"/listeners", `{"name":"web","protocol":"HTTP","port":80,"defaultAction":{"fixedResponse":{"statusCode":404}}}`))
	for _, res := range []string{sn, svc} {
		if code, out := do(la, "PUT", "/authpolicy/"+res, `{"policy":"`+allowAll+`"}`); code != 200 {
			f.Fatalf("put auth policy: %d %s", code, out)
		}
	}
	for _, p := range []struct{ path, body string }{
		{"/accounts", `{"name":"a","id":"` + acct + `"}`},
		{"/principals", `{"name":"dev","type":"user","tags":{"team":"x"},"policy":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}"}`},
	} {
		if code, out := do(na, "POST", native.Prefix+p.path, p.body); code != 201 {
			f.Fatalf("%s: %d %s", p.path, code, out)
		}
	}

	// The set-up answers decisions, so the fuzzer starts on the deep path.
	for body, want := range map[string]string{
		`{"service":"orders","principal":"anonymous"}`:  `"decision":"DENY"`,
		`{"service":"orders","principal":"user/dev"}`:   `"decision":"ALLOW"`,
		`{"service":"orders","principal":"role/ghost"}`: `ResourceNotFoundException`,
	} {
		code, out := do(na, "POST", native.Prefix+"/policy/explain", body)
		if !bytes.Contains(out, []byte(want)) && !(code == 404 && want == "ResourceNotFoundException") {
			f.Fatalf("%s: %d %s, want %s", body, code, out, want)
		}
	}
	f.Add(`{"service":"orders","principal":"anonymous"}`)
	f.Add(`{"service":"orders","principal":"anonymous","path":"/a/b","method":"PUT","headers":{"X-A":["1","2"],"x-a":"3"},"query":{"q":["1","2"]},"port":80}`)
	f.Add(`{"service":"` + svc + `","serviceNetwork":"` + sn + `","sourceVpc":"default","principal":"anonymous","sourceIp":"::ffff:10.0.0.1","time":"2026-01-01T00:00:00+02:00"}`)
	f.Add(`{"service":"orders","principal":"anonymous","servicePolicy":"","networkPolicy":"{\"Statement\":[]}","serviceAuthType":"NONE","networkAuthType":"AWS_IAM"}`)
	f.Add(`{"service":"orders","principal":"role/x","identityPolicies":["{}",""],"port":70000,"protocol":"HTTPS","secureTransport":false}`)
	f.Add(`{"service":"arn:aws:vpc-lattice:us-east-1:` + acct + `:service/` + svc + `","principal":"arn:aws:iam::` + acct + `:user/dev","headers":{"content-type":"application/grpc"}}`)
	f.Add(`{"service":"orders","principal":"anonymous","headers":[],"query":"a=1","path":"x y"}`)
	f.Fuzz(func(t *testing.T, body string) {
		code, out := do(na, "POST", native.Prefix+"/policy/explain", body)
		if code >= 500 || code < 200 {
			t.Fatalf("%q: %d %s", body, code, out)
		}
	})
}
