package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/trellis-mesh/trellis/internal/agent"
	"github.com/trellis-mesh/trellis/internal/agent/config"
)

// agentFlags are the flags `trellis agent` and `trellis run` share.
type agentFlags struct {
	configPath   string
	address      string
	controlPlane string
	stateDir     string
	logLevel     string
	poll         time.Duration
	lease        int
	drain        time.Duration
	adminAddr    string
	dnsAddr      string
}

func (f *agentFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.configPath, "config", "", `the task's document: {"serviceConnectConfiguration": {...}, "portMappings": [...], "trellis": {...}} (required; docs/agent-config.md)`)
	fl.StringVar(&f.address, "address", "127.0.0.1", "the instance's IPv4 address: registered as AWS_INSTANCE_IPV4, where ingress listens")
	fl.StringVar(&f.controlPlane, "control-plane", "", "control-plane API URL (same as --endpoint-url; default http://127.0.0.1:7070)")
	fl.StringVar(&f.stateDir, "state-dir", "", "directory for the hosts file (default: a new temporary directory, removed at exit)")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.DurationVar(&f.poll, "poll-interval", agent.DefaultPollInterval, "how often the registry is read for new and gone instances")
	fl.IntVar(&f.lease, "lease-seconds", agent.DefaultLeaseSeconds, "lease of the registered instances (5-3600): a killed agent's instances leave the registry this long after its last heartbeat")
	fl.StringVar(&f.adminAddr, "admin-addr", "", `address of /metrics (ECS Service Connect's metrics), /ready and /healthz (default: the document's trellis.adminAddr, else ADDRESS:9901; "-": none)`)
	fl.StringVar(&f.dnsAddr, "dns-addr", "", "address where the agent answers DNS queries for the client aliases, e.g. 127.0.0.1:5353 (default: none; names resolve through the hosts file)")
	fl.DurationVar(&f.drain, "drain", 0, "drain time on stop (default: the document's trellis.drainSeconds, else 20s)")
}

// start parses the flags, loads the configuration and starts an agent.
// cleanup removes a temporary state directory.
func (f *agentFlags) start(ctx context.Context, s Streams, client *clientFlags) (a *agent.Agent, cleanup func(), err error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, nil, fmt.Errorf("--log-level: %w", err)
	}
	if f.configPath == "" {
		return nil, nil, errors.New("--config is required: the task's serviceConnectConfiguration and portMappings (see docs/agent-config.md)")
	}
	addr, err := netip.ParseAddr(f.address)
	if err != nil || !addr.Is4() {
		return nil, nil, fmt.Errorf("--address %q: want an IPv4 address such as 10.0.0.5", f.address)
	}
	cfg, err := config.Load(f.configPath)
	if err != nil {
		return nil, nil, err
	}
	if f.drain > 0 {
		cfg.Drain = f.drain
	}
	if f.lease < 5 || f.lease > 3600 {
		return nil, nil, fmt.Errorf("--lease-seconds %d: want 5 to 3600", f.lease)
	}
	if f.controlPlane != "" {
		client.endpoint = f.controlPlane
	}
	c, err := client.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	cleanup = func() {}
	dir := f.stateDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "trellis-agent-"); err != nil {
			return nil, nil, err
		}
		cleanup = func() { _ = os.RemoveAll(dir) }
	}
	a, err = agent.New(agent.Options{Config: cfg, Address: addr, AWS: c.aws, Endpoint: c.Endpoint, StateDir: dir,
		Logger: slog.New(slog.NewTextHandler(s.Err, &slog.HandlerOptions{Level: lvl})), PollInterval: f.poll, LeaseSeconds: f.lease,
		AdminAddr: f.adminAddr, AccessLog: s.Out, DNSAddr: f.dnsAddr})
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	if err := a.Start(ctx); err != nil {
		cleanup()
		return nil, nil, err
	}
	return a, cleanup, nil
}

// stopAgent deregisters and drains, then closes egress.
func stopAgent(a *agent.Agent, s Streams) {
	drainAgent(a, s)
	closeAgent(a, s)
}

// drainAgent deregisters and drains ingress.
func drainAgent(a *agent.Agent, s Streams) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		fmt.Fprintf(s.Err, "agent: stop: %v\n", err)
	}
}

// closeAgent closes egress and the admin listener.
func closeAgent(a *agent.Agent, s Streams) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		fmt.Fprintf(s.Err, "agent: close: %v\n", err)
	}
}

// appStopTimeout is how long COMMAND has to exit after SIGTERM before it
// is killed (ECS's default stopTimeout).
const appStopTimeout = 30 * time.Second

// waitApp waits for COMMAND after its SIGTERM: SIGKILL after
// appStopTimeout, or at once on another SIGTERM or SIGINT.
func waitApp(app *exec.Cmd, exited <-chan error, s Streams) error {
	again := make(chan os.Signal, 1)
	signal.Notify(again, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(again)
	select {
	case err := <-exited:
		return err
	case <-again:
	case <-time.After(appStopTimeout):
		fmt.Fprintf(s.Err, "agent: %s did not exit %v after SIGTERM: killing it\n", app.Path, appStopTimeout)
	}
	_ = app.Process.Kill()
	return <-exited
}

const agentLong = `The agent is Trellis's sidecar for namespace mode, the counterpart of ECS
Service Connect's proxy. It reads the task's document (--config): the ECS
serviceConnectConfiguration, verbatim, with the task's portMappings and an
optional "trellis" block (retries, outlier detection, circuit breakers,
readiness). Then it

  - registers each service of the task in the namespace (Cloud Map API),
    with --address and the ingress port, and publishes how clients call it;
  - listens on --address at each service's ingress port and forwards to the
    application on 127.0.0.1 at the container port;
  - gives every client alias of every service in the namespace a virtual
    address in 127.255.0.0/16 with a listener on the alias port, balancing
    over the instances the registry lists (new ones are used within a poll
    interval), with retries, timeouts and outlier detection;
  - keeps a hosts file naming those addresses.

On SIGTERM or SIGINT it deregisters, waits for clients to notice, lets
in-flight requests finish (the drain time, default 20 s) and exits.

The control plane and credentials are found as for the other client
commands (--data, --profile, AWS_* variables; default http://127.0.0.1:7070).`

// newAgentCmd builds `trellis agent`.
func newAgentCmd(s Streams, client *clientFlags) *cobra.Command {
	f := &agentFlags{}
	cmd := &cobra.Command{
		Use:   "agent --config FILE [--address IP]",
		Short: "Run a namespace-mode sidecar agent (like ECS Service Connect's proxy)",
		Long: agentLong + `

'trellis agent' does not start the application and cannot change its name
resolution: point the application at the hosts file it prints, or use
'trellis run', which does both.`,
		Example: `  trellis agent --data ./state --config payments.json --address 127.0.0.1
  trellis agent --control-plane http://10.0.0.2:7070 --config task.json --address 10.0.3.7 --state-dir /run/trellis`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			a, cleanup, err := f.start(ctx, s, client)
			if err != nil {
				return err
			}
			defer cleanup()
			fmt.Fprintf(s.Err, "agent for namespace %s: hosts file %s\n", a.Namespace(), a.HostsPath())
			if ad := a.AdminAddr(); ad != "" {
				fmt.Fprintf(s.Err, "  admin: http://%s (/metrics /ready /healthz)\n", ad)
			}
			if d := a.DNSAddr(); d != "" {
				fmt.Fprintf(s.Err, "  DNS:   %s (the client aliases)\n", d)
			}
			<-ctx.Done()
			stopAgent(a, s)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

// exitError carries the application's exit status out of `trellis run`.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("application exited with status %d", e.code) }

// ExitCode is the status `trellis run` exits with.
func (e *exitError) ExitCode() int { return e.code }

// newRunCmd builds `trellis run`.
func newRunCmd(s Streams, client *clientFlags) *cobra.Command {
	f := &agentFlags{}
	cmd := &cobra.Command{
		Use:   "run --config FILE [--address IP] -- COMMAND [ARG]...",
		Short: "Run an application with its namespace-mode agent: its services registered, every alias resolvable",
		Long: agentLong + `

'trellis run' starts the agent, waits until the namespace's aliases have
addresses, then runs COMMAND with the hosts file as its /etc/hosts: on Linux
as root, in a private mount namespace (the machine's /etc/hosts is not
touched); otherwise COMMAND runs as is and only programs that read the
printed hosts file resolve the names. On SIGTERM or SIGINT, and when COMMAND
exits, the agent deregisters and drains; COMMAND then gets SIGTERM, and
'trellis run' exits with COMMAND's status.`,
		Example: `  trellis run --data ./state --config web.json -- ./web
  trellis run --config payments.json --address 10.0.3.7 -- python3 -m http.server 8080`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			a, cleanup, err := f.start(ctx, s, client)
			if err != nil {
				return err
			}
			defer cleanup()
			self, err := os.Executable()
			if err != nil {
				stopAgent(a, s)
				return err
			}
			app, private := agent.AppCommand(self, a.HostsPath(), argv)
			app.Stdin, app.Stdout, app.Stderr = s.In, s.Out, s.Err
			if !private {
				fmt.Fprintf(s.Err, "agent: not root: %s runs with the machine's /etc/hosts; the aliases are in %s\n", argv[0], a.HostsPath())
			}
			if err := app.Start(); err != nil {
				stopAgent(a, s)
				return fmt.Errorf("starting %s: %w", argv[0], err)
			}
			exited := make(chan error, 1)
			go func() { exited <- app.Wait() }()
			var werr error
			select {
			case werr = <-exited:
				drainAgent(a, s)
			case <-ctx.Done():
				stop() // a second signal now ends trellis run (and kills COMMAND) at once
				drainAgent(a, s)
				_ = app.Process.Signal(syscall.SIGTERM)
				werr = waitApp(app, exited, s)
			}
			// Egress stays up until COMMAND is gone: its own shutdown
			// may still call out.
			closeAgent(a, s)
			var ee *exec.ExitError
			switch {
			case werr == nil:
				return nil
			case errors.As(werr, &ee):
				code := ee.ExitCode()
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					code = 128 + int(ws.Signal())
				}
				return &exitError{code: code}
			}
			return werr
		},
	}
	f.register(cmd)
	// Everything after COMMAND belongs to it, even without "--".
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// newSandboxCmd is the hidden verb `trellis run` re-executes itself with
// inside the application's mount namespace.
func newSandboxCmd() *cobra.Command {
	return &cobra.Command{
		Use:   agent.SandboxVerb + " HOSTS -- COMMAND [ARG]...",
		Short: "Internal: become COMMAND with HOSTS as /etc/hosts (run by 'trellis run' in a new mount namespace)",
		Long: `Internal to 'trellis run': inside the private mount namespace it starts
the application in, bind-mount HOSTS over /etc/hosts and execute COMMAND.
Not meant to be run by hand: outside a private mount namespace it would
change the machine's /etc/hosts view for everyone.`,
		Example: "  (run by 'trellis run'; see 'trellis run --help')",
		Hidden:  true,
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return agent.ExecSandboxed(args[0], args[1:])
		},
	}
}
