package model

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
)

// ID prefixes of Lattice resources (reference/lattice.md §1.1).
const (
	PrefixServiceNetwork    = "sn"
	PrefixService           = "svc"
	PrefixListener          = "listener"
	PrefixRule              = "rule"
	PrefixTargetGroup       = "tg"
	PrefixSNServiceAssoc    = "snsa"
	PrefixSNVpcAssoc        = "snva"
	PrefixAccessLogSub      = "als"
	PrefixVPC               = "vpc"
	PrefixAccessKey         = "AKIA"
	idHexLen                = 17
	accountIDLen            = 12
	accessKeyIDSuffixLength = 16
)

// NewID returns prefix + "-" + 17 random lowercase hex characters, the form
// of every Lattice ID (sn-0123456789abcdef0).
func NewID(prefix string) string {
	var b [9]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // unrecoverable: the OS has no entropy
	}
	return prefix + "-" + hex.EncodeToString(b[:])[:idHexLen]
}

// IsID reports whether s is prefix + "-" + 17 characters of [0-9a-z].
func IsID(s, prefix string) bool {
	rest, ok := strings.CutPrefix(s, prefix+"-")
	if !ok || len(rest) != idHexLen {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// NewAccountID returns a random 12-digit account ID that does not start with 0.
func NewAccountID() string {
	n, err := rand.Int(rand.Reader, big.NewInt(900_000_000_000))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return fmt.Sprintf("%d", n.Int64()+100_000_000_000)
}

// IsAccountID reports whether s is exactly 12 decimal digits.
func IsAccountID(s string) bool {
	if len(s) != accountIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

const accessKeyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// NewAccessKey returns a new access key ID (AKIA + 16 characters of the AWS
// key alphabet) and a 40-character secret.
func NewAccessKey() (id, secret string) {
	var b [16 + 30]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	var sb strings.Builder
	sb.WriteString(PrefixAccessKey)
	for _, c := range b[:accessKeyIDSuffixLength] {
		sb.WriteByte(accessKeyAlphabet[int(c)%len(accessKeyAlphabet)])
	}
	const secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var s strings.Builder
	for _, c := range b[accessKeyIDSuffixLength:] {
		s.WriteByte(secretAlphabet[int(c)%len(secretAlphabet)])
	}
	// 30 random bytes give 30 characters; pad with hex of the same entropy to 40.
	s.WriteString(hex.EncodeToString(b[accessKeyIDSuffixLength : accessKeyIDSuffixLength+5]))
	return sb.String(), s.String()
}
