#!/usr/bin/env bash
# Session 27: the exchange closure with weight decay on its network. usage: s27.sh SEED DECAY
set -euo pipefail
cd "$(dirname "$0")/.."  # the repository root
L="--preset quick --set observation_log_max=0 --set observation_spacing_cells=12 --set curriculum_s=[480] --set window_s=480 --set advection=tvd --set loss=field+log"
D=data/l-office-xl-of.nc
X='closure_options={"reservoir": "column", "target": "exchange"}'
S=$1; W=$2
echo "wd $W s$S start $(date +%T)"
.venv/bin/plumecast train $D --variant memory $L --set epochs=[5] --set seed=$S --set learning_rate=1e-3 \
    --init-from runs/lox-column-s$S --set "$X" --set weight_decay=$W --out runs/lox-exch-wd$W-s$S --no-progress
echo "wd $W s$S end $(date +%T)"
.venv/bin/python scripts/height_table.py runs/lox-exch-wd$W-s$S --data $D --splits val,test,ood --csv out/s27-lox-exch-wd$W-s$S.csv > out/s27-lox-exch-wd$W-s$S.txt
echo "wd $W s$S eval end $(date +%T)"
