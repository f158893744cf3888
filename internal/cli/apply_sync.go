package cli

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"
)

// applier makes the server match a set of documents.
type applier struct {
	s      *session
	format string // -o: table prints a line per resource as it is done
	run    string // random per run; makes each create's clientToken
	// name → ID of what exists (kept current as apply creates things).
	sns, svcs, tgs map[string]string
	vpcs           []object
	declared       map[string]bool // "service/orders": declared in the input
	obs            map[*resource]*observed
}

// observed is the server's state of one document's resource.
type observed struct {
	exists   bool
	id, arn  string
	get      object            // the Get* answer
	tags     map[string]string // read only when the document declares tags
	targets  []targetSummary   // read only when the document declares targets
	rules    map[string]object // listener rules by name, read only when declared
	ruleTags map[string]map[string]string
	policy   any
}

func newApplier(s *session, format string) *applier {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &applier{s: s, format: format, run: hex.EncodeToString(b), sns: map[string]string{}, svcs: map[string]string{},
		tgs: map[string]string{}, declared: map[string]bool{}, obs: map[*resource]*observed{}}
}

// apply checks references and immutable fields against the server, then
// creates or updates each resource in dependency order.
func (a *applier) apply(docs []*resource) error {
	sort.SliceStable(docs, func(i, j int) bool {
		if docs[i].order != docs[j].order {
			return docs[i].order < docs[j].order
		}
		return docs[i].seq < docs[j].seq
	})
	if err := a.load(docs); err != nil {
		return err
	}
	var p problems
	for _, r := range docs {
		a.checkRefs(&p, r)
	}
	if err := p.err(); err != nil {
		return err
	}
	for _, r := range docs {
		if err := a.observe(&p, r); err != nil {
			return fmt.Errorf("%s (%s): reading current state: %w", r.pos, r.label, err)
		}
	}
	if err := p.err(); err != nil {
		return err
	}
	var results []object
	for _, r := range docs {
		lines, err := a.sync(r, a.obs[r])
		for _, l := range lines {
			if a.format == "table" {
				fmt.Fprintln(a.s.out, l)
			}
			i := strings.LastIndex(l, " ")
			results = append(results, object{"resource": l[:i], "result": l[i+1:]})
		}
		if err != nil {
			if a.format != "table" {
				_ = render(a.s.out, a.format, results)
			}
			return fmt.Errorf("%s (%s): %w", r.pos, r.label, err)
		}
	}
	if a.format != "table" {
		if results == nil {
			results = []object{}
		}
		return render(a.s.out, a.format, results)
	}
	return nil
}

// load lists the named resources references may point at.
func (a *applier) load(docs []*resource) error {
	sns, err := a.s.serviceNetworks()
	if err != nil {
		return err
	}
	for _, x := range sns {
		a.sns[aws.ToString(x.Name)] = aws.ToString(x.Id)
	}
	svcs, err := a.s.services()
	if err != nil {
		return err
	}
	for _, x := range svcs {
		a.svcs[aws.ToString(x.Name)] = aws.ToString(x.Id)
	}
	tgs, err := a.s.targetGroups()
	if err != nil {
		return err
	}
	for _, x := range tgs {
		a.tgs[aws.ToString(x.Name)] = aws.ToString(x.Id)
	}
	if a.vpcs, err = a.s.vpcs(); err != nil {
		return err
	}
	for _, r := range docs {
		switch d := r.doc.(type) {
		case *snDoc:
			a.declared["service-network/"+d.Name] = true
		case *serviceDoc:
			a.declared["service/"+d.Name] = true
		case *tgDoc:
			a.declared["target-group/"+d.Name] = true
		}
	}
	return nil
}

// lookup resolves a reference of kind to the ID it names now ("" when
// nothing exists yet) and whether the input declares it.
func (a *applier) lookup(kind, ref string) (id string, declared bool) {
	if kind == "vpc" {
		for _, v := range a.vpcs {
			if v["id"] == ref || v["name"] == ref {
				return field(v, "id"), false
			}
		}
		return "", false
	}
	var m map[string]string
	var prefix string
	switch kind {
	case "service-network":
		m, prefix = a.sns, "sn"
	case "service":
		m, prefix = a.svcs, "svc"
	case "target-group":
		m, prefix = a.tgs, "tg"
	}
	if isIdent(ref, prefix) {
		id := ref
		if p := arnPath(ref); len(p) > 0 {
			id = p[len(p)-1]
		}
		for _, v := range m {
			if v == id {
				return id, false
			}
		}
		return "", false
	}
	return m[ref], a.declared[kind+"/"+ref]
}

// must is lookup for references checked to exist by now.
func (a *applier) must(kind, ref string) (string, error) {
	id, _ := a.lookup(kind, ref)
	if id == "" {
		return "", fmt.Errorf("%s %q does not exist", kind, ref)
	}
	return id, nil
}

type docRef struct{ field, kind, ref string }

func docRefs(doc any) []docRef {
	var refs []docRef
	action := func(field string, ad *actionDoc) {
		if ad != nil && ad.Forward != nil {
			for i, t := range ad.Forward.TargetGroups {
				refs = append(refs, docRef{fmt.Sprintf("%s.forward.targetGroups[%d].targetGroup", field, i), "target-group", t.TargetGroup})
			}
		}
	}
	owner := func(sn, svc string) {
		if sn != "" {
			refs = append(refs, docRef{"serviceNetwork", "service-network", sn})
		} else {
			refs = append(refs, docRef{"service", "service", svc})
		}
	}
	switch d := doc.(type) {
	case *tgDoc:
		if d.Config != nil && d.Config.VPC != "" {
			refs = append(refs, docRef{"config.vpc", "vpc", d.Config.VPC})
		}
	case *listenerDoc:
		refs = append(refs, docRef{"service", "service", d.Service})
		action("defaultAction", d.DefaultAction)
		for i, rd := range d.Rules {
			action(fmt.Sprintf("rules[%d].action", i), rd.Action)
		}
	case *snsaDoc:
		refs = append(refs, docRef{"serviceNetwork", "service-network", d.ServiceNetwork}, docRef{"service", "service", d.Service})
	case *snvaDoc:
		refs = append(refs, docRef{"serviceNetwork", "service-network", d.ServiceNetwork}, docRef{"vpc", "vpc", d.VPC})
	case *authPolicyDoc:
		owner(d.ServiceNetwork, d.Service)
	case *alsDoc:
		owner(d.ServiceNetwork, d.Service)
	}
	return refs
}

func (a *applier) checkRefs(p *problems, r *resource) {
	for _, ref := range docRefs(r.doc) {
		if ref.ref == "" {
			continue
		}
		if id, declared := a.lookup(ref.kind, ref.ref); id == "" && !declared {
			what := "is not declared in the input and does not exist"
			if ref.kind == "vpc" {
				what = "does not exist (see 'trellis get vpcs'; 'trellis create vpc' declares one)"
			}
			p.add(r, "%s: %s %q %s", ref.field, strings.ReplaceAll(ref.kind, "-", " "), ref.ref, what)
		}
	}
}

// docTags is the tags a document declares (nil: tags are not managed).
func docTags(doc any) map[string]string {
	switch d := doc.(type) {
	case *snDoc:
		return d.Tags
	case *serviceDoc:
		return d.Tags
	case *tgDoc:
		return d.Tags
	case *listenerDoc:
		return d.Tags
	case *snsaDoc:
		return d.Tags
	case *snvaDoc:
		return d.Tags
	case *alsDoc:
		return d.Tags
	}
	return nil
}

func (a *applier) ownerID(sn, svc string) string {
	if sn != "" {
		id, _ := a.lookup("service-network", sn)
		return id
	}
	id, _ := a.lookup("service", svc)
	return id
}

// observe reads the current state of r's resource, if it exists, and
// adds to p the changes to fields that cannot change.
func (a *applier) observe(p *problems, r *resource) error {
	o := &observed{}
	a.obs[r] = o
	s, ctx := a.s, a.s.ctx
	var err error
	switch d := r.doc.(type) {
	case *snDoc:
		if id := a.sns[d.Name]; id != "" {
			o.get, err = getServiceNetwork(s, id)
		}
	case *serviceDoc:
		if id := a.svcs[d.Name]; id != "" {
			if o.get, err = getService(s, id); err == nil {
				want := strings.ToLower(strings.TrimSuffix(d.CustomDomainName, "."))
				if have := field(o.get, "customDomainName"); want != have {
					p.add(r, "customDomainName cannot change (%q to %q): delete the service and apply again "+
						"(trellis delete service %s; delete its associations first)", have, want, d.Name)
				}
			}
		}
	case *tgDoc:
		if id := a.tgs[d.Name]; id != "" {
			if o.get, err = getTargetGroup(s, id); err == nil {
				vpcID, _ := a.lookup("vpc", tgVPC(d))
				if diffs := tgImmutableDiffs(d, vpcID, o.get); len(diffs) > 0 {
					p.add(r, "%s cannot change: delete the target group and apply again "+
						"(trellis delete target-group %s; listeners must stop forwarding to it first)", strings.Join(diffs, ", "), d.Name)
				}
				if d.Targets != nil {
					o.targets, err = s.targets(id)
				}
			}
		}
	case *listenerDoc:
		err = a.observeListener(p, r, d, o)
	case *snsaDoc:
		snID, _ := a.lookup("service-network", d.ServiceNetwork)
		svcID, _ := a.lookup("service", d.Service)
		if snID != "" && svcID != "" {
			var items []snsaSummary
			if items, err = s.snsas(snID, svcID); err == nil && len(items) > 0 {
				o.get = wireObject(items[0])
			}
		}
	case *snvaDoc:
		snID, _ := a.lookup("service-network", d.ServiceNetwork)
		vpcID, _ := a.lookup("vpc", d.VPC)
		if vpcID != "" {
			var items []snvaSummary
			if items, err = s.snvas("", vpcID); err == nil && len(items) > 0 {
				if other := items[0]; aws.ToString(other.ServiceNetworkId) == snID {
					o.get, err = getSNVA(s, aws.ToString(other.Id))
				} else {
					p.add(r, "vpc %s is already associated with service network %s; a VPC has one service network association "+
						"(trellis delete snva %s/%s first)", d.VPC, aws.ToString(other.ServiceNetworkName), aws.ToString(other.ServiceNetworkName), d.VPC)
				}
			}
		}
	case *authPolicyDoc:
		if id := a.ownerID(d.ServiceNetwork, d.Service); id != "" {
			out, gerr := s.lat.GetAuthPolicy(ctx, &vpclattice.GetAuthPolicyInput{ResourceIdentifier: &id})
			switch {
			case gerr == nil:
				o.exists = true
				err = json.Unmarshal([]byte(aws.ToString(out.Policy)), &o.policy)
			case !isNotFound(apiErr(gerr)):
				err = apiErr(gerr)
			}
		}
	case *alsDoc:
		if id := a.ownerID(d.ServiceNetwork, d.Service); id != "" {
			var items []alsSummary
			items, err = s.accessLogSubscriptions(id)
			for _, x := range items {
				if destinationType(aws.ToString(x.DestinationArn)) == destinationType(d.DestinationArn) &&
					string(x.ServiceNetworkLogType) == d.ServiceNetworkLogType {
					o.get = wireObject(x)
				}
			}
		}
	}
	if err != nil {
		return err
	}
	if o.get != nil {
		o.exists, o.id, o.arn = true, field(o.get, "id"), field(o.get, "arn")
	}
	if tags := docTags(r.doc); o.exists && tags != nil && o.arn != "" {
		o.tags, err = a.tagsOf(o.arn)
	}
	return err
}

func (a *applier) observeListener(p *problems, r *resource, d *listenerDoc, o *observed) error {
	svcID, _ := a.lookup("service", d.Service)
	if svcID == "" {
		return nil
	}
	lisID, err := a.s.listenerID(svcID, d.Name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.get, err = a.s.getListenerByID(svcID, lisID); err != nil {
		return err
	}
	wantPort := strconv.Itoa(int(listenerPort(d)))
	if field(o.get, "protocol") != d.Protocol || field(o.get, "port") != wantPort {
		p.add(r, "protocol and port cannot change (%s:%s to %s:%s): delete the listener and apply again (trellis delete listener %s/%s)",
			field(o.get, "protocol"), field(o.get, "port"), d.Protocol, wantPort, d.Service, d.Name)
	}
	if d.Rules == nil {
		return nil
	}
	o.rules, o.ruleTags = map[string]object{}, map[string]map[string]string{}
	rs, err := a.s.rules(svcID, lisID)
	if err != nil {
		return err
	}
	tagged := map[string]bool{}
	for _, rd := range d.Rules {
		tagged[rd.Name] = rd.Tags != nil
	}
	for _, x := range rs {
		if aws.ToBool(x.IsDefault) {
			continue
		}
		ro, err := a.s.getRuleByID(svcID, lisID, aws.ToString(x.Id))
		if err != nil {
			return err
		}
		name := aws.ToString(x.Name)
		o.rules[name] = ro
		if tagged[name] {
			if o.ruleTags[name], err = a.tagsOf(field(ro, "arn")); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *applier) tagsOf(arn string) (map[string]string, error) {
	out, err := a.s.lat.ListTagsForResource(a.s.ctx, &vpclattice.ListTagsForResourceInput{ResourceArn: &arn})
	if err != nil {
		return nil, apiErr(err)
	}
	return out.Tags, nil
}

// syncTags makes the tags of arn exactly want (nil: leave them alone).
func (a *applier) syncTags(arn string, want, have map[string]string) (bool, error) {
	if want == nil {
		return false, nil
	}
	add := map[string]string{}
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			add[k] = v
		}
	}
	var remove []string
	for k := range have {
		if _, ok := want[k]; !ok {
			remove = append(remove, k)
		}
	}
	sort.Strings(remove)
	if len(add) > 0 {
		if _, err := a.s.lat.TagResource(a.s.ctx, &vpclattice.TagResourceInput{ResourceArn: &arn, Tags: add}); err != nil {
			return false, apiErr(err)
		}
	}
	if len(remove) > 0 {
		if _, err := a.s.lat.UntagResource(a.s.ctx, &vpclattice.UntagResourceInput{ResourceArn: &arn, TagKeys: remove}); err != nil {
			return false, apiErr(err)
		}
	}
	return len(add)+len(remove) > 0, nil
}

// token is the clientToken of one create: unique per run and resource,
// so an SDK retry of the same call cannot create twice.
func (a *applier) token(label string) *string {
	h := fnv.New64a()
	h.Write([]byte(label))
	t := fmt.Sprintf("trellis-apply-%s-%x", a.run, h.Sum64())
	return &t
}

func status(changed bool) string {
	if changed {
		return "updated"
	}
	return "unchanged"
}

// same compares two wire values after dropping empty members.
func same(x, y any) bool { return reflect.DeepEqual(prune(x), prune(y)) }

// prune drops nil members and empty lists and mappings, so "absent" and
// "empty" compare equal.
func prune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if p := prune(e); p != nil {
				out[k] = p
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []any:
		if len(x) == 0 {
			return nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = prune(e)
		}
		return out
	}
	return v
}

func tgVPC(d *tgDoc) string {
	if d.Config == nil {
		return ""
	}
	return d.Config.VPC
}

func listenerPort(d *listenerDoc) int32 {
	switch {
	case d.Port != nil:
		return *d.Port
	case d.Protocol == "HTTPS":
		return 443
	}
	return 80
}
