// Package stack runs warren's Pulumi program (package components) through
// Pulumi's Automation API as an inline program: `warren init|preview|up|
// destroy|render --stack S`. It needs the `pulumi` CLI and the Kubernetes
// provider plugin, not the Go language host. State goes to a local file
// backend (DefaultBackend) unless another is given, configuration comes from
// the project's Pulumi.<stack>.yaml, and secrets are encrypted with the
// passphrase in PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE).
//
// After an update that changed the pods, Up also talks to the deployed
// cluster's HTTP API to spread the quorum queues' leaders again
// (rebalance.go; clusterapi.go finds the way to the API, rollout.go reads
// from the engine's events whether the pods changed).
package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"gopkg.in/yaml.v3"

	"github.com/warrenmq/warren/components"
)

// ProjectName is the Pulumi project name in Pulumi.yaml.
const ProjectName = "warren"

// ErrPreflight marks failures of the environment rather than of the stack:
// no pulumi CLI, no passphrase, no project directory. Test with errors.Is.
var ErrPreflight = errors.New("preflight")

// ErrConfig marks an invalid stack configuration. Test with errors.Is.
var ErrConfig = errors.New("invalid configuration")

// Options select the stack and where its files and state live.
type Options struct {
	// Stack is the stack name: dev, prod, ...
	Stack string
	// ProjectDir holds Pulumi.yaml and Pulumi.<Stack>.yaml; empty means
	// the nearest directory upwards from the working directory that has a
	// Pulumi.yaml.
	ProjectDir string
	// Backend is a Pulumi backend URL; empty means DefaultBackend.
	Backend string
	// Progress receives Pulumi's progress output; nil discards it.
	Progress io.Writer
}

// DefaultBackend is a local file backend in a fixed place outside the repo,
// so state survives a fresh checkout and no account is needed.
func DefaultBackend() (string, error) {
	dir := os.Getenv("WARREN_CACHE_DIR")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("default backend: %w", err)
		}
		dir = filepath.Join(home, ".cache", "warren")
	}
	return "file://" + filepath.Join(dir, "pulumi-state"), nil
}

// FindProjectDir returns the nearest directory from start upwards that
// holds a Pulumi.yaml.
func FindProjectDir(start string) (string, error) {
	dir, err := filepath.Abs(start)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "Pulumi.yaml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%w: no Pulumi.yaml in %s or above: run from the warren checkout or pass --project-dir", ErrPreflight, start)
		}
		dir = parent
	}
}

// resolve fills the defaults and checks what every operation needs, before
// anything is created.
func (o Options) resolve() (Options, error) {
	if o.Stack == "" || strings.ContainsAny(o.Stack, "/ \t\n") {
		return o, fmt.Errorf("%w: stack name %q: want a plain name like dev or prod", ErrConfig, o.Stack)
	}
	if o.ProjectDir == "" {
		dir, err := FindProjectDir(".")
		if err != nil {
			return o, err
		}
		o.ProjectDir = dir
	} else {
		abs, err := filepath.Abs(o.ProjectDir)
		if err != nil {
			return o, err
		}
		o.ProjectDir = abs
		if _, err := os.Stat(filepath.Join(abs, "Pulumi.yaml")); err != nil {
			return o, fmt.Errorf("%w: project directory %s has no Pulumi.yaml", ErrPreflight, abs)
		}
	}
	if o.Backend == "" {
		b, err := DefaultBackend()
		if err != nil {
			return o, err
		}
		o.Backend = b
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o, nil
}

// StackFile is the path of the stack's settings file.
func (o Options) StackFile() string {
	return filepath.Join(o.ProjectDir, "Pulumi."+o.Stack+".yaml")
}

// preflight checks the tools and the passphrase.
func preflight() error {
	if _, err := exec.LookPath("pulumi"); err != nil {
		return fmt.Errorf("%w: the pulumi CLI is not on PATH: run `eval \"$(scripts/pulumi-toolchain.sh --print-env)\"` in the warren checkout (it builds pulumi and the Kubernetes provider), or install Pulumi", ErrPreflight)
	}
	if os.Getenv("PULUMI_CONFIG_PASSPHRASE") == "" && os.Getenv("PULUMI_CONFIG_PASSPHRASE_FILE") == "" {
		return fmt.Errorf("%w: PULUMI_CONFIG_PASSPHRASE is not set: it encrypts the stack's secrets; export it (the same value every time) or set PULUMI_CONFIG_PASSPHRASE_FILE", ErrPreflight)
	}
	return nil
}

// ReadStackFile reads the plain settings of Pulumi.<stack>.yaml the way the
// engine hands them to the program (scalars as text, lists and maps as
// JSON). Encrypted values are reported in secure, without their values.
func ReadStackFile(path string) (plain map[string]string, secure []string, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read stack settings: %w", err)
	}
	var file struct {
		Config map[string]any `yaml:"config"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	plain = map[string]string{}
	for k, v := range file.Config {
		switch v := v.(type) {
		case nil:
			plain[k] = ""
		case string:
			plain[k] = v
		case int, int64, float64, bool:
			plain[k] = fmt.Sprint(v)
		case map[string]any:
			if _, ok := v["secure"]; ok && len(v) == 1 {
				secure = append(secure, k)
				continue
			}
			b, _ := json.Marshal(v)
			plain[k] = string(b)
		default:
			b, err := json.Marshal(v)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %s: %s: %v", ErrConfig, path, k, err)
			}
			plain[k] = string(b)
		}
	}
	slices.Sort(secure)
	return plain, secure, nil
}

// Validate checks the stack's plain settings without running Pulumi, so bad
// values are refused before anything is created or changed.
func Validate(o Options) (*components.Config, error) {
	o, err := o.resolve()
	if err != nil {
		return nil, err
	}
	plain, _, err := ReadStackFile(o.StackFile())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: stack %s has no settings file %s: copy Pulumi.dev.yaml to start one", ErrConfig, o.Stack, o.StackFile())
		}
		return nil, err
	}
	// Encrypted values are left out: the program checks the secrets once the
	// engine has decrypted them.
	cfg, err := components.ParseConfig(components.MapLookup(plain, nil))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, o.StackFile(), err)
	}
	return cfg, nil
}

// requireSecrets refuses a stack whose settings file lacks the secrets the
// program needs (say, `warren init` was never run), before Pulumi creates
// the stack. The values stay encrypted: only their presence is checked.
func requireSecrets(o Options, cfg *components.Config) error {
	_, secure, err := ReadStackFile(o.StackFile())
	if err != nil {
		return err
	}
	present := func(key string) string {
		if slices.Contains(secure, components.Namespace+":"+key) {
			return "present"
		}
		return ""
	}
	c := *cfg
	c.Secrets = components.Secrets{
		ErlangCookie:  present(components.KeyErlangCookie),
		AdminPassword: present(components.KeyAdminPassword),
		TLSCert:       present(components.KeyTLSCert),
		TLSKey:        present(components.KeyTLSKey),
		TLSCACert:     present(components.KeyTLSCACert),
		AppPassword:   present(components.KeyAppPassword),
	}
	if err := c.CheckSecrets(o.Stack); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return nil
}

// open validates, checks the environment and selects (creating if needed)
// the stack in the backend with program as its inline program.
func open(ctx context.Context, o Options, program pulumi.RunFunc, needSecrets bool) (Options, auto.Stack, *components.Config, error) {
	o, err := o.resolve()
	if err != nil {
		return o, auto.Stack{}, nil, err
	}
	cfg, err := Validate(o)
	if err != nil {
		return o, auto.Stack{}, nil, err
	}
	if needSecrets {
		if err := requireSecrets(o, cfg); err != nil {
			return o, auto.Stack{}, nil, err
		}
	}
	if err := preflight(); err != nil {
		return o, auto.Stack{}, nil, err
	}
	if dir, ok := strings.CutPrefix(o.Backend, "file://"); ok {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return o, auto.Stack{}, nil, fmt.Errorf("%w: backend directory: %v", ErrPreflight, err)
		}
	}
	// WorkDir is the project directory, so the workspace reads the existing
	// Pulumi.yaml and Pulumi.<stack>.yaml instead of writing its own.
	st, err := auto.UpsertStackInlineSource(ctx, o.Stack, ProjectName, program,
		auto.WorkDir(o.ProjectDir),
		auto.EnvVars(map[string]string{"PULUMI_BACKEND_URL": o.Backend}),
	)
	if err != nil {
		return o, auto.Stack{}, nil, fmt.Errorf("select stack %s in %s: %w", o.Stack, o.Backend, err)
	}
	return o, st, cfg, nil
}

// Changes counts resources by operation (create, update, delete, same...).
type Changes map[string]int

// PreviewResult is what `warren preview` reports.
type PreviewResult struct {
	Stack   string  `json:"stack"`
	Changes Changes `json:"changes"`
}

// Preview shows what Up would change, streaming Pulumi's progress.
func Preview(ctx context.Context, o Options) (*PreviewResult, error) {
	o, st, cfg, err := open(ctx, o, components.Program, true)
	if err != nil {
		return nil, err
	}
	res, err := st.Preview(ctx, optpreview.ProgressStreams(o.Progress), optpreview.ErrorProgressStreams(o.Progress))
	if err != nil {
		return nil, explainMissingCRD(fmt.Errorf("preview stack %s: %w", o.Stack, summarize(err)), o, cfg)
	}
	ch := Changes{}
	for op, n := range res.ChangeSummary {
		ch[string(op)] = n
	}
	return &PreviewResult{Stack: o.Stack, Changes: ch}, nil
}

// UpResult is what `warren up` reports: the changes, the stack outputs
// (service names, URLs, secret names; never secret values) and what it did
// to spread quorum queue leaders after the pods changed.
type UpResult struct {
	Stack     string            `json:"stack"`
	Changes   Changes           `json:"changes"`
	Outputs   map[string]string `json:"outputs"`
	Rebalance *Rebalance        `json:"rebalance,omitempty"`
}

// Up creates or updates the cluster, streaming Pulumi's progress, and waits
// until the Kubernetes provider reports the StatefulSet ready. When the
// update restarted, added or removed pods, it then spreads the quorum
// queues' leaders again (see Rebalance and UpOptions); failing to do so
// is reported in the result, not an error: the cluster serves.
func Up(ctx context.Context, o Options, uo UpOptions) (*UpResult, error) {
	o, st, cfg, err := open(ctx, o, components.Program, true)
	if err != nil {
		return nil, err
	}
	evs := make(chan events.EngineEvent)
	recorded := recordRollout(evs, cfg.Names().ClientService())
	res, err := st.Up(ctx, optup.ProgressStreams(o.Progress), optup.ErrorProgressStreams(o.Progress), optup.EventStreams(evs))
	if err != nil {
		return nil, explainMissingCRD(fmt.Errorf("up stack %s: %w", o.Stack, summarize(err)), o, cfg)
	}
	// Pulumi closes evs once the CLI's event stream has ended, before Up
	// returns; the bound only guards against a stream that never opened.
	var r rollout
	select {
	case r = <-recorded:
	case <-time.After(10 * time.Second):
		r = rollout{PodsChanged: true} // unknown: better one rebalance too many
	}
	out := &UpResult{Stack: o.Stack, Changes: changes(res.Summary), Outputs: outputs(res.Outputs)}
	out.Rebalance = rebalanceAfterUp(ctx, o, st, uo, r)
	return out, nil
}

// rebalanceAfterUp reads the stack's settings with their secrets (the
// admin password, the CA) and runs the rebalance.
func rebalanceAfterUp(ctx context.Context, o Options, st auto.Stack, uo UpOptions, r rollout) *Rebalance {
	log := uo.Logger
	if log == nil {
		log = slog.Default()
	}
	if uo.RebalanceTimeout <= 0 {
		uo.RebalanceTimeout = DefaultRebalanceTimeout
	}
	all, err := st.GetAllConfig(ctx)
	var cfg *components.Config
	if err == nil {
		values, secret := map[string]string{}, map[string]bool{}
		for k, v := range all {
			values[k], secret[k] = v.Value, v.Secret
		}
		cfg, err = components.ParseConfig(components.MapLookup(values, secret))
	}
	if err != nil {
		return &Rebalance{Status: RebalanceNotDone, Reason: fmt.Sprintf("read stack %s settings: %v", o.Stack, err)}
	}
	rb := &rebalancer{
		cfg: cfg, opts: uo, log: log, poll: time.Second, settled: 15 * time.Second,
		finder: apiFinder{
			explicit: uo.ClusterAPI, cfg: cfg, clusterIP: r.ClusterIP, probe: 3 * time.Second,
			kubeconfig: all["kubernetes:kubeconfig"].Value, kubeContext: all["kubernetes:context"].Value,
		},
	}
	return rb.run(ctx, r)
}

// DestroyResult is what `warren destroy` reports.
type DestroyResult struct {
	Stack   string  `json:"stack"`
	Changes Changes `json:"changes"`
}

// Destroy deletes every resource of the stack. The stack, its settings and
// secrets stay, so a later Up recreates the same cluster.
func Destroy(ctx context.Context, o Options) (*DestroyResult, error) {
	// Destroy does not run the program, so it needs no secrets.
	o, st, _, err := open(ctx, o, components.Program, false)
	if err != nil {
		return nil, err
	}
	res, err := st.Destroy(ctx, optdestroy.ProgressStreams(o.Progress), optdestroy.ErrorProgressStreams(o.Progress))
	if err != nil {
		return nil, fmt.Errorf("destroy stack %s: %w", o.Stack, summarize(err))
	}
	return &DestroyResult{Stack: o.Stack, Changes: changes(res.Summary)}, nil
}

// RenderResult lists the manifests Render wrote.
type RenderResult struct {
	Stack string   `json:"stack"`
	Dir   string   `json:"dir"`
	Files []string `json:"files"`
}

// Render writes the stack's Kubernetes manifests as YAML into dir through
// the provider's renderYamlToDirectory, without touching any cluster.
// Secrets are written in plain text. It runs in a throwaway backend and
// working copy of the stack settings, so the real stack's state is never
// touched; the settings file's encryption salt and the passphrase decrypt
// its secrets there as they would in the real stack.
func Render(ctx context.Context, o Options, dir string) (*RenderResult, error) {
	o, err := o.resolve()
	if err != nil {
		return nil, err
	}
	cfg, err := Validate(o)
	if err != nil {
		return nil, err
	}
	if err := requireSecrets(o, cfg); err != nil {
		return nil, err
	}
	if err := preflight(); err != nil {
		return nil, err
	}
	out, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	// The provider writes 0-crd/ and 1-manifest/; stale files from an earlier
	// render would otherwise survive next to the new ones.
	for _, sub := range []string{"0-crd", "1-manifest"} {
		if err := os.RemoveAll(filepath.Join(out, sub)); err != nil {
			return nil, fmt.Errorf("clear %s: %w", out, err)
		}
	}
	if err := os.MkdirAll(out, 0o700); err != nil {
		return nil, fmt.Errorf("render directory: %w", err)
	}

	scratch, err := os.MkdirTemp("", "warren-render-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	for _, f := range []string{"Pulumi.yaml", "Pulumi." + o.Stack + ".yaml"} {
		if err := copyFile(filepath.Join(o.ProjectDir, f), filepath.Join(scratch, f)); err != nil {
			return nil, fmt.Errorf("render: %w", err)
		}
	}
	r := o
	r.ProjectDir = scratch
	r.Backend = "file://" + filepath.Join(scratch, "state")
	_, st, _, err := open(ctx, r, components.NewProgram(components.Options{RenderDir: out}), true)
	if err != nil {
		return nil, err
	}
	if _, err := st.Up(ctx, optup.ProgressStreams(o.Progress), optup.ErrorProgressStreams(o.Progress)); err != nil {
		return nil, fmt.Errorf("render stack %s: %w", o.Stack, summarize(err))
	}
	var files []string
	err = filepath.WalkDir(out, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".yaml") {
			rel, _ := filepath.Rel(out, path)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list rendered manifests: %w", err)
	}
	slices.Sort(files)
	return &RenderResult{Stack: o.Stack, Dir: out, Files: files}, nil
}

// explainMissingCRD turns the failed read of the ServiceMonitor CRD (the
// program reads it before anything else when warren:serviceMonitor is on)
// into what happened and what to do. It is a preflight failure: the
// cluster lacks something, nothing was created.
func explainMissingCRD(err error, o Options, cfg *components.Config) error {
	msg := err.Error()
	if cfg == nil || !cfg.ServiceMonitor || !strings.Contains(msg, "'"+components.ServiceMonitorCRD+"' does not exist") {
		return err
	}
	return fmt.Errorf("%w: warren:serviceMonitor is true but the cluster has no ServiceMonitor CRD (%s, which the Prometheus Operator installs); nothing was created or changed: install the Prometheus Operator (or its CRDs), or set warren:serviceMonitor: false in %s, then run the command again (%w)",
		ErrPreflight, components.ServiceMonitorCRD, o.StackFile(), err)
}

// summarizedError keeps the whole Automation API error (it carries the
// CLI's complete stdout and stderr) for errors.As, but prints only Pulumi's
// distinct error lines: the progress stream already showed the rest.
type summarizedError struct {
	short string
	err   error
}

func (e *summarizedError) Error() string { return e.short }
func (e *summarizedError) Unwrap() error { return e.err }

func summarize(err error) error {
	lines := strings.Split(err.Error(), "\n")
	var msgs []string
	seen := map[string]bool{}
	add := func(m string) {
		if m = strings.TrimSpace(m); m != "" && m != "update failed" && m != "preview failed" && !seen[m] {
			seen[m] = true
			msgs = append(msgs, m)
		}
	}
	// Pulumi's Diagnostics section holds each error once, with the lines that
	// continue it (a program's error often spans several); headers naming a
	// resource are indented two spaces, messages four.
	if i := slices.IndexFunc(lines, func(l string) bool { return strings.TrimSpace(l) == "Diagnostics:" }); i >= 0 {
		var block []string
		flush := func() {
			if len(block) > 0 {
				add(strings.Join(block, "\n"))
			}
			block = nil
		}
		for _, l := range lines[i+1:] {
			trimmed := strings.TrimSpace(l)
			indent := len(l) - len(strings.TrimLeft(l, " \t"))
			switch {
			case trimmed == "" || indent == 0:
				flush()
				if indent == 0 && trimmed != "" {
					return result(err, msgs)
				}
			case indent <= 2:
				flush()
			case strings.HasPrefix(trimmed, "error: "):
				flush()
				block = []string{strings.TrimPrefix(trimmed, "error: ")}
			case strings.HasPrefix(trimmed, "warning: "), strings.HasPrefix(trimmed, "info: "):
				flush()
			case block != nil:
				block = append(block, trimmed)
			}
		}
		flush()
		return result(err, msgs)
	}
	for _, line := range lines {
		if _, msg, ok := strings.Cut(line, "error: "); ok {
			add(msg)
		}
	}
	return result(err, msgs)
}

func result(err error, msgs []string) error {
	if len(msgs) == 0 {
		return err
	}
	return &summarizedError{short: strings.Join(msgs, "\n"), err: err}
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

func changes(s auto.UpdateSummary) Changes {
	ch := Changes{}
	if s.ResourceChanges != nil {
		for k, v := range *s.ResourceChanges {
			ch[k] = v
		}
	}
	return ch
}

// outputs keeps the plain outputs; secret ones are named, never shown.
func outputs(m auto.OutputMap) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if v.Secret {
			out[k] = "[secret]"
			continue
		}
		out[k] = fmt.Sprint(v.Value)
	}
	return out
}
