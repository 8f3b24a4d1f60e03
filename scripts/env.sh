# shellcheck shell=bash
# Environment shared by every script and by developers' shells:
#   source scripts/env.sh
# Keep the Cargo target dir outside the clone so CI (a fresh clone per run)
# and every checkout on this machine reuse one warm build cache.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clinic-workstation/target}"
# The WebDriver server the end-to-end tests use, pinned, in a folder of its
# own (scripts/deps.sh installs it there).
export TAURI_DRIVER_VERSION="2.1.0"
export TAURI_DRIVER_ROOT="$HOME/.cache/clinic-workstation/tools/tauri-driver-$TAURI_DRIVER_VERSION"
# The pinned tauri-driver goes first, before any other copy in ~/.cargo/bin.
# Schemathesis (the API document's fuzz check), pinned in
# scripts/schemathesis-requirements.txt, in a virtualenv of its own.
export SCHEMATHESIS_ROOT="$HOME/.cache/clinic-workstation/tools/schemathesis-4.32.5"
for dir in "$HOME/.cargo/bin" "$TAURI_DRIVER_ROOT/bin"; do
  case ":$PATH:" in
    *":$dir:"*) ;;
    *) export PATH="$dir:$PATH" ;;
  esac
done
unset dir
# Incremental artefacts only cost disk and time on a one-shot CI build.
if [ -n "${CI:-}" ]; then
  export CARGO_INCREMENTAL=0
fi
