#!/usr/bin/env bash
# Schemathesis against the real server: it generates requests from
# /openapi.json (every documented operation, so new endpoints are covered
# by themselves) and checks every answer against the document, with all
# checks. The run is reproducible: deterministic generation by default (the
# same cases every run), or a seeded random run with SCHEMATHESIS_SEED.
#   bash scripts/with-pg.sh bash scripts/schemathesis.sh
# Env: SCHEMATHESIS_SEED (unset: deterministic), SCHEMATHESIS_MAX_TIME (seconds,
# default 120), SCHEMATHESIS_MAX_EXAMPLES (per operation, default 40).
# Needs CLINIC_TEST_PG_URL (scripts/with-pg.sh sets it) unless run by
# test-all.sh, which starts the PostgreSQL.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CLINIC_ROOT"

if [ -n "${SCHEMATHESIS_SEED:-}" ]; then
  generation=(--seed "$SCHEMATHESIS_SEED")
else
  generation=(--generation-deterministic)
fi
max_time="${SCHEMATHESIS_MAX_TIME:-120}"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-40}"
st="$SCHEMATHESIS_ROOT/bin/schemathesis"
[ -x "$st" ] || { echo "schemathesis missing at $st (run scripts/deps.sh)" >&2; exit 1; }
[ -n "${CLINIC_TEST_PG_URL:-}" ] || { echo "CLINIC_TEST_PG_URL is not set: run through scripts/with-pg.sh" >&2; exit 1; }

quietly cargo build -q -p clinic-server
server="$CARGO_TARGET_DIR/debug/clinic-server"

# A database of its own on the test cluster.
db="schemathesis_$$"
base="${CLINIC_TEST_PG_URL%/*}"
psql -q "$CLINIC_TEST_PG_URL" -c "CREATE DATABASE $db" >/dev/null
export CLINIC_SERVER_DATABASE_URL="$base/$db"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export CLINIC_SERVER_LISTEN="127.0.0.1:$port"
CLINIC_SERVER_TOKEN_SECRET="$(head -c 48 /dev/urandom | base64)"
export CLINIC_SERVER_TOKEN_SECRET
# The generator sends thousands of requests from one user and one address.
export CLINIC_SERVER_SIGN_INS_PER_ACCOUNT_PER_MINUTE=100000
export CLINIC_SERVER_SIGN_INS_PER_ADDRESS_PER_MINUTE=100000
export CLINIC_SERVER_MAX_REQUESTS_PER_USER=64

"$server" migrate >/dev/null
"$server" create-clinic --code st --name "Schemathesis clinic" >/dev/null
echo 'Schemathesis-2026' | "$server" create-user --clinic st --username st.admin \
  --display-name "Schemathesis Admin" --role admin >/dev/null
"$server" serve >"${TMPDIR:-/tmp}/schemathesis-server.log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true' EXIT
url="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1] + '/ready', timeout=1)" "$url" 2>/dev/null && break
  sleep 0.1
done
token="$(python3 - "$url" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/v1/auth/sign-in", method="POST",
    data=json.dumps({"clinic": "st", "username": "st.admin", "password": "Schemathesis-2026"}).encode(),
    headers={"content-type": "application/json"})
print(json.load(urllib.request.urlopen(req))["access_token"])
PY
)"

say "schemathesis: ${generation[*]}, at most ${max_time}s, $max_examples examples per operation"
say "schemathesis: replay with ${SCHEMATHESIS_SEED:+SCHEMATHESIS_SEED=$SCHEMATHESIS_SEED }bash scripts/with-pg.sh bash scripts/schemathesis.sh"
# A seeded random run (SCHEMATHESIS_SEED) still finds one gap the document
# does not state yet: client_seq beyond the 64-bit range.
# One worker: with two, Hypothesis (6.170) failed inside its own lambda
# description cache ("AST constructor recursion depth mismatch").
# The live channel is a stream that never ends: it is checked by the tests.
"$st" --config-file crates/clinic-server/schemathesis.toml run "$url/openapi.json" \
  --checks all \
  --max-examples "$max_examples" \
  --max-time "$max_time" \
  --workers 1 \
  "${generation[@]}" \
  --exclude-path /v1/sync/events \
  --request-timeout 10 \
  -H "Authorization: Bearer $token" \
  --no-color
