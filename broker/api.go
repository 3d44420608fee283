package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
)

// API is a client of one deployment's HTTP API, shaped like
// michaelklishin/rabbit-hole: one file per API area (nodes.go, queues.go,
// shovels.go, ...), each function named after what it does and documented
// with the endpoint it calls. Unlike rabbit-hole, every call takes a
// context, keeps every field of the answer a caller needs, and goes
// through one retry and timeout policy (retry.go).
type API struct {
	ep     Endpoint
	http   *http.Client
	policy CallPolicy
	// bases are the API URLs the client may use: the endpoint's API, then
	// its node APIs. A call that gets no answer moves the client on to the
	// next, so that a node going away does not take the API with it.
	bases []string
	cur   *atomic.Int32
}

// NewAPI returns a client for the endpoint's HTTP API, with DefaultPolicy.
// When the endpoint names node APIs, calls fail over to them. It does no
// I/O.
func (e Endpoint) NewAPI() (*API, error) {
	bases := []string{e.API}
	for _, u := range e.NodeAPIs {
		if !slices.Contains(bases, u) {
			bases = append(bases, u)
		}
	}
	return e.newAPI(bases)
}

// NodeAPI returns a client of one node's HTTP API at url, with the
// endpoint's credentials and TLS, that never fails over to another node:
// calls that act on the node that answers (declaring a shovel, say) must
// reach that node or fail.
func (e Endpoint) NodeAPI(url string) (*API, error) {
	ep := e
	ep.API, ep.NodeAPIs = url, nil
	return ep.newAPI([]string{url})
}

func (e Endpoint) newAPI(bases []string) (*API, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	for _, b := range bases {
		if strings.HasPrefix(b, "https://") {
			tc, err := e.TLS.Config()
			if err != nil {
				return nil, fmt.Errorf("%s TLS: %w", e.Name, err)
			}
			transport.TLSClientConfig = tc
			break
		}
	}
	// Timeouts are per call (see CallPolicy), through the request's context.
	return &API{ep: e, http: &http.Client{Transport: transport}, policy: DefaultPolicy(e.timeout()), bases: bases, cur: new(atomic.Int32)}, nil
}

// Base is the API URL calls go to now (without credentials).
func (a *API) Base() string { return a.base() }

// base is the API URL calls go to now.
func (a *API) base() string { return a.bases[int(a.cur.Load())%len(a.bases)] }

// failover moves the client on from base b to the next API URL, unless
// another call already did.
func (a *API) failover(b string) {
	i := a.cur.Load()
	if len(a.bases) > 1 && a.bases[int(i)%len(a.bases)] == b {
		a.cur.CompareAndSwap(i, i+1)
	}
}

// Endpoint returns the endpoint this client talks to.
func (a *API) Endpoint() Endpoint { return a.ep }

// WithPolicy returns a copy of the client that calls with policy p.
func (a *API) WithPolicy(p CallPolicy) *API {
	c := *a
	c.policy = p
	return &c
}

// Policy returns the client's retry and timeout policy.
func (a *API) Policy() CallPolicy { return a.policy }

// StatusError is a non-2xx answer of the HTTP API.
type StatusError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s /api/%s: HTTP %d", e.Method, e.Path, e.Status)
	switch {
	case e.Status == http.StatusUnauthorized && strings.Contains(e.Body, `"Not `):
		// The management plugin answers 401 "Not administrator user" (or
		// monitor, management) to a valid login that lacks the tag.
		msg += " (the login is valid but the user lacks the tag this call needs: " + e.missingTag() + ")"
	case e.Status == http.StatusUnauthorized:
		msg += " (login refused: check the user name and password)"
	case e.Status == http.StatusForbidden:
		msg += " (the user lacks the administrator tag or a permission this call needs)"
	}
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// missingTag reads the tag a 401 "Not administrator user" names.
func (e *StatusError) missingTag() string {
	for _, tag := range []string{"administrator", "monitor", "policymaker", "management"} {
		if strings.Contains(e.Body, "Not "+tag) {
			if tag == "monitor" {
				tag = "monitoring"
			}
			return tag
		}
	}
	return "administrator"
}

// IsNotFound reports whether err is an HTTP 404 from the API.
func IsNotFound(err error) bool { return statusOf(err) == http.StatusNotFound }

// IsStatus reports whether err is an HTTP answer with the given status.
func IsStatus(err error, status int) bool { return statusOf(err) == status }

func statusOf(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

// Reason is the broker's own explanation in an error answer (the "reason"
// of its JSON body, with Erlang strings made readable), or the body itself.
func (e *StatusError) Reason() string { return BrokerReason(e.Body) }

// request is one HTTP API call.
type request struct {
	method, path string
	in, out      any
	kind         callKind
	// repeatable marks a POST that may be retried: sending it twice has
	// the effect of sending it once.
	repeatable bool
}

// Do sends a request to /api/<path> under the client's policy: a timeout
// sized to the kind of call, and retries with backoff for idempotent
// methods (GET, PUT, DELETE, HEAD) on transient failures. in, when not nil,
// is sent as JSON; out, when not nil, receives the decoded answer. Path
// segments such as vhost names must already be escaped (see PathEscape).
//
// Prefer the typed functions of this package: Do is their common path and
// an escape hatch for tests and one-off calls.
func (a *API) Do(ctx context.Context, method, path string, in, out any) error {
	return a.do(ctx, request{method: method, path: path, in: in, out: out, kind: kindQuick})
}

// Get decodes GET /api/<path> into out (see Do).
func (a *API) Get(ctx context.Context, path string, out any) error {
	return a.do(ctx, request{method: http.MethodGet, path: path, out: out, kind: kindQuick})
}

func (a *API) do(ctx context.Context, r request) error {
	var body []byte
	if r.in != nil {
		var err error
		if body, err = json.Marshal(r.in); err != nil {
			return fmt.Errorf("encode %s /api/%s: %w", r.method, r.path, err)
		}
	}
	return a.policy.run(ctx, r, func(ctx context.Context) error { return a.once(ctx, r, body) })
}

// once sends the request a single time.
func (a *API) once(ctx context.Context, r request, body []byte) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	base := a.base()
	req, err := http.NewRequestWithContext(ctx, r.method, base+"/api/"+r.path, rd)
	if err != nil {
		return fmt.Errorf("%s /api/%s: %w", r.method, r.path, err)
	}
	req.SetBasicAuth(a.ep.APIUser, a.ep.APIPassword)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		a.failover(base)
		return &TransportError{Method: r.method, Path: r.path, Endpoint: a.ep.Name, API: base, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 512<<20))
	if err != nil {
		a.failover(base)
		return &TransportError{Method: r.method, Path: r.path, Endpoint: a.ep.Name, API: base, Err: fmt.Errorf("read the answer: %w", err)}
	}
	if resp.StatusCode/100 != 2 {
		return &StatusError{Method: r.method, Path: r.path, Status: resp.StatusCode, Body: strings.TrimSpace(string(truncate(data, 300)))}
	}
	if r.out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, r.out); err != nil {
		return fmt.Errorf("%s /api/%s at %s: answer is not the JSON RabbitMQ sends (%w); is this a RabbitMQ management API?", r.method, r.path, base, err)
	}
	return nil
}

// TransportError is a call that got no HTTP answer: the API was
// unreachable, reset the connection, or did not answer within the call's
// timeout.
type TransportError struct {
	Method, Path, Endpoint, API string
	Err                         error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("%s HTTP API at %s unreachable: %s /api/%s: %v", e.Endpoint, e.API, e.Method, e.Path, e.Err)
}

// refused reports whether nothing listens at the address, or its name does
// not resolve: wrong settings more often than a passing fault.
func (e *TransportError) refused() bool {
	var dns *net.DNSError
	return errors.Is(e.Err, syscall.ECONNREFUSED) || errors.As(e.Err, &dns)
}

func (e *TransportError) Unwrap() error { return e.Err }

// PathEscape escapes one path segment (a vhost or object name) for the API.
func PathEscape(s string) string { return url.PathEscape(s) }

// path joins escaped segments into an API path.
func path(segments ...string) string {
	for i, s := range segments {
		segments[i] = PathEscape(s)
	}
	return strings.Join(segments, "/")
}

func truncate(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return append(b[:n:n], "..."...)
}

// BrokerReason makes an HTTP API error body readable. Errors carry Erlang
// terms in which strings arrive as lists of character codes:
// ["amqp_error","precondition_failed",[105,110,...],"none"].
func BrokerReason(body string) string {
	var e struct {
		Error  string `json:"error"`
		Reason any    `json:"reason"`
	}
	if json.Unmarshal([]byte(body), &e) != nil || e.Reason == nil {
		return body
	}
	return e.Error + ": " + erlangText(e.Reason)
}

func erlangText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		if s, ok := charList(x); ok {
			return s
		}
		parts := make([]string, 0, len(x))
		for _, e := range x {
			if t := erlangText(e); t != "" && t != "none" {
				parts = append(parts, t)
			}
		}
		return strings.Join(parts, " ")
	default:
		return fmt.Sprint(x)
	}
}

func charList(xs []any) (string, bool) {
	if len(xs) == 0 {
		return "", false
	}
	var b strings.Builder
	for _, e := range xs {
		f, ok := e.(float64)
		if !ok || f < 9 || f > 0x10ffff || f != float64(int(f)) {
			return "", false
		}
		b.WriteRune(rune(int(f)))
	}
	return b.String(), true
}
