#!/usr/bin/env bash
# Every check CI runs, in order; keeps going after a failed step so one run
# shows all failures. Prints one line per step and a final "N passed, N failed".
#   bash scripts/test-all.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CLINIC_ROOT"

passed=0
failed=0
failed_steps=()

# step NAME CMD...: run CMD quietly, print one status line, count the result.
step() {
  local name="$1" start status=0
  shift
  start=$SECONDS
  quietly "$@" || status=$?
  if [ "$status" -eq 0 ]; then
    passed=$((passed + 1))
    printf '==> ok    %-14s %4ss\n' "$name" "$((SECONDS - start))" >&2
  else
    failed=$((failed + 1))
    failed_steps+=("$name")
    printf '==> FAIL  %-14s %4ss\n' "$name" "$((SECONDS - start))" >&2
  fi
  return "$status"
}

skip() {
  failed=$((failed + 1))
  failed_steps+=("$1")
  printf '==> SKIP  %-14s (%s; counted as failed)\n' "$1" "$2" >&2
}

finish() {
  if [ "$failed" -gt 0 ]; then
    echo "failed: ${failed_steps[*]}" >&2
  fi
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

# Without the toolchain and system packages nothing else can run.
if ! step deps bash scripts/deps.sh; then
  finish || exit 1
fi

# --- Services for the tests --------------------------------------------------
# A throwaway PostgreSQL on loopback for the server and sync tests; they make
# one database each from CLINIC_TEST_PG_URL.
# shellcheck source=scripts/pg.sh
source scripts/pg.sh
trap pg_stop EXIT
if ! step postgres pg_start "$(mktemp -d /tmp/clinic-pg.XXXXXX)"; then
  finish || exit 1
fi

step fmt cargo fmt --all -- --check || true
step clippy cargo clippy --workspace --all-targets -- -D warnings || true
# The library crates' tests; ts-rs rewrites ui/src/bindings as they run.
step cargo-test cargo test --workspace || true
step bindings bash scripts/check-bindings.sh || true
# Requests generated from /openapi.json against the real server, all checks.
step schemathesis bash scripts/schemathesis.sh || true
step ui-check npm --prefix ui run check || true
step ui-lint npm --prefix ui run lint || true
step ui-test npm --prefix ui run test || true

# `tauri build` (not plain cargo) adds --features tauri/custom-protocol, so the
# binary serves ui/dist instead of loading the dev server URL.
if step app-build tauri_cli build --debug --no-bundle; then
  e2e_log="$(mktemp)"
  e2e_status=0
  e2e_start=$SECONDS
  bash tests/e2e/run.sh >"$e2e_log" 2>&1 || e2e_status=$?
  # node's reporters end with "ℹ pass N" / "ℹ fail N" (spec) or "# pass N" (tap).
  counts="$({ grep -E '^(ℹ|#) (pass|fail) [0-9]+' "$e2e_log" || true; } | sed -E 's/^(ℹ|#) //' | paste -sd, - | sed 's/,/, /g')"
  if [ "$e2e_status" -eq 0 ]; then
    passed=$((passed + 1))
    printf '==> ok    %-14s %4ss  (%s)\n' e2e "$((SECONDS - e2e_start))" "${counts:-no counts}" >&2
  else
    cat "$e2e_log" >&2
    failed=$((failed + 1))
    failed_steps+=(e2e)
    printf '==> FAIL  %-14s %4ss  (%s)\n' e2e "$((SECONDS - e2e_start))" "${counts:-no counts}" >&2
  fi
  rm -f "$e2e_log"
else
  skip e2e "app build failed"
fi

finish
