package iam

import (
	"errors"
	"strings"

	"github.com/trellis-mesh/trellis/internal/model"
)

// Client certificates name their principal with a SPIFFE ID, the URI SAN
// of an X.509-SVID:
//
//	spiffe://<trust-domain>/account/<account>/<type>/<name>
//
// for example spiffe://trellis.local/account/111122223333/role/orders. The
// trust domain is the installation's (server configuration, default
// DefaultTrustDomain); a gateway accepts only IDs of its own trust domain,
// in certificates its CA issued.
//
// SPIFFE path segments allow only letters, digits, '.', '-' and '_', while
// IAM names also allow "+=,@": principals whose names use those characters
// (or are "." or "..") cannot have client certificates. There is no
// escaping, so that the ID a certificate carries is the principal's name
// as it is.

// DefaultTrustDomain is the SPIFFE trust domain of an installation that
// configures none. It is not a public DNS name, so IDs in it never clash
// with a real organisation's; installations that federate identities with
// other SPIFFE systems should configure a domain of their own.
const DefaultTrustDomain = "trellis.local"

// SPIFFEID is the SPIFFE ID of a principal's client certificates. It does
// not check its arguments; see CheckSPIFFEName and CheckTrustDomain.
func SPIFFEID(trustDomain, account, typ, name string) string {
	return "spiffe://" + trustDomain + "/account/" + account + "/" + typ + "/" + name
}

// PrincipalForSPIFFE returns the principal a SPIFFE ID names: ok only for
// an ID of exactly SPIFFEID's shape in trustDomain, with a 12-digit
// account, a type user or role, and a name CheckSPIFFEName accepts.
// It does not allocate.
func PrincipalForSPIFFE(trustDomain, uri string) (account, typ, name string, ok bool) {
	rest, ok := strings.CutPrefix(uri, "spiffe://")
	if !ok || trustDomain == "" {
		return "", "", "", false
	}
	if rest, ok = strings.CutPrefix(rest, trustDomain); !ok {
		return "", "", "", false
	}
	if rest, ok = strings.CutPrefix(rest, "/account/"); !ok {
		return "", "", "", false
	}
	account, rest, ok = strings.Cut(rest, "/")
	if !ok || !model.IsAccountID(account) {
		return "", "", "", false
	}
	typ, name, ok = strings.Cut(rest, "/")
	if !ok || typ != model.PrincipalUser && typ != model.PrincipalRole || CheckSPIFFEName(name) != nil {
		return "", "", "", false
	}
	return account, typ, name, true
}

// CheckSPIFFEName reports whether a principal name can be a SPIFFE ID path
// segment: 1–64 letters, digits, '.', '-' and '_', and not "." or "..".
func CheckSPIFFEName(name string) error {
	if len(name) < 1 || len(name) > 64 {
		return errors.New("must be 1 to 64 characters long")
	}
	if name == "." || name == ".." {
		return errors.New(`cannot be "." or ".." in a SPIFFE ID`)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return errors.New("a SPIFFE ID allows only letters, digits, '.', '-' and '_' (not +=,@)")
		}
	}
	return nil
}

// CheckTrustDomain reports whether td is a SPIFFE trust domain: 1–255
// lowercase letters, digits, '.', '-' and '_'.
func CheckTrustDomain(td string) error {
	if len(td) < 1 || len(td) > 255 {
		return errors.New("must be 1 to 255 characters long")
	}
	for i := 0; i < len(td); i++ {
		if c := td[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return errors.New("may contain only lowercase letters, digits, '.', '-' and '_'")
		}
	}
	return nil
}
