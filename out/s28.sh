#!/usr/bin/env bash
# Session 28: the Markovian ablation of the weight-decayed exchange closure. usage: s28.sh SEED
set -euo pipefail
cd "$(dirname "$0")/.."  # the repository root
L="--preset quick --set observation_log_max=0 --set observation_spacing_cells=12 --set curriculum_s=[480] --set window_s=480 --set advection=tvd --set loss=field+log"
D=data/l-office-xl-of.nc
X='closure_options={"reservoir": "column", "target": "exchange"}'
S=$1; R=lox-exch-markovian-wd1e-2-s$S
echo "$R start $(date +%T)"
.venv/bin/plumecast train $D --variant markovian $L --set epochs=[5] --set seed=$S --set learning_rate=1e-3 \
    --init-from runs/lox-column-s$S --set "$X" --set weight_decay=1e-2 --out runs/$R --no-progress
echo "$R end $(date +%T)"
.venv/bin/python scripts/height_table.py runs/$R --data $D --splits val,test,ood --csv out/s28-$R.csv > out/s28-$R.txt
echo "$R eval end $(date +%T)"
