#!/usr/bin/env bash
# The Kubernetes end-to-end run (`make e2e`; `make test` runs it too): builds what the
# local Kubernetes lab needs (cached in ${WARREN_K8S_DIR:-~/.cache/warren/k8s},
# so only the first run on a machine pays for it), brings the lab up and runs
# its tests. Needs root. Leaves the lab down afterwards unless
# WARREN_K8S_KEEP=1. On failure, daemon logs, pod logs and events are in
# $WARREN_K8S_DIR/failure/ (the path is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

now() { date +%s; }
t0=$(now)
mkdir -p bin
go build -o bin/warren ./cmd/warren

# Build first, on its own: the longest step (Kubernetes, CoreDNS, images: ~15 min cold on
# 2 cores), so its time is reported apart from the lab's.
./bin/warren lab k8s build
t1=$(now)

rc=0
if ! ./bin/warren lab k8s up; then
	echo "e2e: the Kubernetes lab did not come up" >&2
	./bin/warren lab k8s collect || true
	rc=1
fi
t2=$(now)
lab_ok=$rc # e2e package: run it only on a lab that came up

if [ "$rc" = 0 ]; then
	WARREN_E2E=1 go test -count=1 -timeout 60m -v ./lab/k8s/ || rc=$?
fi
t3=$(now)

# --- e2e package (issue 7): warren up/migrate/verify/destroy on the lab. It
# runs even when the lab tests failed, so one run reports both; it brings the
# lab back up itself if a lab test took it down, and needs the Pulumi
# toolchain on PATH (built and cached by scripts/pulumi-toolchain.sh).
if [ "$lab_ok" = 0 ]; then
	if toolchain=$(scripts/pulumi-toolchain.sh --print-env); then
		eval "$toolchain"
		WARREN_E2E=1 go test -count=1 -timeout 50m -v ./e2e/ || rc=1
	else
		echo "e2e: the Pulumi toolchain did not build" >&2
		rc=1
	fi
fi
t3e=$(now)
# --- end e2e package

if [ "${WARREN_K8S_KEEP:-}" != 1 ]; then
	./bin/warren lab k8s down || rc=1
fi
t4=$(now)

echo "e2e timings: build $((t1 - t0))s, lab up $((t2 - t1))s, lab tests $((t3 - t2))s, e2e package $((t3e - t3))s, down $((t4 - t3e))s, total $((t4 - t0))s"
exit "$rc"
