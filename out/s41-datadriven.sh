#!/usr/bin/env bash
# Session 41: the data-driven seed that diverged in session 40 (runs/prw-datadriven-s1, stopped by an error
# in epoch 3), trained again with the same options (out/s36-run.sh's paper-room footing, datadriven) on the
# code that rolls a diverged epoch back at half the rate, into runs/prw-datadriven-rb-s1; scored as
# s36-run.sh scores its runs. Starts once fewer than two trainings run (the lanes of out/s41-lanes.sh).
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
D=data/paper-room-wide-of.nc; R=runs/prw-datadriven-rb-s1; LOG=out/s36-prw-datadriven-rb-s1.log
while [ "$(pgrep -fc 'plumecast train')" -ge 2 ]; do sleep 30; done
echo "$R start $(date +%T)" >>"$LOG"
if [ ! -f "$R/summary.json" ]; then
  .venv/bin/plumecast train "$D" --preset quick --set observation_log_max=1.0 --set observation_spacing_cells=12 \
      --set "curriculum_s=[600]" --set window_s=600 --set advection=tvd --set loss=field+log --variant datadriven \
      --set "epochs=[8]" --set seed=1 --out "$R" --no-progress >>"$LOG" 2>&1
  rc=$?
  echo "$R end $(date +%T) rc $rc" >>"$LOG"
  [ $rc = 0 ] || exit $rc
fi
.venv/bin/python scripts/height_table.py "$R" --data "$D" --splits train,val,test,ood --csv out/s36-prw-datadriven-rb-s1.csv \
    >out/s36-prw-datadriven-rb-s1.txt
echo "$R scored $(date +%T) rc $?" >>"$LOG"
