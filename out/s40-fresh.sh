#!/usr/bin/env bash
# Session 40: the plane closures' verdicts of session 39 (OpenFOAM paper-room) on a fresh draw
# (docs/results.md, session 40's plan). Needs data/paper-room-wide-fresh-of.nc:
#   plumecast generate out/paper-room-wide-fresh.toml --engine openfoam --workers 2 --out data/paper-room-wide-fresh-of.nc
# Scores each seed (SEEDS, default 0 1 2) of the plane runs once on it (nothing trained, nothing chosen;
# a run not trained is skipped), then the pairs.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
FAMILIES="physics physics5 memory markovian datadriven"
for V in $FAMILIES; do
    for S in ${SEEDS:-0 1 2}; do bash out/s40-score-fresh.sh $V $S || exit; done
done
TAG=prw ROOM=paper-room-fresh CSV=out/s40-fresh-prw SPLITS=test,ood
[ "${SEEDS:-0 1 2}" = "0 1 2" ] || ROOM=paper-room-fresh-5seeds
source out/verdict-pairs.sh
plane_pairs
pair memory physics5 plane5-memory "memory closure minus plane physics continued"
pair markovian physics5 plane5-markovian "Markovian closure minus plane physics continued"
echo "== per split and height class, mean over seeds of the median final-time relative L2"
.venv/bin/python out/s36-classes.py $(for V in $FAMILIES; do for S in ${SEEDS:-0 1 2}; do
    [ -f out/s40-fresh-prw-$V-s$S.csv ] && echo out/s40-fresh-prw-$V-s$S.csv; done; done)
