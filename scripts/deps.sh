#!/usr/bin/env bash
# Install whatever a fresh Debian 12 machine lacks to build, test and run the
# workstation. Idempotent and quiet: one line per step, details only on failure.
# Every step either works or stops with what to do; none reads a tool's error
# text, and every version is pinned (Cargo.lock, ui/package-lock.json, the
# tauri-driver version in scripts/env.sh), so a run does not depend on what a
# registry serves that day or on what happens to be installed.
#   bash scripts/deps.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Build (Tauri/WebKitGTK), end-to-end (WebKitWebDriver, Xvfb, screenshots),
# PDF checks and fonts, PostgreSQL for the server and sync tests. Add new
# system packages here. Names are Debian 12's (bookworm).
APT_PACKAGES=(
  build-essential pkg-config file
  libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev
  webkit2gtk-driver xvfb xauth dbus-x11
  imagemagick fonts-noto-core poppler-utils
  postgresql postgresql-contrib python3 python3-venv
)

# The oldest Node.js the UI's tools run on (Vite 8 needs 20.19).
NODE_MIN=(20 19)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    echo "deps: '$*' needs root: run 'bash scripts/deps.sh' as root or with passwordless sudo" >&2
    return 1
  fi
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
  command -v dpkg-query >/dev/null && command -v apt-get >/dev/null || {
    echo "deps: this script installs Debian packages (apt-get, dpkg-query not found); on another system install: ${APT_PACKAGES[*]}" >&2
    return 1
  }
  mapfile -t missing < <(missing_apt_packages)
  if [ "${#missing[@]}" -eq 0 ]; then
    say "deps: apt packages present (${#APT_PACKAGES[@]})"
    return 0
  fi
  say "deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  quietly as_root apt-get update -q ||
    { echo "deps: apt-get update failed (above): check the machine reaches Debian's package mirror" >&2; return 1; }
  quietly as_root apt-get install -y -q "${missing[@]}" </dev/null ||
    { echo "deps: apt-get install failed (above); the package names are Debian 12's" >&2; return 1; }
  # Check the outcome instead of trusting the exit status alone.
  mapfile -t missing < <(missing_apt_packages)
  if [ "${#missing[@]}" -ne 0 ]; then
    echo "deps: still not installed after apt-get: ${missing[*]}" >&2
    return 1
  fi
}

deps_toolchain() {
  local tool node_major node_minor
  for tool in cargo rustc node npm; do
    command -v "$tool" >/dev/null || {
      echo "deps: '$tool' not found on PATH: install Rust with rustup (https://rustup.rs) and Node.js >= ${NODE_MIN[0]}.${NODE_MIN[1]}" >&2
      return 1
    }
  done
  cargo fmt --version >/dev/null 2>&1 || { echo "deps: rustfmt missing: rustup component add rustfmt" >&2; return 1; }
  cargo clippy --version >/dev/null 2>&1 || { echo "deps: clippy missing: rustup component add clippy" >&2; return 1; }
  # The workspace's rust-version, checked by cargo itself in every build; here
  # Node's, whose version the UI's tools check only deep inside a failure.
  read -r node_major node_minor < <(node -p 'process.versions.node.split(".").slice(0, 2).join(" ")')
  if [ "$node_major" -lt "${NODE_MIN[0]}" ] ||
     { [ "$node_major" -eq "${NODE_MIN[0]}" ] && [ "$node_minor" -lt "${NODE_MIN[1]}" ]; }; then
    echo "deps: Node.js $(node --version) is too old: the UI needs >= ${NODE_MIN[0]}.${NODE_MIN[1]}" >&2
    return 1
  fi
  say "deps: $(cargo --version | cut -d' ' -f1-2), node $(node --version), npm $(npm --version)"
}

# Cargo.lock must already name every crate: a build that has to resolve a
# version would take whatever crates.io serves that day.
deps_cargo_lock() {
  quietly cargo metadata --locked --format-version 1 --manifest-path "$CLINIC_ROOT/Cargo.toml" ||
    { echo "deps: Cargo.lock is not up to date with the Cargo.toml files: run 'cargo update --workspace' and commit Cargo.lock" >&2; return 1; }
  say "deps: Cargo.lock complete"
}

# The UI's packages, exactly as ui/package-lock.json lists them.
deps_npm() {
  local ui="$CLINIC_ROOT/ui"
  if [ ! -f "$ui/package-lock.json" ]; then
    echo "deps: ui/package-lock.json is missing: run 'npm install --prefix ui' and commit the lock file it writes" >&2
    return 1
  fi
  # npm writes node_modules/.package-lock.json on every install.
  if [ -f "$ui/node_modules/.package-lock.json" ] &&
     [ "$ui/node_modules/.package-lock.json" -nt "$ui/package-lock.json" ] &&
     [ "$ui/node_modules/.package-lock.json" -nt "$ui/package.json" ]; then
    say "deps: ui/node_modules up to date"
    return 0
  fi
  say "deps: npm ci --prefix ui"
  quietly npm ci --prefix "$ui" --no-audit --no-fund </dev/null ||
    { echo "deps: npm ci failed (above); if it says the lock file is out of sync, run 'npm install --prefix ui' and commit ui/package-lock.json" >&2; return 1; }
}

# tauri-driver, the pinned version, in a folder of its own (on PATH through
# scripts/env.sh), whatever other copy the machine may have.
deps_tauri_driver() {
  if [ -x "$TAURI_DRIVER_ROOT/bin/tauri-driver" ]; then
    say "deps: tauri-driver $TAURI_DRIVER_VERSION present"
    return 0
  fi
  say "deps: cargo install tauri-driver@$TAURI_DRIVER_VERSION --locked"
  # Its own target dir: never contend with the app build's cache lock.
  CARGO_TARGET_DIR="$HOME/.cache/clinic-workstation/tools-target" \
    quietly cargo install tauri-driver --version "=$TAURI_DRIVER_VERSION" --locked --root "$TAURI_DRIVER_ROOT"
}

# Schemathesis, every package at the version pinned in
# scripts/schemathesis-requirements.txt, in a virtualenv of its own.
deps_schemathesis() {
  local req="$CLINIC_ROOT/scripts/schemathesis-requirements.txt"
  if [ -x "$SCHEMATHESIS_ROOT/bin/schemathesis" ] && cmp -s "$req" "$SCHEMATHESIS_ROOT/requirements.txt"; then
    say "deps: schemathesis present"
    return 0
  fi
  say "deps: schemathesis (pinned) into $SCHEMATHESIS_ROOT"
  rm -rf "$SCHEMATHESIS_ROOT"
  quietly python3 -m venv "$SCHEMATHESIS_ROOT" ||
    { echo "deps: python3 -m venv failed (above): apt-get install python3-venv" >&2; return 1; }
  quietly "$SCHEMATHESIS_ROOT/bin/pip" install --quiet --no-deps -r "$req" ||
    { echo "deps: installing scripts/schemathesis-requirements.txt failed (above)" >&2; return 1; }
  cp "$req" "$SCHEMATHESIS_ROOT/requirements.txt"
}

deps_all() {
  deps_apt
  deps_toolchain
  deps_cargo_lock
  deps_npm
  deps_tauri_driver
  deps_schemathesis
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  deps_all
fi
