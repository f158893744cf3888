package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"
	"github.com/spf13/cobra"
)

// kindInfo describes one kind of resource the client verbs know.
type kindInfo struct {
	name     string   // plural, as listed in help: "services"
	singular string   // "service"; also how output names the kind
	short    string   // short form shown in help ("sn")
	aliases  []string // other accepted spellings
	flags    []string // reference flags the kind takes
	required []string // reference flags it cannot do without
	noName   bool     // items have no names (targets)
	headers  []string
	row      func(s *session, o object) []string
	list     func(s *session) ([]object, error) // nil: the kind is one object (auth-policy)
	one      func(s *session, ref string) (object, error)
	sortKey  func(o object) string // row order; default name, then ID
	// printTable, if set, replaces the table for this kind (auth-policy).
	printTable func(s *session, objs []object) error
}

// kindTable is every kind, in the order help lists them.
func kindTable() []*kindInfo {
	return append([]*kindInfo{
		{name: "service-networks", singular: "service-network", short: "sn", aliases: []string{"servicenetworks", "servicenetwork"},
			headers: []string{"name", "id", "auth", "services", "vpcs"},
			row: func(_ *session, o object) []string {
				return []string{field(o, "name"), field(o, "id"), field(o, "authType"),
					field(o, "numberOfAssociatedServices"), field(o, "numberOfAssociatedVPCs")}
			},
			list: listServiceNetworks, one: getServiceNetwork},
		{name: "services", singular: "service", short: "svc",
			headers: []string{"name", "id", "status", "auth", "dns name"},
			row: func(_ *session, o object) []string {
				return []string{field(o, "name"), field(o, "id"), field(o, "status"), field(o, "authType"), field(o, "dnsEntry", "domainName")}
			},
			list: listServices, one: getService},
		{name: "listeners", singular: "listener", flags: []string{"service"},
			headers: []string{"name", "id", "protocol", "port", "default action"},
			row: func(s *session, o object) []string {
				return []string{field(o, "name"), field(o, "id"), field(o, "protocol"), field(o, "port"), s.actionText(o["defaultAction"])}
			},
			list: listListeners, one: getListener},
		{name: "rules", singular: "rule", flags: []string{"service", "listener"},
			headers: []string{"name", "id", "priority", "match", "action"},
			row: func(s *session, o object) []string {
				prio := field(o, "priority")
				if field(o, "isDefault") == "true" {
					prio = "default"
				}
				return []string{field(o, "name"), field(o, "id"), prio, matchText(o["match"]), s.actionText(o["action"])}
			},
			list: listRules, one: getRule,
			sortKey: func(o object) string {
				if field(o, "isDefault") == "true" {
					return "~"
				}
				return fmt.Sprintf("%06s", field(o, "priority"))
			}},
		{name: "target-groups", singular: "target-group", short: "tg", aliases: []string{"targetgroups", "targetgroup"},
			headers: []string{"name", "id", "type", "protocol", "port", "vpc"},
			row: func(_ *session, o object) []string {
				return []string{field(o, "name"), field(o, "id"), field(o, "type"), field(o, "config", "protocol"),
					field(o, "config", "port"), field(o, "config", "vpcIdentifier")}
			},
			list: listTargetGroups, one: getTargetGroup},
		{name: "targets", singular: "target", flags: []string{"target-group"}, required: []string{"target-group"}, noName: true,
			headers: []string{"id", "port", "status", "reason"},
			row: func(_ *session, o object) []string {
				return []string{field(o, "id"), field(o, "port"), field(o, "status"), field(o, "reasonCode")}
			},
			list:    listTargets,
			sortKey: func(o object) string { return field(o, "id") + fmt.Sprintf("\x00%06s", field(o, "port")) }},
		{name: "service-network-service-associations", singular: "service-network-service-association", short: "snsa",
			flags:   []string{"service-network", "service"},
			headers: []string{"id", "service network", "service", "status"},
			row: func(_ *session, o object) []string {
				return []string{field(o, "id"), field(o, "serviceNetworkName"), field(o, "serviceName"), field(o, "status")}
			},
			list: listSNSAs, one: getSNSA,
			sortKey: func(o object) string {
				return field(o, "serviceNetworkName") + "\x00" + field(o, "serviceName") + "\x00" + field(o, "id")
			}},
		{name: "service-network-vpc-associations", singular: "service-network-vpc-association", short: "snva",
			flags:   []string{"service-network", "vpc"},
			headers: []string{"id", "service network", "vpc", "status"},
			row: func(_ *session, o object) []string {
				return []string{field(o, "id"), field(o, "serviceNetworkName"), field(o, "vpcId"), field(o, "status")}
			},
			list: listSNVAs, one: getSNVA,
			sortKey: func(o object) string {
				return field(o, "serviceNetworkName") + "\x00" + field(o, "vpcId") + "\x00" + field(o, "id")
			}},
		{name: "access-log-subscriptions", singular: "access-log-subscription", short: "als",
			flags: []string{"resource"}, required: []string{"resource"},
			headers: []string{"id", "resource", "destination"},
			row: func(_ *session, o object) []string {
				return []string{field(o, "id"), field(o, "resourceId"), field(o, "destinationArn")}
			},
			list: listAccessLogSubscriptions, one: getAccessLogSubscription,
			sortKey: func(o object) string { return field(o, "destinationArn") + "\x00" + field(o, "id") }},
		{name: "auth-policy", singular: "auth-policy", aliases: []string{"auth-policies", "authpolicy"}, flags: []string{"resource"},
			one: getAuthPolicy, printTable: printPolicies},
		{name: "vpcs", singular: "vpc",
			headers: []string{"name", "id", "cidrs"},
			row: func(_ *session, o object) []string {
				return []string{field(o, "name"), field(o, "id"), field(o, "cidrs")}
			},
			list: (*session).vpcs,
			one: func(s *session, ref string) (object, error) {
				return oneOf(s.vpcs, "vpc", ref, func(o object) bool { return o["id"] == ref || o["name"] == ref })
			}},
		{name: "principals", singular: "principal",
			headers: []string{"name", "type", "arn", "admin"},
			row: func(_ *session, o object) []string {
				return []string{field(o, "name"), field(o, "type"), field(o, "arn"), field(o, "admin")}
			},
			list:    func(s *session) ([]object, error) { return nativeList(s, "/principals") },
			sortKey: func(o object) string { return field(o, "name") + "\x00" + field(o, "type") },
			one:     getPrincipal},
		{name: "accounts", singular: "account",
			headers: []string{"id", "name"},
			row:     func(_ *session, o object) []string { return []string{field(o, "id"), field(o, "name")} },
			list:    func(s *session) ([]object, error) { return nativeList(s, "/accounts") },
			sortKey: func(o object) string { return field(o, "name") },
			one: func(s *session, ref string) (object, error) {
				return oneOf(func() ([]object, error) { return nativeList(s, "/accounts") }, "account", ref,
					func(o object) bool { return o["id"] == ref || o["name"] == ref })
			}},
		{name: "access-keys", singular: "access-key", aliases: []string{"accesskeys", "accesskey"},
			headers: []string{"access key id", "principal", "created"},
			row: func(_ *session, o object) []string {
				return []string{field(o, "AccessKeyId"), field(o, "Principal"), field(o, "createdAt")}
			},
			list:    func(s *session) ([]object, error) { return nativeList(s, "/accesskeys") },
			sortKey: func(o object) string { return field(o, "Principal") + "\x00" + field(o, "AccessKeyId") },
			one: func(s *session, ref string) (object, error) {
				return oneOf(func() ([]object, error) { return nativeList(s, "/accesskeys") }, "access key", ref,
					func(o object) bool { return o["AccessKeyId"] == ref })
			}},
		certificateKind(),
	}, nodeKinds()...)
}

// sort orders objs by the kind's sort key.
func (k *kindInfo) sort(objs []object) {
	key := k.sortKey
	if key == nil {
		key = func(o object) string { return field(o, "name") + "\x00" + field(o, "id") }
	}
	sort.SliceStable(objs, func(i, j int) bool { return key(objs[i]) < key(objs[j]) })
}

// lookupKind finds a kind by its plural, singular or alias (any case).
func lookupKind(s string) (*kindInfo, error) {
	want := strings.ToLower(s)
	var names []string
	for _, k := range kindTable() {
		if want == k.name || want == k.singular || want == k.short {
			return k, nil
		}
		for _, a := range k.aliases {
			if want == a {
				return k, nil
			}
		}
		names = append(names, k.name)
	}
	return nil, fmt.Errorf("unknown kind %q; kinds are: %s", s, strings.Join(names, ", "))
}

// kindHelp lists the kinds, their short forms and reference flags for help texts.
func kindHelp() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, k := range kindTable() {
		name := k.name
		if k.short != "" {
			name += " (" + k.short + ")"
		}
		flags := ""
		if len(k.required) > 0 {
			flags = "needs --" + strings.Join(k.required, ", --")
		} else if len(k.flags) > 0 {
			flags = "with --" + strings.Join(k.flags, ", --")
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, flags)
	}
	_ = tw.Flush()
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// checkFlags rejects reference flags the kind does not use and requires
// the ones it needs. Listener and rule flags are checked when the NAME
// form is known (SERVICE/LISTENER needs no --service).
func (k *kindInfo) checkFlags(cmd *cobra.Command, named bool) error {
	for _, f := range []string{"service", "listener", "target-group", "service-network", "vpc", "resource"} {
		fl := cmd.Flags().Lookup(f)
		if fl == nil || !fl.Changed {
			continue
		}
		ok := false
		for _, g := range k.flags {
			ok = ok || g == f
		}
		if !ok {
			return fmt.Errorf("--%s does not apply to %s", f, k.name)
		}
	}
	for _, f := range k.required {
		if fl := cmd.Flags().Lookup(f); fl != nil && !fl.Changed && !(named && f == "resource") {
			return fmt.Errorf("%s needs --%s", k.name, f)
		}
	}
	return nil
}

func addRefFlags(cmd *cobra.Command, r *refFlags) {
	f := cmd.Flags()
	f.StringVar(&r.service, "service", "", "service (name, ID or ARN) of listeners and rules")
	f.StringVar(&r.listener, "listener", "", "listener (name, ID or ARN) of rules")
	f.StringVar(&r.targetGroup, "target-group", "", "target group (name, ID or ARN) of targets")
	f.StringVar(&r.serviceNetwork, "service-network", "", "service network (name, ID or ARN) to filter associations by")
	f.StringVar(&r.vpc, "vpc", "", "VPC (name or ID) to filter VPC associations, instances and nodes by")
	f.StringVar(&r.resource, "resource", "", "service network or service (name, ID or ARN) of auth policies and access log subscriptions")
}

func newGet(s Streams, cf *clientFlags) *cobra.Command {
	var refs refFlags
	cmd := &cobra.Command{
		Use:   "get KIND [NAME]",
		Short: "List resources of a kind, or show one",
		Long: `List every resource of KIND, or with NAME just that one. NAME may be the
resource's name, ID or ARN. Lattice resources are read through the
Lattice-compatible API (every page), Trellis's own ones (vpcs, principals,
accounts, access-keys, instances, nodes) through its native API.

Kinds (singular forms work too):
` + kindHelp() + `
Listeners and rules may also be named SERVICE/LISTENER and
SERVICE/LISTENER/RULE, associations SERVICE-NETWORK/SERVICE and
SERVICE-NETWORK/VPC.

-o table (default) prints one row per item; -o json and -o yaml print the
API's objects (a list prints an array), which scripts can rely on.`,
		Example: `  trellis get services
  trellis get service orders -o yaml
  trellis get listeners --service orders
  trellis get rules --service orders --listener http
  trellis get targets --target-group orders-v1
  trellis get snsa --service-network shop
  trellis get auth-policy --resource shop
  trellis get vpcs -o json | jq -r '.[].id'
  trellis get instances --vpc default
  trellis get nodes`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := lookupKind(args[0])
			if err != nil {
				return err
			}
			if err := checkFormat(cf.output); err != nil {
				return err
			}
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			if k.noName && name != "" {
				return fmt.Errorf("%s have no names; use --target-group to choose the group", k.name)
			}
			if err := k.checkFlags(cmd, name != ""); err != nil {
				return err
			}
			sess, err := cf.session(cmd.Context(), s.Out, refs)
			if err != nil {
				return err
			}
			var objs []object
			if name != "" || k.list == nil {
				o, err := k.one(sess, name)
				if err != nil {
					return err
				}
				if cf.output != "table" {
					return render(s.Out, cf.output, o)
				}
				objs = []object{o}
			} else if objs, err = k.list(sess); err != nil {
				return err
			} else {
				k.sort(objs)
			}
			if cf.output != "table" {
				if objs == nil {
					objs = []object{}
				}
				return render(s.Out, cf.output, objs)
			}
			if k.printTable != nil {
				return k.printTable(sess, objs)
			}
			rows := make([][]string, len(objs))
			for i, o := range objs {
				rows[i] = k.row(sess, o)
			}
			return printTable(s.Out, k.headers, rows)
		},
	}
	addRefFlags(cmd, &refs)
	return cmd
}

// eachGet fetches the full object of every listed item.
func eachGet[T any](items []T, err error, get func(T) (object, error)) ([]object, error) {
	if err != nil {
		return nil, err
	}
	out := make([]object, 0, len(items))
	for _, it := range items {
		o, err := get(it)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

func listServiceNetworks(s *session) ([]object, error) {
	items, err := s.serviceNetworks()
	return eachGet(items, err, func(x snSummary) (object, error) { return getServiceNetwork(s, aws.ToString(x.Id)) })
}

func getServiceNetwork(s *session, ref string) (object, error) {
	id, err := s.serviceNetworkID(ref)
	if err != nil {
		return nil, err
	}
	out, err := s.lat.GetServiceNetwork(s.ctx, &vpclattice.GetServiceNetworkInput{ServiceNetworkIdentifier: &id})
	return wireObject(out), apiErr(err)
}

func listServices(s *session) ([]object, error) {
	items, err := s.services()
	return eachGet(items, err, func(x svcSummary) (object, error) { return getService(s, aws.ToString(x.Id)) })
}

func getService(s *session, ref string) (object, error) {
	id, err := s.serviceID(ref)
	if err != nil {
		return nil, err
	}
	out, err := s.lat.GetService(s.ctx, &vpclattice.GetServiceInput{ServiceIdentifier: &id})
	return wireObject(out), apiErr(err)
}

func listListeners(s *session) ([]object, error) {
	if s.refs.service == "" {
		return nil, errors.New("listeners needs --service")
	}
	svcID, err := s.serviceID(s.refs.service)
	if err != nil {
		return nil, err
	}
	items, err := s.listeners(svcID)
	return eachGet(items, err, func(x lisSummary) (object, error) { return s.getListenerByID(svcID, aws.ToString(x.Id)) })
}

func getListener(s *session, ref string) (object, error) {
	svcID, lisID, err := s.serviceListener(ref)
	if err != nil {
		return nil, err
	}
	return s.getListenerByID(svcID, lisID)
}

func (s *session) getListenerByID(svcID, lisID string) (object, error) {
	out, err := s.lat.GetListener(s.ctx, &vpclattice.GetListenerInput{ServiceIdentifier: &svcID, ListenerIdentifier: &lisID})
	return wireObject(out), apiErr(err)
}

func listRules(s *session) ([]object, error) {
	if s.refs.listener == "" {
		return nil, errors.New("rules needs --listener (and --service, unless --listener is SERVICE/LISTENER or an ARN)")
	}
	svcID, lisID, err := s.serviceListener(s.refs.listener)
	if err != nil {
		return nil, err
	}
	items, err := s.rules(svcID, lisID)
	return eachGet(items, err, func(x ruleSummary) (object, error) { return s.getRuleByID(svcID, lisID, aws.ToString(x.Id)) })
}

func getRule(s *session, ref string) (object, error) {
	svcID, lisID, ruleID, err := s.serviceListenerRule(ref)
	if err != nil {
		return nil, err
	}
	return s.getRuleByID(svcID, lisID, ruleID)
}

func (s *session) getRuleByID(svcID, lisID, ruleID string) (object, error) {
	out, err := s.lat.GetRule(s.ctx, &vpclattice.GetRuleInput{ServiceIdentifier: &svcID, ListenerIdentifier: &lisID, RuleIdentifier: &ruleID})
	return wireObject(out), apiErr(err)
}

func listTargetGroups(s *session) ([]object, error) {
	items, err := s.targetGroups()
	return eachGet(items, err, func(x tgSummary) (object, error) { return getTargetGroup(s, aws.ToString(x.Id)) })
}

func getTargetGroup(s *session, ref string) (object, error) {
	id, err := s.targetGroupID(ref)
	if err != nil {
		return nil, err
	}
	out, err := s.lat.GetTargetGroup(s.ctx, &vpclattice.GetTargetGroupInput{TargetGroupIdentifier: &id})
	return wireObject(out), apiErr(err)
}

func listTargets(s *session) ([]object, error) {
	id, err := s.targetGroupID(s.refs.targetGroup)
	if err != nil {
		return nil, err
	}
	items, err := s.targets(id)
	return eachGet(items, err, func(x targetSummary) (object, error) { return wireObject(x), nil })
}

func listSNSAs(s *session) ([]object, error) {
	var snID, svcID string
	var err error
	if s.refs.serviceNetwork != "" {
		if snID, err = s.serviceNetworkID(s.refs.serviceNetwork); err != nil {
			return nil, err
		}
	}
	if s.refs.service != "" {
		if svcID, err = s.serviceID(s.refs.service); err != nil {
			return nil, err
		}
	}
	items, err := s.snsas(snID, svcID)
	return eachGet(items, err, func(x snsaSummary) (object, error) { return wireObject(x), nil })
}

func getSNSA(s *session, ref string) (object, error) {
	id, err := s.snsaID(ref)
	if err != nil {
		return nil, err
	}
	out, err := s.lat.GetServiceNetworkServiceAssociation(s.ctx,
		&vpclattice.GetServiceNetworkServiceAssociationInput{ServiceNetworkServiceAssociationIdentifier: &id})
	return wireObject(out), apiErr(err)
}

func listSNVAs(s *session) ([]object, error) {
	var snID, vpcID string
	var err error
	if s.refs.serviceNetwork != "" {
		if snID, err = s.serviceNetworkID(s.refs.serviceNetwork); err != nil {
			return nil, err
		}
	}
	if s.refs.vpc != "" {
		if vpcID, err = s.vpcID(s.refs.vpc); err != nil {
			return nil, err
		}
	}
	items, err := s.snvas(snID, vpcID)
	return eachGet(items, err, func(x snvaSummary) (object, error) { return getSNVA(s, aws.ToString(x.Id)) })
}

func getSNVA(s *session, ref string) (object, error) {
	id, err := s.snvaID(ref)
	if err != nil {
		return nil, err
	}
	out, err := s.lat.GetServiceNetworkVpcAssociation(s.ctx,
		&vpclattice.GetServiceNetworkVpcAssociationInput{ServiceNetworkVpcAssociationIdentifier: &id})
	return wireObject(out), apiErr(err)
}

func listAccessLogSubscriptions(s *session) ([]object, error) {
	id, err := s.policyResource(s.refs.resource)
	if err != nil {
		return nil, err
	}
	items, err := s.accessLogSubscriptions(id)
	return eachGet(items, err, func(x alsSummary) (object, error) { return wireObject(x), nil })
}

func getAccessLogSubscription(s *session, ref string) (object, error) {
	if !isIdent(ref, "als") {
		return nil, fmt.Errorf("%q: an access log subscription is named by its ID or ARN (see 'trellis get als --resource ...')", ref)
	}
	out, err := s.lat.GetAccessLogSubscription(s.ctx, &vpclattice.GetAccessLogSubscriptionInput{AccessLogSubscriptionIdentifier: &ref})
	return wireObject(out), apiErr(err)
}

// getAuthPolicy reads the auth policy of --resource, or of ref when
// --resource is not given.
func getAuthPolicy(s *session, ref string) (object, error) {
	res := s.refs.resource
	if res == "" {
		res = ref
	} else if ref != "" && ref != res {
		return nil, fmt.Errorf("name the resource once: either %q or --resource %q", ref, res)
	}
	id, err := s.policyResource(res)
	if err != nil {
		return nil, err
	}
	out, err := s.lat.GetAuthPolicy(s.ctx, &vpclattice.GetAuthPolicyInput{ResourceIdentifier: &id})
	return wireObject(out), apiErr(err)
}

// printPolicies prints each policy document indented, for humans.
func printPolicies(s *session, objs []object) error {
	for _, o := range objs {
		var doc any
		if err := json.Unmarshal([]byte(field(o, "policy")), &doc); err != nil {
			fmt.Fprintln(s.out, field(o, "policy"))
			continue
		}
		b, _ := json.MarshalIndent(doc, "", "  ")
		fmt.Fprintln(s.out, string(b))
	}
	return nil
}

func nativeList(s *session, path string) ([]object, error) {
	var out struct {
		Items []object `json:"items"`
	}
	if err := s.c.Native(s.ctx, "GET", path, nil, &out); err != nil {
		return nil, err
	}
	sort.SliceStable(out.Items, func(i, j int) bool { return field(out.Items[i], "name") < field(out.Items[j], "name") })
	return out.Items, nil
}

func oneOf(list func() ([]object, error), kind, ref string, match func(object) bool) (object, error) {
	items, err := list()
	if err != nil {
		return nil, err
	}
	for _, o := range items {
		if match(o) {
			return o, nil
		}
	}
	return nil, &notFoundError{kind: kind, name: ref}
}

// principalPath turns NAME, role/NAME, user/NAME or an IAM ARN into
// TYPE/NAME, looking NAME up when the type is not given.
func principalPath(s *session, ref string) (string, error) {
	if strings.HasPrefix(ref, "arn:") {
		if p := arnPath(ref); len(p) == 2 {
			return p[0] + "/" + p[1], nil
		}
		return "", fmt.Errorf("%q is not a principal ARN (arn:aws:iam::ACCOUNT:role/NAME)", ref)
	}
	if t, n, ok := strings.Cut(ref, "/"); ok {
		if t != "role" && t != "user" {
			return "", fmt.Errorf("%q: want NAME, role/NAME or user/NAME", ref)
		}
		return t + "/" + n, nil
	}
	items, err := nativeList(s, "/principals")
	if err != nil {
		return "", err
	}
	var found []string
	for _, o := range items {
		if o["name"] == ref {
			found = append(found, field(o, "type")+"/"+ref)
		}
	}
	switch len(found) {
	case 0:
		return "", &notFoundError{kind: "principal", name: ref}
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("both role/%s and user/%s exist; say which", ref, ref)
}

func getPrincipal(s *session, ref string) (object, error) {
	p, err := principalPath(s, ref)
	if err != nil {
		return nil, err
	}
	t, n, _ := strings.Cut(p, "/")
	var out object
	err = s.c.Native(s.ctx, "GET", "/principals/"+url.PathEscape(t)+"/"+url.PathEscape(n), nil, &out)
	return out, err
}

// tgName is the name of target group id, for tables ("" when unknown).
func (s *session) tgName(id string) string {
	if s.tgNames == nil {
		s.tgNames = map[string]string{}
		items, _ := s.targetGroups()
		for _, t := range items {
			s.tgNames[aws.ToString(t.Id)] = aws.ToString(t.Name)
		}
	}
	if n := s.tgNames[id]; n != "" {
		return n
	}
	return id
}

// actionText summarises a rule action: "forward orders-v1=90,orders-v2=10"
// or "fixed-response 404".
func (s *session) actionText(a any) string {
	m, _ := a.(map[string]any)
	if fwd, ok := m["forward"].(map[string]any); ok {
		tgs, _ := fwd["targetGroups"].([]any)
		parts := make([]string, 0, len(tgs))
		for _, t := range tgs {
			tm, _ := t.(map[string]any)
			p := s.tgName(field(tm, "targetGroupIdentifier"))
			if w := field(tm, "weight"); w != "" {
				p += "=" + w
			}
			parts = append(parts, p)
		}
		return "forward " + strings.Join(parts, ",")
	}
	if fr, ok := m["fixedResponse"].(map[string]any); ok {
		return "fixed-response " + field(fr, "statusCode")
	}
	return ""
}

// matchText summarises a rule match: "GET path-prefix=/v2 header:x-env=prod".
func matchText(m any) string {
	hm, _ := m.(map[string]any)
	http, _ := hm["httpMatch"].(map[string]any)
	var parts []string
	if v := field(http, "method"); v != "" {
		parts = append(parts, v)
	}
	if pm, ok := http["pathMatch"].(map[string]any); ok {
		for _, k := range []string{"exact", "prefix"} {
			if v := field(pm, "match", k); v != "" {
				parts = append(parts, "path-"+k+"="+v)
			}
		}
	}
	hs, _ := http["headerMatches"].([]any)
	for _, h := range hs {
		h, _ := h.(map[string]any)
		for _, k := range []string{"exact", "prefix", "contains"} {
			if v := field(h, "match", k); v != "" {
				op := "="
				if k != "exact" {
					op = "~" + k + "~"
				}
				parts = append(parts, "header:"+field(h, "name")+op+v)
			}
		}
	}
	return strings.Join(parts, " ")
}
