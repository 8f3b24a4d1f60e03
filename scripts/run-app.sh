#!/usr/bin/env bash
# Build and start the workstation on its default embedded SQLite database
# (the app picks a path under the user's data dir and offers demo data on the
# first start). Extra arguments go to the app, e.g. `--db /tmp/try.db`.
#   bash scripts/run-app.sh [app args...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bash "$CLINIC_ROOT/scripts/deps.sh"
say "app: tauri build --debug --no-bundle (first build takes minutes)"
# The CLI builds ui/dist and adds --features tauri/custom-protocol, so the
# binary serves the built UI and needs no Vite dev server.
quietly tauri_cli build --debug --no-bundle
say "app: starting $(app_binary debug)"
exec "$(app_binary debug)" "$@"
