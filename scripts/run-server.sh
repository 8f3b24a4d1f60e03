#!/usr/bin/env bash
# A central server to try sync against, on this machine: a throwaway
# PostgreSQL, the clinic `demo`, an admin `clinic.admin` and a reception user
# `clinic.reception` (password Clinic-Server-2026 for both), serving on
# http://127.0.0.1:8080 until Ctrl-C. Enrol a workstation with that address
# and clinic code `demo` (Admin → Settings → Central server).
#   bash scripts/run-server.sh [PORT]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/pg.sh
source "$CLINIC_ROOT/scripts/pg.sh"
cd "$CLINIC_ROOT"

port="${1:-8080}"
bash scripts/deps.sh
say "building clinic-server"
quietly cargo build -p clinic-server
server="$CARGO_TARGET_DIR/debug/clinic-server"

trap pg_stop EXIT
pg_start "$(mktemp -d /tmp/clinic-server-pg.XXXXXX)"
export CLINIC_SERVER_DATABASE_URL="$CLINIC_TEST_PG_URL"
export CLINIC_SERVER_LISTEN="127.0.0.1:$port"
CLINIC_SERVER_TOKEN_SECRET="$(head -c 48 /dev/urandom | base64)"
export CLINIC_SERVER_TOKEN_SECRET

"$server" migrate >/dev/null
"$server" create-clinic --code demo --name "Demo clinic" >/dev/null
echo 'Clinic-Server-2026' | "$server" create-user --clinic demo --username clinic.admin \
  --display-name "Clinic Admin" --role admin >/dev/null
echo 'Clinic-Server-2026' | "$server" create-user --clinic demo --username clinic.reception \
  --display-name "Clinic Reception" --role reception >/dev/null
say "serving http://127.0.0.1:$port (clinic code: demo; users clinic.admin, clinic.reception; password Clinic-Server-2026)"
"$server" serve
