#!/usr/bin/env bash
# Session 35: the column with one option changed, else the main job's column settings; 24-val
# paper-room. Runs go to runs/v24-column-NAME-sS, logs to out/s35-NAME-sS.log.
#   bash out/s35-column-option.sh unscaled source_scale_max=1 0 1 2   # the emission as given (scale exactly 1)
#   bash out/s35-column-option.sh smooth smoothness=0.1 0 1 2         # 100x the preset's smoothness of the plane's diffusivity
set -uo pipefail
NAME=$1; OPTION=$2; shift 2
DATA=data/paper-room.nc; P=.venv/bin/plumecast
for S in "$@"; do
  run=runs/v24-column-$NAME-s$S; LOG=out/s35-$NAME-s$S.log
  if [ -f "$run/summary.json" ]; then echo "reusing $run" >>"$LOG"; continue; fi
  "$P" train "$DATA" --variant column --preset quick --out "$run" --set "$OPTION" \
    --set observation_log_max=1.0 --set observation_spacing_cells=12 --set loss=field+root --set seed=$S >>"$LOG" 2>&1
  echo "$run rc=$?" >>"$LOG"
done
