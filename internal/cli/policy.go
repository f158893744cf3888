package cli

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// The policy verbs: explain asks the server (POST /trellis/v1/policy/explain)
// how Lattice's auth rules decide one request.

func newPolicy(s Streams, cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Work with auth policies: explain why a request is allowed or denied",
	}
	cmd.AddCommand(newPolicyExplain(s, cf))
	return cmd
}

// explainFlags are the flags of 'policy explain'.
type explainFlags struct {
	service, principal, method, path, vpc, network, sourceIP, protocol, when string
	port                                                                     int
	headers, query                                                           []string
	servicePolicy, networkPolicy                                             string
	identityPolicies                                                         []string
	serviceAuthType, networkAuthType, account                                string
}

func newPolicyExplain(s Streams, cf *clientFlags) *cobra.Command {
	var f explainFlags
	cmd := &cobra.Command{
		Use:   "explain --service SERVICE --principal ARN|anonymous [--method M] [--path P] [flags]",
		Short: "Explain the auth decision for a request: the deciding statement and the condition that failed",
		Long: `Describe a request to a service and see how Lattice's auth rules decide it:
ALLOW or DENY, the layer that denied (Network, Service or Identity), the 403
body a client would get, and for every statement of every evaluated policy
whether it matched or, if not, the first element that failed (principal,
action, resource, or the condition with the request's and the policy's
values).

A request is allowed only if no evaluated policy has an applicable Deny and
  - the service network's auth policy allows it, or the network's authType is NONE,
  - the service's auth policy allows it, or the service's authType is NONE,
  - the caller's identity-based policy allows it (signed callers only;
    anonymous callers have none and match only Principal "*").
An authType AWS_IAM without an auth policy denies every request. With both
authTypes NONE nothing is evaluated. docs/auth.md has the details.

The server uses the stored auth types and policies and the principal's tags
and identity-based policy; --service-policy, --network-policy,
--identity-policy, --service-auth-type and --network-auth-type replace them
for this explanation only, so a policy can be tried before it is put. The
value "none" stands for "no policy" (name a file called none as ./none).

The request comes from --vpc (default: your VPC "default" when it reaches
the service) through --network (default: the network that VPC is
associated with, or the service's only network). --port and --protocol
default to the service's only HTTP/HTTPS listener; a TLS_PASSTHROUGH
listener (named by --port, or --protocol TLS_PASSTHROUGH) is explained
for vpc-lattice-svcs:Connect on the service by an anonymous caller, as a
gateway authorizes its connections. Headers and query
parameters are what vpc-lattice-svcs:RequestHeader/<name> and
RequestQueryString/<key> conditions see. For gRPC, give --method POST, the
path /package.Service/Method and --header content-type=application/grpc.
The path is normalized first, as gateways do ("/a/../b" is "/b"; see
docs/auth.md), and explain shows the decision a gateway makes.`,
		Example: `  # Allow one role GET /orders/*: try the policy before putting it.
  cat > orders-policy.json <<'EOF'
  {"Version": "2012-10-17", "Statement": [{"Sid": "WebReadsOrders", "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::111122223333:role/web"},
    "Action": "vpc-lattice-svcs:Invoke", "Resource": "*/orders/*",
    "Condition": {"StringEquals": {"vpc-lattice-svcs:RequestMethod": "GET"}}}]}
  EOF
  trellis policy explain --service orders --principal arn:aws:iam::111122223333:role/web \
    --method GET --path /orders/1 --service-policy orders-policy.json --service-auth-type AWS_IAM
  # ...then put it (and set the service's authType to AWS_IAM):
  aws vpc-lattice put-auth-policy --policy file://orders-policy.json \
    --resource-identifier "$(trellis get service orders -o json | jq -r .id)"

  # Why is my request denied?
  trellis policy explain --service orders --principal arn:aws:iam::111122223333:role/web \
    --method POST --path /orders --header content-type=application/json
  # The answer names the layer that denied, the 403 body, and per statement
  # the first thing that failed, e.g.
  #   service policy "orders", statement 0 (Sid WebReadsOrders): Allow — not matched:
  #   condition StringEquals vpc-lattice-svcs:RequestMethod: request ["POST"], policy ["GET"]

  # What does an unsigned caller get?
  trellis policy explain --service orders --principal anonymous --path /public/logo.png

  # The whole explanation as JSON: the statement that decided, the failed condition.
  trellis policy explain --service orders --principal role/web --path /orders/1 -o json | jq .explanation.layers`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(cf.output); err != nil {
				return err
			}
			in, err := f.body()
			if err != nil {
				return err
			}
			c, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			var out object
			if err := c.Native(cmd.Context(), "POST", "/policy/explain", in, &out); err != nil {
				return err
			}
			if cf.output == "table" {
				return printExplanation(s.Out, out)
			}
			return render(s.Out, cf.output, out)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.service, "service", "", "the service: name, ID or ARN (required)")
	fl.StringVar(&f.principal, "principal", "", `the caller: ARN of a Trellis user or role (or role/NAME, user/NAME, NAME), or "anonymous" (required)`)
	fl.StringVar(&f.method, "method", "", "HTTP method (default GET; POST for gRPC)")
	fl.StringVar(&f.path, "path", "", "request path, starting with / (default /)")
	fl.StringArrayVar(&f.headers, "header", nil, "request header NAME=VALUE (repeatable)")
	fl.StringArrayVar(&f.query, "query", nil, "query parameter KEY=VALUE (repeatable)")
	fl.StringVar(&f.vpc, "vpc", "", `source VPC, name or ID (default: your VPC "default" when it reaches the service)`)
	fl.StringVar(&f.network, "network", "", "service network the request comes through, name, ID or ARN (default: the source VPC's, or the service's only one)")
	fl.StringVar(&f.sourceIP, "source-ip", "", "client address, for aws:SourceIp (default: absent)")
	fl.IntVar(&f.port, "port", 0, "listener port (default: the service's only HTTP/HTTPS listener)")
	fl.StringVar(&f.protocol, "protocol", "", "HTTP or HTTPS (default: the listener's)")
	fl.StringVar(&f.when, "time", "", "request time, RFC 3339, for aws:CurrentTime (default: now)")
	fl.StringVar(&f.servicePolicy, "service-policy", "", `file with the service auth policy to use instead of the stored one ("none": no policy)`)
	fl.StringVar(&f.networkPolicy, "network-policy", "", `file with the network auth policy to use instead of the stored one ("none": no policy)`)
	fl.StringArrayVar(&f.identityPolicies, "identity-policy", nil, `file with an identity-based policy of the caller, instead of its stored one (repeatable; "none": no policies)`)
	fl.StringVar(&f.serviceAuthType, "service-auth-type", "", "NONE or AWS_IAM instead of the service's authType")
	fl.StringVar(&f.networkAuthType, "network-auth-type", "", "NONE or AWS_IAM instead of the network's authType")
	fl.StringVar(&f.account, "account", "", "account of the service (admins only; default: yours)")
	return cmd
}

// body builds the request of the explain call; only given flags are sent,
// so the server's defaults apply to the rest.
func (f *explainFlags) body() (map[string]any, error) {
	if f.service == "" || f.principal == "" {
		return nil, fmt.Errorf("--service and --principal are required (--principal anonymous for an unsigned request)")
	}
	in := map[string]any{"service": f.service, "principal": f.principal}
	for k, v := range map[string]string{"method": f.method, "path": f.path, "sourceVpc": f.vpc, "serviceNetwork": f.network,
		"sourceIp": f.sourceIP, "protocol": f.protocol, "time": f.when, "serviceAuthType": f.serviceAuthType,
		"networkAuthType": f.networkAuthType, "account": f.account} {
		if v != "" {
			in[k] = v
		}
	}
	if f.port != 0 {
		in["port"] = f.port
	}
	for _, m := range []struct {
		flag   string
		specs  []string
		member string
	}{{"--header", f.headers, "headers"}, {"--query", f.query, "query"}} {
		if len(m.specs) == 0 {
			continue
		}
		values := map[string][]string{}
		for _, s := range m.specs {
			k, v, ok := strings.Cut(s, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("%s %q: want NAME=VALUE", m.flag, s)
			}
			values[k] = append(values[k], v)
		}
		in[m.member] = values
	}
	for _, p := range []struct{ flag, file, member string }{
		{"--service-policy", f.servicePolicy, "servicePolicy"}, {"--network-policy", f.networkPolicy, "networkPolicy"},
	} {
		if p.file == "" {
			continue
		}
		doc, err := readPolicyFile(p.flag, p.file)
		if err != nil {
			return nil, err
		}
		in[p.member] = doc
	}
	if len(f.identityPolicies) > 0 {
		docs := []string{}
		for _, file := range f.identityPolicies {
			if file == "none" {
				if len(f.identityPolicies) > 1 {
					return nil, fmt.Errorf("--identity-policy none cannot be combined with policy files")
				}
				continue
			}
			doc, err := readPolicyFile("--identity-policy", file)
			if err != nil {
				return nil, err
			}
			docs = append(docs, doc)
		}
		in["identityPolicies"] = docs
	}
	return in, nil
}

// readPolicyFile reads a policy document; "none" is the empty document
// (no policy).
func readPolicyFile(flag, file string) (string, error) {
	if file == "none" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	if strings.TrimSpace(string(b)) == "" {
		return "", fmt.Errorf("%s %s: the file is empty (use \"none\" for no policy)", flag, file)
	}
	return string(b), nil
}

// printExplanation writes the decision, the request as evaluated, the
// server's notes and the explanation text.
func printExplanation(w io.Writer, out object) error {
	decision := field(out, "decision")
	if by := field(out, "deniedBy"); by != "" {
		decision += " (denied by the " + by + " layer)"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("decision", decision)
	row("principal", field(out, "request", "principal"))
	req := field(out, "request", "method") + " " + field(out, "request", "path") +
		" on port " + field(out, "request", "port") + " (" + field(out, "request", "protocol") + ")"
	if field(out, "request", "method") == "" {
		req = "connection to port " + field(out, "request", "port") + " (" + field(out, "request", "protocol") + ", " + field(out, "request", "action") + ")"
	}
	row("request", req)
	row("resource", field(out, "request", "resource"))
	row("service", layerLine(out, "service"))
	row("network", layerLine(out, "serviceNetwork"))
	if id := field(out, "request", "sourceVpc", "id"); id != "" {
		row("source VPC", field(out, "request", "sourceVpc", "name")+" ("+id+")")
	}
	row("identity", field(out, "request", "identityPolicies"))
	if m, ok := out["request"].(map[string]any); ok {
		row("headers", pairs(m["headers"]))
		row("query", pairs(m["query"]))
	}
	if m, ok := out["request"].(map[string]any); ok && field(m, "sourceIp") != "" {
		row("source IP", field(m, "sourceIp"))
	}
	if notes, ok := out["notes"].([]any); ok {
		for _, n := range notes {
			row("note", fmt.Sprint(n))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%s", field(out, "text"))
	return err
}

// layerLine shows a service or network: name (ID), authType, policy source.
func layerLine(out object, member string) string {
	id := field(out, "request", member, "id")
	if id == "" {
		return ""
	}
	src := field(out, "request", member, "policy")
	switch src {
	case "stored":
		src = "stored auth policy"
	case "override":
		src = "auth policy from the command line"
	case "none":
		src = "no auth policy"
	}
	return fmt.Sprintf("%s (%s), authType %s, %s", field(out, "request", member, "name"), id, field(out, "request", member, "authType"), src)
}

// pairs shows a header or query object as k=v, k=v in key order.
func pairs(v any) string {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		switch x := m[k].(type) {
		case []any:
			for _, e := range x {
				parts = append(parts, k+"="+fmt.Sprint(e))
			}
		default:
			parts = append(parts, k+"="+fmt.Sprint(x))
		}
	}
	return strings.Join(parts, ", ")
}
