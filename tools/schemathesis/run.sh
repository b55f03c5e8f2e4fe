#!/usr/bin/env bash
# Schemathesis over /openapi.json: every operation, every check, every phase (examples, coverage,
# fuzzing, stateful), against a fresh `ordo serve --demo`. Each operation is called with a token
# of a role its policy admits (admin for staff/admin routes, the app's token for carts, payment
# tokens and orders, a signed-up shopper's for /v1/me). Exit status is Schemathesis's: 0 only when it found no failure and no
# schema error.
#
#   tools/schemathesis/run.sh [ORDO_BIN]        # default: target/release/ordo (built if missing)
#   ST_MAX_EXAMPLES=50 ST_DATABASE_URL=postgres://… tools/schemathesis/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/ordo-target}
BIN=${1:-$CARGO_TARGET_DIR/release/ordo}
if [ ! -x "$BIN" ]; then cargo build --release --bin ordo; fi
if ! command -v st >/dev/null; then
  echo "schemathesis is not installed: pip install 'schemathesis>=4.3'" >&2
  exit 2
fi

WORK=$(mktemp -d)
LOG=$WORK/ordo.log
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
DB_ARGS=(--data-dir "$WORK/data")
if [ -n "${ST_DATABASE_URL:-}" ]; then
  DB=ordo_st_$$
  psql "$ST_DATABASE_URL" -qc "CREATE DATABASE $DB" >/dev/null
  trap 'cleanup; psql "$ST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null' EXIT
  DB_ARGS=(--database-url "${ST_DATABASE_URL%/*}/$DB")
fi
"$BIN" serve --demo --addr 127.0.0.1:0 "${DB_ARGS[@]}" --rate-limit-per-ip 0 --rate-limit-per-subject 0 >"$LOG" 2>&1 &
PID=$!
URL=
for _ in $(seq 1 300); do
  URL=$(grep -o 'serving on http://[0-9.:]*' "$LOG" | head -1 | sed 's/serving on //') || true
  [ -n "$URL" ] && break
  kill -0 "$PID" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
  sleep 0.1
done
[ -n "$URL" ] || { echo "ordo did not start" >&2; cat "$LOG" >&2; exit 1; }
token() {
  curl -fsS "$URL/v1/auth/token" -d grant_type=client_credentials -d client_id="$1" -d client_secret="$2" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
export ORDO_ST_ADMIN_TOKEN ORDO_ST_APP_TOKEN ORDO_ST_SHOPPER_TOKEN
ORDO_ST_ADMIN_TOKEN=$(token demo-admin demo-admin-secret)
ORDO_ST_APP_TOKEN=$(token demo-app demo-secret)
# A signed-up shopper for the /v1/me routes.
ORDO_ST_SHOPPER_TOKEN=$(curl -fsS "$URL/v1/auth/signup" -H 'Content-Type: application/json' \
  -d '{"email": "fuzz.shopper@example.com", "password": "correct horse battery staple", "name": "Fuzz Shopper"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
echo "== schemathesis against $URL (log: $LOG)"
set +e
# One worker: CPython 3.11's parser is not safe when two threads turn Hypothesis lambdas into
# descriptions at once ("SystemError: AST constructor recursion depth mismatch", seen once).
st --config-file tools/schemathesis/schemathesis.toml run "$URL/openapi.json" \
  --checks all --phases examples,coverage,fuzzing,stateful \
  --max-examples "${ST_MAX_EXAMPLES:-25}" --seed "${ST_SEED:-1}" --no-color --workers 1 "${@:2}"
STATUS=$?
set -e
if grep -q 'panicked' "$LOG"; then echo "ordo panicked during the run:" >&2; grep -A3 panicked "$LOG" >&2; STATUS=1; fi
exit $STATUS
