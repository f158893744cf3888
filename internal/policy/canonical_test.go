package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"whitespace and key order", "{ \"b\" : [1, 2.50, true, null],\n \"a\": {\"y\":\"\", \"x\": {}} }", `{"a":{"x":{},"y":""},"b":[1,2.50,true,null]}`},
		{"escapes", `{"s":"\u0041\/\"\\\n\t\u0001\u00e9\u2028"}`, "{\"s\":\"A/\\\"\\\\\\n\\t\\u0001é\u2028\"}"},
		{"scalar document", ` "x" `, `"x"`},
		{"numbers as written", `[1e3, -0, 0.10]`, `[1e3,-0,0.10]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonical([]byte(tt.in))
			if err != nil {
				t.Fatalf("Canonical: %v", err)
			}
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			again, err := Canonical([]byte(got))
			if err != nil || again != got {
				t.Errorf("not idempotent: %q, %v", again, err)
			}
		})
	}
}

func TestCanonicalRejects(t *testing.T) {
	for _, in := range []string{``, `{"a":1,"a":2}`, `{} {}`, `{"a":}`, "\"\xff\"", strings.Repeat("[", 20) + strings.Repeat("]", 20)} {
		_, err := Canonical([]byte(in))
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("Canonical(%q) err = %v, want a *ValidationError", in, err)
		}
	}
}

// TestCanonicalEquivalence checks that documents differing only in layout
// and member order have one canonical form and parse to equal policies.
func TestCanonicalEquivalence(t *testing.T) {
	a := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"vpc-lattice-svcs:Invoke","Resource":"*",
		"Condition":{"StringEquals":{"vpc-lattice-svcs:RequestMethod":"GET","aws:PrincipalOrgID":"o-1"},"Bool":{"aws:SecureTransport":"true"}}}]}`
	b := `{
	  "Statement": [{
	    "Condition": {
	      "Bool": {"aws:SecureTransport": "true"},
	      "StringEquals": {"aws:PrincipalOrgID": "o-1", "vpc-lattice-svcs:RequestMethod": "GET"}
	    },
	    "Resource": "*", "Action": "vpc-lattice-svcs:Invoke", "Principal": "*", "Effect": "Allow"
	  }],
	  "Version": "2012-10-17"
	}`
	ca, err := Canonical([]byte(a))
	if err != nil {
		t.Fatal(err)
	}
	cb, err := Canonical([]byte(b))
	if err != nil {
		t.Fatal(err)
	}
	if ca != cb {
		t.Errorf("canonical forms differ:\n%s\n%s", ca, cb)
	}
	pa, err := Parse([]byte(a), ParseOptions{Kind: AuthPolicy})
	if err != nil {
		t.Fatal(err)
	}
	pb, err := Parse([]byte(b), ParseOptions{Kind: AuthPolicy})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pa, pb) {
		t.Errorf("policies differ:\n%+v\n%+v", pa, pb)
	}
}

// FuzzParse checks that Parse never panics, and that every accepted
// document has a canonical form that parses to an equal policy.
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases() {
		f.Add([]byte(tc.doc), uint8(tc.kind))
	}
	for _, tc := range operatorCases() {
		f.Add([]byte(withCond(`{"ForAnyValue:StringLikeIfExists":{"`+tc.key+`":`+tc.good+`}}`)), uint8(AuthPolicy))
	}
	f.Fuzz(func(t *testing.T, doc []byte, k uint8) {
		opts := ParseOptions{Kind: Kind(k%3) + AuthPolicy}
		p, err := Parse(doc, opts)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("error %v is not a non-empty *ValidationError", err)
			}
			return
		}
		c, err := Canonical(doc)
		if err != nil {
			t.Fatalf("accepted document has no canonical form: %v", err)
		}
		p2, err := Parse([]byte(c), opts)
		if err != nil {
			t.Fatalf("canonical form %s rejected: %v", c, err)
		}
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("canonical form parses differently:\n%+v\n%+v", p, p2)
		}
		if c2, err := Canonical([]byte(c)); err != nil || c2 != c {
			t.Fatalf("Canonical is not idempotent: %q, %v", c2, err)
		}
	})
}

var benchPolicy = []byte(`{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "AllowOrdersRead",
      "Effect": "Allow",
      "Principal": {"AWS": ["arn:aws:iam::123456789012:role/rates-client", "111122223333"]},
      "Action": "vpc-lattice-svcs:Invoke",
      "Resource": ["arn:aws:vpc-lattice:us-west-2:123456789012:service/svc-0123456789abcdef0/orders/*"],
      "Condition": {
        "StringEquals": {"vpc-lattice-svcs:RequestMethod": ["GET", "HEAD"]},
        "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}
      }
    },
    {
      "Sid": "TeamPaths",
      "Effect": "Allow",
      "Principal": "*",
      "Action": "vpc-lattice-svcs:Invoke",
      "Resource": "arn:aws:vpc-lattice:us-west-2:123456789012:service/svc-0123456789abcdef0/teams/${aws:PrincipalTag/team}/*",
      "Condition": {
        "StringNotEqualsIgnoreCase": {"aws:PrincipalType": "anonymous"},
        "ForAnyValue:StringLike": {"vpc-lattice-svcs:RequestQueryString/view": ["summary*", "full"]},
        "NumericEqualsIfExists": {"vpc-lattice-svcs:Port": 443}
      }
    },
    {
      "Sid": "DenyInsecure",
      "Effect": "Deny",
      "Principal": "*",
      "Action": "*",
      "Resource": "*",
      "Condition": {"Bool": {"aws:SecureTransport": "false"}, "DateGreaterThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}
    }
  ]
}`)

func BenchmarkParse(b *testing.B) {
	opts := ParseOptions{Kind: AuthPolicy, MaxSize: 36864}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPolicy)))
	for b.Loop() {
		if _, err := Parse(benchPolicy, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCanonical(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPolicy)))
	for b.Loop() {
		if _, err := Canonical(benchPolicy); err != nil {
			b.Fatal(err)
		}
	}
}
