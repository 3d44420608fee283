#!/usr/bin/env bash
# The whole fault suite (`make faults`): every case of faults/ against the
# local lab, each with real processes killed, alarms raised, a TCP proxy
# stalling an API. `make test` runs only its fast cases. Prints the table
# case | lost | duplicates | bound | first exit | rerun exit | seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

mkdir -p bin
go build -o bin/warren ./cmd/warren
./bin/warren lab up
WARREN_FAULTS=all go test -count=1 -timeout 90m -v ./faults/ "$@"
