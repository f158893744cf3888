package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trellis-mesh/trellis/internal/api/cloudmap"
	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/metrics"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/sigv4"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Signing names the API accepts: the Lattice control plane, STS (for
// GetCallerIdentity), Cloud Map and Trellis's own API.
var apiSigningNames = []string{"vpc-lattice", "sts", "servicediscovery", "trellis"}

// authenticator verifies SigV4 on every API request and puts the caller in
// the request context. A request with a missing, malformed, expired or
// wrong signature, or an unknown key, is answered with
// AccessDeniedException and never reaches a handler.
type authenticator struct {
	st     store.Store
	region string
	now    func() time.Time
	log    *slog.Logger
	denied *metrics.CounterVec

	limit     *limiter
	throttled *metrics.Counter
}

func (a *authenticator) verifier() *sigv4.Verifier {
	return &sigv4.Verifier{Lookup: a.lookup, Region: a.region, Services: apiSigningNames, Now: a.now, AllowPresigned: true}
}

func (a *authenticator) lookup(ctx context.Context, id string) (sigv4.Credential, bool, error) {
	kv, err := a.st.Get(ctx, iam.AccessKeyKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return sigv4.Credential{}, false, nil
	}
	if err != nil {
		return sigv4.Credential{}, false, err
	}
	var k model.AccessKey
	if err := json.Unmarshal(kv.Value, &k); err != nil {
		return sigv4.Credential{}, false, err
	}
	return sigv4.Credential{AccessKeyID: k.ID, SecretAccessKey: k.Secret}, true, nil
}

// callerOf loads the principal behind a verified access key.
func (a *authenticator) callerOf(ctx context.Context, keyID string) (iam.Caller, error) {
	kv, err := a.st.Get(ctx, iam.AccessKeyKey(keyID))
	if err != nil {
		return iam.Caller{}, err
	}
	var k model.AccessKey
	if err := json.Unmarshal(kv.Value, &k); err != nil {
		return iam.Caller{}, err
	}
	arn, err := model.ParseARN(k.Principal)
	if err != nil {
		return iam.Caller{}, err
	}
	typ, name, _ := strings.Cut(arn.Resource, "/")
	pkv, err := a.st.Get(ctx, iam.PrincipalKey(k.Account, typ, name))
	if err != nil {
		return iam.Caller{}, err
	}
	var p model.Principal
	if err := json.Unmarshal(pkv.Value, &p); err != nil {
		return iam.Caller{}, err
	}
	return iam.Caller{Account: p.Account, ARN: p.ARN, PrincipalType: p.Type, PrincipalName: p.Name, AccessKeyID: keyID, Admin: p.Admin}, nil
}

func (a *authenticator) wrap(next http.Handler) http.Handler {
	v := a.verifier()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := wire.ReadBody(r)
		if err != nil {
			a.deny(w, r, "body", err.Error())
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		res, err := v.Verify(r.Context(), r, body)
		if err != nil {
			reason := reasonOf(err)
			// The message says what is wrong without revealing the expected signature.
			a.deny(w, r, reason, err.Error())
			return
		}
		c, err := a.callerOf(r.Context(), res.AccessKeyID)
		if err != nil {
			a.log.Warn("access key without principal", "accessKeyId", res.AccessKeyID, "err", err)
			a.deny(w, r, "principal", "the principal of this access key no longer exists")
			return
		}
		if ok, retry := a.limit.allow(c.Account); !ok {
			a.throttled.Inc()
			if r.URL.Path == "/" && isQueryProtocol(r) {
				w.Header().Set("Retry-After", strconv.Itoa(retry))
				writeSTSError(w, http.StatusBadRequest, "Throttling", "rate exceeded")
				return
			}
			if cloudmap.IsRequest(r) {
				cloudmap.WriteError(w, cloudmap.Throttled(r, retry, fmt.Sprintf("rate exceeded: account %s may make %g API requests per second", c.Account, a.limit.rate)))
				return
			}
			wire.WriteError(w, wire.Throttled(retry, "rate exceeded: account %s may make %g API requests per second", c.Account, a.limit.rate))
			return
		}
		next.ServeHTTP(w, r.WithContext(iam.WithCaller(r.Context(), c)))
	})
}

func reasonOf(err error) string {
	for _, e := range []struct {
		err    error
		reason string
	}{
		{sigv4.ErrNotSigned, "unsigned"}, {sigv4.ErrMalformed, "malformed"}, {sigv4.ErrUnknownKey, "unknown_key"},
		{sigv4.ErrSignatureMismatch, "signature_mismatch"}, {sigv4.ErrExpired, "expired"}, {sigv4.ErrSkew, "clock_skew"},
		{sigv4.ErrScope, "scope"}, {sigv4.ErrSessionToken, "session_token"},
	} {
		if errors.Is(err, e.err) {
			return e.reason
		}
	}
	return "other"
}

func (a *authenticator) deny(w http.ResponseWriter, r *http.Request, reason, msg string) {
	a.denied.With(reason).Inc()
	if w.Header().Get("x-amzn-RequestId") == "" {
		w.Header().Set("x-amzn-RequestId", wire.NewRequestID())
	}
	if r.URL.Path == "/" && isQueryProtocol(r) {
		writeSTSError(w, http.StatusForbidden, "AccessDenied", msg)
		return
	}
	if cloudmap.IsRequest(r) {
		cloudmap.WriteError(w, cloudmap.AuthError(reason, msg))
		return
	}
	wire.WriteError(w, wire.AccessDenied("%s", msg))
}
