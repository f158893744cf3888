// Package sigv4 verifies AWS Signature Version 4 (AWS4-HMAC-SHA256) on
// requests received by Trellis: the control-plane API (signing names such as
// vpc-lattice, sts, trellis) and the data-plane gateway (vpc-lattice-svcs,
// which requires x-amz-content-sha256: UNSIGNED-PAYLOAD).
//
// It implements the server side of the public algorithm: the client builds a
// canonical request from the method, path, query, chosen ("signed") headers
// and payload hash, hashes it into a string to sign together with the
// request time and credential scope, and signs that with a key derived from
// its secret, the scope date, region and service. The server rebuilds the
// same strings from what it received and compares signatures.
//
// # Verification flow
//
// [Verifier.Verify] checks, in this order, stopping at the first failure:
//
//  1. Presence: an Authorization header "AWS4-HMAC-SHA256 Credential=...,
//     SignedHeaders=..., Signature=..." (header form) or X-Amz-Algorithm,
//     X-Amz-Credential, X-Amz-Date, X-Amz-SignedHeaders, X-Amz-Signature and
//     optionally X-Amz-Expires and X-Amz-Security-Token query parameters
//     (presigned form, only if AllowPresigned). Neither: [ErrNotSigned].
//  2. Syntax: the components, the credential
//     "AKID/yyyymmdd/region/service/aws4_request", SignedHeaders (lower
//     case, sorted, containing host, and x-amz-date in the header form), the
//     64-hex signature and X-Amz-Date (yyyymmddThhmmssZ): [ErrMalformed].
//  3. Scope: the scope date is the X-Amz-Date day, the region is
//     Verifier.Region (unless empty; for SigV4a, X-Amz-Region-Set must
//     cover it), the service is one of
//     Verifier.Services (unless empty), the terminator is aws4_request:
//     [ErrScope].
//  4. Time: X-Amz-Date within MaxSkew (default 15 minutes) of Now;
//     presigned URLs with X-Amz-Expires are instead good from MaxSkew before
//     X-Amz-Date until X-Amz-Date plus X-Amz-Expires, at most seven days:
//     [ErrSkew], [ErrExpired].
//  5. Key: Verifier.Lookup finds the secret ([ErrUnknownKey]), or, when
//     Verifier.SigningKey is set, that finds the signing key derived for the
//     credential scope (see below); the session token (X-Amz-Security-Token)
//     must be present and equal for temporary keys and absent for long-term
//     keys ([ErrSessionToken]).
//  6. Payload: the x-amz-content-sha256 header, if present, is the payload
//     hash; a hex hash must equal the SHA-256 of the body; UNSIGNED-PAYLOAD
//     and STREAMING-* are taken as they are. Without the header the body is
//     hashed (presigned URLs may also have been signed with UNSIGNED-PAYLOAD).
//     With RequireUnsignedPayload only UNSIGNED-PAYLOAD is accepted:
//     [ErrSignedPayload].
//  7. Signature: the canonical request is rebuilt, hashed into the string to
//     sign and signed with the derived key; the result is compared with the
//     request's signature in constant time: [ErrSignatureMismatch]. For
//     SigV4a the ECDSA P-256 key is derived from the secret and the
//     signature verified with it.
//
// # Canonical forms
//
// Clients disagree on how to canonicalize a path, so the server tries a few
// forms, each of which proves possession of the key, and accepts the request
// if any matches:
//
//   - The AWS SDKs (aws-sdk-go-v2's signer among them) sign non-S3 requests
//     by escaping the already escaped path once more without normalizing
//     it: "/tags/arn%3Aaws%3A..." is signed as "/tags/arn%253Aaws%253A...".
//     This form is tried first, from the path as escaped on the wire
//     (URL.EscapedPath, never the decoded URL.Path).
//   - The AWS SigV4 test suite encodes the decoded path once, and with
//     "normalize" also removes dot segments (RFC 3986) and collapses
//     duplicate slashes. Both are tried next, but only when no decoded
//     segment contains '%': otherwise a signature for "/a%41" would also be
//     good for the different path "/a%2541". A match in the normalized form
//     sets Result.NormalizedPath; route such requests on the cleaned path.
//
// The query is decoded ('+' is a space, as in url.ParseQuery), each name and
// value is encoded with the unreserved set (A-Z a-z 0-9 - . _ ~) and the
// pairs are sorted by encoded name, then encoded value. X-Amz-Signature is
// left out of presigned queries; a presigned X-Amz-Security-Token may be
// signed or appended after signing (the token is checked against the key
// either way). Header values are trimmed, runs of spaces collapsed, and
// repeated headers joined with commas in order; host, content-length and
// transfer-encoding are read from where net/http keeps them.
//
// # Derived signing keys
//
// The signature is an HMAC made with a key derived from the secret, the
// scope date, region and service ([DeriveSigningKey]). A verifier that
// does not need to sign, such as a data-plane gateway, can hold those
// derived keys instead of secrets: Verifier.SigningKey looks one up per
// request by [Scope]. A leaked derived key forges requests for its day,
// region and service only; a leaked secret forges anything, forever.
// Verification with a derived key accepts exactly the requests that
// verification with the secret accepts and fails the others with the same
// errors, except SigV4a, which needs the secret and is then rejected
// ([ErrMalformed]).
//
// # SigV4a
//
// With Verifier.AllowSigV4A, SigV4a (AWS4-ECDSA-P256-SHA256) is accepted
// too: the scope has no region, X-Amz-Region-Set (signed header or presigned
// query parameter) lists the regions with '*' wildcards, and the signature
// is an ECDSA P-256 signature made with a key derived from the secret.
// Without it such requests fail with [ErrMalformed].
package sigv4
