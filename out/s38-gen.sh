#!/usr/bin/env bash
# Session 38: OpenFOAM on sessions 31-32's fresh l-office-xl draws (redrawn by scripts/draw_fresh.py, see
# docs/results.md), on the cached flow, niced beside the trainings.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
for F in l-office-xl-fresh l-office-xl-fresh2; do
    echo "$F start $(date +%T)"
    nice -n 10 .venv/bin/plumecast generate out/$F.toml --engine openfoam --workers 2 --out data/$F-of.nc
    echo "$F end $(date +%T) rc $?"
done
