#!/usr/bin/env bash
# Session 32: memory against Markovian, the unaveraged exchange closure, seeds 1 and 2 (docs/results.md).
# Needs out/s32-markov.sh's runs and CSVs, out/s31-lox-exch-s{1,2}.csv and out/s32-fresh.sh's singles CSV.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
M=runs/lox-exch-markovian-s
.venv/bin/python scripts/height_table.py ${M}1 ${M}2 --data data/l-office-xl-fresh2-of.nc --splits test,ood \
    --csv out/s32-fresh2-markov.csv > out/s32-fresh2-markov.txt
echo "== memory - Markovian, seeds 1 and 2, l-office-xl's splits"
.venv/bin/python scripts/paired_table.py out/s31-lox-exch-s1.csv out/s31-lox-exch-s2.csv out/s32-lox-exch-markovian-s1.csv \
    out/s32-lox-exch-markovian-s2.csv --model lox-exch-s1,lox-exch-s2 --base lox-exch-markovian-s1,lox-exch-markovian-s2 \
    --splits train,val,test,ood
echo "== memory - Markovian, seeds 1 and 2, the second fresh draw"
.venv/bin/python scripts/paired_table.py out/s32-fresh2-singles.csv out/s32-fresh2-markov.csv --model lox-exch-s1,lox-exch-s2 \
    --base lox-exch-markovian-s1,lox-exch-markovian-s2 --splits test,ood
echo "== Markovian - column, seeds 1 and 2, l-office-xl's splits and the second fresh draw"
.venv/bin/python scripts/paired_table.py out/s26-lox-column-s1.csv out/s26-lox-column-s2.csv out/s32-lox-exch-markovian-s1.csv \
    out/s32-lox-exch-markovian-s2.csv --model lox-exch-markovian-s1,lox-exch-markovian-s2 --base lox-column-s1,lox-column-s2 \
    --splits train,val,test,ood
.venv/bin/python scripts/paired_table.py out/s32-fresh2-singles.csv out/s32-fresh2-markov.csv \
    --model lox-exch-markovian-s1,lox-exch-markovian-s2 --base lox-column-s1,lox-column-s2 --splits test,ood
