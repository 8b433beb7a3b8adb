#!/usr/bin/env bash
# Session 35: the column with a 100 times stronger smoothness penalty on the plane's diffusivity
# logits (smoothness=0.1; the quick preset's is 1e-3), else the main job's column settings;
# 24-val paper-room; seeds given.      bash out/s35-smooth.sh 0 1 2
set -uo pipefail
DATA=data/paper-room.nc; P=.venv/bin/plumecast
for S in "$@"; do
  name=runs/v24-column-smooth-s$S; LOG=out/s35-smooth-s$S.log
  if [ -f "$name/summary.json" ]; then echo "reusing $name" >>"$LOG"; continue; fi
  "$P" train "$DATA" --variant column --preset quick --out "$name" --set smoothness=0.1 \
    --set observation_log_max=1.0 --set observation_spacing_cells=12 --set loss=field+root --set seed=$S >>"$LOG" 2>&1
  echo "$name rc=$?" >>"$LOG"
done
