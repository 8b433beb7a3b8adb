#!/usr/bin/env bash
# Session 28: the verdict over three seeds of the weight-decayed exchange closure against their columns.
set -euo pipefail
cd "$(dirname "$0")/.."  # the repository root
C="out/s26-lox-column-s0.csv out/s26-lox-column-s1.csv out/s26-lox-column-s2.csv"
M="out/s27-lox-exch-wd1e-2-s0.csv out/s27-lox-exch-wd1e-2-s1.csv out/s27-lox-exch-wd1e-2-s2.csv"
MODEL=lox-exch-wd1e-2-s0,lox-exch-wd1e-2-s1,lox-exch-wd1e-2-s2
BASE=lox-column-s0,lox-column-s1,lox-column-s2
.venv/bin/python scripts/paired_table.py $C $M --model $MODEL --base $BASE --splits val,test,ood \
    --figure docs/img/paired-l-office-xl-exchange-wd.png --title "l-office-xl: exchange closure with weight decay 1e-2 minus its column, 3 seeds"
for class in below above; do
    for f in $C $M; do
        head -1 $f > out/s28-$class-$(basename $f)
        grep ",$class," $f >> out/s28-$class-$(basename $f) || true
    done
    echo "== sources $class the plane"
    .venv/bin/python scripts/paired_table.py $(for f in $C $M; do echo out/s28-$class-$(basename $f); done) \
        --model $MODEL --base $BASE --splits test,ood
done
for S in 0 1 2; do
    echo "== seed $S against its column"
    .venv/bin/python scripts/paired_table.py out/s26-lox-column-s$S.csv out/s27-lox-exch-wd1e-2-s$S.csv \
        --model lox-exch-wd1e-2-s$S --base lox-column-s$S --splits val,test,ood
done
