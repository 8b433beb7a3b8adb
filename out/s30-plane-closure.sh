#!/usr/bin/env bash
# Session 30: a closure network on the plane physics of l-office-xl.
# usage: s30-plane-closure.sh VARIANT SEED CUT(HH:MM) [LEARNING_RATE]  (default 1e-3; another rate adds -lrRATE to the run name)
# VARIANT is memory or markovian; it starts from runs/lox-plane-sSEED (session 29) and keeps its model chosen on val.
# A training still running at CUT is stopped and scored with the model its run kept on val so far.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
L="--preset quick --set observation_log_max=0 --set observation_spacing_cells=12 --set curriculum_s=[480] --set window_s=480 --set advection=tvd --set loss=field+log"
D=data/l-office-xl-of.nc
V=$1; S=$2; LR=${4:-1e-3}; R=lox-plane-$V-s$S
[ "$LR" = 1e-3 ] || R=lox-plane-$V-lr$LR-s$S
left=$(( $(date -d "$3" +%s) - $(date +%s) ))
echo "$R start $(date +%T), cut in $left s"
timeout "$left" .venv/bin/plumecast train $D --variant $V $L --set epochs=[5] --set seed=$S --set learning_rate=$LR \
    --init-from runs/lox-plane-s$S --out runs/$R --no-progress
rc=$?  # before any other command: 124 when the cut stopped it
echo "$R end $(date +%T) rc $rc"
.venv/bin/python scripts/height_table.py runs/$R --data $D --splits train,val,test,ood --csv out/s30-$R.csv > out/s30-$R.txt
echo "$R eval end $(date +%T)"
