#!/usr/bin/env bash
# The main job end to end on the local lab: a source broker and a 3-node
# target cluster on this machine. Seeds the source with a sample topology and
# a backlog, then migrates it into the cluster with one `warren migrate`.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

mkdir -p bin
go build -o bin/warren ./cmd/warren
./bin/warren lab up
eval "$(./bin/warren lab env)"

# A fresh sample every run: vhosts demo-shop and demo-billing, 100 messages
# in each of their 20 queues (an earlier demo's leftovers are removed).
./bin/warren lab seed --prefix demo --messages 100

# The fixture has priority, lazy and located queues that quorum queues
# refuse; keep those classic rather than abort (the default).
./bin/warren migrate --vhost demo-shop,demo-billing --incompatible keep-classic
