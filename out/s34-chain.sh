#!/usr/bin/env bash
# Session 34: the main job's chain (scripts/demo.sh's settings) for one seed on one dataset.
#   bash out/s34-chain.sh DATA PREFIX SEED    e.g. data/paper-room.nc v24 0
# Runs go to runs/PREFIX-{physics,layered,memory,column}-sS; logs to out/s34-PREFIX-sS.log.
set -uo pipefail
DATA=$1; PREFIX=$2; S=$3
P=.venv/bin/plumecast
PLANE=(--set observation_log_max=1.0 --set observation_spacing_cells=12 --set loss=field+root --set seed=$S)
LAYER='closure_options={"reservoir": true}'
LOG=out/s34-$PREFIX-s$S.log
run() {  # run NAME VARIANT [options...]
  local name=runs/$PREFIX-$1-s$S variant=$2; shift 2
  [ -f "$name/summary.json" ] && { echo "reusing $name" >>"$LOG"; return 0; }
  "$P" train "$DATA" --variant "$variant" --preset quick --out "$name" "$@" >>"$LOG" 2>&1
  echo "$name rc=$?" >>"$LOG"
}
run physics physics "${PLANE[@]}"
run layered layered "${PLANE[@]}"
run memory memory --init-from "runs/$PREFIX-layered-s$S" --set "$LAYER" "${PLANE[@]}"
run column column "${PLANE[@]}"
echo "chain done $(date)" >>"$LOG"
