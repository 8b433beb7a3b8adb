#!/usr/bin/env bash
# Session 39: the verdict of item 5's plane rows on OpenFOAM paper-room (docs/results.md, session 39's plan).
# A pair whose three seeds have not all been scored is named and skipped.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
seeds() { echo "out/s36-prw-$1-s0.csv out/s36-prw-$1-s1.csv out/s36-prw-$1-s2.csv"; }
names() { echo "prw-$1-s0,prw-$1-s1,prw-$1-s2"; }
pair() {  # MODEL BASE FIGURE TITLE
    echo "== $1 - $2"
    for f in $(seeds $1) $(seeds $2); do [ -f "$f" ] || { echo "not run: $f"; return; }; done
    .venv/bin/python scripts/paired_table.py $(seeds $2) $(seeds $1) --model $(names $1) --base $(names $2) \
        --splits val,test,ood --figure "docs/img/paired-paper-room-$3.png" --title "paper-room (OpenFOAM): $4, 3 seeds"
}
pair memory physics plane-memory "memory closure minus plane physics"
pair markovian physics plane-markovian "Markovian closure minus plane physics"
pair memory markovian plane-memory-markovian "memory minus Markovian closure on the plane"
pair datadriven physics datadriven-plane "data-driven minus plane physics"
pair memory physics5 plane5-memory "memory closure minus plane physics continued"
pair markovian physics5 plane5-markovian "Markovian closure minus plane physics continued"
pair physics5 physics plane5-plane "plane physics continued minus plane physics"
echo "== per split and height class, mean over seeds of the median final-time relative L2"
.venv/bin/python out/s36-classes.py $(ls out/s36-prw-*-s[012].csv)
