#!/usr/bin/env bash
# Session 40: the plane closures' verdicts of session 39 (OpenFOAM paper-room) on a fresh draw
# (docs/results.md, session 40's plan). Needs data/paper-room-wide-fresh-of.nc:
#   plumecast generate out/paper-room-wide-fresh.toml --engine openfoam --workers 2 --out data/paper-room-wide-fresh-of.nc
# Scores each seed (SEEDS, default 0 1 2) of the plane runs once on it (nothing trained, nothing chosen;
# a run not trained is skipped), then the pairs.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
D=data/paper-room-wide-fresh-of.nc
[ -f "$D" ] || { echo "missing $D (generate it first)" >&2; exit 2; }
for V in physics physics5 memory markovian datadriven; do
    for S in ${SEEDS:-0 1 2}; do
        C=out/s40-fresh-prw-$V-s$S.csv
        [ -f "$C" ] || [ ! -f "runs/prw-$V-s$S/summary.json" ] && continue
        .venv/bin/python scripts/height_table.py "runs/prw-$V-s$S" --data "$D" --splits test,ood --csv "$C" \
            >"out/s40-fresh-prw-$V-s$S.txt" || { echo "scoring runs/prw-$V-s$S failed" >&2; rm -f "$C"; exit 1; }
        echo "scored runs/prw-$V-s$S $(date +%T)"
    done
done
TAG=prw ROOM=paper-room-fresh CSV=out/s40-fresh-prw SPLITS=test,ood
[ "${SEEDS:-0 1 2}" = "0 1 2" ] || ROOM=paper-room-fresh-5seeds
source out/verdict-pairs.sh
plane_pairs
pair memory physics5 plane5-memory "memory closure minus plane physics continued"
pair markovian physics5 plane5-markovian "Markovian closure minus plane physics continued"
echo "== per split and height class, mean over seeds of the median final-time relative L2"
.venv/bin/python out/s36-classes.py $(for S in ${SEEDS:-0 1 2}; do ls out/s40-fresh-prw-*-s$S.csv; done)
