package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func newCreate(s Streams, cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "create KIND NAME",
		Short: "Create Trellis identities and networks: principals, access keys, client certificates, VPCs, accounts, instances",
		Long: `Create the things Trellis keeps beside the Lattice resources. Lattice resources
themselves (service networks, services, ...) are created with 'trellis apply'
or the AWS CLI.`,
	}
	cmd.AddCommand(newCreatePrincipal(s, cf), newCreateAccessKey(s, cf), newCreateVPC(s, cf), newCreateAccount(s, cf),
		newCreateInstance(s, cf))
	cmd.AddCommand(newCreateCertificate(s, cf), newCreateClientCertificate(s, cf))
	return cmd
}

func parseTags(specs []string) (map[string]string, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	tags := map[string]string{}
	for _, t := range specs {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--tag %q: want KEY=VALUE", t)
		}
		tags[k] = v
	}
	return tags, nil
}

func newCreatePrincipal(s Streams, cf *clientFlags) *cobra.Command {
	var typ, policyFile, account string
	var tags []string
	cmd := &cobra.Command{
		Use:   "principal NAME",
		Short: "Create an IAM-style user or role",
		Long: `Create a principal (arn:aws:iam::<account>:role/NAME or user/NAME) in your
account. --policy attaches its identity-based policy (IAM JSON), which the
data plane checks together with auth policies.`,
		Example: `  trellis create principal orders-client --type role --tag team=orders
  trellis create principal ci --type user --policy ./invoke-policy.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := parseTags(tags)
			if err != nil {
				return err
			}
			in := map[string]any{"name": args[0], "type": typ, "tags": t, "account": account}
			if policyFile != "" {
				b, err := os.ReadFile(policyFile)
				if err != nil {
					return fmt.Errorf("--policy: %w", err)
				}
				in["policy"] = string(b)
			}
			c, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			var out map[string]any
			if err := c.Native(cmd.Context(), "POST", "/principals", in, &out); err != nil {
				return err
			}
			if cf.output == "table" {
				fmt.Fprintf(s.Out, "principal %s created\n", out["arn"])
				return nil
			}
			return render(s.Out, cf.output, out)
		},
	}
	cmd.Flags().StringVar(&typ, "type", "role", "principal type: role or user")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "tag KEY=VALUE (repeatable)")
	cmd.Flags().StringVar(&policyFile, "policy", "", "file with the principal's identity-based policy (IAM JSON)")
	cmd.Flags().StringVar(&account, "account", "", "account to create it in (admins only; default: yours)")
	return cmd
}

func newCreateAccessKey(s Streams, cf *clientFlags) *cobra.Command {
	var account string
	cmd := &cobra.Command{
		Use:   "access-key PRINCIPAL",
		Short: "Create an access key for a principal (the secret is shown once)",
		Long: `Create an access key for PRINCIPAL (NAME, role/NAME, user/NAME or its ARN).
The secret is printed only now; store it in an AWS credentials file.`,
		Example: `  trellis create access-key orders-client -o json
  trellis create access-key role/orders-client -o json > key.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			var out struct {
				AccessKeyID     string `json:"AccessKeyId"`
				SecretAccessKey string `json:"SecretAccessKey"`
				Principal       string `json:"Principal"`
			}
			if err := c.Native(cmd.Context(), "POST", "/accesskeys", map[string]string{"principal": args[0], "account": account}, &out); err != nil {
				return err
			}
			if cf.output == "table" {
				fmt.Fprintf(s.Out, "[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n", args[0], out.AccessKeyID, out.SecretAccessKey)
				return nil
			}
			return render(s.Out, cf.output, map[string]string{"AccessKeyId": out.AccessKeyID, "SecretAccessKey": out.SecretAccessKey})
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "account of the principal (admins only; default: yours)")
	return cmd
}

func newCreateVPC(s Streams, cf *clientFlags) *cobra.Command {
	var cidrs, tags []string
	var account string
	cmd := &cobra.Command{
		Use:     "vpc NAME",
		Short:   "Declare a VPC (a network where gateways serve and targets live)",
		Example: `  trellis create vpc payments --cidr 10.1.0.0/16 --cidr fd00:1::/64`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := parseTags(tags)
			if err != nil {
				return err
			}
			c, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			var out map[string]any
			if err := c.Native(cmd.Context(), "POST", "/vpcs", map[string]any{"name": args[0], "cidrs": cidrs, "tags": t, "account": account}, &out); err != nil {
				return err
			}
			if cf.output == "table" {
				fmt.Fprintf(s.Out, "vpc %s created (%s)\n", out["id"], args[0])
				return nil
			}
			return render(s.Out, cf.output, out)
		},
	}
	cmd.Flags().StringArrayVar(&cidrs, "cidr", nil, "CIDR block of the VPC (repeatable, at least one)")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "tag KEY=VALUE (repeatable)")
	cmd.Flags().StringVar(&account, "account", "", "owner account (admins only; default: yours)")
	return cmd
}

func newCreateAccount(s Streams, cf *clientFlags) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:     "account NAME",
		Short:   "Create an account (admins only)",
		Example: "  trellis create account payments\n  trellis create principal deployer --type role --account 123456789012",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			var out map[string]any
			if err := c.Native(cmd.Context(), "POST", "/accounts", map[string]any{"name": args[0], "id": id}, &out); err != nil {
				return err
			}
			if cf.output == "table" {
				fmt.Fprintf(s.Out, "account %s created (%s)\n", out["id"], args[0])
				return nil
			}
			return render(s.Out, cf.output, out)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "12-digit account ID (default: random)")
	return cmd
}
