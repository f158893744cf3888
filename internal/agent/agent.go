// Package agent is Trellis's sidecar for namespace mode (like ECS Service
// Connect's proxy). Given the ECS-shaped configuration of one task it
//
//   - registers the task's services in the Cloud Map–compatible registry
//     (with a lease, so a killed agent's instances leave on their own) and
//     publishes how clients should call them (aliases, protocol, timeouts,
//     retries, outlier detection, circuit breaking);
//   - serves ingress: a listener on the instance address for each service,
//     forwarding to the application on localhost;
//   - serves egress: a virtual address (VIP) and listener for every client
//     alias of every service in the namespace, load balancing over the
//     live instances, and a hosts file naming the VIPs;
//   - on stop, deregisters, drains ingress, and closes.
//
// The agent talks to the control plane only through the Cloud Map API.
package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/trellis-mesh/trellis/internal/agent/config"
	"github.com/trellis-mesh/trellis/internal/agent/egress"
	"github.com/trellis-mesh/trellis/internal/dns"
	"github.com/trellis-mesh/trellis/internal/metrics"
	"github.com/trellis-mesh/trellis/internal/nativeclient"
)

// Defaults of Options.
const (
	DefaultPollInterval = time.Second
	DefaultLeaseSeconds = 15
	// DefaultNamespace is used when the configuration names none (ECS
	// would take the cluster's serviceConnectDefaults).
	DefaultNamespace = "default"
)

// Options configure an Agent.
type Options struct {
	// Config is the parsed configuration (config.Load).
	Config *config.Config
	// Address is the instance's address: registered as AWS_INSTANCE_IPV4,
	// and where ingress listens. Default 127.0.0.1.
	Address netip.Addr
	// AWS and Endpoint reach the registry (credentials, region, URL).
	AWS      aws.Config
	Endpoint string
	// StateDir holds the hosts file. Required.
	StateDir string
	// Logger receives the agent's logs; nil discards them.
	Logger *slog.Logger
	// PollInterval is how often the registry is read; DefaultPollInterval
	// when zero.
	PollInterval time.Duration
	// LeaseSeconds is the lease of registered instances, renewed every
	// third of it; DefaultLeaseSeconds when zero.
	LeaseSeconds int
	// AdminAddr overrides where /metrics and /ready are served ("-": no
	// admin listener); see adminAddr for the default.
	AdminAddr string
	// AccessLog receives access-log lines when the document asks for
	// them (accessLogConfiguration); os.Stdout when nil.
	AccessLog io.Writer
	// DNSAddr, when set, is where the agent answers DNS queries for the
	// client aliases (A records of their VIPs; REFUSED for other names).
	DNSAddr string
}

// Agent is one running sidecar.
type Agent struct {
	opts   Options
	cfg    *config.Config
	log    *slog.Logger
	reg    *registry
	nsName string
	nsID   string

	egress  *egress.Proxy
	ingress *egress.Proxy
	// id is the agent's certificate for TLS between agents; serverTLS
	// and clientTLS read it at each handshake.
	id                   *identity
	serverTLS, clientTLS *tls.Config

	admin       *http.Server
	adminListen string
	dns         *dns.Server
	dnsStop     context.CancelFunc
	dnsDone     chan struct{}
	hosts       *hostsFile
	vips        *vips

	// own are the task's registered instances; ingressPorts the port
	// each service's ingress listens on.
	own          []*ownInstance
	ingressPorts map[string]uint16

	mu      sync.Mutex
	remote  map[string]*remoteService // by discovery name; discovery loop only
	ready   chan struct{}
	stopped chan struct{}
	cancel  context.CancelFunc
	loops   sync.WaitGroup
	drains  sync.WaitGroup // listeners being closed (unlisten)
}

// ownInstance is an instance this agent registered.
type ownInstance struct {
	svc     *config.Service
	svcID   string
	id      string
	attrs   map[string]string
	healthy bool
}

// remoteService is a namespace service as the egress side knows it.
type remoteService struct {
	id       string
	pub      *published
	rev      int64
	aliases  []string // DNS names with a VIP
	checked  int      // polls since the instances were read
	raw      string   // the attrConnect value pub was read from
	missing  int      // polls the service has been absent from the namespace
	listened bool
}

// New checks opts and prepares an agent; Start runs it.
func New(opts Options) (*Agent, error) {
	if opts.Config == nil {
		return nil, errors.New("agent: no configuration")
	}
	if opts.StateDir == "" {
		return nil, errors.New("agent: no state directory")
	}
	if !opts.Address.IsValid() {
		opts.Address = netip.MustParseAddr("127.0.0.1")
	}
	if !opts.Address.Is4() {
		return nil, fmt.Errorf("agent: address %s: want an IPv4 address (AWS_INSTANCE_IPV4)", opts.Address)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.LeaseSeconds == 0 {
		opts.LeaseSeconds = DefaultLeaseSeconds
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v, err := newVIPs(opts.Config.VIPCIDR, opts.Address.String())
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	ns := opts.Config.Namespace.Name
	if ns == "" && opts.Config.Namespace.ARN == "" {
		ns = DefaultNamespace
	}
	return &Agent{opts: opts, cfg: opts.Config, log: log, reg: newRegistry(opts.AWS, opts.Endpoint), nsName: ns, vips: v,
		remote: map[string]*remoteService{}, ready: make(chan struct{}), stopped: make(chan struct{})}, nil
}

// namespaceFromARN is the ID in arn:aws:servicediscovery:R:A:namespace/ns-….
func namespaceFromARN(arn string) string {
	for i := len(arn) - 1; i >= 0; i-- {
		if arn[i] == '/' {
			return arn[i+1:]
		}
	}
	return arn
}

// HostsPath is the hosts file naming every client alias.
func (a *Agent) HostsPath() string { return filepath.Join(a.opts.StateDir, "hosts") }

// Namespace is the namespace the agent serves.
func (a *Agent) Namespace() string { return a.nsName }

// Start registers the task's services, starts ingress, and runs
// discovery until Stop; it returns once the first discovery pass has set
// up egress, so that an application started next finds its names.
func (a *Agent) Start(ctx context.Context) error {
	err := a.start(ctx)
	if err != nil {
		// Leave nothing behind: registered instances, listeners, loops.
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.cfg.Drain = 0
		_ = a.Stop(cctx)
		_ = a.Close(cctx)
	}
	return err
}

func (a *Agent) start(ctx context.Context) error {
	if err := os.MkdirAll(a.opts.StateDir, 0o700); err != nil {
		return fmt.Errorf("agent: state directory: %w", err)
	}
	h, err := newHostsFile(a.HostsPath(), "/etc/hosts")
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a.hosts = h
	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.NewProcessCollector())
	out := a.opts.AccessLog
	if out == nil {
		out = os.Stdout
	}
	t := newTelemetry(reg, newAccessLog(out, a.cfg.AccessLog))
	a.egress = egress.New(egress.Config{Logger: a.log.With("side", "egress"), Observer: t.outbound})
	a.ingress = egress.New(egress.Config{Logger: a.log.With("side", "ingress"), Observer: t.inbound})
	if err := a.startAdmin(reg); err != nil {
		return err
	}
	if err := a.startDNS(); err != nil {
		return err
	}
	if !a.cfg.Enabled {
		a.log.Info("service connect is not enabled: no listeners, no registration")
		close(a.ready)
		return nil
	}
	if a.nsID, err = a.resolveNamespace(ctx); err != nil {
		return err
	}
	if err := a.startIdentity(ctx); err != nil {
		return err
	}
	if err := a.startIngress(); err != nil {
		return err
	}
	if err := a.registerAll(ctx); err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.loops.Go(func() { a.id.run(lctx) })
	a.loops.Go(func() { a.discoverLoop(lctx) })
	a.loops.Go(func() { a.heartbeatLoop(lctx) })
	select {
	case <-a.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startIdentity gets the agent's certificate. Without it no TLS service
// can be served or called: a task that serves one fails to start; a task
// that does not goes on, and the renewal loop keeps trying (until then,
// calls to TLS services fail).
func (a *Agent) startIdentity(ctx context.Context) error {
	a.id = &identity{log: a.log.With("component", "identity"),
		api: &nativeclient.Client{Endpoint: a.opts.Endpoint, Region: a.opts.AWS.Region, Credentials: a.opts.AWS.Credentials}}
	a.serverTLS, a.clientTLS = a.id.serverConfig(), a.id.clientConfig()
	err := a.id.fetch(ctx)
	if err == nil {
		return nil
	}
	for i := range a.cfg.Services {
		if a.cfg.Services[i].TLS != nil {
			return fmt.Errorf("agent: service %s uses TLS: %w", a.cfg.Services[i].DiscoveryName, err)
		}
	}
	a.log.Warn("no certificate yet: calls to TLS services fail until one arrives", "err", err)
	return nil
}

func (a *Agent) resolveNamespace(ctx context.Context) (string, error) {
	if arn := a.cfg.Namespace.ARN; arn != "" && a.cfg.Namespace.Name == "" {
		// An ARN names an existing namespace: look it up, never create.
		id := namespaceFromARN(arn)
		name, err := a.reg.namespaceName(ctx, id)
		if err != nil {
			return "", fmt.Errorf("agent: namespace %s: %w", arn, err)
		}
		a.nsName = name
		return id, nil
	}
	id, err := a.reg.namespace(ctx, a.nsName)
	if err != nil {
		return "", fmt.Errorf("agent: namespace %s: %w", a.nsName, err)
	}
	return id, nil
}

// startIngress listens for each service on the instance address,
// forwarding to the application on localhost. When the instance address
// is 127.0.0.1 and the ingress port is the container port, the
// application holds that port itself: the agent then takes a free port,
// as ECS's proxy does in bridge mode, and registers that one.
func (a *Agent) startIngress() error {
	a.ingressPorts = map[string]uint16{}
	for i := range a.cfg.Services {
		s := &a.cfg.Services[i]
		port := s.IngressPort
		if port == s.ContainerPort && a.opts.Address == netip.AddrFrom4([4]byte{127, 0, 0, 1}) {
			port = 0 // the application's own port: take a free one
		}
		addr := net.JoinHostPort(a.opts.Address.String(), strconv.Itoa(int(port)))
		var bound net.Addr
		var err error
		if s.TLS != nil {
			bound, err = a.ingress.ListenTLS(s.DiscoveryName, addr, ingressPolicy(s), a.serverTLS)
		} else {
			bound, err = a.ingress.Listen(s.DiscoveryName, addr, ingressPolicy(s))
		}
		if err != nil {
			return fmt.Errorf("agent: ingress for %s on %s: %w", s.DiscoveryName, addr, err)
		}
		a.ingressPorts[s.DiscoveryName] = uint16(bound.(*net.TCPAddr).Port)
		addr = bound.String()
		app := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(s.ContainerPort)))
		a.ingress.SetEndpoints(s.DiscoveryName, []egress.Endpoint{{ID: "app", Addr: app}})
		a.log.Info("ingress", "service", s.DiscoveryName, "listen", addr, "app", app, "protocol", s.Protocol, "mtls", s.TLS != nil)
	}
	return nil
}

// registerAll creates the task's services in the registry if needed,
// publishes their client policy, and registers this instance of each.
func (a *Agent) registerAll(ctx context.Context) error {
	for i := range a.cfg.Services {
		s := &a.cfg.Services[i]
		svcID, err := a.reg.service(ctx, a.nsID, s.DiscoveryName)
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		attrs, err := publishAttributes(s)
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		if err := a.reg.publish(ctx, svcID, attrs); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		port := a.ingressPorts[s.DiscoveryName]
		in := &ownInstance{svc: s, svcID: svcID, id: a.opts.Address.String() + "-" + strconv.Itoa(int(port)),
			healthy: s.Readiness == nil}
		in.attrs = map[string]string{
			"AWS_INSTANCE_IPV4":      a.opts.Address.String(),
			"AWS_INSTANCE_PORT":      strconv.Itoa(int(port)),
			"AWS_INIT_HEALTH_STATUS": healthWord(in.healthy),
			"TRELLIS_LEASE_SECONDS":  strconv.Itoa(a.opts.LeaseSeconds),
			"TRELLIS_PROTOCOL":       s.Protocol.String(),
		}
		if err := a.reg.register(ctx, svcID, in.id, in.attrs); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		// A re-registration keeps the previous health: say it again.
		if err := a.reg.health(ctx, svcID, in.id, in.healthy); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		a.own = append(a.own, in)
		a.log.Info("registered", "namespace", a.nsName, "service", s.DiscoveryName, "instance", in.id, "healthy", in.healthy)
	}
	return nil
}

func healthWord(h bool) string {
	if h {
		return "HEALTHY"
	}
	return "UNHEALTHY"
}

// Stop deregisters the task's instances, gives clients time to notice
// (two poll intervals, at most the drain time), stops accepting ingress
// and lets in-flight requests finish until the drain time is over. Egress
// keeps serving until Close, so an application still shutting down can
// call out.
func (a *Agent) Stop(ctx context.Context) error {
	var errs []error
	// The loops first: a heartbeat or readiness report after the
	// deregistration would register the instance again.
	if a.cancel != nil {
		a.cancel()
		a.loops.Wait()
	}
	for _, in := range a.own {
		if err := a.reg.deregister(ctx, in.svcID, in.id); err != nil {
			errs = append(errs, err)
		}
	}
	drain := a.cfg.Drain
	if len(a.own) > 0 && drain > 0 {
		grace := min(2*a.opts.PollInterval, drain)
		a.log.Info("draining", "grace", grace, "drain", drain)
		select {
		case <-time.After(grace):
		case <-ctx.Done():
		}
		dctx, cancel := context.WithTimeout(ctx, drain-grace)
		defer cancel()
		if a.ingress != nil {
			if err := a.ingress.Close(dctx); err != nil {
				errs = append(errs, fmt.Errorf("draining ingress: %w", err))
			}
		}
	} else if a.ingress != nil {
		_ = a.ingress.Close(ctx)
	}
	return errors.Join(errs...)
}

// Close stops egress and the admin listener. Call it after Stop, once
// the application is gone.
func (a *Agent) Close(ctx context.Context) error {
	a.stopAdmin(ctx)
	a.drains.Wait()
	if a.dnsStop != nil {
		a.dnsStop()
		<-a.dnsDone
	}
	if a.egress == nil {
		return nil
	}
	return a.egress.Close(ctx)
}

// startDNS starts the agent's DNS responder when Options.DNSAddr is set.
func (a *Agent) startDNS() error {
	if a.opts.DNSAddr == "" {
		return nil
	}
	a.dns = dns.New(dns.Config{Addr: a.opts.DNSAddr, Logger: a.log.With("component", "dns")})
	if err := a.dns.Listen(); err != nil {
		return fmt.Errorf("agent: DNS on %s: %w", a.opts.DNSAddr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.dnsStop, a.dnsDone = cancel, make(chan struct{})
	go func() {
		defer close(a.dnsDone)
		if err := a.dns.Serve(ctx); err != nil {
			a.log.Warn("DNS responder stopped", "err", err)
		}
	}()
	a.log.Info("dns", "listen", a.dns.Addr())
	return nil
}

// DNSAddr is the DNS responder's address, "" when there is none.
func (a *Agent) DNSAddr() string {
	if a.dns == nil {
		return ""
	}
	return a.dns.Addr()
}
