package sigv4

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// TestDeriveSigningKey checks the derivation against the example of AWS's
// SigV4 documentation (secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
// 20150830, us-east-1, iam).
func TestDeriveSigningKey(t *testing.T) {
	got := hex.EncodeToString(DeriveSigningKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "iam"))
	if want := "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"; got != want {
		t.Errorf("DeriveSigningKey = %s, want %s", got, want)
	}
}

func TestSigningKeyLookup(t *testing.T) {
	now := time.Date(2026, 11, 26, 23, 59, 30, 0, time.UTC)
	cred := longTermKey()
	// sign makes a request to a Lattice service signed by the SDK with
	// UNSIGNED-PAYLOAD at at.
	sign := func(t *testing.T, c Credential, at time.Time) *http.Request {
		t.Helper()
		r := httptest.NewRequest("POST", "https://orders-0abc.7d67968.vpc-lattice-svcs.us-east-1.on.aws/orders?id=1", strings.NewReader("{}"))
		r.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
		if err := v4.NewSigner().SignHTTP(context.Background(), awsCreds(c), r, unsignedPayload, "vpc-lattice-svcs", "us-east-1", at); err != nil {
			t.Fatal(err)
		}
		return r
	}
	var seen []Scope
	// The keys a gateway holds: one day of one access key.
	held := map[Scope][]byte{}
	for _, d := range []string{"20261125", "20261126", "20261127"} {
		s := Scope{AccessKeyID: cred.AccessKeyID, Date: d, Region: "us-east-1", Service: "vpc-lattice-svcs"}
		held[s] = DeriveSigningKey(cred.SecretAccessKey, d, "us-east-1", "vpc-lattice-svcs")
	}
	errNoDay := fmt.Errorf("%w: no signing key for that day", ErrExpired)
	lookup := func(_ context.Context, s Scope) (SigningKey, bool, error) {
		seen = append(seen, s)
		if k, ok := held[s]; ok {
			return SigningKey{Key: k, Principal: "arn:aws:iam::111122223333:user/alice"}, true, nil
		}
		if s.AccessKeyID == cred.AccessKeyID {
			return SigningKey{}, false, errNoDay
		}
		return SigningKey{}, false, nil
	}
	verifier := func(at time.Time) *Verifier {
		return &Verifier{SigningKey: lookup, Region: "us-east-1", Services: []string{"vpc-lattice-svcs"},
			Now: func() time.Time { return at }, AllowPresigned: true, RequireUnsignedPayload: true, AllowSigV4A: true}
	}

	t.Run("accepted", func(t *testing.T) {
		seen = nil
		r := sign(t, cred, now)
		res, err := verifier(now).Verify(context.Background(), r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Principal != "arn:aws:iam::111122223333:user/alice" || res.AccessKeyID != cred.AccessKeyID {
			t.Errorf("result %+v", res)
		}
		want := Scope{AccessKeyID: cred.AccessKeyID, Date: "20261126", Region: "us-east-1", Service: "vpc-lattice-svcs"}
		if len(seen) != 1 || seen[0] != want {
			t.Errorf("lookups %+v, want one of %+v", seen, want)
		}
	})
	t.Run("client-ahead-across-midnight", func(t *testing.T) {
		// Signed at 00:00:30 of the next day by a clock 60 s ahead.
		r := sign(t, cred, now.Add(time.Minute))
		if _, err := verifier(now).Verify(context.Background(), r, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("day-not-held", func(t *testing.T) {
		at := now.Add(48 * time.Hour)
		_, err := verifier(at).Verify(context.Background(), sign(t, cred, at), nil)
		if !errors.Is(err, ErrExpired) || !strings.Contains(err.Error(), "no signing key for that day") {
			t.Fatalf("got %v, want the lookup's ErrExpired", err)
		}
	})
	t.Run("unknown-key", func(t *testing.T) {
		_, err := verifier(now).Verify(context.Background(), sign(t, Credential{AccessKeyID: "AKIAOTHER", SecretAccessKey: "x"}, now), nil)
		if !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("got %v, want ErrUnknownKey", err)
		}
	})
	t.Run("wrong-secret", func(t *testing.T) {
		_, err := verifier(now).Verify(context.Background(), sign(t, Credential{AccessKeyID: cred.AccessKeyID, SecretAccessKey: "x"}, now), nil)
		if !errors.Is(err, ErrSignatureMismatch) {
			t.Fatalf("got %v, want ErrSignatureMismatch", err)
		}
	})
	t.Run("session-token-rejected", func(t *testing.T) {
		// The lookup knows no session token: a token sent with the key is refused.
		c := cred
		c.SessionToken = "token"
		_, err := verifier(now).Verify(context.Background(), sign(t, c, now), nil)
		if !errors.Is(err, ErrSessionToken) {
			t.Fatalf("got %v, want ErrSessionToken", err)
		}
	})
	t.Run("bad-key-length", func(t *testing.T) {
		v := verifier(now)
		v.SigningKey = func(context.Context, Scope) (SigningKey, bool, error) {
			return SigningKey{Key: []byte("short")}, true, nil
		}
		_, err := v.Verify(context.Background(), sign(t, cred, now), nil)
		if err == nil || isSentinel(err) || !strings.Contains(err.Error(), "5 bytes long") {
			t.Fatalf("got %v, want a non-sentinel key length error", err)
		}
	})
	t.Run("lookup-failure", func(t *testing.T) {
		v := verifier(now)
		v.SigningKey = func(context.Context, Scope) (SigningKey, bool, error) {
			return SigningKey{}, false, errors.New("snapshot unavailable")
		}
		_, err := v.Verify(context.Background(), sign(t, cred, now), nil)
		if err == nil || isSentinel(err) || !strings.Contains(err.Error(), "snapshot unavailable") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("no-lookup", func(t *testing.T) {
		v := verifier(now)
		v.SigningKey = nil
		if _, err := v.Verify(context.Background(), sign(t, cred, now), nil); err == nil {
			t.Fatal("a verifier without Lookup and SigningKey accepted a request")
		}
	})
}

// BenchmarkVerifyDerivedKey is BenchmarkVerify's header case verified with
// a looked-up derived key: the four HMACs of the derivation are saved.
func BenchmarkVerifyDerivedKey(b *testing.B) {
	req, body := benchRequest(b, false, true)
	v := controlPlaneVerifier(nil)
	k := tempKey()
	key := DeriveSigningKey(k.SecretAccessKey, time.Now().UTC().Format("20060102"), "us-east-1", "vpc-lattice")
	v.Lookup, v.SigningKey = nil, func(_ context.Context, s Scope) (SigningKey, bool, error) {
		return SigningKey{Key: key, SessionToken: k.SessionToken, Principal: "p"}, s.AccessKeyID == k.AccessKeyID, nil
	}
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
}
