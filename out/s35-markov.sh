#!/usr/bin/env bash
# Session 35: item 5's embedded Markovian ablation of the plane physics' closure: the Markovian
# closure on the layered physics (as scripts/demo.sh's markovian-quick), 24-val paper-room, seed S.
#   bash out/s35-markov.sh SEED     (after out/s34-chain.sh data/paper-room.nc v24 SEED)
set -uo pipefail
S=$1; DATA=data/paper-room.nc; P=.venv/bin/plumecast
PLANE=(--set observation_log_max=1.0 --set observation_spacing_cells=12 --set loss=field+root --set seed=$S)
LAYER='closure_options={"reservoir": true}'
LOG=out/s35-markov-s$S.log
name=runs/v24-markovian-s$S
if [ -f "$name/summary.json" ]; then echo "reusing $name" >>"$LOG"; exit 0; fi
"$P" train "$DATA" --variant markovian --preset quick --out "$name" \
  --init-from "runs/v24-layered-s$S" --set "$LAYER" "${PLANE[@]}" >>"$LOG" 2>&1
echo "$name rc=$?" >>"$LOG"
