package stack

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/components"
)

// project makes a project directory with Pulumi.yaml and the given stack
// files (name -> content).
func project(t *testing.T, stacks map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Pulumi.yaml"), []byte("name: warren\nruntime: go\n"), 0o600))
	for name, content := range stacks {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "Pulumi."+name+".yaml"), []byte(content), 0o600))
	}
	return dir
}

func TestReadStackFile(t *testing.T) {
	plain, secure, err := ReadStackFile(filepath.Join("..", "Pulumi.prod.yaml"))
	require.NoError(t, err)
	assert.Equal(t, "3", plain["warren:replicas"])
	assert.Equal(t, "true", plain["warren:tlsEnabled"])
	assert.Empty(t, secure, "the committed stack files carry no secrets")

	dir := project(t, map[string]string{"x": `config:
  warren:replicas: 5
  warren:command: ["a", "b"]
  warren:adminPassword:
    secure: v1:abc
`})
	plain, secure, err = ReadStackFile(filepath.Join(dir, "Pulumi.x.yaml"))
	require.NoError(t, err)
	assert.Equal(t, "5", plain["warren:replicas"])
	assert.Equal(t, `["a","b"]`, plain["warren:command"])
	assert.Equal(t, []string{"warren:adminPassword"}, secure)
	assert.NotContains(t, plain, "warren:adminPassword")
}

func TestValidateRefusesBadSettingsBeforeAnything(t *testing.T) {
	dir := project(t, map[string]string{"bad": "config:\n  warren:replicas: 0\n  warren:storageSize: 10 GB\n"})
	backend := filepath.Join(t.TempDir(), "state")
	o := Options{Stack: "bad", ProjectDir: dir, Backend: "file://" + backend}
	for name, op := range map[string]func() error{
		"preview": func() error { _, err := Preview(context.Background(), o); return err },
		"up":      func() error { _, err := Up(context.Background(), o, UpOptions{}); return err },
		"destroy": func() error { _, err := Destroy(context.Background(), o); return err },
		"init":    func() error { _, err := Init(context.Background(), o, InitOptions{}); return err },
		"render":  func() error { _, err := Render(context.Background(), o, filepath.Join(dir, "out")); return err },
	} {
		err := op()
		require.Error(t, err, name)
		assert.True(t, errors.Is(err, ErrConfig), "%s: %v", name, err)
		assert.Contains(t, err.Error(), "warren:replicas", name)
		assert.Contains(t, err.Error(), "warren:storageSize", name)
	}
	assert.NoDirExists(t, backend, "bad settings must change nothing")
	assert.NoDirExists(t, filepath.Join(dir, "out"))
	b, err := os.ReadFile(filepath.Join(dir, "Pulumi.bad.yaml"))
	require.NoError(t, err)
	assert.NotContains(t, string(b), "encryptionsalt", "no stack was created")
}

func TestValidateMissingStackFile(t *testing.T) {
	_, err := Validate(Options{Stack: "staging", ProjectDir: project(t, nil)})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrConfig))
	assert.Contains(t, err.Error(), "Pulumi.staging.yaml")
}

func TestPreflightNamesTheFix(t *testing.T) {
	dir := project(t, map[string]string{"dev": "config:\n  warren:replicas: 3\n"})
	o := Options{Stack: "dev", ProjectDir: dir, Backend: "file://" + filepath.Join(t.TempDir(), "state")}

	t.Setenv("PATH", t.TempDir())
	_, err := Init(context.Background(), o, InitOptions{})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrPreflight))
	assert.Contains(t, err.Error(), "scripts/pulumi-toolchain.sh --print-env")

	bin := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bin, "pulumi"), []byte("#!/bin/sh\nexit 1\n"), 0o755))
	t.Setenv("PATH", bin)
	t.Setenv("PULUMI_CONFIG_PASSPHRASE", "")
	t.Setenv("PULUMI_CONFIG_PASSPHRASE_FILE", "")
	_, err = Init(context.Background(), o, InitOptions{})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrPreflight))
	assert.Contains(t, err.Error(), "PULUMI_CONFIG_PASSPHRASE")
}

func TestFindProjectDir(t *testing.T) {
	dir := project(t, nil)
	sub := filepath.Join(dir, "a", "b")
	require.NoError(t, os.MkdirAll(sub, 0o700))
	got, err := FindProjectDir(sub)
	require.NoError(t, err)
	assert.Equal(t, dir, got)

	_, err = FindProjectDir(t.TempDir())
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrPreflight))
	assert.Contains(t, err.Error(), "--project-dir")
}

func TestBadStackName(t *testing.T) {
	_, err := Validate(Options{Stack: "org/dev", ProjectDir: project(t, nil)})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrConfig))
}

func TestDefaultBackend(t *testing.T) {
	t.Setenv("WARREN_CACHE_DIR", "/x/cache")
	b, err := DefaultBackend()
	require.NoError(t, err)
	assert.Equal(t, "file:///x/cache/pulumi-state", b)
	t.Setenv("WARREN_CACHE_DIR", "")
	b, err = DefaultBackend()
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(b, "/.cache/warren/pulumi-state"), b)
}

func TestSummarizeKeepsDistinctErrorLines(t *testing.T) {
	full := errors.New("failed to run update: exit status 255\ncode: 255\nstdout: Updating (dev):\n" +
		" +  kubernetes:apps/v1:StatefulSet x creating (0s) error: resource x is invalid: port name too long\n" +
		" +  kubernetes:apps/v1:StatefulSet x **creating failed** error: resource x is invalid: port name too long\n" +
		"    error: update failed\n\nstderr: \n")
	err := summarize(full)
	assert.Equal(t, "resource x is invalid: port name too long", err.Error())
	assert.ErrorIs(t, err, full)

	plain := errors.New("no error lines here")
	assert.Equal(t, plain, summarize(plain))
}

func TestSummarizeKeepsProgramErrorDetail(t *testing.T) {
	full := errors.New("failed to run preview: exit status 255\nstdout: Previewing update (dev):\n\n" +
		" +  pulumi:pulumi:Stack warren-dev create error: an unhandled error occurred: 1 error occurred:\n" +
		"Diagnostics:\n  pulumi:pulumi:Stack (warren-dev):\n" +
		"    error: an unhandled error occurred: 1 error occurred:\n" +
		"    \t* stack dev lacks the secrets warren:erlangCookie: run `warren init --stack dev`\n" +
		"    warning: something unrelated\n\n" +
		"  kubernetes:apps/v1:StatefulSet (x):\n    error: port name too long\n\n" +
		"Resources:\n    + 1 to create\n\nstderr: \n")
	err := summarize(full)
	assert.Equal(t, "an unhandled error occurred: 1 error occurred:\n* stack dev lacks the secrets warren:erlangCookie: run `warren init --stack dev`\nport name too long", err.Error())
}

// Without `warren init`, preview, up and render stop before Pulumi runs,
// naming the command that fixes it.
func TestMissingSecretsRefusedBeforePulumi(t *testing.T) {
	dir := project(t, map[string]string{"dev": "config:\n  warren:replicas: 3\n  warren:tlsEnabled: true\n"})
	backend := filepath.Join(t.TempDir(), "state")
	o := Options{Stack: "dev", ProjectDir: dir, Backend: "file://" + backend}
	t.Setenv("PATH", t.TempDir()) // no pulumi: the check must come first anyway
	for name, op := range map[string]func() error{
		"preview": func() error { _, err := Preview(context.Background(), o); return err },
		"up":      func() error { _, err := Up(context.Background(), o, UpOptions{}); return err },
		"render":  func() error { _, err := Render(context.Background(), o, filepath.Join(dir, "out")); return err },
	} {
		err := op()
		require.Error(t, err, name)
		assert.True(t, errors.Is(err, ErrConfig), "%s: %v", name, err)
		assert.Contains(t, err.Error(), "warren init --stack dev", name)
		assert.Contains(t, err.Error(), "warren:tlsCert", name)
	}
	assert.NoDirExists(t, backend)

	// Present (encrypted) secrets pass the check; the next hurdle is the CLI.
	secure := "\n  warren:%s:\n    secure: v1:abc\n"
	content := "config:\n  warren:replicas: 3"
	for _, k := range []string{"erlangCookie", "adminPassword"} {
		content += strings.ReplaceAll(secure, "%s", k)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Pulumi.dev.yaml"), []byte(content), 0o600))
	_, err := Up(context.Background(), o, UpOptions{})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrPreflight), "%v", err)
}

// The program's read of the ServiceMonitor CRD fails on a cluster without
// the Prometheus Operator; the error says so and how to get out of it.
func TestExplainMissingCRD(t *testing.T) {
	o := Options{Stack: "prod", ProjectDir: "/p"}
	engine := errors.New("up stack prod: resource 'servicemonitors.monitoring.coreos.com' does not exist")
	on := &components.Config{ServiceMonitor: true}

	err := explainMissingCRD(engine, o, on)
	assert.ErrorIs(t, err, ErrPreflight)
	assert.ErrorIs(t, err, engine, "the engine's error stays reachable")
	for _, want := range []string{"warren:serviceMonitor", "Prometheus Operator", "nothing was created", "warren:serviceMonitor: false in /p/Pulumi.prod.yaml"} {
		assert.Contains(t, err.Error(), want)
	}

	assert.Equal(t, engine, explainMissingCRD(engine, o, &components.Config{}), "switch off: not about the CRD")
	other := errors.New("up stack prod: port name too long")
	assert.Equal(t, other, explainMissingCRD(other, o, on))
}
