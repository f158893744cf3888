package wire

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Request is what a handler receives: the HTTP request, its decoded path
// labels and its body.
type Request struct {
	HTTP      *http.Request
	Params    map[string]string
	Body      []byte
	RequestID string
}

// Query returns the first value of a query parameter.
func (r *Request) Query(name string) string { return r.HTTP.URL.Query().Get(name) }

// HandlerFunc handles one operation and returns the success status and
// body, or an error for the router to turn into a wire error.
type HandlerFunc func(ctx context.Context, r *Request) (status int, out any, err error)

// Observer is told about every request (for metrics).
type Observer func(op string, status int, d time.Duration)

type route struct {
	method string
	segs   []string // literal, or "{name}" for a label
	op     string
	h      HandlerFunc
}

// Router dispatches requests by method and path. Paths are matched on the
// escaped form and each label is unescaped on its own, because the AWS SDKs
// percent-encode "/" and ":" inside labels (an ARN in /tags/{resourceArn}).
type Router struct {
	routes   []route
	log      *slog.Logger
	observe  Observer
	notFound string
}

// NewRouter returns an empty router. log receives internal errors; observe
// may be nil.
func NewRouter(log *slog.Logger, observe Observer) *Router {
	return &Router{log: log, observe: observe}
}

// Handle registers an operation at method and pattern ("/services/{serviceIdentifier}").
func (rt *Router) Handle(method, pattern, op string, h HandlerFunc) {
	rt.routes = append(rt.routes, route{method: method, segs: split(pattern), op: op, h: h})
}

func split(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// match finds the route for method and escaped path.
func (rt *Router) match(method, escaped string) (*route, map[string]string, bool) {
	segs := split(escaped)
	pathKnown := false
	for i := range rt.routes {
		r := &rt.routes[i]
		if len(r.segs) != len(segs) {
			continue
		}
		params, ok := matchSegs(r.segs, segs)
		if !ok {
			continue
		}
		pathKnown = true
		if r.method == method {
			return r, params, true
		}
	}
	return nil, nil, pathKnown
}

func matchSegs(pattern, segs []string) (map[string]string, bool) {
	var params map[string]string
	for i, p := range pattern {
		if strings.HasPrefix(p, "{") {
			v, err := url.PathUnescape(segs[i])
			if err != nil || v == "" {
				return nil, false
			}
			if params == nil {
				params = make(map[string]string, 2)
			}
			params[p[1:len(p)-1]] = v
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return params, true
}

// Op returns the operation name a request maps to, or "".
func (rt *Router) Op(r *http.Request) string {
	if rr, _, ok := rt.match(r.Method, r.URL.EscapedPath()); ok && rr != nil {
		return rr.op
	}
	return ""
}

func (rt *Router) ServeHTTP(w http.ResponseWriter, hr *http.Request) {
	start := time.Now()
	reqID := w.Header().Get("x-amzn-RequestId")
	if reqID == "" {
		reqID = NewRequestID()
		w.Header().Set("x-amzn-RequestId", reqID)
	}
	op := "Unknown"
	status, err := rt.serve(w, hr, reqID, &op)
	if err != nil {
		e, internal := AsError(err, reqID)
		if internal {
			rt.log.Error("request failed", "op", op, "requestId", reqID, "err", err)
		}
		WriteError(w, e)
		status = e.Status
	}
	if rt.observe != nil {
		rt.observe(op, status, time.Since(start))
	}
}

func (rt *Router) serve(w http.ResponseWriter, hr *http.Request, reqID string, op *string) (int, error) {
	r, params, pathKnown := rt.match(hr.Method, hr.URL.EscapedPath())
	if r == nil {
		if pathKnown {
			return 0, &Error{Type: TypeValidation, Status: http.StatusMethodNotAllowed, Reason: ReasonUnknownOperation,
				Message: "method " + hr.Method + " is not allowed on " + hr.URL.EscapedPath()}
		}
		return 0, &Error{Type: "UnknownOperationException", Status: http.StatusNotFound, Reason: ReasonUnknownOperation,
			Message: "no operation at " + hr.Method + " " + hr.URL.EscapedPath()}
	}
	*op = r.op
	body, err := ReadBody(hr)
	if err != nil {
		return 0, err
	}
	status, out, err := r.h(hr.Context(), &Request{HTTP: hr, Params: params, Body: body, RequestID: reqID})
	if err != nil {
		return 0, err
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return status, nil
	}
	WriteJSON(w, status, out)
	return status, nil
}
