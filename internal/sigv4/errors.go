package sigv4

import "errors"

// Sentinel errors returned (wrapped, with detail) by [Verifier.Verify]. Test
// for them with errors.Is. The wrapped messages are meant to be shown to the
// caller of the API: they never contain a secret key or the expected
// signature.
var (
	// ErrNotSigned means the request carries no AWS Signature Version 4 at
	// all: no AWS4-HMAC-SHA256 Authorization header and no presigned
	// X-Amz-* query parameters.
	ErrNotSigned = errors.New("missing authentication token")

	// ErrMalformed means the signature is present but cannot be parsed: a bad
	// Authorization header, a missing or malformed X-Amz-Date, bad credential
	// scope syntax, unsorted SignedHeaders, an unsigned host header, and
	// similar.
	ErrMalformed = errors.New("incomplete or malformed signature")

	// ErrUnknownKey means the access key id is not known.
	ErrUnknownKey = errors.New("the security token included in the request is invalid")

	// ErrSignatureMismatch means the signature does not match the request.
	ErrSignatureMismatch = errors.New("the request signature we calculated does not match the signature you provided")

	// ErrExpired means a presigned request is past its X-Amz-Expires, or
	// X-Amz-Expires is longer than seven days.
	ErrExpired = errors.New("signature expired")

	// ErrSkew means the request time (X-Amz-Date) is too far from the
	// server's clock.
	ErrSkew = errors.New("request time is too far from the server time")

	// ErrScope means the credential scope does not fit the request or this
	// endpoint: its date is not the X-Amz-Date day, or the region, service or
	// terminator is not accepted.
	ErrScope = errors.New("invalid credential scope")

	// ErrSessionToken means the session token is missing, unexpected, or not
	// the one issued with the temporary access key.
	ErrSessionToken = errors.New("the session token included in the request is invalid")

	// ErrSignedPayload means the endpoint requires
	// x-amz-content-sha256: UNSIGNED-PAYLOAD and the request signed its
	// payload (or did not say).
	ErrSignedPayload = errors.New("the request must use x-amz-content-sha256: UNSIGNED-PAYLOAD")
)
