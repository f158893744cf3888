// Package identity renders the caller identity headers a gateway adds
// toward HTTP targets, in Lattice's formats (reference/lattice.md §5.7):
//
//	x-amzn-lattice-identity: Principal=arn:aws:iam::111122223333:role/orders; PrincipalOrgID=; PrincipalOrgPaths=; SessionName=; Type=AWS_IAM
//	x-amzn-lattice-identity-tags: principal=arn:aws:iam::111122223333:role/orders;principalorgid=;team=orders
//
// The gateway strips both headers from every incoming request (they cannot
// be spoofed) and sets them from the caller it authenticated: a Caller,
// usually prepared once per principal when a snapshot is applied, so that
// rendering a request's headers only appends bytes to a pooled buffer
// (AppendIdentity, AppendTags: no allocations).
//
// Choices where Lattice is silent or unconfirmed:
//
//   - Entries of x-amzn-lattice-identity are separated by "; " (the
//     observed header), those of the tags header by ";" (the documented
//     format). Consumers must tolerate any order, new keys and empty
//     values.
//   - A caller authenticated by an mTLS client certificate is Type=AWS_IAM,
//     like a SigV4 caller (it maps to an IAM-style principal, as an IAM
//     Roles Anywhere session does), followed by the certificate's
//     X509SAN/URI, X509SAN/DNS, X509Subject/CN and X509Issuer/OU entries,
//     each only when the certificate has it.
//   - An anonymous caller gets x-amzn-lattice-identity: Type=ANONYMOUS and
//     no tags header (AppendTags appends nothing), so a target can tell an
//     unauthenticated request from a stripped header.
//   - Trellis has no organizations: PrincipalOrgID and PrincipalOrgPaths
//     are present and empty, as for an AWS account outside an
//     organization; principalorgpath appears in the tags header only when
//     OrgPaths is set.
//   - Values are escaped so the headers stay parseable and valid: ';'
//     becomes "\;" (Lattice's rule), '\' becomes "\\", and control
//     characters (which Trellis tag values may contain but header values
//     must not) become "\xHH". Tag keys are escaped the same way; a '='
//     in a key is kept, so consumers split an entry at its first '='.
package identity

// Header names.
const (
	Header     = "x-amzn-lattice-identity"
	TagsHeader = "x-amzn-lattice-identity-tags"
)

// Caller types (the Type entry).
const (
	TypeAWSIAM    = "AWS_IAM"
	TypeAnonymous = "ANONYMOUS"
)

// Tag is one principal tag.
type Tag struct {
	Key, Value string
}

// X509 is the client certificate an mTLS caller presented. Empty fields
// are left out of the header.
type X509 struct {
	// SANURI is the SPIFFE ID URI SAN (X509SAN/URI).
	SANURI string
	// SANDNS is the first DNS SAN (X509SAN/DNS).
	SANDNS string
	// SubjectCN is the subject's common name (X509Subject/CN).
	SubjectCN string
	// IssuerOU is the issuer's first organizational unit (X509Issuer/OU).
	IssuerOU string
}

// Caller is an authenticated caller; the zero Caller is anonymous.
type Caller struct {
	// Principal is the caller's ARN; "" means anonymous.
	Principal string
	// OrgID and OrgPaths are the organization of the principal's account
	// (always "" in Trellis).
	OrgID    string
	OrgPaths string
	// SessionName is the role session name ("" for users and roles
	// authenticated with their own long-term keys or certificates).
	SessionName string
	// Tags are rendered in this order (sort them once, when preparing
	// the Caller).
	Tags []Tag
	// X509 is set for callers authenticated by a client certificate.
	X509 *X509
}

// Anonymous reports whether c is the anonymous caller.
func (c *Caller) Anonymous() bool { return c == nil || c.Principal == "" }

// AppendIdentity appends the value of x-amzn-lattice-identity for c to dst.
func AppendIdentity(dst []byte, c *Caller) []byte {
	if c.Anonymous() {
		return append(dst, "Type="+TypeAnonymous...)
	}
	dst = appendEntry(dst, "Principal", c.Principal, "")
	dst = appendEntry(dst, "PrincipalOrgID", c.OrgID, "; ")
	dst = appendEntry(dst, "PrincipalOrgPaths", c.OrgPaths, "; ")
	dst = appendEntry(dst, "SessionName", c.SessionName, "; ")
	dst = appendEntry(dst, "Type", TypeAWSIAM, "; ")
	if x := c.X509; x != nil {
		for _, e := range [...]struct{ k, v string }{
			{"X509SAN/URI", x.SANURI}, {"X509SAN/DNS", x.SANDNS}, {"X509Subject/CN", x.SubjectCN}, {"X509Issuer/OU", x.IssuerOU},
		} {
			if e.v != "" {
				dst = appendEntry(dst, e.k, e.v, "; ")
			}
		}
	}
	return dst
}

// AppendTags appends the value of x-amzn-lattice-identity-tags for c to
// dst; for the anonymous caller it appends nothing (send no header).
func AppendTags(dst []byte, c *Caller) []byte {
	if c.Anonymous() {
		return dst
	}
	dst = appendEntry(dst, "principal", c.Principal, "")
	dst = appendEntry(dst, "principalorgid", c.OrgID, ";")
	if c.OrgPaths != "" {
		dst = appendEntry(dst, "principalorgpath", c.OrgPaths, ";")
	}
	for _, t := range c.Tags {
		dst = append(dst, ';')
		dst = appendEscaped(dst, t.Key)
		dst = append(dst, '=')
		dst = appendEscaped(dst, t.Value)
	}
	return dst
}

// appendEntry appends sep, key=value with value escaped.
func appendEntry(dst []byte, key, value, sep string) []byte {
	dst = append(dst, sep...)
	dst = append(dst, key...)
	dst = append(dst, '=')
	return appendEscaped(dst, value)
}

const hexDigits = "0123456789ABCDEF"

// appendEscaped appends s with ';' and '\' escaped by a backslash and
// control characters as \xHH.
func appendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ';' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20 || c == 0x7f:
			dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
