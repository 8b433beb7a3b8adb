#!/usr/bin/env bash
# Session 29: the drift closure, seed 0, against its column and against the exchange closure of the same seed.
set -euo pipefail
cd "$(dirname "$0")/.."  # the repository root
echo "== drift - column, seed 0"
.venv/bin/python scripts/paired_table.py out/s26-lox-column-s0.csv out/s29-lox-drift-s0.csv \
    --model lox-drift-s0 --base lox-column-s0 --splits val,test,ood \
    --figure docs/img/paired-l-office-xl-drift-s0.png --title "l-office-xl: drift closure minus its column, seed 0"
echo "== drift - exchange (session 26's lox-exch-s0), seed 0"
.venv/bin/python scripts/paired_table.py out/s26-lox-exch-s0.csv out/s29-lox-drift-s0.csv \
    --model lox-drift-s0 --base lox-exch-s0 --splits val,test,ood
