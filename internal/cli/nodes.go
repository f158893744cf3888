package cli

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

// The node side of Trellis in the client verbs: instances (what INSTANCE
// targets resolve to) and nodes (the gateways that stream snapshots).

// nodeKinds are the kinds of the node side, for kindTable.
func nodeKinds() []*kindInfo {
	return []*kindInfo{
		{name: "instances", singular: "instance", flags: []string{"vpc"},
			headers: []string{"name", "id", "vpc", "address"},
			row: func(_ *session, o object) []string {
				return []string{field(o, "name"), field(o, "id"), field(o, "vpc"), field(o, "address")}
			},
			list: listInstances,
			one: func(s *session, ref string) (object, error) {
				return oneOf(func() ([]object, error) { return listInstances(s) }, "instance", ref,
					func(o object) bool { return o["id"] == ref || o["name"] == ref })
			}},
		{name: "nodes", singular: "node", flags: []string{"vpc"},
			headers: []string{"id", "vpc", "address", "applied", "latest", "lag", "connected", "last seen", "error"},
			row:     nodeRow,
			list:    listNodes,
			sortKey: func(o object) string { return field(o, "id") },
			one: func(s *session, ref string) (object, error) {
				return oneOf(func() ([]object, error) { return listNodes(s) }, "node", ref,
					func(o object) bool { return o["id"] == ref })
			}},
	}
}

// vpcQuery is "?vpc=ID" for --vpc (a name or ID), or "".
func (s *session) vpcQuery() (string, error) {
	if s.refs.vpc == "" {
		return "", nil
	}
	id, err := s.vpcID(s.refs.vpc)
	if err != nil {
		return "", err
	}
	return "?vpc=" + url.QueryEscape(id), nil
}

func listInstances(s *session) ([]object, error) {
	q, err := s.vpcQuery()
	if err != nil {
		return nil, err
	}
	return nativeList(s, "/instances"+q)
}

func listNodes(s *session) ([]object, error) {
	q, err := s.vpcQuery()
	if err != nil {
		return nil, err
	}
	return nativeList(s, "/nodes"+q)
}

// nodeRow shows versions as numbers ("-" before the first), and when the
// node was last seen relative to now.
func nodeRow(_ *session, o object) []string {
	version := func(name string) string {
		if v := field(o, name); v != "0" {
			return v
		}
		return ""
	}
	connected := "no"
	if field(o, "connected") == "true" {
		connected = "yes"
	}
	seen := field(o, "lastSeen")
	if t, err := time.Parse(time.RFC3339Nano, seen); err == nil {
		seen = ago(time.Since(t))
	}
	return []string{field(o, "id"), field(o, "vpc"), field(o, "address"), version("appliedVersion"),
		version("latestVersion"), field(o, "lag"), connected, seen, field(o, "lastError")}
}

// ago renders d as "5s ago", "3m ago", "2h ago" or "4d ago".
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(max(d, 0)/time.Second)) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d ago"
}

func newCreateInstance(s Streams, cf *clientFlags) *cobra.Command {
	var vpc, address, name, id string
	var tags []string
	cmd := &cobra.Command{
		Use:   "instance --vpc VPC --address IP",
		Short: "Declare a compute instance, so INSTANCE targets with its ID reach its address",
		Long: `Declare an instance (i- followed by 17 hex digits, or --id) in a VPC with the
IP address gateways dial for it. Targets of INSTANCE target groups are
registered by instance ID, as in Lattice; a target whose instance is not
declared in the group's VPC gets no traffic. The address must be inside one
of the VPC's CIDR blocks.`,
		Example: `  trellis create instance --vpc default --address 127.0.0.1 --name web-1
  trellis create instance --vpc payments --address 10.1.0.7 --id i-0123456789abcdef0 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := parseTags(tags)
			if err != nil {
				return err
			}
			if vpc == "" || address == "" {
				return fmt.Errorf("--vpc and --address are required")
			}
			sess, err := cf.session(cmd.Context(), s.Out, refFlags{})
			if err != nil {
				return err
			}
			vpcID, err := sess.vpcID(vpc)
			if err != nil {
				return err
			}
			in := map[string]any{"vpc": vpcID, "address": address, "name": name, "id": id, "tags": t}
			var out map[string]any
			if err := sess.c.Native(cmd.Context(), "POST", "/instances", in, &out); err != nil {
				return err
			}
			if cf.output == "table" {
				fmt.Fprintf(s.Out, "instance %s created (%s in %s)\n", out["id"], address, vpcID)
				return nil
			}
			return render(s.Out, cf.output, out)
		},
	}
	cmd.Flags().StringVar(&vpc, "vpc", "", "VPC (name or ID) the instance is in (required)")
	cmd.Flags().StringVar(&address, "address", "", "IP address gateways dial for the instance's targets (required)")
	cmd.Flags().StringVar(&name, "name", "", "a name to find the instance by")
	cmd.Flags().StringVar(&id, "id", "", "instance ID (default: a random i- followed by 17 hex digits)")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "tag KEY=VALUE (repeatable)")
	return cmd
}
