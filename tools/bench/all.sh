#!/usr/bin/env bash
# Every figure of BENCHMARKS.md in one sitting: the machine's floors, then Ordo on both backends.
# Prints "== <name>" and one JSON line per run. Takes about 6 minutes.
# Usage: tools/bench/all.sh [SECONDS_PER_RUN]
set -uo pipefail
cd "$(dirname "$0")/../.."
t=${1:-10}
run() { name=$1; shift; echo "== $name"; tools/bench/run.sh "$@" --json 2>/dev/null | tail -1; }
echo "== git $(git rev-parse --short HEAD)"
echo "== floor postgres"; ../shared/perf/pg_floor.sh "$t"
echo "== floor sqlite FULL"; ../shared/perf/sqlite_floor.sh 20000 FULL
for b in sqlite postgres; do
  for c in 1 16 200; do run "$b checkout closed $c clients" "$b" -- --mode checkout --clients "$c" --duration "${t}s" --skus 200; done
  run "$b order-only saturation 64 clients" "$b" -- --mode order --clients 64 --duration "${t}s" --skus 1000
  run "$b order-only open loop 1000/s" "$b" -- --mode order --rate 1000 --duration "${t}s" --skus 1000
  run "$b checkout open loop 300/s" "$b" -- --mode checkout --rate 300 --duration "${t}s" --skus 1000
  run "$b flash sale 200 buyers 50 units" "$b" -- --flash-stock 50 --buyers 200
done
run "postgres two processes saturation 64 clients" postgres --two-processes -- --mode order --clients 64 --duration "${t}s" --skus 1000
run "postgres two processes one hot SKU 64 clients" postgres --two-processes -- --mode order --clients 64 --duration "${t}s" --skus 1
run "postgres two processes one hot SKU 200 clients" postgres --two-processes -- --mode order --clients 200 --duration "${t}s" --skus 1
export ORDO_SERVE_ARGS="--sandbox-gateway-latency 150ms"
run "sqlite open loop 1000/s, gateway latency 150ms" sqlite -- --mode order --rate 1000 --duration "${t}s" --skus 1000
run "postgres open loop 1000/s, gateway latency 150ms" postgres -- --mode order --rate 1000 --duration "${t}s" --skus 1000
unset ORDO_SERVE_ARGS
run "postgres two processes flash sale 200 buyers 50 units" postgres --two-processes -- --flash-stock 50 --buyers 200
