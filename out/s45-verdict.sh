#!/usr/bin/env bash
# Session 45: the exchange closure (memory) on the nine-level l-office-wide column, sources where OpenFOAM emits
# (data/l-office-wide-l10-src-of.nc; runs/low10s-{column,exchange}-sS from out/s36-run.sh, tag low10s), paired by
# scenario over SEEDS (default 0) on val, test and OOD, with the mean rule beside the median rule; per height class.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
SEEDS=${SEEDS:-0}; N=$(echo $SEEDS | wc -w)
files() { local s; for s in $SEEDS; do echo "out/s36-low10s-$1-s$s.csv"; done; }
names() { local s; for s in $SEEDS; do echo "low10s-$1-s$s"; done | paste -sd,; }
echo "== exchange (memory) minus column, seeds $SEEDS"
.venv/bin/python scripts/paired_table.py $(files column) $(files exchange) --model $(names exchange) \
    --base $(names column) --splits val,test,ood --mean --figure docs/img/paired-l-office-wide-nine-source-exchange.png \
    --title "l-office-wide (OpenFOAM, nine levels, sources where OpenFOAM emits): exchange closure (memory) minus column, $N seed(s)"
echo "== per split and height class, mean over seeds of the median final-time relative L2"
.venv/bin/python out/s36-classes.py $(files column) $(files exchange)
