#!/usr/bin/env bash
# Session 34: item 5's embedded rows on the 24-val paper-room: the memory and Markovian closures on
# the column (reservoir = column) and the data-driven variant, seed S; the main job's settings.
#   bash out/s34-ext.sh SEED        (after out/s34-chain.sh data/paper-room.nc v24 SEED)
set -uo pipefail
S=$1; DATA=data/paper-room.nc; P=.venv/bin/plumecast
PLANE=(--set observation_log_max=1.0 --set observation_spacing_cells=12 --set loss=field+root --set seed=$S)
COL='closure_options={"reservoir": "column"}'
LOG=out/s34-ext-s$S.log
run() {
  local name=runs/v24-$1-s$S variant=$2; shift 2
  [ -f "$name/summary.json" ] && { echo "reusing $name" >>"$LOG"; return 0; }
  "$P" train "$DATA" --variant "$variant" --preset quick --out "$name" "$@" >>"$LOG" 2>&1
  echo "$name rc=$?" >>"$LOG"
}
run column-memory memory --init-from "runs/v24-column-s$S" --set "$COL" "${PLANE[@]}"
run column-markovian markovian --init-from "runs/v24-column-s$S" --set "$COL" "${PLANE[@]}"
run datadriven datadriven --init-from "runs/v24-physics-s$S" "${PLANE[@]}"
echo "ext done $(date)" >>"$LOG"
