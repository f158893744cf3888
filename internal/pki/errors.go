package pki

import "errors"

// Sentinel errors of the package; callers test with errors.Is.
var (
	// ErrCertificateNotFound: a service names a certificateArn that is not
	// imported (or was imported in another account).
	ErrCertificateNotFound = errors.New("certificate not found")
	// ErrNameMismatch: an imported certificate does not cover the domain
	// name it is used for.
	ErrNameMismatch = errors.New("certificate does not cover the domain name")
	// ErrExpired: a certificate is past its notAfter.
	ErrExpired = errors.New("certificate expired")
	// ErrInvalidRequest: Issue was asked for names or a lifetime it cannot sign.
	ErrInvalidRequest = errors.New("invalid issuance request")
)
