package native

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/urlpath"
)

// This file is the input side of the explain call: the strict body, its
// validation (every problem reported with its field path), and the policy
// overrides compiled from it. explain.go resolves the body against the
// store and runs the evaluation.

// Policy size limits, the same as the Lattice API's (auth policies) and
// CreatePrincipal's (identity policies).
const (
	maxAuthPolicySize     = 36864
	maxIdentityPolicySize = 6144
)

// Bounds of the request description. Explain is a diagnostic call, so the
// bounds only keep answers readable; wire.MaxBodyBytes bounds the rest.
const (
	maxRefLen           = 2048 // service, serviceNetwork, sourceVpc, principal
	maxPathLen          = 8192
	maxMethodLen        = 32
	maxMapNames         = 100 // header names, query keys
	maxMapValues        = 100 // values of one header or query key
	maxIdentityPolicies = 10
)

// anonymous is the principal value of an unsigned request.
const anonymous = "anonymous"

// explainIn is the body of POST /trellis/v1/policy/explain. Members left
// out take the defaults documented in docs/native-api.md.
type explainIn struct {
	Account        string `json:"account"`
	Service        string `json:"service"`
	ServiceNetwork string `json:"serviceNetwork"`
	SourceVpc      string `json:"sourceVpc"`
	Principal      string `json:"principal"`
	Method         string `json:"method"`
	Path           string `json:"path"`
	// Query and Headers are objects whose values are a string or a list
	// of strings; they are decoded by hand so that each problem names its
	// key.
	Query           json.RawMessage `json:"query"`
	Headers         json.RawMessage `json:"headers"`
	SourceIP        string          `json:"sourceIp"`
	Port            *int            `json:"port"`
	Protocol        string          `json:"protocol"`
	Time            string          `json:"time"`
	SecureTransport *bool           `json:"secureTransport"`
	// The overrides. A nil pointer means "use what is stored"; an empty
	// string (or an empty list) means "no policy".
	NetworkPolicy    *string   `json:"networkPolicy"`
	ServicePolicy    *string   `json:"servicePolicy"`
	IdentityPolicies *[]string `json:"identityPolicies"`
	NetworkAuthType  string    `json:"networkAuthType"`
	ServiceAuthType  string    `json:"serviceAuthType"`
}

// policyOverride is a networkPolicy or servicePolicy given in the body.
type policyOverride struct {
	// compiled is nil for "" (no policy).
	compiled *policy.Compiled
}

// explainArgs is a validated explainIn with its defaults applied and its
// policies compiled. The references (service, network, VPC, principal)
// are still unresolved.
type explainArgs struct {
	in        *explainIn
	anonymous bool
	method    string
	path      string
	grpc      bool
	headers   []policy.KeyValue // lower-case names, sorted, one entry per name
	query     []policy.KeyValue // sorted by key, values in the order given
	sourceIP  netip.Addr
	when      time.Time
	// port and protocol are 0 and "" when not given: the service's
	// listeners decide (explain.go).
	port     int
	protocol string

	networkPolicy, servicePolicy *policyOverride
	// identity is set when identityPolicies was given (possibly empty).
	identity      []*policy.Compiled
	identityGiven bool
}

// check validates the body and applies the defaults that need no store:
// method GET (POST for gRPC), path "/", time now. It reports every
// problem at once.
func (in *explainIn) check(now time.Time) (*explainArgs, error) {
	var ck model.Checker
	a := &explainArgs{in: in}

	if in.Service == "" {
		ck.Addf("service", "is required: the ID, ARN or name of a service")
	} else {
		checkRef(&ck, "service", in.Service)
	}
	checkRef(&ck, "serviceNetwork", in.ServiceNetwork)
	checkRef(&ck, "sourceVpc", in.SourceVpc)
	switch in.Principal {
	case "":
		ck.Addf("principal", "is required: the ARN of a Trellis user or role (or role/NAME, user/NAME, NAME), or %q", anonymous)
	case anonymous:
		a.anonymous = true
	default:
		checkRef(&ck, "principal", in.Principal)
	}

	a.headers = parseValues(&ck, "headers", in.Headers, true)
	a.query = parseValues(&ck, "query", in.Query, false)
	for _, h := range a.headers {
		if h.Key == "content-type" && strings.HasPrefix(strings.ToLower(h.Value), "application/grpc") {
			a.grpc = true
		}
	}

	a.method = in.Method
	switch {
	case a.method == "" && a.grpc:
		a.method = "POST"
	case a.method == "":
		a.method = "GET"
	case len(a.method) > maxMethodLen || !isToken(a.method):
		ck.Addf("method", "must be an HTTP method such as GET or POST (a token of at most %d characters), got %q", maxMethodLen, in.Method)
	case a.grpc && a.method != "POST":
		ck.Addf("method", "gRPC requests (content-type application/grpc) are always POST, got %q", in.Method)
	}
	if a.grpc && len(a.query) > 0 {
		ck.Addf("query", "gRPC requests (content-type application/grpc) have no query string keys")
	}

	a.path = in.Path
	if a.path == "" {
		a.path = "/"
	}
	if msg := pathProblem(a.path); msg != "" {
		ck.Addf("path", "%s", msg)
	} else if np, err := urlpath.Normalize(a.path); err != nil {
		ck.Addf("path", "has a %% not followed by two hex digits (a gateway answers such a request 400), got %q", in.Path)
	} else {
		// Explain what a gateway decides: it normalises the path first.
		a.path = np
	}

	if in.SourceIP != "" {
		ip, err := netip.ParseAddr(in.SourceIP)
		switch {
		case err != nil:
			ck.Addf("sourceIp", "must be an IPv4 or IPv6 address, got %q", in.SourceIP)
		case ip.Zone() != "":
			ck.Addf("sourceIp", "must not carry a zone, got %q", in.SourceIP)
		default:
			a.sourceIP = ip.Unmap()
		}
	}
	if in.Port != nil {
		if *in.Port < 1 || *in.Port > 65535 {
			ck.Addf("port", "must be between 1 and 65535, got %d", *in.Port)
		} else {
			a.port = *in.Port
		}
	}
	if in.Protocol != "" {
		ck.Enum("protocol", in.Protocol, model.ProtocolHTTP, model.ProtocolHTTPS, model.ProtocolTLSPassthrough)
		a.protocol = in.Protocol
	}
	if in.SecureTransport != nil && in.Protocol != "" && *in.SecureTransport != (in.Protocol != model.ProtocolHTTP) {
		ck.Addf("secureTransport", "is %t, but protocol %s means %t (aws:SecureTransport is true exactly for HTTPS and TLS_PASSTHROUGH)",
			*in.SecureTransport, in.Protocol, in.Protocol != model.ProtocolHTTP)
	}
	a.when = now.UTC()
	if in.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, in.Time)
		if err != nil {
			ck.Addf("time", "must be an RFC 3339 time such as 2026-01-02T15:04:05Z, got %q", in.Time)
		}
		a.when = t
	}
	if in.NetworkAuthType != "" {
		ck.Enum("networkAuthType", in.NetworkAuthType, model.AuthTypeNone, model.AuthTypeAWSIAM)
	}
	if in.ServiceAuthType != "" {
		ck.Enum("serviceAuthType", in.ServiceAuthType, model.AuthTypeNone, model.AuthTypeAWSIAM)
	}

	a.networkPolicy = overridePolicy(&ck, "networkPolicy", in.NetworkPolicy)
	a.servicePolicy = overridePolicy(&ck, "servicePolicy", in.ServicePolicy)
	if in.IdentityPolicies != nil {
		a.identityGiven = true
		docs := *in.IdentityPolicies
		switch {
		case a.anonymous && len(docs) > 0:
			ck.Addf("identityPolicies", "anonymous callers have no identity-based policies")
		case len(docs) > maxIdentityPolicies:
			ck.Addf("identityPolicies", "at most %d policies are allowed, got %d", maxIdentityPolicies, len(docs))
		default:
			for i, doc := range docs {
				field := "identityPolicies[" + strconv.Itoa(i) + "]"
				if strings.TrimSpace(doc) == "" {
					ck.Addf(field, "must be a JSON policy document (leave the list empty for no identity-based policies)")
					continue
				}
				if c := compileChecked(&ck, field, doc, policy.IdentityPolicy, maxIdentityPolicySize); c != nil {
					a.identity = append(a.identity, c)
				}
			}
		}
	}
	if err := ck.Err(); err != nil {
		return nil, err
	}
	return a, nil
}

// checkRef checks an optional reference: an ID, ARN, name or principal.
func checkRef(ck *model.Checker, field, v string) {
	if v == "" {
		return
	}
	if len(v) > maxRefLen {
		ck.Addf(field, "must be at most %d characters long, got %d", maxRefLen, len(v))
		return
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] >= 0x7f {
			ck.Addf(field, "must be an ID, ARN or name of printable ASCII characters without spaces, got %q", v)
			return
		}
	}
}

// pathProblem checks a request path as a gateway receives it: absolute,
// without query or fragment, printable.
func pathProblem(p string) string {
	switch {
	case len(p) > maxPathLen:
		return "must be at most " + strconv.Itoa(maxPathLen) + " characters long"
	case p[0] != '/':
		return "must start with \"/\", got " + strconv.Quote(p)
	case strings.ContainsAny(p, "?#"):
		return "must not contain \"?\" or \"#\": give query parameters in query, got " + strconv.Quote(p)
	case !utf8.ValidString(p):
		return "must be valid UTF-8"
	}
	for _, r := range p {
		if r <= ' ' || r == 0x7f {
			return "must not contain spaces or control characters (percent-encode them), got " + strconv.Quote(p)
		}
	}
	return ""
}

// isToken reports whether s is an RFC 9110 token (a method or header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// parseValues decodes an object whose values are strings or lists of
// strings. For headers, names are tokens compared case-insensitively:
// they are lower-cased, and the values of one name (including names that
// differ only in case) are joined with ", " as RFC 9110 §5.3 allows,
// since vpc-lattice-svcs:RequestHeader/<name> is single-valued. For the
// query, every value is one entry: RequestQueryString/<key> is
// multi-valued. The result is sorted by name.
func parseValues(ck *model.Checker, field string, raw json.RawMessage, headers bool) []policy.KeyValue {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		ck.Addf(field, "must be an object of name to value (a string or a list of strings)")
		return nil
	}
	if len(obj) > maxMapNames {
		ck.Addf(field, "at most %d names are allowed, got %d", maxMapNames, len(obj))
		return nil
	}
	names := make([]string, 0, len(obj))
	for k := range obj {
		names = append(names, k)
	}
	slices.Sort(names)
	var out []policy.KeyValue
	at := map[string]int{} // header name (lower case) -> index in out
	for _, name := range names {
		fieldAt := field + "." + name
		var values []string
		var one string
		if err := json.Unmarshal(obj[name], &one); err == nil {
			values = []string{one}
		} else if err := json.Unmarshal(obj[name], &values); err != nil || values == nil {
			ck.Addf(fieldAt, "must be a string or a list of strings")
			continue
		}
		if len(values) > maxMapValues {
			ck.Addf(fieldAt, "at most %d values are allowed, got %d", maxMapValues, len(values))
			continue
		}
		if !valuesOK(ck, fieldAt, name, values, headers) {
			continue
		}
		if !headers {
			for _, v := range values {
				out = append(out, policy.KeyValue{Key: name, Value: v})
			}
			continue
		}
		if len(values) == 0 {
			continue
		}
		lower, joined := strings.ToLower(name), strings.Join(values, ", ")
		if i, ok := at[lower]; ok {
			out[i].Value += ", " + joined
			continue
		}
		at[lower] = len(out)
		out = append(out, policy.KeyValue{Key: lower, Value: joined})
	}
	// Lower-casing can reorder header names ("B" < "a" but "a" < "b").
	slices.SortStableFunc(out, func(x, y policy.KeyValue) int { return strings.Compare(x.Key, y.Key) })
	return out
}

// valuesOK checks one name and its values.
func valuesOK(ck *model.Checker, at, name string, values []string, headers bool) bool {
	switch {
	case headers && !isToken(name):
		ck.Addf(at, "header names must be tokens (letters, digits and !#$%%&'*+-.^_`|~)")
		return false
	case !headers && (name == "" || !utf8.ValidString(name)):
		ck.Addf(at, "query keys must be non-empty UTF-8")
		return false
	}
	for _, v := range values {
		if !utf8.ValidString(v) {
			ck.Addf(at, "values must be valid UTF-8")
			return false
		}
		if headers && strings.ContainsAny(v, "\r\n\x00") {
			ck.Addf(at, "header values must not contain CR, LF or NUL")
			return false
		}
	}
	return true
}

// overridePolicy compiles a networkPolicy or servicePolicy member.
func overridePolicy(ck *model.Checker, field string, doc *string) *policyOverride {
	if doc == nil {
		return nil
	}
	if strings.TrimSpace(*doc) == "" {
		return &policyOverride{}
	}
	c := compileChecked(ck, field, *doc, policy.AuthPolicy, maxAuthPolicySize)
	if c == nil {
		return nil
	}
	return &policyOverride{compiled: c}
}

// compileChecked parses and compiles doc, recording each problem of an
// invalid document under field (field.Statement[0].Effect, ...).
func compileChecked(ck *model.Checker, field, doc string, kind policy.Kind, maxSize int) *policy.Compiled {
	c, err := compileDoc(doc, kind, maxSize)
	var ve *policy.ValidationError
	switch {
	case err == nil:
		return c
	case errors.As(err, &ve):
		for _, p := range ve.Problems {
			name := field
			if p.Path != "" {
				name += "." + p.Path
			}
			ck.Addf(name, "%s", p.Message)
		}
	default:
		ck.Addf(field, "%v", err)
	}
	return nil
}

// compileDoc is policy.Parse then policy.Compile.
func compileDoc(doc string, kind policy.Kind, maxSize int) (*policy.Compiled, error) {
	p, err := policy.Parse([]byte(doc), policy.ParseOptions{Kind: kind, MaxSize: maxSize})
	if err != nil {
		return nil, err
	}
	c, err := policy.Compile(p, kind)
	if err != nil {
		return nil, err
	}
	return c, nil
}
