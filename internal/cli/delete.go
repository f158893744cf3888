package cli

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice/types"
	"github.com/spf13/cobra"
)

func newDelete(s Streams, cf *clientFlags) *cobra.Command {
	var refs refFlags
	var port int32
	cmd := &cobra.Command{
		Use:   "delete KIND NAME",
		Short: "Delete one resource",
		Long: `Delete the resource NAME of KIND. NAME may be a name, an ID or an ARN, as for
'trellis get'; listeners may be named SERVICE/LISTENER, rules
SERVICE/LISTENER/RULE, associations SERVICE-NETWORK/SERVICE and
SERVICE-NETWORK/VPC (the names 'trellis apply' prints).

The API keeps its rules: a service network with associations, a service
associated with a network, a target group a rule forwards to, or a VPC
associated with a network cannot be deleted until what uses it is gone;
the error says what to delete first. Deleting a listener deletes its rules;
deleting a service deletes its listeners.

  delete target IP --target-group TG [--port N]   deregisters a target; it drains first (no new
                                                   requests) for the server's deregistration delay
  delete instance ID|NAME                          its targets stay registered but get no traffic
  delete auth-policy RESOURCE                      removes a network's or service's auth policy
  delete access-log-subscription ID                access log subscriptions are named by ID or ARN
  delete principal NAME|role/NAME|user/NAME        also deletes its access keys

Kinds:
` + kindHelp(),
		Example: `  trellis delete service-network-service-association shop/orders
  trellis delete service orders
  trellis delete rule api-v2 --service orders --listener http
  trellis delete listener orders/http
  trellis delete target 10.0.0.11 --target-group orders-v1
  trellis delete auth-policy shop
  trellis delete principal role/orders-client`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := lookupKind(args[0])
			if err != nil {
				return err
			}
			if err := k.checkFlags(cmd, true); err != nil {
				return err
			}
			if err := checkFormat(cf.output); err != nil {
				return err
			}
			if cmd.Flags().Changed("port") && k.singular != "target" {
				return fmt.Errorf("--port applies only to targets")
			}
			sess, err := cf.session(cmd.Context(), s.Out, refs)
			if err != nil {
				return err
			}
			if err := sess.delete(k, args[1], port); err != nil {
				return fmt.Errorf("deleting %s %s: %w", k.singular, args[1], err)
			}
			if cf.output != "table" {
				return render(s.Out, cf.output, object{"resource": k.singular + "/" + args[1], "result": "deleted"})
			}
			fmt.Fprintf(s.Out, "%s/%s deleted\n", k.singular, args[1])
			return nil
		},
	}
	addRefFlags(cmd, &refs)
	cmd.Flags().Int32Var(&port, "port", 0, "port of the target to deregister (default: the target group's port)")
	return cmd
}

// delete deletes ref of kind k.
func (s *session) delete(k *kindInfo, ref string, port int32) error {
	ctx, lat := s.ctx, s.lat
	switch k.singular {
	case "service-network":
		id, err := s.serviceNetworkID(ref)
		if err != nil {
			return err
		}
		_, err = lat.DeleteServiceNetwork(ctx, &vpclattice.DeleteServiceNetworkInput{ServiceNetworkIdentifier: &id})
		return apiErr(err)
	case "service":
		id, err := s.serviceID(ref)
		if err != nil {
			return err
		}
		_, err = lat.DeleteService(ctx, &vpclattice.DeleteServiceInput{ServiceIdentifier: &id})
		return apiErr(err)
	case "listener":
		svcID, lisID, err := s.serviceListener(ref)
		if err != nil {
			return err
		}
		_, err = lat.DeleteListener(ctx, &vpclattice.DeleteListenerInput{ServiceIdentifier: &svcID, ListenerIdentifier: &lisID})
		return apiErr(err)
	case "rule":
		svcID, lisID, ruleID, err := s.serviceListenerRule(ref)
		if err != nil {
			return err
		}
		_, err = lat.DeleteRule(ctx, &vpclattice.DeleteRuleInput{ServiceIdentifier: &svcID, ListenerIdentifier: &lisID, RuleIdentifier: &ruleID})
		return apiErr(err)
	case "target-group":
		id, err := s.targetGroupID(ref)
		if err != nil {
			return err
		}
		_, err = lat.DeleteTargetGroup(ctx, &vpclattice.DeleteTargetGroupInput{TargetGroupIdentifier: &id})
		return apiErr(err)
	case "target":
		return s.deregister(ref, port)
	case "service-network-service-association":
		id, err := s.snsaID(ref)
		if err != nil {
			return err
		}
		_, err = lat.DeleteServiceNetworkServiceAssociation(ctx,
			&vpclattice.DeleteServiceNetworkServiceAssociationInput{ServiceNetworkServiceAssociationIdentifier: &id})
		return apiErr(err)
	case "service-network-vpc-association":
		id, err := s.snvaID(ref)
		if err != nil {
			return err
		}
		_, err = lat.DeleteServiceNetworkVpcAssociation(ctx,
			&vpclattice.DeleteServiceNetworkVpcAssociationInput{ServiceNetworkVpcAssociationIdentifier: &id})
		return apiErr(err)
	case "access-log-subscription":
		if !isIdent(ref, "als") {
			return errors.New("an access log subscription is named by its ID or ARN (see 'trellis get als --resource ...')")
		}
		_, err := lat.DeleteAccessLogSubscription(ctx, &vpclattice.DeleteAccessLogSubscriptionInput{AccessLogSubscriptionIdentifier: &ref})
		return apiErr(err)
	case "auth-policy":
		res := s.refs.resource
		if res == "" {
			res = ref
		}
		id, err := s.policyResource(res)
		if err != nil {
			return err
		}
		_, err = lat.DeleteAuthPolicy(ctx, &vpclattice.DeleteAuthPolicyInput{ResourceIdentifier: &id})
		return apiErr(err)
	case "vpc":
		id, err := s.vpcID(ref)
		if err != nil {
			return err
		}
		return s.c.Native(ctx, "DELETE", "/vpcs/"+url.PathEscape(id), nil, nil)
	case "principal":
		p, err := principalPath(s, ref)
		if err != nil {
			return err
		}
		t, n, _ := strings.Cut(p, "/")
		return s.c.Native(ctx, "DELETE", "/principals/"+url.PathEscape(t)+"/"+url.PathEscape(n), nil, nil)
	case "certificate":
		return s.c.Native(ctx, "DELETE", "/certificates/"+url.PathEscape(ref), nil, nil)
	case "access-key":
		return s.c.Native(ctx, "DELETE", "/accesskeys/"+url.PathEscape(ref), nil, nil)
	case "instance":
		o, err := nodeKinds()[0].one(s, ref)
		if err != nil {
			return err
		}
		return s.c.Native(ctx, "DELETE", "/instances/"+url.PathEscape(field(o, "id")), nil, nil)
	}
	return fmt.Errorf("%s cannot be deleted with trellis", k.name)
}

// deregister removes target id (on port, or the group's port) from --target-group.
func (s *session) deregister(id string, port int32) error {
	tgID, err := s.targetGroupID(s.refs.targetGroup)
	if err != nil {
		return err
	}
	t := types.Target{Id: &id}
	if port != 0 {
		t.Port = &port
	}
	out, err := s.lat.DeregisterTargets(s.ctx, &vpclattice.DeregisterTargetsInput{TargetGroupIdentifier: &tgID, Targets: []types.Target{t}})
	if err != nil {
		return apiErr(err)
	}
	return targetFailures(out.Unsuccessful)
}

// targetFailures reports the targets a (de)registration could not handle.
func targetFailures(fs []types.TargetFailure) error {
	if len(fs) == 0 {
		return nil
	}
	msgs := make([]string, len(fs))
	for i, f := range fs {
		msgs[i] = fmt.Sprintf("%s: %s: %s", aws.ToString(f.Id), aws.ToString(f.FailureCode), aws.ToString(f.FailureMessage))
	}
	return errors.New(strings.Join(msgs, "; "))
}
