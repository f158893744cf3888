package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
)

// Reason codes, in the spelling of Elastic Load Balancing's target health
// (Lattice's own vocabulary is unpublished). A HEALTHY target has no reason.
const (
	// ReasonInitial: the target is registered and its first checks are
	// running (INITIAL).
	ReasonInitial = "Elb.InitialHealthChecking"
	// ReasonResponseCodeMismatch: the target answered with a status the
	// matcher does not accept.
	ReasonResponseCodeMismatch = "Target.ResponseCodeMismatch"
	// ReasonTimeout: no response (or no connection) within the check
	// timeout.
	ReasonTimeout = "Target.Timeout"
	// ReasonFailedHealthChecks: the connection failed (refused, reset,
	// TLS or protocol error).
	ReasonFailedHealthChecks = "Target.FailedHealthChecks"
	// ReasonHealthCheckDisabled: the group's checks are disabled, or the
	// group type has none (LAMBDA, ALB) — UNAVAILABLE.
	ReasonHealthCheckDisabled = "Target.HealthCheckDisabled"
	// ReasonInvalidState: the target has no address to check (an instance
	// the control plane cannot resolve).
	ReasonInvalidState = "Target.InvalidState"
)

// userAgent is what health-check requests send.
const userAgent = "Trellis-HealthChecker/1.0"

// probeConfig is everything one target's check loop needs; comparable, so
// Update can tell whether a target's check changed.
type probeConfig struct {
	address    string // host:port to connect to ("" when unresolved)
	https      bool
	http2      bool
	path       string
	matcher    string
	interval   time.Duration
	timeout    time.Duration
	healthyN   int
	unhealthyN int
}

// newProbeConfig materialises hc (already defaulted by the model) for the
// target at address; scale multiplies interval and timeout (tests).
func newProbeConfig(hc *model.HealthCheckConfig, address string, scale float64) probeConfig {
	p := probeConfig{
		address:    address,
		https:      hc.Protocol == model.ProtocolHTTPS,
		http2:      hc.ProtocolVersion == model.ProtocolVersionHTTP2,
		path:       "/",
		matcher:    "200",
		interval:   30 * time.Second,
		timeout:    5 * time.Second,
		healthyN:   5,
		unhealthyN: 2,
	}
	if hc.Path != nil && *hc.Path != "" {
		p.path = *hc.Path
	}
	if hc.Matcher != nil && hc.Matcher.HTTPCode != nil && *hc.Matcher.HTTPCode != "" {
		p.matcher = *hc.Matcher.HTTPCode
	}
	if v := hc.HealthCheckIntervalSeconds; v != nil && *v > 0 {
		p.interval = time.Duration(*v) * time.Second
	}
	if v := hc.HealthCheckTimeoutSeconds; v != nil && *v > 0 {
		p.timeout = time.Duration(*v) * time.Second
	}
	if v := hc.HealthyThresholdCount; v != nil && *v > 0 {
		p.healthyN = int(*v)
	}
	if v := hc.UnhealthyThresholdCount; v != nil && *v > 0 {
		p.unhealthyN = int(*v)
	}
	if scale > 0 && scale != 1 {
		p.interval = time.Duration(float64(p.interval) * scale)
		p.timeout = time.Duration(float64(p.timeout) * scale)
	}
	// A check never outlives its interval, so checks never overlap and the
	// interval stays fixed whatever the target's response time.
	p.timeout = min(p.timeout, p.interval)
	if address != "" && hc.Port != nil && *hc.Port > 0 {
		if host, _, err := net.SplitHostPort(address); err == nil {
			p.address = net.JoinHostPort(host, strconv.Itoa(int(*hc.Port)))
		}
	}
	return p
}

// codeRange is one element of a matcher: lo–hi inclusive.
type codeRange struct{ lo, hi int }

// matcher accepts the status codes of a Lattice httpCode matcher.
type matcher []codeRange

// parseMatcher reads "200", "200,202", "200-299" and combinations such as
// "200,202-204".
func parseMatcher(s string) (matcher, error) {
	var m matcher
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		loS, hiS, isRange := strings.Cut(part, "-")
		lo, err := strconv.Atoi(loS)
		if err != nil {
			return nil, fmt.Errorf("matcher %q: bad code %q: %w", s, loS, err)
		}
		hi := lo
		if isRange {
			if hi, err = strconv.Atoi(hiS); err != nil {
				return nil, fmt.Errorf("matcher %q: bad code %q: %w", s, hiS, err)
			}
		}
		if lo < 100 || hi > 599 || lo > hi {
			return nil, fmt.Errorf("matcher %q: bad range %q", s, part)
		}
		m = append(m, codeRange{lo, hi})
	}
	return m, nil
}

func (m matcher) match(code int) bool {
	for _, r := range m {
		if code >= r.lo && code <= r.hi {
			return true
		}
	}
	return false
}

// prober runs the checks of one target; used by one goroutine only.
type prober struct {
	cfg     probeConfig
	match   matcher
	url     string
	client  *http.Client
	dialTTL time.Duration
}

func newProber(cfg probeConfig, dialTimeout time.Duration) (*prober, error) {
	m, err := parseMatcher(cfg.matcher)
	if err != nil {
		return nil, err
	}
	if dialTimeout <= 0 || dialTimeout > cfg.timeout {
		dialTimeout = cfg.timeout
	}
	scheme := "http"
	if cfg.https {
		scheme = "https"
	}
	var protos http.Protocols
	switch {
	case cfg.http2 && cfg.https:
		protos.SetHTTP2(true)
	case cfg.http2:
		protos.SetUnencryptedHTTP2(true) // h2c with prior knowledge
	default:
		protos.SetHTTP1(true)
	}
	tr := &http.Transport{
		DialContext: (&net.Dialer{Timeout: dialTimeout}).DialContext,
		// Lattice does not verify target certificates.
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // documented Lattice behaviour
		TLSHandshakeTimeout: cfg.timeout,
		// One connection per check, closed afterwards.
		DisableKeepAlives:  true,
		DisableCompression: true,
		Protocols:          &protos,
	}
	return &prober{
		cfg:   cfg,
		match: m,
		url:   scheme + "://" + cfg.address + cfg.path,
		client: &http.Client{
			Transport: tr,
			// A redirect is a response like any other: the matcher decides.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// probe runs one check. It returns ok, or the reason it failed.
func (p *prober) probe(ctx context.Context) (ok bool, reason string, code int) {
	if p.cfg.address == "" {
		return false, ReasonInvalidState, 0
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.timeout)
	defer cancel()
	defer p.client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return false, ReasonFailedHealthChecks, 0
	}
	req.Close = true
	req.Header.Set("User-Agent", userAgent)
	resp, err := p.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return false, ReasonTimeout, 0
		}
		return false, ReasonFailedHealthChecks, 0
	}
	// Drain a little so the server sees a complete exchange, then close.
	_, _ = io.CopyN(io.Discard, resp.Body, 4096)
	_ = resp.Body.Close()
	if !p.match.match(resp.StatusCode) {
		return false, ReasonResponseCodeMismatch, resp.StatusCode
	}
	return true, "", resp.StatusCode
}

func (p *prober) close() { p.client.CloseIdleConnections() }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// verdict is the health a target's checks have established.
type verdict struct {
	status Status
	reason string
}

// counters are the consecutive results of one check loop.
type counters struct{ ok, fail int }

// next applies one check result to cur. A target that has never been
// decided (INITIAL) becomes HEALTHY on its first success — Lattice's "must
// pass one health check" — and UNHEALTHY after unhealthyN failures; after
// that healthyN consecutive successes turn UNHEALTHY into HEALTHY and
// unhealthyN consecutive failures HEALTHY into UNHEALTHY. An UNHEALTHY
// target's reason follows its latest failure.
func next(cur verdict, c *counters, ok bool, reason string, healthyN, unhealthyN int) verdict {
	if ok {
		c.ok, c.fail = c.ok+1, 0
		switch cur.status {
		case Initial, Unavailable:
			return verdict{Healthy, ""}
		case Unhealthy:
			if c.ok >= healthyN {
				return verdict{Healthy, ""}
			}
		}
		return cur
	}
	c.ok, c.fail = 0, c.fail+1
	switch cur.status {
	case Unhealthy:
		return verdict{Unhealthy, reason}
	case Healthy, Initial, Unavailable:
		if c.fail >= unhealthyN {
			return verdict{Unhealthy, reason}
		}
	}
	return cur
}
