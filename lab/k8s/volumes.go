package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// VolumePool is how many PersistentVolumes the lab keeps available: enough
// for two 3-node RabbitMQ clusters and then some.
const VolumePool = 12

// VolumeSize is each pool volume's capacity; any claim up to it binds.
const VolumeSize = "20Gi"

// The lab's storage is a pool of static `local` PersistentVolumes, each a
// directory under run/volumes, behind a default StorageClass with
// WaitForFirstConsumer binding. Why not a provisioner: no provisioner image
// can be pulled here, and kube-controller-manager's built-in hostPath
// provisioner creates directories root:root 0750, which a RabbitMQ pod
// running as uid 999 (as the official image and the cluster operator do)
// cannot write. Pool directories are 0777 and `local` volumes honour
// fsGroup, so any pod security context works. A released volume is wiped
// and offered again by RecycleVolumes, which Up runs.

func (l *Lab) volumeDir(i int) string { return l.path("run", "volumes", fmt.Sprintf("pv-%02d", i)) }

func volumeName(i int) string { return fmt.Sprintf("warren-pv-%02d", i) }

const storageClassManifest = `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: ` + StorageClass + `
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain
`

func (l *Lab) volumeManifest(i int) string {
	return fmt.Sprintf(`---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: %s
  labels:
    warren.dev/lab-volume: "true"
spec:
  capacity:
    storage: %s
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: %s
  volumeMode: Filesystem
  local:
    path: %s
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - key: kubernetes.io/hostname
          operator: In
          values: [%s]
`, volumeName(i), VolumeSize, StorageClass, l.volumeDir(i), NodeName)
}

// applyAddons installs the StorageClass and the volume pool.
func (l *Lab) applyAddons(ctx context.Context) error {
	if err := l.Apply(ctx, storageClassManifest); err != nil {
		return fmt.Errorf("apply the lab StorageClass: %w", err)
	}
	return l.RecycleVolumes(ctx)
}

type pvList struct {
	Items []struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Status struct {
			Phase string `json:"phase"`
		} `json:"status"`
	} `json:"items"`
}

// RecycleVolumes makes every pool volume available: a volume whose claim
// was deleted (Released or Failed) is deleted, its directory wiped, and
// it is created anew; a missing one is created. Bound volumes are left
// alone. Call it between deployments that delete their claims.
func (l *Lab) RecycleVolumes(ctx context.Context) error {
	out, err := l.Kubectl(ctx, nil, "get", "pv", "-l", "warren.dev/lab-volume=true", "-o", "json")
	if err != nil {
		return err
	}
	var list pvList
	if err := json.Unmarshal(out, &list); err != nil {
		return fmt.Errorf("parse volumes: %w", err)
	}
	phase := map[string]string{}
	for _, pv := range list.Items {
		phase[pv.Metadata.Name] = pv.Status.Phase
	}
	var manifests strings.Builder
	for i := 1; i <= VolumePool; i++ {
		name := volumeName(i)
		p, ok := phase[name]
		switch {
		case ok && (p == "Released" || p == "Failed"):
			slog.Info("recycling a released lab volume", "pv", name)
			if err := l.deletePV(ctx, name); err != nil {
				return err
			}
		case ok:
			continue // Available, Bound or Pending: leave it
		}
		if err := os.RemoveAll(l.volumeDir(i)); err != nil {
			return fmt.Errorf("wipe %s: %w", l.volumeDir(i), err)
		}
		if err := os.MkdirAll(l.volumeDir(i), 0o777); err != nil {
			return err
		}
		// MkdirAll's mode is filtered by the umask; every writer may use it.
		if err := os.Chmod(l.volumeDir(i), 0o777); err != nil {
			return err
		}
		manifests.WriteString(l.volumeManifest(i))
	}
	_ = os.Chmod(filepath.Dir(l.volumeDir(1)), 0o755)
	if manifests.Len() == 0 {
		return nil
	}
	return l.Apply(ctx, manifests.String())
}

// deletePV deletes a volume and waits until it is gone. kubectl's own
// --wait would be cut by the lab's per-request timeout while the
// pv-protection finalizer is still being removed.
func (l *Lab) deletePV(ctx context.Context, name string) error {
	if _, err := l.Kubectl(ctx, nil, "delete", "pv", name, "--ignore-not-found", "--wait=false"); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := l.Kubectl(ctx, nil, "get", "pv", name, "--ignore-not-found", "-o", "name")
		if err == nil && strings.TrimSpace(string(out)) == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("volume %s not deleted after 2m (still used by a pod?)", name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
