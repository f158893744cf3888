package cli

import (
	"fmt"
	"net/url"
	"os"

	"github.com/spf13/cobra"
)

// Certificates are imported through the native API (/trellis/v1/certificates)
// and named by a service's certificateArn for its custom domain.

func newCreateCertificate(s Streams, cf *clientFlags) *cobra.Command {
	var certFile, keyFile, chainFile, account string
	var tags []string
	cmd := &cobra.Command{
		Use:   "certificate --cert FILE --key FILE [--chain FILE]",
		Short: "Import a certificate for a service's custom domain (ACM-style)",
		Long: `Import a certificate and its private key (PEM files) so a service with a custom
domain can present it on its HTTPS listeners: create the service with
customDomainName and the certificateArn this prints. The certificate's DNS
names (or its common name) must cover the custom domain; *.example.com
covers parking.example.com but not example.com or a.b.example.com.

--cert may be a "full chain" file (leaf first, then intermediates); --chain
names the intermediates separately. The key must be unencrypted PEM (PKCS#8,
PKCS#1 or SEC 1). Lattice serves only RSA-2048 certificates; Trellis also
accepts RSA up to 4096 bits and ECDSA P-256/P-384/P-521, but TLS 1.2 clients
need an RSA certificate with Lattice's cipher policy. The key is never shown
again.`,
		Example: `  trellis create certificate --cert parking.crt --key parking.key --chain intermediates.pem
  ARN=$(trellis create certificate --cert fullchain.pem --key privkey.pem -o json | jq -r .certificateArn)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := map[string]any{"account": account}
			for _, f := range []struct{ flag, path, member string }{
				{"--cert", certFile, "certificate"}, {"--key", keyFile, "privateKey"}, {"--chain", chainFile, "certificateChain"},
			} {
				if f.path == "" {
					if f.flag != "--chain" {
						return fmt.Errorf("%s FILE is required", f.flag)
					}
					continue
				}
				b, err := os.ReadFile(f.path)
				if err != nil {
					return fmt.Errorf("%s: %w", f.flag, err)
				}
				in[f.member] = string(b)
			}
			t, err := parseTags(tags)
			if err != nil {
				return err
			}
			in["tags"] = t
			c, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			var out map[string]any
			if err := c.Native(cmd.Context(), "POST", "/certificates", in, &out); err != nil {
				return err
			}
			if cf.output == "table" {
				fmt.Fprintf(s.Out, "certificate %s imported (%s, until %s)\n", out["certificateArn"], field(out, "domainNames"), out["notAfter"])
				return nil
			}
			return render(s.Out, cf.output, out)
		},
	}
	cmd.Flags().StringVar(&certFile, "cert", "", "PEM file with the certificate (optionally followed by its intermediates)")
	cmd.Flags().StringVar(&keyFile, "key", "", "PEM file with the certificate's unencrypted private key")
	cmd.Flags().StringVar(&chainFile, "chain", "", "PEM file with the intermediate certificates, the leaf's issuer first")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "tag KEY=VALUE (repeatable)")
	cmd.Flags().StringVar(&account, "account", "", "account to import it into (admins only; default: yours)")
	return cmd
}

// certificateKind is the certificates entry of the kind table.
func certificateKind() *kindInfo {
	return &kindInfo{name: "certificates", singular: "certificate", aliases: []string{"certs", "cert"},
		headers: []string{"id", "domain names", "key", "not after", "in use by"},
		row: func(_ *session, o object) []string {
			return []string{field(o, "id"), field(o, "domainNames"), field(o, "keyAlgorithm"), field(o, "notAfter"), field(o, "inUseBy")}
		},
		list:    func(s *session) ([]object, error) { return nativeList(s, "/certificates") },
		sortKey: func(o object) string { return field(o, "domainNames") + "\x00" + field(o, "id") },
		one:     getCertificate,
	}
}

// getCertificate reads one certificate by ID or ARN.
func getCertificate(s *session, ref string) (object, error) {
	if ref == "" {
		return nil, fmt.Errorf("name the certificate by its ID or ARN")
	}
	var out object
	err := s.c.Native(s.ctx, "GET", "/certificates/"+url.PathEscape(ref), nil, &out)
	if isNotFound(err) {
		return nil, &notFoundError{kind: "certificate", name: ref}
	}
	return out, err
}
