// Package cli is the trellis command line: the server roles (up, server)
// and the client verbs (apply, get, describe, delete, create, whoami),
// which talk to a Trellis server only through its APIs — the
// Lattice-compatible one through the AWS SDK's vpclattice client, and
// Trellis's own native API — exactly as any other client would.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Streams are the command's standard streams (tests capture them).
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
}

// Execute runs the command line args and returns the process exit code.
func Execute(ctx context.Context, args []string, s Streams) int {
	root := NewRoot(s)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code // trellis run: the application's status, already reported by it
		}
		fmt.Fprintln(s.Err, "error:", err)
		return 1
	}
	return 0
}

// NewRoot builds the command tree.
func NewRoot(s Streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "trellis",
		Short: "Trellis connects, secures and observes service-to-service traffic",
		Long: `Trellis is a self-hosted application-networking layer. It serves a VPC
Lattice–compatible API (service networks, services, listeners, rules, target
groups, auth policies), so the AWS CLI and SDKs work against it with only the
endpoint changed.

Start everything on one machine:
  trellis up --data ./state

Then use the AWS CLI, the SDKs, or these client commands, which read the
credentials and endpoint that 'up' wrote:
  export AWS_SHARED_CREDENTIALS_FILE=./state/credentials AWS_CONFIG_FILE=./state/config
  trellis apply -f examples/quickstart.yaml
  trellis get services`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.SetIn(s.In)
	root.AddCommand(newUp(s, true), newUp(s, false))
	client := &clientFlags{}
	for _, c := range []*cobra.Command{
		newWhoami(s, client), newCreate(s, client), newGet(s, client), newDescribe(s, client),
		newDelete(s, client), newApply(s, client), newGateway(s, client),
		newPolicy(s, client), newAgentCmd(s, client), newRunCmd(s, client),
	} {
		client.register(c)
		root.AddCommand(c)
	}
	root.AddCommand(newSandboxCmd())
	applyEnv(root)
	return root
}

// applyEnv gives every flag of every command an environment twin:
// --api-addr is TRELLIS_API_ADDR. The variable sets the default; a flag on
// the command line wins.
func applyEnv(cmd *cobra.Command) {
	visit := func(f *pflag.Flag) {
		name := "TRELLIS_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if !strings.Contains(f.Usage, name) {
			f.Usage += " [$" + name + "]"
		}
		if v, ok := os.LookupEnv(name); ok && !f.Changed {
			if sv, ok := f.Value.(pflag.SliceValue); ok {
				_ = sv.Replace(strings.Split(v, ","))
			} else {
				_ = f.Value.Set(v)
			}
			f.DefValue = v
		}
	}
	cmd.Flags().VisitAll(visit)
	cmd.PersistentFlags().VisitAll(visit)
	for _, c := range cmd.Commands() {
		applyEnv(c)
	}
}
