#!/usr/bin/env bash
# Session 37: the plane physics on OpenFOAM l-office-wide with 32 epochs instead of 16 (its val curve
# still fell at epoch 16), else out/s36-run.sh's settings; seeds 0-2, two at a time. Runs
# runs/low-physics32-sS, scores out/s37-low-physics32-sS.{csv,txt}.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
D=data/l-office-wide-of.nc
L="--preset quick --set observation_log_max=0 --set observation_spacing_cells=12 --set curriculum_s=[480] --set window_s=480 --set advection=tvd --set loss=field+log"
one() {
  R=runs/low-physics32-s$1; LOG=out/s37-low-physics32-s$1.log
  [ -f "$R/summary.json" ] || .venv/bin/plumecast train "$D" --variant physics $L --set "epochs=[32]" --set seed="$1" --out "$R" --no-progress >>"$LOG" 2>&1
  echo "$R trained rc $?" >>"$LOG"
  .venv/bin/python scripts/height_table.py "$R" --data "$D" --splits train,val,test,ood --csv "out/s37-low-physics32-s$1.csv" >"out/s37-low-physics32-s$1.txt" 2>>"$LOG"
  echo "$R scored rc $?" >>"$LOG"
}
( one 0; one 2 ) &
( one 1 ) &
wait
echo "plane32 done $(date +%T)" >> out/s36-lanes.log
