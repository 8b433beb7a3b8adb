#!/usr/bin/env bash
# Session 40: scores one paper-room run once on the fresh draw: usage s40-score-fresh.sh NAME SEED
# (runs/prw-NAME-sSEED -> out/s40-fresh-prw-NAME-sSEED.{csv,txt}). A run already scored, or not trained
# (no summary.json), is left alone. The draw: data/paper-room-wide-fresh-of.nc (out/s40-fresh.sh's header).
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
D=data/paper-room-wide-fresh-of.nc; R=runs/prw-$1-s$2; C=out/s40-fresh-prw-$1-s$2.csv
[ -f "$D" ] || { echo "missing $D (generate it first)" >&2; exit 2; }
[ -f "$C" ] || [ ! -f "$R/summary.json" ] && exit 0
.venv/bin/python scripts/height_table.py "$R" --data "$D" --splits test,ood --csv "$C" >"${C%.csv}.txt" \
    || { echo "scoring $R failed" >&2; rm -f "$C"; exit 1; }
echo "scored $R $(date +%T)"
