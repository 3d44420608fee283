#!/usr/bin/env bash
# The main job end to end on the local lab: a source broker and a 3-node
# target cluster on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

mkdir -p bin
go build -o bin/warren ./cmd/warren
./bin/warren lab up
eval "$(./bin/warren lab env)"
echo "warren is pointed at the lab:"
./bin/warren lab env | sed -E 's#://([^:]+):[^@]*@#://\1:xxxxx@#g'
