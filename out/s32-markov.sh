#!/usr/bin/env bash
# Session 32: the Markovian ablation of session 23's exchange closure (unaveraged, no weight decay), seeds 1, 2.
# usage: s32-markov.sh SEED CUT(HH:MM)   (session 23's seed-0 command for runs/lox-exch-markovian-s0)
# A training still running at CUT is stopped and scored with the model its run kept on val so far.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
L="--preset quick --set observation_log_max=0 --set observation_spacing_cells=12 --set curriculum_s=[480] --set window_s=480 --set advection=tvd --set loss=field+log"
X='closure_options={"reservoir": "column", "target": "exchange"}'
D=data/l-office-xl-of.nc
S=$1; R=lox-exch-markovian-s$S
left=$(( $(date -d "$2" +%s) - $(date +%s) ))
echo "$R start $(date +%T), cut in $left s"
timeout "$left" .venv/bin/plumecast train $D --variant markovian $L --set epochs=[5] --set seed=$S --set learning_rate=1e-3 \
    --init-from runs/lox-column-s$S --set "$X" --out runs/$R --no-progress
rc=$?  # before any other command: 124 when the cut stopped it
echo "$R end $(date +%T) rc $rc"
.venv/bin/python scripts/height_table.py runs/$R --data $D --splits train,val,test,ood --csv out/s32-$R.csv > out/s32-$R.txt
echo "$R eval end $(date +%T)"
