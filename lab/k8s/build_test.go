package k8s

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

func TestWrapperGoModReplacesEveryStagingModule(t *testing.T) {
	data, err := WrapperGoMod("testdata/kubernetes.go.mod")
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		t.Fatalf("generated go.mod does not parse: %v\n%s", err, data)
	}
	if f.Go.Version != "1.26.0" {
		t.Errorf("go %s, want upstream's 1.26.0", f.Go.Version)
	}
	if len(f.Require) != 1 || f.Require[0].Mod.Path != "k8s.io/kubernetes" || f.Require[0].Mod.Version != KubernetesVersion {
		t.Errorf("requires %v, want only k8s.io/kubernetes %s", f.Require, KubernetesVersion)
	}
	got := map[string]string{}
	for _, r := range f.Replace {
		if r.Old.Path != r.New.Path {
			t.Errorf("%s replaced by another module %s", r.Old.Path, r.New.Path)
		}
		got[r.Old.Path] = r.New.Version
	}
	for _, m := range []string{"k8s.io/api", "k8s.io/client-go", "k8s.io/kubelet"} {
		if got[m] != StagingVersion {
			t.Errorf("%s replaced by version %q, want %s", m, got[m], StagingVersion)
		}
	}
	if len(got) != 3 {
		t.Errorf("replaces %v, want exactly the 3 staging modules", got)
	}
}

func TestWrapperGoModRefusesOtherGoMod(t *testing.T) {
	p := filepath.Join(t.TempDir(), "go.mod")
	if err := os.WriteFile(p, []byte("module example.com/x\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WrapperGoMod(p); err == nil || !strings.Contains(err.Error(), "no staging module") {
		t.Fatalf("want a clear refusal, got %v", err)
	}
}

func TestImageArchiveIsWhatCtrImports(t *testing.T) {
	dir := t.TempDir()
	layer := filepath.Join(dir, "layer.tar")
	if err := singleFileLayer(layer, "pause", "testdata/kubernetes.go.mod"); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(layer)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	diffID := hex.EncodeToString(sum[:])
	dst := filepath.Join(dir, "image.tar")
	if err := WriteImageArchive(dst, "warren.local/test:1", layer, ImageConfig{Entrypoint: []string{"/pause"}}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		files[h.Name] = data
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(manifest) != 1 || len(manifest[0].RepoTags) != 1 || manifest[0].RepoTags[0] != "warren.local/test:1" {
		t.Fatalf("manifest %+v", manifest)
	}
	if got := files[manifest[0].Layers[0]]; string(got) != string(raw) {
		t.Errorf("layer in the archive differs from the layer written (%d vs %d bytes)", len(got), len(raw))
	}
	cfg := files[manifest[0].Config]
	cs := sha256.Sum256(cfg)
	if manifest[0].Config != hex.EncodeToString(cs[:])+".json" {
		t.Errorf("config named %s, not by its digest", manifest[0].Config)
	}
	var config struct {
		Config ImageConfig
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(cfg, &config); err != nil {
		t.Fatal(err)
	}
	if len(config.RootFS.DiffIDs) != 1 || config.RootFS.DiffIDs[0] != "sha256:"+diffID {
		t.Errorf("diff_ids %v, want sha256:%s", config.RootFS.DiffIDs, diffID)
	}
	if len(config.Config.Entrypoint) != 1 || config.Config.Entrypoint[0] != "/pause" {
		t.Errorf("entrypoint %v", config.Config.Entrypoint)
	}
}

func TestSplitRuleKeepsQuotedComments(t *testing.T) {
	got := splitRule(`POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING`)
	want := []string{"POSTROUTING", "-m", "comment", "--comment", "kubernetes postrouting rules", "-j", "KUBE-POSTROUTING"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
	if !jumpsToOwned(strings.Fields("-A POSTROUTING -j KUBE-POSTROUTING")) || jumpsToOwned(strings.Fields("-A POSTROUTING -j MASQUERADE")) {
		t.Fatal("jumpsToOwned misjudges")
	}
}
