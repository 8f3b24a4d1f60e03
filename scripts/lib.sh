# shellcheck shell=bash
# Helpers for the scripts in this folder (sourced, not run).
CLINIC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CLINIC_ROOT
# shellcheck source=scripts/env.sh
source "$CLINIC_ROOT/scripts/env.sh"

# say MESSAGE: one progress line on stderr.
say() { printf '==> %s\n' "$*" >&2; }

# quietly CMD...: run CMD with its output captured; print the output only
# when it fails. Returns CMD's status.
quietly() {
  local log status=0
  log="$(mktemp)"
  "$@" >"$log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    cat "$log" >&2
    printf '!!! failed (exit %s): %s\n' "$status" "$*" >&2
  fi
  rm -f "$log"
  return "$status"
}

# tauri_cli ARGS...: the project's pinned Tauri CLI (from ui/node_modules),
# run from the repo root where tauri.conf.json lives.
tauri_cli() {
  local bin="$CLINIC_ROOT/ui/node_modules/.bin/tauri"
  if [ ! -x "$bin" ]; then
    echo "Tauri CLI missing at $bin (run scripts/deps.sh; ui/package.json needs @tauri-apps/cli)" >&2
    return 1
  fi
  (cd "$CLINIC_ROOT" && "$bin" "$@")
}

# app_binary [debug|release]: path of the built app binary.
app_binary() {
  printf '%s/%s/clinic-workstation\n' "$CARGO_TARGET_DIR" "${1:-debug}"
}
