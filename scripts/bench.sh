#!/usr/bin/env bash
# The benchmark (bench/): warren's drain against hand-made shovels and a raw
# amqp091-go copier at 1, 4 and 12 queues, warren's --parallel, its peak RSS
# over a million messages, and definitions import against a raw POST. Builds
# the CLI, brings the broker lab up (installing RabbitMQ when missing, as
# `make test` does), waits until no test uses the lab, and prints one table.
#
# Sizes: WARREN_BENCH_MESSAGES (120000 per load), WARREN_BENCH_LOADS
# (1,4,12), WARREN_BENCH_PER_NODE (1,4 besides the default 2; 0 skips),
# WARREN_BENCH_ROUNDS (3; the table shows medians),
# WARREN_BENCH_RSS_MESSAGES (1000000, 0 skips), WARREN_BENCH_IMPORT_QUEUES
# (3000, 0 skips), WARREN_BENCH_IMPORT_ROUNDS (1). Takes 30-45 minutes on
# 2 cores.
#
# Not to be confused with `warren bench`, the load check of a deployed
# cluster (see README, "Load check").
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

mkdir -p bin
go build -o bin/warren ./cmd/warren
./bin/warren lab up
echo "machine: $(nproc) CPUs, $(uptime)"
WARREN_BENCH_BIN="$PWD/bin/warren" go test -count=1 -run '^$' -bench Cutover -benchtime 1x -timeout 4h ./bench/ "$@"
