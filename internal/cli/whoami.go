package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// identity is the answer of whoami, the same as STS GetCallerIdentity.
type identity struct {
	Account string `json:"Account"`
	Arn     string `json:"Arn"`
}

func newWhoami(s Streams, cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show the account and ARN of the caller",
		Long: `Show who the API sees: the account and principal ARN of the access key in use.
The same answer comes from 'aws sts get-caller-identity --endpoint-url ...'.`,
		Example: `  trellis whoami
  trellis whoami -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			var id identity
			if err := c.Native(cmd.Context(), "GET", "/whoami", nil, &id); err != nil {
				return err
			}
			if cf.output == "table" {
				fmt.Fprintf(s.Out, "ACCOUNT\tARN\n%s\t%s\n", id.Account, id.Arn)
				return nil
			}
			return render(s.Out, cf.output, id)
		},
	}
}
