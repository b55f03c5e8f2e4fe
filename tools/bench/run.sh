#!/usr/bin/env bash
# Runs Ordo (release) on a fresh embedded database or a fresh PostgreSQL database and drives it
# with loadgen; prints one JSON line per run. Usage:
#   tools/bench/run.sh sqlite|postgres [--two-processes] -- <loadgen args…>
# Example: tools/bench/run.sh sqlite -- --mode checkout --clients 16 --duration 10s
# ORDO_SERVE_ARGS adds flags to `ordo serve`; ORDO_BIN runs another server binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/ordo-target}
backend=$1; shift
two=0
if [ "${1:-}" = "--two-processes" ]; then two=1; shift; fi
[ "${1:-}" = "--" ] && shift
cargo build --release -q -p ordo-cli -p loadgen
bin=$CARGO_TARGET_DIR/release
# ORDO_BIN runs another build of the server (e.g. an older revision) under the same load generator.
ordo_bin=${ORDO_BIN:-$bin/ordo}
# Benchmarks drive thousands of requests a second from one address: no abuse limits (env, so an
# older binary without these flags runs too).
export ORDO_RATE_LIMIT_PER_IP=${ORDO_RATE_LIMIT_PER_IP:-0} ORDO_RATE_LIMIT_PER_SUBJECT=${ORDO_RATE_LIMIT_PER_SUBJECT:-0}
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
case $backend in
  sqlite) storage=(--data-dir "$dir/data") ;;
  postgres)
    db=ordo_bench_$$
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db" >/dev/null
    trap 'cleanup; psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null' EXIT
    storage=(--database-url "postgres://postgres@127.0.0.1:5432/$db") ;;
  *) echo "backend is sqlite or postgres" >&2; exit 2 ;;
esac
start() {
  "$ordo_bin" serve --addr 127.0.0.1:0 --demo "${storage[@]}" ${ORDO_SERVE_ARGS:-} > "$dir/out$1" 2> "$dir/err$1" &
  pids+=($!)
  for _ in $(seq 1 300); do grep -q "serving on" "$dir/out$1" 2>/dev/null && break; sleep 0.1; done
  grep -q "serving on" "$dir/out$1" || { echo "ordo did not start:" >&2; cat "$dir/err$1" >&2; exit 1; }
}
url_of() { grep 'serving on' "$dir/out$1" | grep -o 'http://[0-9.:]*'; }
start 1
url1=$(url_of 1)
extra=()
if [ $two = 1 ]; then start 2; extra=(--also-url "$(url_of 2)"); fi
pid_args=(); for p in "${pids[@]}"; do pid_args+=(--server-pid "$p"); done
"$bin/loadgen" --url "$url1" "${extra[@]}" "${pid_args[@]}" "$@"
