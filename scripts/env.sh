# shellcheck shell=bash
# Environment shared by every script and by developers' shells:
#   source scripts/env.sh
# Keep the Cargo target dir outside the clone so CI (a fresh clone per run)
# and every checkout on this machine reuse one warm build cache.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clinic-workstation/target}"
case ":$PATH:" in
  *":$HOME/.cargo/bin:"*) ;;
  *) export PATH="$HOME/.cargo/bin:$PATH" ;;
esac
# Incremental artefacts only cost disk and time on a one-shot CI build.
if [ -n "${CI:-}" ]; then
  export CARGO_INCREMENTAL=0
fi
