#!/usr/bin/env bash
# Session 29: the plane physics on l-office-xl on the columns' footing. usage: s29-plane.sh SEED CUT(HH:MM)
# A training still running at CUT is stopped and scored with the model its run kept on val so far.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
L="--preset quick --set observation_log_max=0 --set observation_spacing_cells=12 --set curriculum_s=[480] --set window_s=480 --set advection=tvd --set loss=field+log"
D=data/l-office-xl-of.nc
S=$1; R=lox-plane-s$S
left=$(( $(date -d "$2" +%s) - $(date +%s) ))
echo "$R start $(date +%T), cut in $left s"
timeout "$left" .venv/bin/plumecast train $D --variant physics $L --set epochs=[16] --set seed=$S --out runs/$R --no-progress
rc=$?  # before any other command: 124 when the cut stopped it
echo "$R end $(date +%T) rc $rc"
.venv/bin/python scripts/height_table.py runs/$R --data $D --splits train,val,test,ood --csv out/s29-$R.csv > out/s29-$R.txt
echo "$R eval end $(date +%T)"
