package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/trellis-mesh/trellis/internal/model"
)

func newApply(s Streams, cf *clientFlags) *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update resources declared in YAML or JSON files",
		Long: `Make the server match the resources declared in FILE: create what is missing,
update what differs, and leave the rest alone. Running the same files twice
changes nothing the second time (every line says "unchanged") and makes no
write calls.

A file holds one or more documents separated by '---' lines, in YAML or
JSON. Each document has a kind; resources refer to each other by name
(or by ID/ARN). Documents may come in any order: they are applied in
dependency order (ServiceNetwork, Service, TargetGroup, Listener,
ServiceNetworkServiceAssociation, ServiceNetworkVpcAssociation, AuthPolicy,
AccessLogSubscription). The whole input is checked before anything is
written: unknown kinds or fields, missing names, duplicates, references to
resources that neither the input nor the server has, and changes to fields
that cannot change.

  kind: ServiceNetwork
  name: shop
  authType: NONE                 # or AWS_IAM; default NONE
  tags: {team: shop}             # optional; when given, tags are made exactly these
  ---
  kind: Service
  name: orders
  authType: NONE
  customDomainName: orders.shop.example   # optional; cannot change later
  certificateArn: arn:aws:acm:...         # optional; needs customDomainName
  ---
  kind: TargetGroup
  name: orders-v1
  type: IP                       # IP, INSTANCE, LAMBDA or ALB; cannot change
  config:                        # cannot change, except healthCheck
    port: 8080
    protocol: HTTP
    protocolVersion: HTTP1
    vpc: default                 # VPC name or ID
    healthCheck: {path: /healthz, healthCheckIntervalSeconds: 10}
  targets:                       # optional; when given, exactly these are registered
    - {id: 10.0.0.10, port: 8080}
    - {id: 10.0.0.11}            # port defaults to the group's
  ---
  kind: Listener
  service: orders
  name: http
  protocol: HTTP                 # HTTP, HTTPS or TLS_PASSTHROUGH; cannot change
  port: 80                       # default 80 (HTTP) or 443 (HTTPS); cannot change
  defaultAction:
    forward: {targetGroups: [{targetGroup: orders-v1, weight: 100}]}
  rules:                         # optional; when given, exactly these rules exist
    - name: api-v2
      priority: 10
      match: {httpMatch: {pathMatch: {match: {prefix: /v2}}}}
      action: {fixedResponse: {statusCode: 404}}
  ---
  kind: ServiceNetworkServiceAssociation
  serviceNetwork: shop
  service: orders
  ---
  kind: ServiceNetworkVpcAssociation
  serviceNetwork: shop
  vpc: default
  securityGroupIds: [sg-0123456789abcdef0]   # optional
  ---
  kind: AuthPolicy
  serviceNetwork: shop           # or service: orders
  policy: {Version: "2012-10-17", Statement: [...]}
  ---
  kind: AccessLogSubscription
  serviceNetwork: shop           # or service: orders
  destinationArn: arn:aws:logs:us-east-1:111122223333:log-group:shop

Every kind but AuthPolicy takes tags; rules take them too. Match and
action members are those of the Lattice API (httpMatch.method,
pathMatch.caseSensitive, headerMatches: [{name, match: {exact|prefix|contains}}],
fixedResponse.statusCode); a target group in an action is
{targetGroup: NAME|ID|ARN, weight: N}.

Each resource gets one output line: KIND/NAME created, updated, unchanged,
or (rules left out of a listener's list) deleted; -o json or -o yaml print
the same as a list of {resource, result}. Nothing is ever deleted because a
document was removed from the input.`,
		Example: `  trellis apply -f examples/quickstart.yaml
  trellis apply -f network.yaml -f services.yaml
  cat shop.json | trellis apply -f -
  trellis apply -f examples/quickstart.yaml -o json | jq -r '.[] | select(.result != "unchanged") | .resource'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return errors.New("name at least one file with -f (or -f - for standard input)")
			}
			if err := checkFormat(cf.output); err != nil {
				return err
			}
			var docs []*resource
			for _, f := range files {
				d, err := readDocuments(f, s.In)
				if err != nil {
					return err
				}
				docs = append(docs, d...)
			}
			if err := validateAll(docs); err != nil {
				return err
			}
			sess, err := cf.session(cmd.Context(), s.Out, refFlags{})
			if err != nil {
				return err
			}
			return newApplier(sess, cf.output).apply(docs)
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file with resources (YAML or JSON; repeatable; - reads standard input)")
	return cmd
}

// Documents of each kind. Members are named as in the Lattice API where
// there is one; references to other resources take a name, ID or ARN.
type (
	snDoc struct {
		Kind     string            `json:"kind"`
		Name     string            `json:"name"`
		AuthType string            `json:"authType,omitempty"`
		Tags     map[string]string `json:"tags,omitempty"`
	}
	serviceDoc struct {
		Kind             string            `json:"kind"`
		Name             string            `json:"name"`
		AuthType         string            `json:"authType,omitempty"`
		CustomDomainName string            `json:"customDomainName,omitempty"`
		CertificateArn   string            `json:"certificateArn,omitempty"`
		Tags             map[string]string `json:"tags,omitempty"`
	}
	tgDoc struct {
		Kind    string            `json:"kind"`
		Name    string            `json:"name"`
		Type    string            `json:"type"`
		Config  *tgConfigDoc      `json:"config,omitempty"`
		Targets []targetDoc       `json:"targets"`
		Tags    map[string]string `json:"tags,omitempty"`
	}
	tgConfigDoc struct {
		Port                        *int32          `json:"port,omitempty"`
		Protocol                    string          `json:"protocol,omitempty"`
		ProtocolVersion             string          `json:"protocolVersion,omitempty"`
		IPAddressType               string          `json:"ipAddressType,omitempty"`
		VPC                         string          `json:"vpc,omitempty"`
		HealthCheck                 *healthCheckDoc `json:"healthCheck,omitempty"`
		LambdaEventStructureVersion string          `json:"lambdaEventStructureVersion,omitempty"`
	}
	// healthCheckDoc is the API's own shape; its defaults come from the
	// model, as the server materialises them.
	healthCheckDoc = model.HealthCheckConfig
	targetDoc      struct {
		ID   string `json:"id"`
		Port *int32 `json:"port,omitempty"`
	}
	listenerDoc struct {
		Kind          string            `json:"kind"`
		Service       string            `json:"service"`
		Name          string            `json:"name"`
		Protocol      string            `json:"protocol"`
		Port          *int32            `json:"port,omitempty"`
		DefaultAction *actionDoc        `json:"defaultAction"`
		Rules         []ruleDoc         `json:"rules"`
		Tags          map[string]string `json:"tags,omitempty"`
	}
	actionDoc struct {
		Forward       *forwardDoc       `json:"forward,omitempty"`
		FixedResponse *fixedResponseDoc `json:"fixedResponse,omitempty"`
	}
	forwardDoc struct {
		TargetGroups []weightedDoc `json:"targetGroups"`
	}
	weightedDoc struct {
		TargetGroup string `json:"targetGroup"`
		Weight      *int32 `json:"weight,omitempty"`
	}
	fixedResponseDoc struct {
		StatusCode int32 `json:"statusCode"`
	}
	ruleDoc struct {
		Name     string            `json:"name"`
		Priority *int32            `json:"priority"`
		Match    *matchDoc         `json:"match"`
		Action   *actionDoc        `json:"action"`
		Tags     map[string]string `json:"tags,omitempty"`
	}
	matchDoc struct {
		HTTPMatch *httpMatchDoc `json:"httpMatch"`
	}
	httpMatchDoc struct {
		Method        string           `json:"method,omitempty"`
		PathMatch     *pathMatchDoc    `json:"pathMatch,omitempty"`
		HeaderMatches []headerMatchDoc `json:"headerMatches,omitempty"`
	}
	pathMatchDoc struct {
		Match         pathValueDoc `json:"match"`
		CaseSensitive *bool        `json:"caseSensitive,omitempty"`
	}
	pathValueDoc struct {
		Exact  *string `json:"exact,omitempty"`
		Prefix *string `json:"prefix,omitempty"`
	}
	headerMatchDoc struct {
		Name          string         `json:"name"`
		Match         headerValueDoc `json:"match"`
		CaseSensitive *bool          `json:"caseSensitive,omitempty"`
	}
	headerValueDoc struct {
		Exact    *string `json:"exact,omitempty"`
		Prefix   *string `json:"prefix,omitempty"`
		Contains *string `json:"contains,omitempty"`
	}
	snsaDoc struct {
		Kind           string            `json:"kind"`
		ServiceNetwork string            `json:"serviceNetwork"`
		Service        string            `json:"service"`
		Tags           map[string]string `json:"tags,omitempty"`
	}
	snvaDoc struct {
		Kind             string            `json:"kind"`
		ServiceNetwork   string            `json:"serviceNetwork"`
		VPC              string            `json:"vpc"`
		SecurityGroupIDs []string          `json:"securityGroupIds,omitempty"`
		Tags             map[string]string `json:"tags,omitempty"`
	}
	authPolicyDoc struct {
		Kind           string          `json:"kind"`
		ServiceNetwork string          `json:"serviceNetwork,omitempty"`
		Service        string          `json:"service,omitempty"`
		Policy         json.RawMessage `json:"policy"`
	}
	alsDoc struct {
		Kind                  string            `json:"kind"`
		ServiceNetwork        string            `json:"serviceNetwork,omitempty"`
		Service               string            `json:"service,omitempty"`
		DestinationArn        string            `json:"destinationArn"`
		ServiceNetworkLogType string            `json:"serviceNetworkLogType,omitempty"`
		Tags                  map[string]string `json:"tags,omitempty"`
	}
)

// docKinds are the document kinds in the order they are applied.
var docKinds = []string{"ServiceNetwork", "Service", "TargetGroup", "Listener",
	"ServiceNetworkServiceAssociation", "ServiceNetworkVpcAssociation", "AuthPolicy", "AccessLogSubscription"}

// resource is one decoded document.
type resource struct {
	pos   string // "FILE: document N"
	order int    // index of the kind in docKinds
	seq   int    // position in the input
	label string // KIND/NAME as output prints it
	doc   any    // *snDoc, *serviceDoc, ...
}

func (r *resource) errorf(format string, args ...any) error {
	return fmt.Errorf("%s (%s): %s", r.pos, r.label, fmt.Sprintf(format, args...))
}

// readDocuments reads and decodes every document of file ("-" is in).
func readDocuments(file string, in io.Reader) ([]*resource, error) {
	var raw []byte
	var err error
	if file == "-" {
		raw, err = io.ReadAll(in)
		file = "<stdin>"
	} else {
		raw, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	var out []*resource
	n := 0
	for _, part := range splitDocuments(raw) {
		j, err := yaml.YAMLToJSON(part.text)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d (line %d): %w", file, n+1, part.line, err)
		}
		j = bytes.TrimSpace(j)
		if string(j) == "null" || len(j) == 0 {
			continue // empty or comments only
		}
		n++
		r, err := decodeDocument(fmt.Sprintf("%s: document %d (line %d)", file, n, part.line), j)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// docPart is the text of one document and the line its content starts on.
type docPart struct {
	text []byte
	line int
}

// splitDocuments splits at lines that are exactly "---".
func splitDocuments(raw []byte) []docPart {
	var parts []docPart
	cur := docPart{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimRight(line, " \t\r") == "---" {
			parts = append(parts, cur)
			cur = docPart{}
			continue
		}
		if t := strings.TrimSpace(line); cur.line == 0 && t != "" && !strings.HasPrefix(t, "#") {
			cur.line = n
		}
		cur.text = append(cur.text, line+"\n"...)
	}
	return append(parts, cur)
}

// decodeDocument decodes one JSON document strictly into its kind's type.
func decodeDocument(pos string, j []byte) (*resource, error) {
	var head struct {
		Kind any `json:"kind"`
	}
	if err := json.Unmarshal(j, &head); err != nil {
		return nil, fmt.Errorf("%s: a document must be a mapping with a kind: %w", pos, jsonErr(err))
	}
	kind, _ := head.Kind.(string)
	order := -1
	for i, k := range docKinds {
		if k == kind {
			order = i
		}
	}
	if order < 0 {
		if kind == "" {
			return nil, fmt.Errorf("%s: kind is missing; kinds are: %s", pos, strings.Join(docKinds, ", "))
		}
		return nil, fmt.Errorf("%s: unknown kind %q; kinds are: %s", pos, kind, strings.Join(docKinds, ", "))
	}
	docs := []any{&snDoc{}, &serviceDoc{}, &tgDoc{}, &listenerDoc{}, &snsaDoc{}, &snvaDoc{}, &authPolicyDoc{}, &alsDoc{}}
	doc := docs[order]
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(doc); err != nil {
		return nil, fmt.Errorf("%s (kind %s): %w", pos, kind, jsonErr(err))
	}
	return &resource{pos: pos, order: order, doc: doc, label: docLabel(doc)}, nil
}

// jsonErr rewrites encoding/json errors in the document's terms.
func jsonErr(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return fmt.Errorf("want a mapping, got %s", te.Value)
		}
		return fmt.Errorf("field %q: want %s, got %s", te.Field, jsonTypeName(te.Type.Kind().String()), te.Value)
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	return errors.New(msg)
}

func jsonTypeName(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "a number"
	case k == "string":
		return "a string"
	case k == "bool":
		return "true or false"
	case k == "slice":
		return "a list"
	}
	return "a mapping"
}

// docLabel is how output names a document's resource: KIND/NAME, with
// the parents in NAME for nested resources.
func docLabel(doc any) string {
	switch d := doc.(type) {
	case *snDoc:
		return "service-network/" + d.Name
	case *serviceDoc:
		return "service/" + d.Name
	case *tgDoc:
		return "target-group/" + d.Name
	case *listenerDoc:
		return "listener/" + d.Service + "/" + d.Name
	case *snsaDoc:
		return "service-network-service-association/" + d.ServiceNetwork + "/" + d.Service
	case *snvaDoc:
		return "service-network-vpc-association/" + d.ServiceNetwork + "/" + d.VPC
	case *authPolicyDoc:
		return "auth-policy/" + policyOwnerLabel(d.ServiceNetwork, d.Service)
	case *alsDoc:
		l := "access-log-subscription/" + policyOwnerLabel(d.ServiceNetwork, d.Service) + "/" + destinationType(d.DestinationArn)
		if d.ServiceNetworkLogType != "" {
			l += "/" + strings.ToLower(d.ServiceNetworkLogType)
		}
		return l
	}
	return "?"
}

func policyOwnerLabel(sn, svc string) string {
	if sn != "" {
		return "service-network/" + sn
	}
	return "service/" + svc
}

// destinationType is the kind of an access log destination: logs, s3 or firehose.
func destinationType(arn string) string {
	parts := strings.SplitN(arn, ":", 4)
	if len(parts) < 3 {
		return "?"
	}
	return parts[2]
}
