#!/usr/bin/env bash
# Run one command with a throwaway PostgreSQL on loopback, as the test command
# does: CLINIC_TEST_PG_URL is set for it, and the cluster is removed after.
#   bash scripts/with-pg.sh cargo test -p clinic-server
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/pg.sh
source "$CLINIC_ROOT/scripts/pg.sh"
trap pg_stop EXIT
pg_start "$(mktemp -d /tmp/clinic-pg.XXXXXX)"
say "PostgreSQL at $CLINIC_TEST_PG_URL"
"$@"
