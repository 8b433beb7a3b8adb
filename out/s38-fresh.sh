#!/usr/bin/env bash
# Session 38: the l-office-wide columns and exchange closures (memory, Markovian), seeds 0-2, unchanged, scored once on
# the 88 fresh l-office-xl scenarios of sessions 31-32 (data/l-office-xl-fresh{,2}-of.nc: out/s38-gen.sh), and the
# pooled paired verdicts of docs/results.md's session 38 plan (item 3). Nothing is chosen here.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
runs() { for F in column exchange exchange-markovian; do echo runs/low-$F-s0 runs/low-$F-s1 runs/low-$F-s2; done; }
for F in l-office-xl-fresh l-office-xl-fresh2; do
    [ -f out/s38-$F.csv ] || ( .venv/bin/python scripts/height_table.py $(runs) --data data/$F-of.nc --splits test,ood --csv out/s38-$F.csv \
        > out/s38-$F.txt; echo "$F scored $(date +%T) rc $?" ) &
done
wait
names() { echo "low-$1-s0,low-$1-s1,low-$1-s2"; }
C="out/s38-l-office-xl-fresh.csv out/s38-l-office-xl-fresh2.csv"
echo "== the hypothesis: exchange (memory) minus column, pooled fresh draws"
.venv/bin/python scripts/paired_table.py $C --model $(names exchange) --base $(names column) --splits test,ood \
    --figure docs/img/paired-l-office-wide-fresh-exchange.png \
    --title "l-office-wide models on 88 fresh l-office-xl scenarios: exchange closure (memory) minus column, 3 seeds"
echo "== beside: exchange (Markovian) minus column; exchange memory minus Markovian"
.venv/bin/python scripts/paired_table.py $C --model $(names exchange-markovian) --base $(names column) --splits test,ood
.venv/bin/python scripts/paired_table.py $C --model $(names exchange) --base $(names exchange-markovian) --splits test,ood
