#!/usr/bin/env bash
# Session 32: the verdict on the second fresh l-office-xl draw (docs/results.md, planned at 12:53).
# Needs data/l-office-xl-fresh2-of.nc (scripts/draw_fresh.py, then plumecast generate ... --engine openfoam)
# and session 31's out/s31-fresh-ens-*.csv for the pooled table.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
D=data/l-office-xl-fresh2-of.nc
for F in column exch-avg exch; do
    echo "ens-$F start $(date +%T)"
    .venv/bin/python scripts/height_table.py runs/lox-$F-s0 runs/lox-$F-s1 runs/lox-$F-s2 --ensemble ens-$F --data $D \
        --splits test,ood --csv out/s32-fresh2-ens-$F.csv > out/s32-fresh2-ens-$F.txt
    echo "ens-$F end $(date +%T) rc $?"
done
echo "== H1: ens-exch-avg (val median rule) minus ens-column, fresh2"
.venv/bin/python scripts/paired_table.py out/s32-fresh2-ens-column.csv out/s32-fresh2-ens-exch-avg.csv --model ens-exch-avg \
    --base ens-column --splits test,ood --figure docs/img/paired-l-office-xl-fresh2-ensemble.png \
    --title "l-office-xl, second fresh draw: ensemble of 3 averaged exchange closures minus ensemble of 3 columns"
echo "== H2: ens-exch (paired val rule) minus ens-column, fresh2"
.venv/bin/python scripts/paired_table.py out/s32-fresh2-ens-column.csv out/s32-fresh2-ens-exch.csv --model ens-exch \
    --base ens-column --splits test,ood
for F in exch-avg exch; do
    echo "== pooled (session 31's fresh set and this one): ens-$F minus ens-column"
    .venv/bin/python scripts/paired_table.py out/s31-fresh-ens-column.csv out/s32-fresh2-ens-column.csv \
        out/s31-fresh-ens-$F.csv out/s32-fresh2-ens-$F.csv --model ens-$F --base ens-column --splits test,ood
done
echo "== beside: single seeds on the new draw (mean of three seeds per scenario)"
echo "singles start $(date +%T)"
.venv/bin/python scripts/height_table.py runs/lox-column-s{0,1,2} runs/lox-exch-avg-s{0,1,2} runs/lox-exch-s{0,1,2} --data $D \
    --splits test,ood --csv out/s32-fresh2-singles.csv > out/s32-fresh2-singles.txt
echo "singles end $(date +%T) rc $?"
for F in exch-avg exch; do
    echo "== seeds of $F minus seeds of column, the new draw"
    .venv/bin/python scripts/paired_table.py out/s32-fresh2-singles.csv --model lox-$F-s0,lox-$F-s1,lox-$F-s2 \
        --base lox-column-s0,lox-column-s1,lox-column-s2 --splits test,ood
done
