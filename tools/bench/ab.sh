#!/usr/bin/env bash
# The placement rows of BENCHMARKS.md for two server builds in one sitting, interleaved A B A B so
# the machine's drift hits both alike, with the floors first. Every order comes from a synced cart
# (`cart_id`, the mobile path). Prints "== <name>" and one JSON line per run.
# Usage: tools/bench/ab.sh OLD_ORDO_BINARY [SECONDS_PER_RUN] [REPEATS]
# Example: tools/bench/ab.sh ~/.cache/ordo-target-old/release/ordo 8 2
set -uo pipefail
cd "$(dirname "$0")/../.."
old=${1:?the other build of ordo to compare against}
t=${2:-8}
reps=${3:-2}
run() { local label=$1; shift; echo "== $label"; tools/bench/run.sh "$@" --json 2>/dev/null | tail -1; }
both() {
  local label=$1; shift
  for r in $(seq 1 "$reps"); do
    ORDO_BIN=$old run "$label [old] #$r" "$@"
    run "$label [new] #$r" "$@"
  done
}
echo "== git $(git rev-parse --short HEAD) against $old"
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/ordo-target} cargo build --release -q -p ordo-cli -p loadgen
echo "== floor postgres"; ../shared/perf/pg_floor.sh "$t"
echo "== floor sqlite FULL"; ../shared/perf/sqlite_floor.sh 20000 FULL
both "sqlite saturation 64 clients" sqlite -- --mode order --clients 64 --duration "${t}s" --skus 1000 --tokens 40000
both "postgres saturation 64 clients" postgres -- --mode order --clients 64 --duration "${t}s" --skus 1000 --tokens 20000
both "postgres two processes one hot SKU 200 clients" postgres --two-processes -- --mode order --clients 200 --duration "${t}s" --skus 1 --tokens 20000
both "sqlite open loop 1000/s" sqlite -- --mode order --rate 1000 --duration "${t}s" --skus 1000
both "postgres open loop 1000/s" postgres -- --mode order --rate 1000 --duration "${t}s" --skus 1000
run "sqlite checkout open loop 300/s" sqlite -- --mode checkout --rate 300 --duration "${t}s" --skus 1000
run "postgres checkout open loop 300/s" postgres -- --mode checkout --rate 300 --duration "${t}s" --skus 1000
run "sqlite flash sale 200 buyers 50 units" sqlite -- --flash-stock 50 --buyers 200
run "postgres two processes flash sale 200 buyers 50 units" postgres --two-processes -- --flash-stock 50 --buyers 200
