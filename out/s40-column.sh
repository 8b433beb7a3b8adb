#!/usr/bin/env bash
# Session 40: the column physics on OpenFOAM paper-room (seeds 0-2, trained by
# `bash out/s36-run.sh data/paper-room-wide-of.nc prw column S`), scored once on the fresh draw
# (data/paper-room-wide-fresh-of.nc, out/s40-fresh.sh's header), then per height class.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
for S in 0 1 2; do
    bash out/s40-score-fresh.sh column $S || exit
    [ -f "out/s40-fresh-prw-column-s$S.txt" ] && cat "out/s40-fresh-prw-column-s$S.txt"
done
echo "== per split and height class, mean over seeds of the median final-time relative L2 (fresh draw)"
.venv/bin/python out/s36-classes.py $(ls out/s40-fresh-prw-column-s[012].csv out/s40-fresh-prw-physics-s[012].csv)
