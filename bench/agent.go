package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	sd "github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	sdtypes "github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"
)

// The agent-pair column runs Trellis's namespace mode the way ECS Service
// Connect runs its proxies, one agent per task:
//
//	trellis up --data DIR --api-addr ... --admin-addr ...    (the registry)
//	trellis agent --data DIR --config server.json --address 127.0.0.50 ...
//	trellis agent --data DIR --config client.json --address 127.0.0.51 ...
//
// The server agent registers "payments" (alias payments:8080, http) with
// its ingress on 127.0.0.50 at the backend's port, forwarding to the
// backend on 127.0.0.1. The client agent serves none. 99 more services
// are put into the namespace through the Cloud Map API, as their own
// agents would leave them: a service, its TRELLIS_CONNECT client policy
// (a copy of what the server agent published for payments, with the
// alias changed) and one instance (the backend). So each agent holds a
// VIP listener for each of 100 services and polls the registry for all of
// them. Requests go to the client agent's VIP for payments with Host
// payments:8080: client agent → server agent → backend.
//
// When trellis does not build, an agent does not start, or the VIP does
// not answer with the backend's response, the column is skipped with the
// reason.

const (
	agentNamespace  = "bench"
	agentServerAddr = "127.0.0.50"
	agentClientAddr = "127.0.0.51"
	agentService    = "payments"
	agentAliasPort  = 8080
)

// Targets of issue 5 for the agent pair.
const (
	agentTargetP50    = 200 * time.Microsecond
	agentTargetP99    = 400 * time.Microsecond
	agentTargetIdleKB = 20 * 1024
)

func startAgents(ctx context.Context, cfg *config) (*target, error) {
	bin, err := trellisBinary(ctx, cfg)
	if err != nil {
		return nil, err
	}
	t := &target{name: "agents", version: trellisVersion()}
	backendPort := cfg.port(portBackend)
	for _, a := range []string{
		net.JoinHostPort(agentServerAddr, strconv.Itoa(backendPort)),
		net.JoinHostPort(agentServerAddr, strconv.Itoa(cfg.port(portAgentAdmin))),
		net.JoinHostPort(agentClientAddr, strconv.Itoa(cfg.port(portAgentAdmin))),
	} {
		if !portFree(a) {
			return t, errSkip("%s is in use (the agents' ingress and admin listeners)", a)
		}
	}

	dir := filepath.Join(cfg.work, "agents")
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return t, err
	}
	args := []string{"up", "--data", data, "--api-addr", cfg.addr(portAgentsAPI), "--admin-addr", cfg.addr(portAgentsAdmin)}
	if upHasDNS(ctx, bin) {
		args = append(args, "--dns-addr=") // none: the agents do not use it
	}
	up, err := start(cfg.work, "agents-up", goCmd(cfg, bin, args...))
	if err != nil {
		return t, err
	}
	t.others = append(t.others, up)
	if err := waitReady(ctx, "http://"+cfg.addr(portAgentsAdmin)+"/readyz", up, 20*time.Second); err != nil {
		return t, errSkip("trellis up (the agents' registry) did not become ready: %v", err)
	}

	server, err := startAgent(ctx, cfg, bin, dir, data, "server", agentServerAddr, agentServerDoc(backendPort))
	if server != nil {
		// Stopped before the registry, client first (see below).
		t.others = append([]*proc{server}, t.others...)
	}
	if err != nil {
		return t, err
	}

	reg, err := newRegistryClient(ctx, data, "http://"+cfg.addr(portAgentsAPI))
	if err != nil {
		return t, err
	}
	if err := fillNamespace(ctx, reg, backendPort, cfg.agentServices); err != nil {
		return t, errSkip("filling the namespace with %d services: %v", cfg.agentServices, err)
	}

	client, err := startAgent(ctx, cfg, bin, dir, data, "client", agentClientAddr, agentClientDoc)
	if client != nil {
		t.others = append([]*proc{client}, t.others...)
	}
	if err != nil {
		return t, err
	}
	t.parts = []part{{name: "client agent", p: client}, {name: "server agent", p: server},
		{name: "registry (trellis up)", p: up, aside: true}}

	// Both agents hold a VIP for every service of the namespace.
	wait := max(cfg.trellisWait, 30*time.Second)
	hosts, err := waitAliases(ctx, filepath.Join(dir, "client", "hosts"), client, cfg.agentServices, wait)
	if err != nil {
		return t, errSkip("client agent: %v", err)
	}
	if _, err := waitAliases(ctx, filepath.Join(dir, "server", "hosts"), server, cfg.agentServices, wait); err != nil {
		t.notes = append(t.notes, "agents: server agent: "+err.Error())
	}
	vip, ok := hosts[agentService]
	if !ok {
		return t, errSkip("the client agent's hosts file names no %s", agentService)
	}
	url := "http://" + net.JoinHostPort(vip, strconv.Itoa(agentAliasPort)) + "/"
	t.h1URL, t.h2URL, t.host = url, url, agentService+":"+strconv.Itoa(agentAliasPort)
	if err := waitBackend(ctx, url, t.host, client, wait); err != nil {
		return t, errSkip("the client agent's VIP for %s does not reach the backend: %v", agentService, err)
	}
	t.notes = append(t.notes, fmt.Sprintf("agents: client agent (%s) → VIP %s:%d of %s → server agent (%s:%d) → backend; "+
		"%d services in namespace %s, each with a VIP listener in each agent; one 'trellis up' is the registry they poll "+
		"(every 1 s, the default), shown beside the pair but not part of it", agentClientAddr, vip, agentAliasPort, agentService,
		agentServerAddr, backendPort, cfg.agentServices, agentNamespace))
	return t, nil
}

// goCmd is a command for a Go program, with GOMAXPROCS = cores as every
// Go proxy of the bench gets.
func goCmd(cfg *config, bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(cfg.cores))
	return cmd
}

// startAgent runs `trellis agent` with doc and waits for its /ready.
func startAgent(ctx context.Context, cfg *config, bin, dir, data, name, addr, doc string) (*proc, error) {
	conf := filepath.Join(dir, name+".json")
	if err := os.WriteFile(conf, []byte(doc), 0o644); err != nil {
		return nil, err
	}
	admin := net.JoinHostPort(addr, strconv.Itoa(cfg.port(portAgentAdmin)))
	p, err := start(cfg.work, "agent-"+name, goCmd(cfg, bin, "agent", "--data", data, "--config", conf, "--address", addr,
		"--state-dir", filepath.Join(dir, name), "--admin-addr", admin, "--drain", "5s"))
	if err != nil {
		return nil, errSkip("%s agent did not start: %v", name, err)
	}
	if err := waitReady(ctx, "http://"+admin+"/ready", p, 30*time.Second); err != nil {
		return p, errSkip("%s agent did not become ready: %v", name, err)
	}
	return p, nil
}

// agentServerDoc is the payments task: ECS's serviceConnectConfiguration
// and portMappings, the backend as the application.
func agentServerDoc(backendPort int) string {
	return fmt.Sprintf(`{
  "serviceConnectConfiguration": {
    "enabled": true,
    "namespace": %q,
    "services": [{"portName": "http", "discoveryName": %q, "clientAliases": [{"port": %d, "dnsName": %q}]}]
  },
  "portMappings": [{"name": "http", "containerPort": %d, "appProtocol": "http"}]
}
`, agentNamespace, agentService, agentAliasPort, agentService, backendPort)
}

// agentClientDoc is a client-only task.
var agentClientDoc = fmt.Sprintf(`{"serviceConnectConfiguration": {"enabled": true, "namespace": %q}}
`, agentNamespace)

// newRegistryClient is a Cloud Map client with the credentials 'trellis
// up' wrote.
func newRegistryClient(ctx context.Context, data, endpoint string) (*sd.Client, error) {
	c, err := awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithSharedCredentialsFiles([]string{filepath.Join(data, "credentials")}),
		awsconfig.WithSharedConfigFiles([]string{filepath.Join(data, "config")}),
		awsconfig.WithSharedConfigProfile("default"))
	if err != nil {
		return nil, fmt.Errorf("loading the credentials of trellis up: %w", err)
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	return sd.NewFromConfig(c, func(o *sd.Options) { o.BaseEndpoint = aws.String(endpoint) }), nil
}

// fillNamespace adds services until the namespace has n of them, each with the client policy payments published (its alias
// changed) and one instance, the backend.
func fillNamespace(ctx context.Context, c *sd.Client, backendPort, n int) error {
	ns, err := c.ListNamespaces(ctx, &sd.ListNamespacesInput{Filters: []sdtypes.NamespaceFilter{{
		Name: sdtypes.NamespaceFilterNameName, Values: []string{agentNamespace}, Condition: sdtypes.FilterConditionEq}}})
	if err != nil {
		return err
	}
	nsID := ""
	for _, n := range ns.Namespaces {
		if aws.ToString(n.Name) == agentNamespace {
			nsID = aws.ToString(n.Id)
		}
	}
	if nsID == "" {
		return fmt.Errorf("no namespace %s (the server agent creates it)", agentNamespace)
	}
	svcs, err := c.ListServices(ctx, &sd.ListServicesInput{Filters: []sdtypes.ServiceFilter{{
		Name: sdtypes.ServiceFilterNameNamespaceId, Values: []string{nsID}, Condition: sdtypes.FilterConditionEq}}})
	if err != nil {
		return err
	}
	var doc string
	for _, s := range svcs.Services {
		if aws.ToString(s.Name) != agentService {
			continue
		}
		attrs, err := c.GetServiceAttributes(ctx, &sd.GetServiceAttributesInput{ServiceId: s.Id})
		if err != nil {
			return err
		}
		if attrs.ServiceAttributes != nil {
			doc = attrs.ServiceAttributes.Attributes["TRELLIS_CONNECT"]
		}
	}
	if doc == "" {
		return fmt.Errorf("service %s has no TRELLIS_CONNECT attribute", agentService)
	}
	for i := 1; i < n; i++ {
		name := fmt.Sprintf("svc-%03d", i)
		pub, err := withAlias(doc, name, agentAliasPort)
		if err != nil {
			return err
		}
		out, err := c.CreateService(ctx, &sd.CreateServiceInput{Name: aws.String(name), NamespaceId: aws.String(nsID),
			Description: aws.String("bench: one of the namespace's services")})
		if err != nil {
			return err
		}
		id := out.Service.Id
		if _, err := c.UpdateServiceAttributes(ctx, &sd.UpdateServiceAttributesInput{ServiceId: id,
			Attributes: map[string]string{"TRELLIS_CONNECT": pub}}); err != nil {
			return err
		}
		if _, err := c.RegisterInstance(ctx, &sd.RegisterInstanceInput{ServiceId: id, InstanceId: aws.String("backend"),
			Attributes: map[string]string{"AWS_INSTANCE_IPV4": "127.0.0.1", "AWS_INSTANCE_PORT": strconv.Itoa(backendPort),
				"TRELLIS_PROTOCOL": "http"}}); err != nil {
			return err
		}
	}
	return nil
}

// withAlias returns a TRELLIS_CONNECT document with its aliases replaced
// by dnsName:port, everything else as published.
func withAlias(doc, dnsName string, port int) (string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		return "", fmt.Errorf("TRELLIS_CONNECT: %w", err)
	}
	if _, ok := m["aliases"]; !ok {
		return "", errors.New("TRELLIS_CONNECT: no aliases member")
	}
	al, err := json.Marshal([]map[string]any{{"dnsName": dnsName, "port": port}})
	if err != nil {
		return "", err
	}
	m["aliases"] = al
	b, err := json.Marshal(m)
	return string(b), err
}

// waitAliases polls an agent's hosts file until it names n aliases; it
// returns alias → VIP.
func waitAliases(ctx context.Context, path string, p *proc, n int, timeout time.Duration) (map[string]string, error) {
	deadline := time.Now().Add(timeout)
	var got map[string]string
	for {
		if p.exited() {
			return nil, fmt.Errorf("it exited: %s", p.lastLog())
		}
		if b, err := os.ReadFile(path); err == nil {
			got = parseHosts(string(b))
			if len(got) >= n {
				return got, nil
			}
		}
		if time.Now().After(deadline) {
			return got, fmt.Errorf("its hosts file names %d of the %d services after %v", len(got), n, timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// hostsMarker starts the agent's own lines of its hosts file (after a copy
// of the machine's /etc/hosts).
const hostsMarker = "# Trellis agent: client aliases of the namespace"

// parseHosts reads the alias lines of an agent's hosts file: name → address.
func parseHosts(s string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	mine := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == hostsMarker {
			mine = true
			continue
		}
		f := strings.Fields(line)
		if !mine || len(f) < 2 || strings.HasPrefix(line, "#") {
			continue
		}
		for _, name := range f[1:] {
			out[name] = f[0]
		}
	}
	return out
}
