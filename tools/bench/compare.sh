#!/usr/bin/env bash
# The placement rows for several server builds in one sitting, interleaved (each row runs every
# build in turn, twice), floors first; every order from a synced cart. Prints one compact JSON line
# per run. Usage: tools/bench/compare.sh [SECONDS] NAME=ORDO_BINARY...
# Example: tools/bench/compare.sh 8 old=~/.cache/ordo-target-old/release/ordo head=target/release/ordo
set -uo pipefail
cd "$(dirname "$0")/../.."
t=${1:?seconds per run}; shift
run() { local label=$1; shift; echo "== $label"; tools/bench/run.sh "$@" --json 2>/dev/null | tail -1 | jq -c '{placed, ops: .orders_per_s, p50: .order_latency.p50_ms, p99: .order_latency.p99_ms, errors, oversold}'; }
date
echo "== floor postgres"; ../shared/perf/pg_floor.sh "$t"
echo "== floor sqlite FULL"; ../shared/perf/sqlite_floor.sh 20000 FULL
for r in 1 2; do
  for build in "$@"; do
    name=${build%%=*}; bin=${build#*=}
    ORDO_BIN=$bin run "sqlite sat64 [$name] #$r" sqlite -- --mode order --clients 64 --duration "${t}s" --skus 1000 --tokens 40000
    ORDO_BIN=$bin run "pg sat64 [$name] #$r" postgres -- --mode order --clients 64 --duration "${t}s" --skus 1000 --tokens 20000
    ORDO_BIN=$bin run "pg hot2p [$name] #$r" postgres --two-processes -- --mode order --clients 200 --duration "${t}s" --skus 1 --tokens 20000
  done
done
date
