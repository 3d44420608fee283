package stack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/components"
)

// apiRoute is a way from the machine running warren to the deployed
// cluster's HTTP API.
type apiRoute struct {
	// URL is the API's base URL, without credentials.
	URL string
	// Via says how it was found, for the report.
	Via string
	// TLS applies when URL is https.
	TLS broker.TLSOptions
	// stop ends what the route started (a port-forward) and removes
	// temporary files; it is never nil.
	stop func()
}

// apiFinder finds a route to the client Service's HTTP API, trying in
// order:
//
//  1. the URL the user gave (--cluster-api), as is;
//  2. the client Service's DNS name (<name>.<namespace>.svc.<domain>),
//     which resolves only inside the cluster (warren running in a pod);
//  3. the client Service's ClusterIP, which the cluster's nodes (and
//     networks that route the Service range) reach;
//  4. `kubectl port-forward service/<name>` with the stack's kubeconfig
//     and context, which works wherever kubectl does, and is not subject
//     to the NetworkPolicy (the connection starts inside the pod).
type apiFinder struct {
	explicit  string
	cfg       *components.Config
	clusterIP string
	// probe bounds each TCP probe.
	probe time.Duration
	// kubeconfig and kubeContext are the stack's kubernetes:kubeconfig
	// (a path or the file's contents) and kubernetes:context.
	kubeconfig, kubeContext string
}

// find returns the first route that answers, or an error naming every way
// tried and why it failed.
func (f apiFinder) find(ctx context.Context) (*apiRoute, error) {
	tlsOpts, cleanup, err := f.tls()
	if err != nil {
		return nil, err
	}
	scheme, port := "http", components.PortManagement
	if f.cfg.DisablePlainListeners {
		scheme, port = "https", components.PortManagementTLS
	}
	found := func(u, via string) *apiRoute {
		return &apiRoute{URL: u, Via: via, TLS: tlsOpts, stop: cleanup}
	}
	if f.explicit != "" {
		u, err := broker.ParseAPIURL("cluster", f.explicit)
		if err != nil {
			cleanup()
			return nil, err
		}
		return found(u, "--cluster-api"), nil
	}
	var tried []string
	names := f.cfg.Names()
	host := names.ClientHost() + "." + f.cfg.ClusterDomain
	if err := f.dial(ctx, host, port); err == nil {
		return found(fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(host, strconv.Itoa(port))), "the client Service's DNS name"), nil
	} else {
		tried = append(tried, fmt.Sprintf("the client Service's DNS name %s: %v", host, err))
	}
	if f.clusterIP != "" {
		if err := f.dial(ctx, f.clusterIP, port); err == nil {
			return found(fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(f.clusterIP, strconv.Itoa(port))), "the client Service's ClusterIP"), nil
		} else {
			tried = append(tried, fmt.Sprintf("the client Service's ClusterIP %s: %v", f.clusterIP, err))
		}
	} else {
		tried = append(tried, "the client Service's ClusterIP: not known (the update's events did not show it)")
	}
	local, stop, err := f.portForward(ctx, port)
	if err == nil {
		r := found(fmt.Sprintf("%s://%s", scheme, local), "kubectl port-forward service/"+names.ClientService())
		r.stop = func() { stop(); cleanup() }
		return r, nil
	}
	tried = append(tried, "kubectl port-forward: "+err.Error())
	cleanup()
	return nil, errors.New(strings.Join(tried, "; "))
}

// dial checks that something accepts TCP connections at host:port.
func (f apiFinder) dial(ctx context.Context, host string, port int) error {
	ctx, cancel := context.WithTimeout(ctx, f.probe)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		var dns *net.DNSError
		if errors.As(err, &dns) {
			return errors.New("does not resolve here (outside the cluster)")
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("no answer within %s", f.probe)
		}
		return err
	}
	return c.Close()
}

// tls returns the TLS options for an https API: the stack's own CA when it
// generated one (written to a temporary file, which cleanup removes), else
// the system's; the server name is the client Service's, which the
// certificate covers.
func (f apiFinder) tls() (broker.TLSOptions, func(), error) {
	none := func() {}
	if !f.cfg.TLSEnabled {
		return broker.TLSOptions{}, none, nil
	}
	o := broker.TLSOptions{ServerName: f.cfg.Names().ClientHost()}
	if f.cfg.Secrets.TLSCACert == "" {
		return o, none, nil
	}
	file, err := os.CreateTemp("", "warren-ca-*.pem")
	if err != nil {
		return o, none, fmt.Errorf("write the stack's CA for the HTTP API: %w", err)
	}
	defer file.Close()
	if _, err := file.WriteString(f.cfg.Secrets.TLSCACert); err != nil {
		os.Remove(file.Name())
		return o, none, fmt.Errorf("write the stack's CA for the HTTP API: %w", err)
	}
	o.CAFile = file.Name()
	return o, func() { os.Remove(file.Name()) }, nil
}

// forwardLine is what kubectl port-forward prints once it listens.
var forwardLine = regexp.MustCompile(`^Forwarding from (127\.0\.0\.1:\d+) -> \d+`)

// portForward starts `kubectl port-forward` to the client Service on a
// free local port and returns host:port and a function that stops it.
func (f apiFinder) portForward(ctx context.Context, port int) (string, func(), error) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		return "", nil, errors.New("kubectl is not on PATH")
	}
	args, cleanup, err := f.kubectlArgs()
	if err != nil {
		return "", nil, err
	}
	names := f.cfg.Names()
	args = append(args, "-n", names.Namespace, "port-forward", "--address", "127.0.0.1",
		"service/"+names.ClientService(), ":"+strconv.Itoa(port))
	// Not CommandContext: the forward must outlive the probe's deadline;
	// stop ends it.
	cmd := exec.Command(kubectl, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		cleanup()
		return "", nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &limitedWriter{w: &stderr, n: 8000}
	if err := cmd.Start(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("start kubectl: %w", err)
	}
	exited := make(chan struct{})
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
		cleanup()
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := forwardLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		// kubectl prints a line per connection: keep reading until it exits.
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		close(exited)
	}()
	wait := time.NewTimer(30 * time.Second)
	defer wait.Stop()
	select {
	case a := <-addr:
		return a, stop, nil
	case <-exited:
		cleanup()
		return "", nil, fmt.Errorf("kubectl %s exited: %s", strings.Join(args, " "), lastLine(stderr.String()))
	case <-wait.C:
		stop()
		return "", nil, fmt.Errorf("kubectl port-forward did not listen within 30s: %s", lastLine(stderr.String()))
	case <-ctx.Done():
		stop()
		return "", nil, ctx.Err()
	}
}

// kubectlArgs points kubectl at the cluster the stack deploys to: the
// stack's kubernetes:kubeconfig (a path, or the contents, which go to a
// temporary file) and kubernetes:context, else kubectl's own defaults
// (KUBECONFIG, ~/.kube/config), as Pulumi's Kubernetes provider does.
func (f apiFinder) kubectlArgs() ([]string, func(), error) {
	var args []string
	cleanup := func() {}
	switch kc := strings.TrimSpace(f.kubeconfig); {
	case kc == "":
	case strings.Contains(kc, "\n") || strings.HasPrefix(kc, "{"):
		file, err := os.CreateTemp("", "warren-kubeconfig-*")
		if err != nil {
			return nil, cleanup, err
		}
		_, werr := file.WriteString(kc)
		file.Close()
		if werr != nil {
			os.Remove(file.Name())
			return nil, cleanup, werr
		}
		args = append(args, "--kubeconfig", file.Name())
		cleanup = func() { os.Remove(file.Name()) }
	default:
		if rest, ok := strings.CutPrefix(kc, "~/"); ok {
			if home, err := os.UserHomeDir(); err == nil {
				kc = filepath.Join(home, rest)
			}
		}
		args = append(args, "--kubeconfig", kc)
	}
	if f.kubeContext != "" {
		args = append(args, "--context", f.kubeContext)
	}
	return args, cleanup, nil
}

// lastLine is the last non-empty line of kubectl's error output: its
// summary (the lines before repeat the client's retries).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// limitedWriter keeps the first n bytes written to it.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(b []byte) (int, error) {
	if l.n > 0 {
		k := min(len(b), l.n)
		l.n -= k
		_, _ = l.w.Write(b[:k])
	}
	return len(b), nil
}

// redactedURL is u without credentials, for reports.
func redactedURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return broker.Redact(u)
	}
	p.User = nil
	return p.String()
}
