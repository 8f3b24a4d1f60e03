#!/usr/bin/env bash
# Regenerate icons/ from a drawn 1024x1024 source: a teal rounded square with a
# white cross. Only the sizes tauri.conf.json lists (plus .icns) are kept.
#   bash scripts/make-icon.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
convert -size 1024x1024 xc:none \
  -fill '#1f7a8c' -draw 'roundrectangle 64,64 960,960 180,180' \
  -fill white -draw 'roundrectangle 427,232 597,792 36,36' -draw 'roundrectangle 232,427 792,597 36,36' \
  "PNG32:$work/app-icon.png"
quietly tauri_cli icon "$work/app-icon.png" -o "$work/out"
mkdir -p "$CLINIC_ROOT/icons"
for f in 32x32.png 128x128.png 128x128@2x.png icon.png icon.ico icon.icns; do
  cp "$work/out/$f" "$CLINIC_ROOT/icons/$f"
done
say "icons: written to icons/"
