#!/usr/bin/env bash
# Session 43, item 3: the nine-level paper-room column trained on the rebuilt sources (runs/prw10s-column-sS,
# data/paper-room-wide-l10-src-of.nc) against the same seed on the old data (runs/prw10-column-sS), paired by
# scenario over SEEDS (default 0 1) on train, val, test and OOD, per height class, then on session 40's fresh draw
# (each family scored on its own data: the rebuilt fresh draw data/paper-room-wide-fresh-l10-src-of.nc).
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
SEEDS=${SEEDS:-0 1}; N=$(echo $SEEDS | wc -w)
files() { local s; for s in $SEEDS; do echo "$1-s$s.csv"; done; }
names() { local s; for s in $SEEDS; do echo "$1-s$s"; done | paste -sd,; }
for S in $SEEDS; do
    C=out/s43-fresh-prw10s-column-s$S.csv
    [ -f "$C" ] || .venv/bin/python scripts/height_table.py runs/prw10s-column-s$S --data data/paper-room-wide-fresh-l10-src-of.nc \
        --splits test,ood --csv "$C" >"${C%.csv}.txt" || { echo "scoring failed" >&2; rm -f "$C"; exit 1; }
done
echo "== sources where OpenFOAM emits minus as declared, nine levels, $N seeds"
.venv/bin/python scripts/paired_table.py $(files out/s36-prw10-column) $(files out/s43-prw10s-column) \
    --model $(names prw10s-column) --base $(names prw10-column) --splits train,val,test,ood \
    --figure docs/img/paired-paper-room-column-sourcecell.png --title "paper-room (OpenFOAM): column with sources where OpenFOAM emits minus as declared, $N seeds"
echo "== per split and height class, mean over seeds of the median final-time relative L2"
.venv/bin/python out/s36-classes.py $(files out/s36-prw10-column) $(files out/s43-prw10s-column)
echo "======== the fresh draw"
.venv/bin/python scripts/paired_table.py $(files out/s42-fresh-prw10-column) $(files out/s43-fresh-prw10s-column) \
    --model $(names prw10s-column) --base $(names prw10-column) --splits test,ood \
    --figure docs/img/paired-paper-room-fresh-column-sourcecell.png --title "paper-room fresh draw (OpenFOAM): sources where OpenFOAM emits minus as declared, $N seeds"
.venv/bin/python out/s36-classes.py $(files out/s42-fresh-prw10-column) $(files out/s43-fresh-prw10s-column)
