package cli

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"
)

func newDescribe(s Streams, cf *clientFlags) *cobra.Command {
	var refs refFlags
	cmd := &cobra.Command{
		Use:   "describe KIND NAME",
		Short: "Show everything about one resource, with what belongs to it",
		Long: `Show the full API answer for one resource (the Get* operation), and what
belongs to it:

  service-network  its service and VPC associations, access log
                   subscriptions and auth policy
  service          its listeners with their rules, its service network
                   associations, access log subscriptions and auth policy
  listener         its rules
  target-group     its targets

NAME may be a name, an ID or an ARN, as for 'trellis get'. Kinds:
` + kindHelp() + `
-o table (default) prints key: value lines; -o json and -o yaml print the
object, with the related resources as extra members (listeners, rules,
targets, serviceAssociations, ...).`,
		Example: `  trellis describe service orders
  trellis describe target-group orders-v1 -o json
  trellis describe listener http --service orders
  trellis describe service-network shop -o yaml
  trellis describe auth-policy shop`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := lookupKind(args[0])
			if err != nil {
				return err
			}
			if err := checkFormat(cf.output); err != nil {
				return err
			}
			if k.noName {
				return fmt.Errorf("%s have no names; 'trellis describe target-group NAME' shows a group's targets", k.name)
			}
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			if name == "" && !(k.list == nil && refs.resource != "") {
				return fmt.Errorf("describe %s needs a NAME", k.singular)
			}
			if err := k.checkFlags(cmd, true); err != nil {
				return err
			}
			sess, err := cf.session(cmd.Context(), s.Out, refs)
			if err != nil {
				return err
			}
			o, err := k.one(sess, name)
			if err != nil {
				return err
			}
			if err := sess.related(k, o); err != nil {
				return err
			}
			if cf.output == "table" {
				printKV(s.Out, o, "")
				return nil
			}
			return render(s.Out, cf.output, o)
		},
	}
	addRefFlags(cmd, &refs)
	return cmd
}

// related adds to o what belongs to it.
func (s *session) related(k *kindInfo, o object) error {
	id := field(o, "id")
	switch k.singular {
	case "service-network":
		snsas, err := s.snsas(id, "")
		if err != nil {
			return err
		}
		snvas, err := s.snvas(id, "")
		if err != nil {
			return err
		}
		o["serviceAssociations"] = wireList(snsas)
		o["vpcAssociations"] = wireList(snvas)
		return s.policiesAndLogs(id, o)
	case "service":
		lis, err := s.listeners(id)
		if err != nil {
			return err
		}
		ls := []any{}
		for _, l := range lis {
			lo, err := s.getListenerByID(id, aws.ToString(l.Id))
			if err != nil {
				return err
			}
			if err := s.addRules(id, lo); err != nil {
				return err
			}
			ls = append(ls, lo)
		}
		o["listeners"] = ls
		snsas, err := s.snsas("", id)
		if err != nil {
			return err
		}
		o["serviceNetworkAssociations"] = wireList(snsas)
		return s.policiesAndLogs(id, o)
	case "listener":
		return s.addRules(field(o, "serviceId"), o)
	case "target-group":
		ts, err := s.targets(id)
		if err != nil {
			return err
		}
		o["targets"] = wireList(ts)
	}
	return nil
}

// addRules adds the rules of listener lo, in evaluation order.
func (s *session) addRules(svcID string, lo object) error {
	lisID := field(lo, "id")
	rs, err := s.rules(svcID, lisID)
	if err != nil {
		return err
	}
	objs := make([]object, 0, len(rs))
	for _, r := range rs {
		ro, err := s.getRuleByID(svcID, lisID, aws.ToString(r.Id))
		if err != nil {
			return err
		}
		objs = append(objs, ro)
	}
	rk, _ := lookupKind("rules")
	rk.sort(objs)
	list := make([]any, len(objs))
	for i, r := range objs {
		list[i] = r
	}
	lo["rules"] = list
	return nil
}

// policiesAndLogs adds the access log subscriptions and auth policy of a
// service network or service.
func (s *session) policiesAndLogs(id string, o object) error {
	als, err := s.accessLogSubscriptions(id)
	if err != nil {
		return err
	}
	o["accessLogSubscriptions"] = wireList(als)
	s.refs.resource = id
	p, err := getAuthPolicy(s, "")
	switch {
	case err == nil:
		o["authPolicy"] = p
	case !isNotFound(err):
		return err
	}
	return nil
}

// wireList is the wire shape of a list of SDK items (never null).
func wireList[T any](items []T) []any {
	out := make([]any, len(items))
	for i, it := range items {
		out[i] = wireView(it)
	}
	return out
}
