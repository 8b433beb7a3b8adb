#!/usr/bin/env bash
# Session 37: the memory closure from each 32-epoch plane physics on l-office-wide (runs/low-physics32-sS),
# out/s36-run.sh's closure settings (5 epochs, learning rate 1e-3); seeds 0-2, two at a time.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
D=data/l-office-wide-of.nc
L="--preset quick --set observation_log_max=0 --set observation_spacing_cells=12 --set curriculum_s=[480] --set window_s=480 --set advection=tvd --set loss=field+log"
one() {
  R=runs/low-memory32-s$1; LOG=out/s37-low-memory32-s$1.log
  [ -f "$R/summary.json" ] || .venv/bin/plumecast train "$D" --variant memory $L --set "epochs=[5]" --set learning_rate=1e-3 \
      --init-from "runs/low-physics32-s$1" --set seed="$1" --out "$R" --no-progress >>"$LOG" 2>&1
  echo "$R trained rc $?" >>"$LOG"
  .venv/bin/python scripts/height_table.py "$R" --data "$D" --splits train,val,test,ood --csv "out/s37-low-memory32-s$1.csv" >"out/s37-low-memory32-s$1.txt" 2>>"$LOG"
  echo "$R scored rc $?" >>"$LOG"
}
( one 0; one 2 ) &
( one 1 ) &
wait
.venv/bin/python scripts/paired_table.py out/s37-low-physics32-s{0,1,2}.csv out/s37-low-memory32-s{0,1,2}.csv \
    --model low-memory32-s0,low-memory32-s1,low-memory32-s2 --base low-physics32-s0,low-physics32-s1,low-physics32-s2 \
    --splits val,test,ood --figure docs/img/paired-l-office-wide-plane32-memory.png \
    --title "l-office-wide (OpenFOAM): memory closure minus 32-epoch plane physics, 3 seeds" > out/s37-memory32-verdict.txt
echo "memory32 done $(date +%T)" >> out/s36-lanes.log
