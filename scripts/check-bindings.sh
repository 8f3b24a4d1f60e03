#!/usr/bin/env bash
# Fail when the TypeScript bindings ts-rs wrote (during `cargo test`) differ
# from the committed ones in ui/src/bindings, i.e. the committed types are stale.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CLINIC_ROOT"
changes="$(git status --porcelain -- ui/src/bindings)"
if [ -n "$changes" ]; then
  echo "ui/src/bindings is stale: run 'cargo test --workspace' and commit these:" >&2
  printf '%s\n' "$changes" >&2
  git --no-pager diff --stat -- ui/src/bindings >&2 || true
  exit 1
fi
say "bindings: ui/src/bindings matches the Rust types"
