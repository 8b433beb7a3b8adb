#!/usr/bin/env bash
# Session 29: memory - Markovian of the weight-decayed exchange closure, seed by seed and over the seeds given.
# usage: s29-markovian.sh SEED...
set -euo pipefail
cd "$(dirname "$0")/.."  # the repository root
M=""; K=""; MM=""; KK=""
for S in "$@"; do
    echo "== seed $S: memory - Markovian"
    .venv/bin/python scripts/paired_table.py out/s28-lox-exch-markovian-wd1e-2-s$S.csv out/s27-lox-exch-wd1e-2-s$S.csv \
        --model lox-exch-wd1e-2-s$S --base lox-exch-markovian-wd1e-2-s$S --splits val,test,ood
    echo "== seed $S: Markovian - its column"
    .venv/bin/python scripts/paired_table.py out/s26-lox-column-s$S.csv out/s28-lox-exch-markovian-wd1e-2-s$S.csv \
        --model lox-exch-markovian-wd1e-2-s$S --base lox-column-s$S --splits val,test,ood
    M="$M out/s27-lox-exch-wd1e-2-s$S.csv"; K="$K out/s28-lox-exch-markovian-wd1e-2-s$S.csv"
    MM="$MM,lox-exch-wd1e-2-s$S"; KK="$KK,lox-exch-markovian-wd1e-2-s$S"
done
if [ $# -gt 1 ]; then
    echo "== seeds $*: memory - Markovian"
    .venv/bin/python scripts/paired_table.py $K $M --model "${MM#,}" --base "${KK#,}" --splits val,test,ood \
        --figure docs/img/paired-l-office-xl-memory-markovian-wd.png \
        --title "l-office-xl: weight-decayed exchange closure, memory minus Markovian, seeds $*"
fi
