#!/usr/bin/env bash
# Session 29: the drift closure (target "drift": the exchange closure and a learned drift of the plane), seed 0,
# Needs the branch drift-closure: main has no target "drift" (docs/results.md, session 29).
# with session 23's unaveraged, undecayed exchange closure's command otherwise. usage: s29-drift.sh SEED CUT(HH:MM)
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
L="--preset quick --set observation_log_max=0 --set observation_spacing_cells=12 --set curriculum_s=[480] --set window_s=480 --set advection=tvd --set loss=field+log"
D=data/l-office-xl-of.nc
X='closure_options={"reservoir": "column", "target": "drift"}'
S=$1; R=lox-drift-s$S
left=$(( $(date -d "$2" +%s) - $(date +%s) ))
echo "$R start $(date +%T), cut in $left s"
timeout "$left" .venv/bin/plumecast train $D --variant memory $L --set epochs=[5] --set seed=$S --set learning_rate=1e-3 \
    --init-from runs/lox-column-s$S --set "$X" --out runs/$R --no-progress
rc=$?  # before any other command: 124 when the cut stopped it
echo "$R end $(date +%T) rc $rc"
.venv/bin/python scripts/height_table.py runs/$R --data $D --splits val,test,ood --csv out/s29-$R.csv > out/s29-$R.txt
echo "$R eval end $(date +%T)"
