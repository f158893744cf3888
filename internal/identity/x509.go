package identity

import "crypto/x509"

// FromCertificate is the X509 part of the identity of a caller that
// presented cert: its first URI SAN (the SPIFFE ID), first DNS SAN,
// subject common name and the issuer's first organizational unit.
func FromCertificate(cert *x509.Certificate) *X509 {
	x := &X509{SubjectCN: cert.Subject.CommonName}
	if len(cert.URIs) > 0 {
		x.SANURI = cert.URIs[0].String()
	}
	if len(cert.DNSNames) > 0 {
		x.SANDNS = cert.DNSNames[0]
	}
	if len(cert.Issuer.OrganizationalUnit) > 0 {
		x.IssuerOU = cert.Issuer.OrganizationalUnit[0]
	}
	return x
}
