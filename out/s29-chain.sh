#!/usr/bin/env bash
# Session 29's two tracks after the Markovian seeds 0 and 1. usage: s29-chain.sh A|B
# Track B ran as out/s29-chainB2.sh instead (revised before it started anything); its branch here never ran.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
wait_for() { until grep -q "eval end" "$1" 2>/dev/null; do sleep 30; done; }
if [ "$1" = A ]; then
    wait_for out/s28-markovian-s0.log
    left=$(( $(date -d 04:20 +%s) - $(date +%s) ))
    timeout "$left" bash out/s28.sh 2 > out/s28-markovian-s2.log 2>&1
    if ! grep -q "eval end" out/s28-markovian-s2.log; then  # cut: scored with the model kept on val so far
        echo "cut $(date +%T)" >> out/s28-markovian-s2.log
        .venv/bin/python scripts/height_table.py runs/lox-exch-markovian-wd1e-2-s2 --data data/l-office-xl-of.nc \
            --splits val,test,ood --csv out/s28-lox-exch-markovian-wd1e-2-s2.csv > out/s28-lox-exch-markovian-wd1e-2-s2.txt
        echo "eval end $(date +%T)" >> out/s28-markovian-s2.log
    fi
    bash out/s29-plane.sh 1 05:00 > out/s29-plane-s1.log 2>&1
else
    wait_for out/s28-markovian-s1.log
    bash out/s29-plane.sh 0 05:00 > out/s29-plane-s0.log 2>&1
    bash out/s29-plane.sh 2 05:00 > out/s29-plane-s2.log 2>&1
fi
