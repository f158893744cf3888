package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// Client certificates are issued through the native API
// (POST /trellis/v1/principals/{type}/{name}/certificates) for a key made
// here, sent as a certificate signing request, and written to files: the
// private key never leaves this machine.

func newCreateClientCertificate(s Streams, cf *clientFlags) *cobra.Command {
	var typ, outDir, account string
	var ttlHours int
	cmd := &cobra.Command{
		Use:   "client-certificate PRINCIPAL",
		Short: "Issue an mTLS client certificate for a principal (cert.pem, key.pem, ca.pem)",
		Long: `Issue a client certificate for PRINCIPAL (NAME, or TYPE/NAME) from the
installation's CA and write it to --out-dir: cert.pem (the certificate),
key.pem (its ECDSA P-256 private key, made here and never sent anywhere,
mode 0600) and ca.pem (the CA, to verify gateways with). Existing files of
those names are replaced.

The certificate carries the SPIFFE ID
spiffe://<trust-domain>/account/<account>/<type>/<name>; gateways take a
client that presents it for the principal, as if it had signed with the
principal's access key. Names with +=,@ cannot be SPIFFE IDs. Deleting the
principal revokes all its certificates; otherwise they are good until they
expire (--ttl-hours).`,
		Example: `  trellis create client-certificate orders --type role --out-dir ./orders-tls
  curl --cert ./orders-tls/cert.pem --key ./orders-tls/key.pem --cacert ./orders-tls/ca.pem https://...`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if t, n, ok := strings.Cut(name, "/"); ok {
				if cmd.Flags().Changed("type") && t != typ {
					return fmt.Errorf("PRINCIPAL %s names type %s but --type is %s", name, t, typ)
				}
				typ, name = t, n
			}
			if typ != "role" && typ != "user" {
				return fmt.Errorf("--type must be role or user, got %q", typ)
			}
			keyPEM, csrPEM, err := newKeyAndCSR()
			if err != nil {
				return err
			}
			in := map[string]any{"account": account, "csrPem": csrPEM}
			if cmd.Flags().Changed("ttl-hours") || ttlHours != 0 {
				in["ttlHours"] = ttlHours
			}
			c, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			var out struct {
				CertificatePEM string `json:"certificatePem"`
				CAPEM          string `json:"caPem"`
				SPIFFEID       string `json:"spiffeId"`
				Principal      string `json:"principal"`
				NotAfter       string `json:"notAfter"`
			}
			path := "/principals/" + url.PathEscape(typ) + "/" + url.PathEscape(name) + "/certificates"
			if err := c.Native(cmd.Context(), "POST", path, in, &out); err != nil {
				return err
			}
			files, err := writeClientCertificate(outDir, out.CertificatePEM, keyPEM, out.CAPEM)
			if err != nil {
				return err
			}
			if cf.output == "table" {
				fmt.Fprintf(s.Out, "client certificate for %s (%s), until %s\n", out.Principal, out.SPIFFEID, out.NotAfter)
				for _, f := range files {
					fmt.Fprintf(s.Out, "  %s\n", f)
				}
				return nil
			}
			return render(s.Out, cf.output, map[string]any{"principal": out.Principal, "spiffeId": out.SPIFFEID,
				"notAfter": out.NotAfter, "certificate": files[0], "privateKey": files[1], "ca": files[2]})
		},
	}
	cmd.Flags().StringVar(&typ, "type", "role", "principal type: role or user")
	cmd.Flags().StringVar(&outDir, "out-dir", ".", "directory to write cert.pem, key.pem and ca.pem to (created if missing)")
	cmd.Flags().IntVar(&ttlHours, "ttl-hours", 0, "lifetime in hours, 1 to 8760 (0: the server's default, 24)")
	cmd.Flags().StringVar(&account, "account", "", "account of the principal (admins only; default: yours)")
	return cmd
}

// newKeyAndCSR makes an ECDSA P-256 key and a certificate signing request
// for it, both PEM.
func newKeyAndCSR() (keyPEM, csrPEM string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generating a key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("encoding the key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return "", "", fmt.Errorf("certificate request: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})), nil
}

// writeClientCertificate writes cert.pem, key.pem (0600) and ca.pem into
// dir, each through a temporary file renamed into place, so a client that
// reads them while they are renewed sees the old or the new file, never a
// part. It returns the paths.
func writeClientCertificate(dir, certPEM, keyPEM, caPEM string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("--out-dir: %w", err)
	}
	var paths []string
	for _, f := range []struct {
		name, content string
		mode          os.FileMode
	}{{"cert.pem", certPEM, 0o644}, {"key.pem", keyPEM, 0o600}, {"ca.pem", caPEM, 0o644}} {
		p := filepath.Join(dir, f.name)
		tmp, err := os.CreateTemp(dir, "."+f.name+".*")
		if err != nil {
			return nil, fmt.Errorf("writing %s: %w", p, err)
		}
		_, err = tmp.WriteString(f.content)
		if err == nil {
			err = tmp.Chmod(f.mode)
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), p)
		}
		if err != nil {
			_ = os.Remove(tmp.Name())
			return nil, fmt.Errorf("writing %s: %w", p, err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}
