package cli

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trellis-mesh/trellis/internal/controlclient"
	"github.com/trellis-mesh/trellis/internal/gateway"
)

// newGateway builds `trellis gateway`.
func newGateway(s Streams, client *clientFlags) *cobra.Command {
	var (
		cfg          gateway.Config
		controlPlane string
		vpc, nodeID  string
		stateDir     string
		logLevel     string
	)
	cmd := &cobra.Command{
		Use:   "gateway --vpc VPC_ID",
		Short: "Run a gateway: the data plane of the service networks associated with one VPC",
		Long: `Run a gateway node for one VPC. It serves every service of every service
network associated with the VPC: listeners (HTTP, HTTPS, TLS passthrough) on
--bind-host, rules, weighted target groups, health checks, the x-forwarded-*
and x-amzn-lattice-* headers, access logs and metrics, and (with --dns-addr)
a DNS responder that answers the services' names with --address.

The gateway streams its configuration from the control plane and keeps the
last one it applied in --state-dir: with the control plane down it keeps
serving, and restarted while the control plane is down it serves from disk.

Credentials and region are found as for the other client commands (--data,
--profile, AWS_* variables); the principal must be an admin or belong to the
VPC's account. 'trellis up' runs a gateway for its default VPC by itself.`,
		Example: `  trellis gateway --data ./state --vpc vpc-0a1b2c3d4e5f60718
  trellis gateway --control-plane http://10.0.0.2:7070 --vpc vpc-0a1b2c3d4e5f60718 \
      --bind-host 0.0.0.0 --address 10.0.0.5 --dns-addr 10.0.0.5:53 --state-dir /var/lib/trellis-gw`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			if vpc == "" {
				return fmt.Errorf("--vpc is required: the ID of the VPC this gateway serves (see 'trellis get vpcs')")
			}
			if controlPlane != "" {
				client.endpoint = controlPlane
			}
			ctx := cmd.Context()
			c, err := client.connect(ctx)
			if err != nil {
				return err
			}
			if nodeID == "" {
				host, _ := os.Hostname()
				nodeID = sanitizeNodeID(host) + "-" + vpc
			}
			cfg.Logger = slog.New(slog.NewTextHandler(s.Err, &slog.HandlerOptions{Level: lvl}))
			cfg.Stdout = s.Out
			cfg.Control = controlclient.Config{Endpoint: c.Endpoint, Credentials: c.aws.Credentials, Region: c.Region,
				NodeID: nodeID, VPCID: vpc, StateDir: stateDir}
			gw, err := gateway.New(cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.Err, "gateway %s for %s: control plane %s, state in %s\n", nodeID, vpc, c.Endpoint, stateDir)
			if a := gw.DNSAddr(); a != "" {
				fmt.Fprintf(s.Err, "  DNS:    %s\n", a)
			}
			if a := gw.AdminAddr(); a != "" {
				fmt.Fprintf(s.Err, "  admin:  http://%s (/metrics /healthz /readyz)\n", a)
			}
			return gw.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&controlPlane, "control-plane", "", "control-plane API URL (same as --endpoint-url)")
	f.StringVar(&vpc, "vpc", "", "ID of the VPC this gateway serves (required)")
	f.StringVar(&nodeID, "node-id", "", "name of this node in 'trellis get nodes' (default HOSTNAME-VPC)")
	f.StringVar(&stateDir, "state-dir", filepath.Join(".", "trellis-gateway"), "directory for the last-known-good snapshot (and access logs unless --log-dir)")
	f.StringVar(&cfg.BindHost, "bind-host", "127.0.0.1", "host that listener ports bind")
	f.BoolVar(&cfg.GoHTTP2, "go-http2", false, "serve HTTP/2 clients with Go's net/http server instead of Trellis's own (a fallback; slower)")
	f.StringVar(&cfg.Address, "address", "", "address that DNS answers give for service names (default: --bind-host, or 127.0.0.1 when that is 0.0.0.0)")
	f.StringVar(&cfg.DNSAddr, "dns-addr", "", "address of the DNS responder for service names, e.g. 127.0.0.1:7053 (default: none)")
	f.StringVar(&cfg.AdminAddr, "admin-addr", "127.0.0.1:7072", "address of /metrics, /healthz and /readyz (empty: none)")
	f.StringVar(&cfg.LogDir, "log-dir", "", "directory of access-log files (default STATE_DIR/logs; see docs/access-logs.md)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

// sanitizeNodeID keeps the characters a node ID may hold.
func sanitizeNodeID(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "node"
	}
	out := b.String()
	if len(out) > 100 {
		out = out[:100]
	}
	return out
}
