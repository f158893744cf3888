package sigv4

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func isSentinel(err error) bool {
	for _, s := range []error{ErrNotSigned, ErrMalformed, ErrUnknownKey, ErrSignatureMismatch,
		ErrExpired, ErrSkew, ErrScope, ErrSessionToken, ErrSignedPayload} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

const vanillaAuth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		vanillaAuth,
		"AWS4-HMAC-SHA256 Credential=a/b/c/d/e,SignedHeaders=host,Signature=00",
		"AWS4-HMAC-SHA256 Signature=x, Signature=y",
		"AWS4-HMAC-SHA256 ",
		"AWS4-ECDSA-P256-SHA256 Credential=AKID/20150830/service/aws4_request",
		"AWS AKID:sig",
		"AWS4-HMAC-SHA256 Credential=/////, SignedHeaders=;;, Signature=",
		"\tAWS4-HMAC-SHA256\tCredential=a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		fields, err := parseAuthorization(h)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if fields.credential == "" || fields.signedHeaders == "" || fields.signature == "" {
			t.Fatalf("accepted with an empty component: %+v", fields)
		}
		if c, err := parseCredential(fields.credential, fields.algorithm == algorithmV4A); err == nil && c.String() == "" {
			t.Fatal("empty scope")
		}
		if names, err := parseSignedHeaders(fields.signedHeaders); err == nil && len(names) == 0 {
			t.Fatal("no signed headers")
		}
		if sig, err := parseSignature(fields.signature, fields.algorithm == algorithmV4A); err == nil && len(sig) != 32 && fields.algorithm == algorithm {
			t.Fatal("bad signature length")
		}
	})
}

func FuzzVerify(f *testing.F) {
	f.Add("GET", "/", "", vanillaAuth, "20150830T123600Z", "", "", []byte(nil))
	f.Add("GET", "/example/..", "Param1=value1", vanillaAuth, "20150830T123600Z", "tok", "UNSIGNED-PAYLOAD", []byte("x"))
	f.Add("GET", "/a%2Fb/%2E%2E/c", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d",
		"", "", "", "", []byte(nil))
	f.Add("POST", "//x//./../", "a=%zz&X-Amz-Signature=1&X-Amz-Signature=2", "Bearer x", "2015", "", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", []byte("body"))
	f.Add("PUT", "/%25%41", "X-Amz-Expires=99999999999999999999&X-Amz-Algorithm=AWS4-HMAC-SHA256", "", "", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", []byte{})
	f.Add("GET", "/", "", "AWS4-ECDSA-P256-SHA256 Credential=AKIDEXAMPLE/20150830/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-region-set, Signature=3046022100fddaaf816a31e30d04973875b13bc27b98da10907a3a1872fd5819a221334abc022100de2ee81d83b54f31efc82834de07e6cd4d5c6f25bfa08e0f29a15bb0977c343e",
		"20150830T123600Z", "", "", []byte(nil))
	f.Add("GET", "/", "X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Region-Set=us-*&X-Amz-Signature=3045022100a28466db6c76223d5aa6ed436a8451b30e21ba0a076e7f2f943dd1f3d2816249022049e4b3746929cd2a2cb7b7984dbe0f5d40a300e7d9a7a7f1307c196b6f96b61a",
		"", "", "", "", []byte(nil))
	now := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, method, path, query, auth, date, token, contentSHA string, body []byte) {
		v := &Verifier{
			Lookup: staticLookup(Credential{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: token}),
			Region: "us-east-1", Services: []string{"service"}, Now: func() time.Time { return now },
			AllowPresigned: true, RequireUnsignedPayload: len(body) == 1, AllowSigV4A: true,
		}
		u, err := url.ParseRequestURI(path + "?" + query)
		if err != nil {
			u = &url.URL{Path: path, RawPath: path, RawQuery: query}
		}
		r := &http.Request{Method: method, URL: u, Host: "example.amazonaws.com", ContentLength: int64(len(body)),
			Header: http.Header{"X-Amz-Region-Set": {"us-east-1"}}}
		for k, val := range map[string]string{"Authorization": auth, "X-Amz-Date": date, "X-Amz-Security-Token": token, "X-Amz-Content-Sha256": contentSHA} {
			if val != "" {
				r.Header[k] = strings.Split(val, "\n")
			}
		}
		_ = IsSigned(r)
		res, err := v.Verify(context.Background(), r, body)
		if err != nil && !isSentinel(err) {
			t.Fatalf("error %v wraps no sentinel", err)
		}
		if err == nil && res.AccessKeyID != "AKIDEXAMPLE" {
			t.Fatalf("accepted with result %+v", res)
		}
	})
}

// benchRequest returns a signed request and its body.
func benchRequest(b *testing.B, presign, unsigned bool) (*http.Request, []byte) {
	body := []byte(`{"name":"svc","authType":"AWS_IAM","tags":{"env":"prod"}}`)
	if presign {
		body = nil
	}
	req := httptest.NewRequest("POST", "https://vpc-lattice.us-east-1.amazonaws.com"+arnPath+"?tagKeys=b&tagKeys=a", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "aws-sdk-go-v2/1.48.0")
	hash := hashBody(body)
	if unsigned {
		hash = unsignedPayload
		req.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
	}
	signer, ctx, now := v4.NewSigner(), context.Background(), time.Now()
	if presign {
		uri, hdr, err := signer.PresignHTTP(ctx, awsCreds(tempKey()), req, hash, "vpc-lattice", "us-east-1", now)
		if err != nil {
			b.Fatal(err)
		}
		req = httptest.NewRequest("POST", uri, nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
	} else if err := signer.SignHTTP(ctx, awsCreds(tempKey()), req, hash, "vpc-lattice", "us-east-1", now); err != nil {
		b.Fatal(err)
	}
	return req, body
}

func BenchmarkVerify(b *testing.B) {
	for _, bc := range []struct {
		name              string
		presign, unsigned bool
	}{
		{"header", false, false},
		{"header-unsigned-payload", false, true},
		{"presigned", true, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req, body := benchRequest(b, bc.presign, bc.unsigned)
			v := controlPlaneVerifier(nil)
			ctx := context.Background()
			if _, err := v.Verify(ctx, req, body); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, req, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
