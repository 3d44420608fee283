package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	rabbithole "github.com/michaelklishin/rabbit-hole/v2"
)

// API is a client of one deployment's HTTP API. It embeds rabbit-hole's
// client for the typed endpoints, and adds context-aware raw JSON calls for
// the places where rabbit-hole's types lose data (definitions) or where a
// call must be cancellable.
type API struct {
	*rabbithole.Client
	ep   Endpoint
	http *http.Client
}

// NewAPI returns a client for the endpoint's HTTP API. It does no I/O.
func (e Endpoint) NewAPI() (*API, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if strings.HasPrefix(e.API, "https://") {
		tc, err := e.TLS.Config()
		if err != nil {
			return nil, fmt.Errorf("%s TLS: %w", e.Name, err)
		}
		transport.TLSClientConfig = tc
	}
	rh, err := rabbithole.NewTLSClient(e.API, e.APIUser, e.APIPassword, transport)
	if err != nil {
		return nil, fmt.Errorf("%s HTTP API client: %w", e.Name, err)
	}
	rh.SetTimeout(e.timeout())
	return &API{Client: rh, ep: e, http: &http.Client{Transport: transport, Timeout: e.timeout()}}, nil
}

// Endpoint returns the endpoint this client talks to.
func (a *API) Endpoint() Endpoint { return a.ep }

// StatusError is a non-2xx answer of the HTTP API.
type StatusError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s %s: HTTP %d", e.Method, e.Path, e.Status)
	switch e.Status {
	case http.StatusUnauthorized:
		msg += " (login refused: check the user name and password)"
	case http.StatusForbidden:
		msg += " (the user lacks the administrator tag or permission)"
	}
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// IsNotFound reports whether err is an HTTP 404 from the API, from either
// this package or rabbit-hole.
func IsNotFound(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status == http.StatusNotFound
	}
	var re rabbithole.ErrorResponse
	if errors.As(err, &re) {
		return re.StatusCode == http.StatusNotFound
	}
	var rp *rabbithole.ErrorResponse
	if errors.As(err, &rp) {
		return rp.StatusCode == http.StatusNotFound
	}
	return false
}

// Do sends a request to /api/<path>. in, when not nil, is sent as JSON; out,
// when not nil, receives the decoded JSON answer. Path segments such as
// vhost names must already be escaped (see PathEscape).
func (a *API) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		buf, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.ep.API+"/api/"+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.SetBasicAuth(a.ep.APIUser, a.ep.APIPassword)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s HTTP API at %s unreachable: %w", a.ep.Name, a.ep.API, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 512<<20))
	if err != nil {
		return fmt.Errorf("read %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return &StatusError{Method: method, Path: path, Status: resp.StatusCode, Body: strings.TrimSpace(string(truncate(data, 300)))}
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s at %s: answer is not the JSON RabbitMQ sends (%w); is this a RabbitMQ management API?", method, path, a.ep.API, err)
	}
	return nil
}

// Get decodes GET /api/<path> into out.
func (a *API) Get(ctx context.Context, path string, out any) error {
	return a.Do(ctx, http.MethodGet, path, nil, out)
}

// PathEscape escapes one path segment (a vhost or object name) for the API.
func PathEscape(s string) string { return url.PathEscape(s) }

func truncate(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return append(b[:n:n], "..."...)
}
