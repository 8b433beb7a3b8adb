#!/usr/bin/env bash
# Session 38: sessions 31-32's fresh l-office-xl draws, redrawn by their commands (scripts/draw_fresh.py reproduces
# both files), then OpenFOAM on the cached flow of l-office-wide/-xl, niced beside the trainings.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
[ -f out/l-office-xl-fresh.toml ] || .venv/bin/python scripts/draw_fresh.py --test 16 --ood 12 --test-seed 31 \
    --walk-seed 32 --name l-office-xl-fresh --prefix fresh --out out/l-office-xl-fresh.toml || exit $?
[ -f out/l-office-xl-fresh2.toml ] || .venv/bin/python scripts/draw_fresh.py --test 28 --ood 32 --test-seed 41 \
    --walk-seed 42 --exclude out/l-office-xl-fresh.toml --name l-office-xl-fresh2 --out out/l-office-xl-fresh2.toml || exit $?
for F in l-office-xl-fresh l-office-xl-fresh2; do
    echo "$F start $(date +%T)"
    nice -n 10 .venv/bin/plumecast generate out/$F.toml --engine openfoam --workers 2 --out data/$F-of.nc
    echo "$F end $(date +%T) rc $?"
done
