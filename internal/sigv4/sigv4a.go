package sigv4

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"strings"
)

// SigV4a (AWS4-ECDSA-P256-SHA256) differs from SigV4 in four places: the
// credential scope has no region ("AKID/yyyymmdd/service/aws4_request"),
// the regions are named by X-Amz-Region-Set (a signed header, or a query
// parameter in the presigned form; comma-separated, '*' wildcards), the
// string to sign names the algorithm, and the signature is a DER ECDSA
// P-256 signature of the SHA-256 of the string to sign, made with a key
// derived from the secret. The canonical request is built as for SigV4.

const (
	algorithmV4A = "AWS4-ECDSA-P256-SHA256"
	qRegionSet   = "X-Amz-Region-Set"
)

// deriveV4AKey derives the ECDSA P-256 key of an access key as SigV4a
// defines it: NIST SP 800-108 HMAC-SHA256 counter-mode KDF keyed with
// "AWS4A"+secret, over the label AWS4-ECDSA-P256-SHA256 and the access key
// id with an external counter, repeated until the candidate c satisfies
// c <= n-2; the private key is c+1.
func deriveV4AKey(accessKeyID, secret string) (*ecdsa.PrivateKey, error) {
	curve := elliptic.P256()
	var nMinus2 [32]byte
	curve.Params().N.FillBytes(nMinus2[:])
	sub(&nMinus2, 2)

	key := []byte("AWS4A" + secret)
	msg := make([]byte, 0, 4+len(algorithmV4A)+1+len(accessKeyID)+1+4)
	for counter := 1; counter <= 254; counter++ {
		msg = append(msg[:0], 0, 0, 0, 1) // KDF iteration i = 1
		msg = append(msg, algorithmV4A...)
		msg = append(msg, 0)
		msg = append(msg, accessKeyID...)
		msg = append(msg, byte(counter))
		msg = append(msg, 0, 0, 1, 0) // output length L = 256 bits
		var c [32]byte
		copy(c[:], hmacSHA256(key, msg))
		if bytes.Compare(c[:], nMinus2[:]) > 0 {
			continue
		}
		add1(&c)
		return ecdsa.ParseRawPrivateKey(curve, c[:])
	}
	return nil, errors.New("sigv4: no SigV4a key could be derived")
}

// sub subtracts a small number from a big-endian integer (no underflow for
// the values used here).
func sub(x *[32]byte, n byte) {
	borrow := int(n)
	for i := len(x) - 1; i >= 0 && borrow > 0; i-- {
		v := int(x[i]) - borrow
		borrow = 0
		if v < 0 {
			v += 256
			borrow = 1
		}
		x[i] = byte(v)
	}
}

// add1 adds one to a big-endian integer known to be below the curve order.
func add1(x *[32]byte) {
	for i := len(x) - 1; i >= 0; i-- {
		x[i]++
		if x[i] != 0 {
			return
		}
	}
}

// v4aSignatureCheck returns a function that reports whether sig is a valid
// SigV4a signature of a string to sign.
func v4aSignatureCheck(accessKeyID, secret string, sig []byte) func(sts []byte) bool {
	priv, err := deriveV4AKey(accessKeyID, secret)
	return func(sts []byte) bool {
		if err != nil {
			return false
		}
		digest := sha256.Sum256(sts)
		return ecdsa.VerifyASN1(&priv.PublicKey, digest[:], sig)
	}
}

// regionSetMatches reports whether a X-Amz-Region-Set value covers region.
// Entries are separated by commas; '*' matches any run of characters.
func regionSetMatches(set, region string) bool {
	for entry := range strings.SplitSeq(set, ",") {
		if globMatch(strings.TrimSpace(entry), region) {
			return true
		}
	}
	return false
}

// globMatch matches s against a pattern in which '*' matches any string.
func globMatch(pattern, s string) bool {
	prefix, rest, wild := strings.Cut(pattern, "*")
	if !wild {
		return pattern == s
	}
	if !strings.HasPrefix(s, prefix) {
		return false
	}
	s = s[len(prefix):]
	// Try every split point for the remaining pattern; patterns are short.
	for i := 0; i <= len(s); i++ {
		if globMatch(rest, s[i:]) {
			return true
		}
	}
	return false
}

// validRegionSet reports whether a region set is a comma-separated list of
// non-empty entries made of letters, digits, '-' and '*'.
func validRegionSet(set string) bool {
	for entry := range strings.SplitSeq(set, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" || strings.Count(entry, "*") > 4 {
			return false
		}
		for i := 0; i < len(entry); i++ {
			c := entry[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '*') {
				return false
			}
		}
	}
	return true
}
