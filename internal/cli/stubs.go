package cli

// Temporary: replaced by get.go, describe.go, delete.go, apply.go, output.go.

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

func render(w io.Writer, format string, v any) error {
	switch format {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return fmt.Errorf("unknown output format %q (want table, json or yaml)", format)
}

func newGet(s Streams, cf *clientFlags) *cobra.Command      { return &cobra.Command{Use: "get"} }
func newDescribe(s Streams, cf *clientFlags) *cobra.Command { return &cobra.Command{Use: "describe"} }
func newDelete(s Streams, cf *clientFlags) *cobra.Command   { return &cobra.Command{Use: "delete"} }
func newApply(s Streams, cf *clientFlags) *cobra.Command    { return &cobra.Command{Use: "apply"} }
