#!/usr/bin/env bash
# End-to-end suites: drive the built app through tauri-driver (WebKitWebDriver)
# under a private Xvfb display. Assumes the app is built:
#   ui/node_modules/.bin/tauri build --debug --no-bundle
# Usage: tests/e2e/run.sh [node --test args...]   (default: every tests/e2e/*.test.mjs)
# Env: CLINIC_APP_BINARY (app under test), E2E_PORT (tauri-driver port; default
# the first free four from 4444: WebKitWebDriver on port+1, and a second
# tauri-driver on port+2/port+3 for suites that run two apps at once).
# The sync suite also gets a throwaway PostgreSQL (scripts/pg.sh,
# $CLINIC_TEST_PG_URL) and the clinic-server binary (built here unless
# CLINIC_SERVER_BINARY is set).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$ROOT/scripts/lib.sh"

if [ -z "${CLINIC_E2E_IN_XVFB:-}" ]; then
  command -v xvfb-run >/dev/null || { echo "e2e: xvfb-run missing (run scripts/deps.sh)" >&2; exit 1; }
  # No compositing under Xvfb, or the webview stays blank (tauri#15936).
  # The screen is two windows wide, so suites running two apps can put them
  # side by side and each one's screenshot shows that app.
  # No D-Bus session bus is started: the app and WebKit run fine without one
  # (checked). Wrap this in `dbus-run-session --` once a suite needs the
  # Secret Service (keyring).
  exec env CLINIC_E2E_IN_XVFB=1 WEBKIT_DISABLE_COMPOSITING_MODE=1 NO_AT_BRIDGE=1 \
    xvfb-run -a -s "-screen 0 2800x900x24" bash "${BASH_SOURCE[0]}" "$@"
fi

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -n "${E2E_PORT:-}" ]; then
  port="$E2E_PORT"
else
  # 4444 unless another run (this machine is shared) holds it or the next three.
  port=4444
  while port_busy "$port" || port_busy "$((port + 1))" || port_busy "$((port + 2))" || port_busy "$((port + 3))"; do
    port=$((port + 4))
    [ "$port" -le 4540 ] || { echo "e2e: no four free ports in 4444-4543" >&2; exit 1; }
  done
fi
export TAURI_DRIVER_URL="http://127.0.0.1:$port"
export TAURI_DRIVER_URL_2="http://127.0.0.1:$((port + 2))"
artifacts="$ROOT/tests/e2e/artifacts"
mkdir -p "$artifacts"
driver_log="$artifacts/tauri-driver.log"

command -v tauri-driver >/dev/null || { echo "e2e: tauri-driver missing (run scripts/deps.sh)" >&2; exit 1; }
command -v WebKitWebDriver >/dev/null || { echo "e2e: WebKitWebDriver missing (apt webkit2gtk-driver)" >&2; exit 1; }

driver_ready() {
  node -e 'fetch(process.argv[1] + "/status", { signal: AbortSignal.timeout(2000) })
    .then((r) => r.json()).then((j) => process.exit(j.value && j.value.ready ? 0 : 1), () => process.exit(1))' "$1"
}

for p in "$port" "$((port + 1))" "$((port + 2))" "$((port + 3))"; do
  if port_busy "$p"; then
    echo "e2e: port $p is in use; stop that or set E2E_PORT" >&2
    exit 1
  fi
done

# The sync suite's server: the binary, and a throwaway PostgreSQL.
if [ -z "${CLINIC_SERVER_BINARY:-}" ]; then
  say "e2e: building clinic-server"
  (cd "$ROOT" && cargo build -q -p clinic-server)
fi
source "$ROOT/scripts/pg.sh"
pg_dir="$(mktemp -d "${TMPDIR:-/tmp}/clinic-e2e-pg.XXXXXX")"
chmod 755 "$pg_dir"
pg_start "$pg_dir" || { echo "e2e: PostgreSQL did not start" >&2; exit 1; }

# Own sessions (process groups) so stopping one also stops its WebKitWebDriver and any app left.
driver_pids=()
cleanup() {
  for pid in "${driver_pids[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pg_stop
  rm -rf "$pg_dir"
}
trap cleanup EXIT

# start_driver PORT LOG: tauri-driver on PORT (WebKitWebDriver on PORT+1).
start_driver() {
  local p="$1" log="$2" started pid url="http://127.0.0.1:$1"
  started=$(date +%s%N)
  setsid tauri-driver --port "$p" --native-port "$((p + 1))" >"$log" 2>&1 &
  pid=$!
  driver_pids+=("$pid")
  for _ in $(seq 1 300); do
    driver_ready "$url" && break
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "e2e: tauri-driver exited" >&2; exit 1; }
    sleep 0.1
  done
  driver_ready "$url" || { cat "$log" >&2; echo "e2e: tauri-driver not ready after 30 s" >&2; exit 1; }
  say "e2e: tauri-driver ready on :$p in $(( ($(date +%s%N) - started) / 1000000 )) ms; display $DISPLAY"
}
start_driver "$port" "$driver_log"
start_driver "$((port + 2))" "$artifacts/tauri-driver-2.log"

cd "$ROOT"
if [ "$#" -eq 0 ]; then
  mapfile -t suites < <(find tests/e2e -maxdepth 1 -name '*.test.mjs' | sort)
  if [ "${#suites[@]}" -eq 0 ]; then
    echo "e2e: no tests/e2e/*.test.mjs suites" >&2
    exit 1
  fi
  set -- "${suites[@]}"
fi
status=0
# One app at a time: suites share the display and the driver port.
node --test --test-reporter=spec --test-concurrency=1 "$@" || status=$?
if [ "$status" -ne 0 ]; then
  echo "e2e: failed (exit $status); screenshots in tests/e2e/artifacts/, driver log tail:" >&2
  tail -n 40 "$driver_log" >&2 || true
fi
exit "$status"
