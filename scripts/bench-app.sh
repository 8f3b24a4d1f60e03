#!/usr/bin/env bash
# Build the app in release and measure launch-to-ready time and idle memory:
#   bash scripts/bench-app.sh [app_bench options, e.g. --runs 5 --idle-secs 5]
# Prints `bench: app_cold_start_ms <v> ms` and `bench: app_idle_pss_mb <v> MB`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CLINIC_ROOT"

bash scripts/deps.sh
say "bench: tauri build --no-bundle (release; the first build takes many minutes)"
quietly tauri_cli build --no-bundle
say "bench: cargo build -p clinic-bench --release"
quietly cargo build -p clinic-bench --release --bin app_bench
say "bench: measuring $(app_binary release) under Xvfb"
# Same display settings as the e2e run (no compositing under Xvfb).
WEBKIT_DISABLE_COMPOSITING_MODE=1 NO_AT_BRIDGE=1 \
  xvfb-run -a -s "-screen 0 1400x900x24" \
  "$CARGO_TARGET_DIR/release/app_bench" "$@" "$(app_binary release)"
