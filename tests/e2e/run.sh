#!/usr/bin/env bash
# End-to-end suites: drive the built app through tauri-driver (WebKitWebDriver)
# under a private Xvfb display. Assumes the app is built:
#   ui/node_modules/.bin/tauri build --debug --no-bundle
# Usage: tests/e2e/run.sh [node --test args...]   (default: every tests/e2e/*.test.mjs)
# Env: CLINIC_APP_BINARY (app under test), E2E_PORT (tauri-driver port; default
# the first free pair from 4444, WebKitWebDriver on port+1).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$ROOT/scripts/lib.sh"

if [ -z "${CLINIC_E2E_IN_XVFB:-}" ]; then
  command -v xvfb-run >/dev/null || { echo "e2e: xvfb-run missing (run scripts/deps.sh)" >&2; exit 1; }
  # No compositing under Xvfb, or the webview stays blank (tauri#15936).
  # No D-Bus session bus is started: the app and WebKit run fine without one
  # (checked). Wrap this in `dbus-run-session --` once a suite needs the
  # Secret Service (keyring).
  exec env CLINIC_E2E_IN_XVFB=1 WEBKIT_DISABLE_COMPOSITING_MODE=1 NO_AT_BRIDGE=1 \
    xvfb-run -a -s "-screen 0 1400x900x24" bash "${BASH_SOURCE[0]}" "$@"
fi

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -n "${E2E_PORT:-}" ]; then
  port="$E2E_PORT"
else
  # 4444 unless another run (this machine is shared) holds it or its native port.
  port=4444
  while port_busy "$port" || port_busy "$((port + 1))"; do
    port=$((port + 2))
    [ "$port" -le 4500 ] || { echo "e2e: no free port pair in 4444-4500" >&2; exit 1; }
  done
fi
export TAURI_DRIVER_URL="http://127.0.0.1:$port"
artifacts="$ROOT/tests/e2e/artifacts"
mkdir -p "$artifacts"
driver_log="$artifacts/tauri-driver.log"

command -v tauri-driver >/dev/null || { echo "e2e: tauri-driver missing (run scripts/deps.sh)" >&2; exit 1; }
command -v WebKitWebDriver >/dev/null || { echo "e2e: WebKitWebDriver missing (apt webkit2gtk-driver)" >&2; exit 1; }

driver_ready() {
  node -e 'fetch(process.argv[1] + "/status", { signal: AbortSignal.timeout(2000) })
    .then((r) => r.json()).then((j) => process.exit(j.value && j.value.ready ? 0 : 1), () => process.exit(1))' "$TAURI_DRIVER_URL"
}

if port_busy "$port" || port_busy "$((port + 1))"; then
  echo "e2e: port $port or $((port + 1)) is in use; stop that or set E2E_PORT" >&2
  exit 1
fi

# Own session (process group) so stopping it also stops WebKitWebDriver and any app left.
started=$(date +%s%N)
setsid tauri-driver --port "$port" --native-port "$((port + 1))" >"$driver_log" 2>&1 &
driver_pid=$!
stop_driver() {
  kill -TERM -- "-$driver_pid" 2>/dev/null || true
  wait "$driver_pid" 2>/dev/null || true
}
trap stop_driver EXIT

for _ in $(seq 1 300); do
  driver_ready && break
  kill -0 "$driver_pid" 2>/dev/null || { cat "$driver_log" >&2; echo "e2e: tauri-driver exited" >&2; exit 1; }
  sleep 0.1
done
driver_ready || { cat "$driver_log" >&2; echo "e2e: tauri-driver not ready after 30 s" >&2; exit 1; }
say "e2e: tauri-driver ready on :$port in $(( ($(date +%s%N) - started) / 1000000 )) ms; display $DISPLAY"

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
