// Package iam knows who is calling: the authenticated Caller that the
// server's SigV4 middleware puts in the request context, and the store keys
// of accounts, principals and access keys shared by the packages that read
// them.
package iam

import "context"

// Caller is the authenticated principal of a request.
type Caller struct {
	Account       string
	ARN           string
	PrincipalType string // "user" or "role"
	PrincipalName string
	AccessKeyID   string
	// Admin principals may manage accounts and act in any account.
	Admin bool
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller in ctx; ok is false for unauthenticated contexts.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// Store key layout of identity data.
const (
	accountsPrefix   = "/iam/accounts/"
	principalsPrefix = "/iam/principals/"
	keysPrefix       = "/iam/keys/"
)

// AccountKey is the store key of an account.
func AccountKey(id string) string { return accountsPrefix + id }

// AccountsPrefix is the store prefix of all accounts.
func AccountsPrefix() string { return accountsPrefix }

// PrincipalKey is the store key of a principal.
func PrincipalKey(account, typ, name string) string {
	return principalsPrefix + account + "/" + typ + "/" + name
}

// AllPrincipalsPrefix is the store prefix of the principals of every account.
func AllPrincipalsPrefix() string { return principalsPrefix }

// PrincipalsPrefix is the store prefix of the principals of an account.
func PrincipalsPrefix(account string) string { return principalsPrefix + account + "/" }

// AccessKeyKey is the store key of an access key.
func AccessKeyKey(id string) string { return keysPrefix + id }

// AccessKeysPrefix is the store prefix of all access keys.
func AccessKeysPrefix() string { return keysPrefix }
