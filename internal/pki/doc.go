// Package pki is Trellis's certificate authority: one root CA per
// installation, the certificates it issues for HTTPS listeners (DNS names)
// and workload identities (SPIFFE URIs), and the certificates users import
// for custom domains.
//
// Lifecycle and flow:
//
//   - LoadOrCreate reads the root CA from the store (key /pki/ca) or, on the
//     first start of an installation, creates it. Creation is
//     create-if-absent inside store.Update, so two servers starting together
//     on one store agree on a single CA: the loser discards its key and
//     loads the winner's. WriteCAFile puts the root certificate at
//     DATA/ca.pem for clients (curl --cacert DATA/ca.pem).
//   - CA.Issue signs a leaf for DNS names (server certificate) and/or URI
//     SANs (client identity). It does no I/O and is safe for concurrent use.
//   - Import validates a certificate a user uploads (PEM parses, key
//     matches, not expired, chain in order) into an Imported record, stored
//     at /certs/<account>/<id> by the native API; LookupImported reads it
//     back by ARN.
//   - Issuer implements snapshot.CertSource: for a service with a
//     certificateArn it returns the imported certificate (checking that it
//     covers the custom domain with Lattice's one-level wildcard rule);
//     otherwise it returns a certificate issued for the service's generated
//     name and custom domain, cached in the store at /pki/issued/<service>
//     so every server and every snapshot build hand out the same one until
//     less than a third of its lifetime remains or the names change.
//
// Key types. Lattice serves imported certificates with RSA-2048 keys only,
// and its TLS 1.2 cipher policy (reference/lattice.md §3) lists only
// RSA-authenticated suites (ECDHE-RSA-*, plain RSA). A listener that
// applies that policy cannot complete a TLS 1.2 handshake with an ECDSA
// certificate, so the Issuer's default for listener certificates is
// RSA-2048 too. TLS 1.3 does not tie the cipher suite to the key type, and
// an ECDSA P-256 key signs a handshake roughly 30 times cheaper than
// RSA-2048; IssuerConfig.KeyType selects it where TLS 1.3 (or ECDHE-ECDSA
// suites) is enough. CA.Issue, used for mesh identities where Trellis
// controls both ends, issues ECDSA P-256. The root is ECDSA P-256: its
// signature algorithm does not constrain the leaf's cipher suites.
//
// The CA private key is kept in the store unencrypted, beside the access
// key secrets: whoever can read the store is already trusted with the
// installation. There is no CA rotation yet.
package pki
