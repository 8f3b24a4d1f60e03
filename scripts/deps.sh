#!/usr/bin/env bash
# Install whatever a fresh Debian 12 machine lacks to build, test and run the
# workstation. Idempotent and quiet: one line per step, details only on failure.
#   bash scripts/deps.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Build (Tauri/WebKitGTK), end-to-end (WebKitWebDriver, Xvfb, screenshots),
# PDF checks and fonts, PostgreSQL for the server and sync tests. Add new
# system packages here.
APT_PACKAGES=(
  build-essential pkg-config file
  libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev
  webkit2gtk-driver xvfb xauth dbus-x11
  imagemagick fonts-noto-core poppler-utils
  postgresql postgresql-contrib python3
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

missing_apt_packages() {
  local p
  for p in "${APT_PACKAGES[@]}"; do
    if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
      printf '%s\n' "$p"
    fi
  done
}

deps_apt() {
  local missing
  mapfile -t missing < <(missing_apt_packages)
  if [ "${#missing[@]}" -eq 0 ]; then
    say "deps: apt packages present (${#APT_PACKAGES[@]})"
    return 0
  fi
  say "deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  quietly as_root apt-get update -q
  quietly as_root apt-get install -y -q "${missing[@]}" </dev/null
}

deps_toolchain() {
  local tool
  for tool in cargo node npm; do
    command -v "$tool" >/dev/null || { echo "deps: '$tool' not found on PATH" >&2; return 1; }
  done
  cargo fmt --version >/dev/null 2>&1 || { echo "deps: rustfmt missing (rustup component add rustfmt)" >&2; return 1; }
  cargo clippy --version >/dev/null 2>&1 || { echo "deps: clippy missing (rustup component add clippy)" >&2; return 1; }
  say "deps: $(cargo --version | cut -d' ' -f1-2), node $(node --version), npm $(npm --version)"
}

# npm_ci UI_DIR: `npm ci`, except for one known lock-file gap. The reachable npm
# registry lacks the other platforms' builds of @tauri-apps/cli, so the lock
# file cannot list them and `npm ci` reports "Missing: <pkg>@ from lock file"
# (empty version) for those optional packages. Only then, install the locked
# versions with `npm install --no-save` (the lock file stays untouched); any
# other mismatch (a dependency added without updating the lock) still fails.
npm_ci() {
  local ui="$1" log status=0
  log="$(mktemp)"
  npm ci --prefix "$ui" --no-audit --no-fund </dev/null >"$log" 2>&1 || status=$?
  if [ "$status" -ne 0 ] && grep -q 'can only install packages when your package.json and package-lock.json' "$log" &&
     ! grep -E '^npm error (Missing|Invalid): ' "$log" | grep -vqE '^npm error Missing: [^ ]+@ from lock file$'; then
    say "deps: lock lacks other platforms' optional packages; npm install --no-save --prefix ui"
    status=0
    npm install --no-save --prefix "$ui" --no-audit --no-fund </dev/null >"$log" 2>&1 || status=$?
  fi
  if [ "$status" -ne 0 ]; then
    cat "$log" >&2
    echo "!!! failed (exit $status): npm install in $ui" >&2
  fi
  rm -f "$log"
  return "$status"
}

deps_npm() {
  local ui="$CLINIC_ROOT/ui"
  if [ ! -f "$ui/package.json" ]; then
    say "deps: ui/package.json not there yet, skipping npm"
    return 0
  fi
  if [ ! -f "$ui/package-lock.json" ]; then
    say "deps: npm install (ui/package-lock.json missing; commit the one this writes)"
    quietly npm install --prefix "$ui" --no-audit --no-fund </dev/null
    return
  fi
  # npm writes node_modules/.package-lock.json on every install.
  if [ ! -f "$ui/node_modules/.package-lock.json" ] ||
     [ "$ui/package-lock.json" -nt "$ui/node_modules/.package-lock.json" ] ||
     [ "$ui/package.json" -nt "$ui/node_modules/.package-lock.json" ]; then
    say "deps: npm ci --prefix ui"
    npm_ci "$ui"
  else
    say "deps: ui/node_modules up to date"
  fi
}

deps_tauri_driver() {
  if command -v tauri-driver >/dev/null; then
    say "deps: tauri-driver present"
  else
    say "deps: cargo install tauri-driver --locked"
    # Its own target dir: never contend with the app build's cache lock.
    CARGO_TARGET_DIR="$HOME/.cache/clinic-workstation/tools-target" \
      quietly cargo install tauri-driver --locked
  fi
}

deps_all() {
  deps_apt
  deps_toolchain
  deps_npm
  deps_tauri_driver
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  deps_all
fi
