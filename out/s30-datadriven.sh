#!/usr/bin/env bash
# Session 30: the data-driven variant (no physics) on l-office-xl. usage: s30-datadriven.sh SEED EPOCHS CUT(HH:MM)
# A training still running at CUT is stopped and scored with the model its run kept on val so far.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
L="--preset quick --set observation_log_max=0 --set observation_spacing_cells=12 --set curriculum_s=[480] --set window_s=480 --set advection=tvd --set loss=field+log"
D=data/l-office-xl-of.nc
S=$1; R=lox-datadriven-s$S
left=$(( $(date -d "$3" +%s) - $(date +%s) ))
echo "$R start $(date +%T), cut in $left s"
timeout "$left" .venv/bin/plumecast train $D --variant datadriven $L --set "epochs=[$2]" --set seed=$S --out runs/$R --no-progress
rc=$?  # before any other command: 124 when the cut stopped it
echo "$R end $(date +%T) rc $rc"
.venv/bin/python scripts/height_table.py runs/$R --data $D --splits train,val,test,ood --csv out/s30-$R.csv > out/s30-$R.txt
echo "$R eval end $(date +%T)"
