package cli

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trellis-mesh/trellis/internal/api/lattice"
	"github.com/trellis-mesh/trellis/internal/gateway"
	"github.com/trellis-mesh/trellis/internal/server"
)

// newUp builds `trellis up` (all) or `trellis server` (!all).
func newUp(s Streams, all bool) *cobra.Command {
	var cfg server.Config
	var quotas []string
	var logLevel string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane (API server with the embedded store)",
		Long: `Run the Trellis control plane: the VPC Lattice–compatible API, Trellis's own
API (accounts, principals, access keys, VPCs) and STS GetCallerIdentity, all
SigV4-authenticated, with state in an embedded bbolt store under --data.

On first start it creates an admin account, an admin user with an access key,
and a default VPC (` + server.DefaultVPCCIDR + `); on every start it writes DATA/credentials and
DATA/config in the AWS CLI formats, with endpoint_url set to this server.`,
		Example: `  trellis server --data /var/lib/trellis --api-addr 0.0.0.0:7070
  trellis server --data ./state --quota services=100 --quota rules-per-listener=20`,
		Args: cobra.NoArgs,
	}
	if all {
		cmd.Use = "up"
		cmd.Short = "Run everything on one machine: control plane, embedded store, admin credentials"
		cmd.Long = `Run Trellis on one machine with nothing else to set up: the control plane
with the embedded store under --data, an admin account and access key, and a
default VPC. It prints the API address and the paths of the credentials and
config files it wrote; point the AWS CLI or SDK at them:

  export AWS_SHARED_CREDENTIALS_FILE=DATA/credentials AWS_CONFIG_FILE=DATA/config
  aws vpc-lattice list-service-networks

Everything created is kept in --data and is there again after a restart.`
		cmd.Example = `  trellis up --data ./state
  trellis up --data ./state --api-addr 127.0.0.1:8070 --admin-addr 127.0.0.1:8071`
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", "./trellis-data", "directory that holds all state (store, credentials, config)")
	f.StringVar(&cfg.APIAddr, "api-addr", "127.0.0.1:7070", "address of the API (Lattice-compatible, native and STS)")
	f.StringVar(&cfg.AdminAddr, "admin-addr", "127.0.0.1:7071", "address of /metrics, /healthz and /readyz")
	f.StringVar(&cfg.Region, "region", "us-east-1", "region of every ARN; SigV4 scopes must name it")
	f.StringArrayVar(&quotas, "quota", nil, "override a quota, NAME=VALUE (repeatable); names: "+strings.Join(quotaNames(), ", "))
	f.Float64Var(&cfg.RateLimit, "rate-limit", 0, "API requests per second per account (burst twice that); over it: ThrottlingException. 0 = no limit")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&cfg.TrustDomain, "trust-domain", "",
		"SPIFFE trust domain of principals' client certificates, fixed at the first start (default: the installation's; trellis.local for a new one)")
	var gwFlags gateway.Config
	if all {
		f.StringVar(&gwFlags.DNSAddr, "dns-addr", "127.0.0.1:7053", "address of the DNS responder for service names (empty: none)")
		f.StringVar(&gwFlags.BindHost, "bind-host", "127.0.0.1", "host that the gateway's listener ports bind (DNS answers this address)")
		f.BoolVar(&gwFlags.GoHTTP2, "go-http2", false, "serve HTTP/2 clients with Go's net/http server instead of Trellis's own (a fallback; slower)")
	}
	f.DurationVar(&cfg.DeregistrationDelay, "deregistration-delay", server.DefaultDeregistrationDelay,
		"how long a deregistered target drains (no new requests, in-flight ones finish) before it is removed; 0 removes it at once")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		switch {
		case cfg.DeregistrationDelay < 0:
			return fmt.Errorf("--deregistration-delay must not be negative, got %s", cfg.DeregistrationDelay)
		case cfg.DeregistrationDelay == 0:
			cfg.DeregistrationDelay = -1 // server.Config: negative is "at once", zero the default
		}
		var lvl slog.Level
		if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
			return fmt.Errorf("--log-level: %w", err)
		}
		cfg.Logger = slog.New(slog.NewTextHandler(s.Err, &slog.HandlerOptions{Level: lvl}))
		q, err := parseQuotas(quotas)
		if err != nil {
			return err
		}
		cfg.Quotas = q
		ctx := cmd.Context()
		srv, err := server.New(ctx, cfg)
		if err != nil {
			return err
		}
		if err := srv.Listen(); err != nil {
			_ = srv.Close()
			return err
		}
		endpoint := server.Endpoint(srv.APIAddr())
		b, err := srv.EnsureBootstrap(ctx, endpoint)
		if err != nil {
			_ = srv.Close()
			return err
		}
		fmt.Fprintf(s.Out, "Trellis is running.\n")
		fmt.Fprintf(s.Out, "  API:          %s\n", endpoint)
		fmt.Fprintf(s.Out, "  admin:        http://%s (/metrics /healthz /readyz)\n", srv.AdminAddr())
		fmt.Fprintf(s.Out, "  account:      %s (%s)\n", b.Account, b.PrincipalARN)
		fmt.Fprintf(s.Out, "  default VPC:  %s (%s)\n", b.VPCID, server.DefaultVPCCIDR)
		fmt.Fprintf(s.Out, "  credentials:  %s\n", b.CredentialsPath)
		fmt.Fprintf(s.Out, "  config:       %s\n", b.ConfigPath)
		if !all {
			fmt.Fprintf(s.Out, "\n  export AWS_SHARED_CREDENTIALS_FILE=%s AWS_CONFIG_FILE=%s\n", b.CredentialsPath, b.ConfigPath)
			return srv.Serve(ctx)
		}
		gw, err := localGateway(srv, b, endpoint, gwFlags, cfg.Logger, s)
		if err != nil {
			_ = srv.Close()
			return err
		}
		fmt.Fprintf(s.Out, "  CA:           %s (curl --cacert)\n", b.CAPath)
		if a := gw.DNSAddr(); a != "" {
			fmt.Fprintf(s.Out, "  DNS:          %s (service names answer %s)\n", a, gwFlags.BindHost)
		}
		fmt.Fprintf(s.Out, "  gateway:      listeners bind %s; state in %s\n", gwFlags.BindHost, filepath.Join(cfg.DataDir, "gateway"))
		fmt.Fprintf(s.Out, "\n  export AWS_SHARED_CREDENTIALS_FILE=%s AWS_CONFIG_FILE=%s\n", b.CredentialsPath, b.ConfigPath)
		return serveWithGateway(ctx, srv, gw)
	}
	return cmd
}

var quotaFields = map[string]func(*lattice.Quotas) *int{
	"service-networks":                 func(q *lattice.Quotas) *int { return &q.ServiceNetworks },
	"services":                         func(q *lattice.Quotas) *int { return &q.Services },
	"target-groups":                    func(q *lattice.Quotas) *int { return &q.TargetGroups },
	"target-groups-per-service":        func(q *lattice.Quotas) *int { return &q.TargetGroupsPerService },
	"targets-per-target-group":         func(q *lattice.Quotas) *int { return &q.TargetsPerTargetGroup },
	"listeners-per-service":            func(q *lattice.Quotas) *int { return &q.ListenersPerService },
	"rules-per-listener":               func(q *lattice.Quotas) *int { return &q.RulesPerListener },
	"service-associations-per-network": func(q *lattice.Quotas) *int { return &q.ServiceAssociationsPerNetwork },
	"vpc-associations-per-network":     func(q *lattice.Quotas) *int { return &q.VPCAssociationsPerNetwork },
}

func quotaNames() []string {
	return []string{"service-networks", "services", "target-groups", "target-groups-per-service", "targets-per-target-group",
		"listeners-per-service", "rules-per-listener", "service-associations-per-network", "vpc-associations-per-network"}
}

func parseQuotas(specs []string) (lattice.Quotas, error) {
	var q lattice.Quotas
	for _, spec := range specs {
		name, val, ok := strings.Cut(spec, "=")
		field, known := quotaFields[name]
		if !ok || !known {
			return q, fmt.Errorf("--quota %q: want NAME=VALUE with NAME one of %s", spec, strings.Join(quotaNames(), ", "))
		}
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 {
			return q, fmt.Errorf("--quota %q: VALUE must be a positive integer", spec)
		}
		*field(&q) = n
	}
	return q, nil
}
