#!/usr/bin/env bash
# Session 31: session 23's exchange closure (memory, unaveraged, no weight decay) from a column of l-office-xl.
# usage: s31-exch.sh SEED CUT(HH:MM)   (session 23's command; session 26 reproduced its seed 0 to the digit)
# A training still running at CUT is stopped and scored with the model its run kept on val so far.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
L="--preset quick --set observation_log_max=0 --set observation_spacing_cells=12 --set curriculum_s=[480] --set window_s=480 --set advection=tvd --set loss=field+log"
X='closure_options={"reservoir": "column", "target": "exchange"}'
D=data/l-office-xl-of.nc
S=$1; R=lox-exch-s$S
left=$(( $(date -d "$2" +%s) - $(date +%s) ))
echo "$R start $(date +%T), cut in $left s"
timeout "$left" .venv/bin/plumecast train $D --variant memory $L --set epochs=[5] --set seed=$S --set learning_rate=1e-3 \
    --init-from runs/lox-column-s$S --set "$X" --out runs/$R --no-progress
rc=$?  # before any other command: 124 when the cut stopped it
echo "$R end $(date +%T) rc $rc"
.venv/bin/python scripts/height_table.py runs/$R --data $D --splits train,val,test,ood --csv out/s31-$R.csv > out/s31-$R.txt
echo "$R eval end $(date +%T)"
