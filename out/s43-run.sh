#!/usr/bin/env bash
# Session 43: the column on a dataset whose sources sit where OpenFOAM emits them (data/*-src-of.nc), on the
# footing of out/s36-run.sh's columns: paper-room (TAG prw*) 600 s windows and 15 epochs with the observation
# factor, l-office (else) 480 s and 16 epochs without; TVD, field+log, best-on-val. Scored per split and class.
# usage: s43-run.sh DATA TAG SEED   (run: runs/TAG-column-sSEED)
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
D=$1; T=$2; S=$3; R=runs/$T-column-s$S; LOG=out/s43-$T-column-s$S.log
case $T in
  prw*) OBS=1.0; W=600; E=15 ;;
  *) OBS=0; W=480; E=16 ;;
esac
echo "$R start $(date +%T)" >>"$LOG"
if [ ! -f "$R/summary.json" ]; then
  .venv/bin/plumecast train "$D" --preset quick --variant column --set observation_log_max=$OBS \
    --set observation_spacing_cells=12 --set "curriculum_s=[$W]" --set window_s=$W --set advection=tvd \
    --set loss=field+log --set "epochs=[$E]" --set seed="$S" --out "$R" --no-progress >>"$LOG" 2>&1
  rc=$?  # before any other command
  echo "$R end $(date +%T) rc $rc" >>"$LOG"
  [ $rc = 0 ] || exit $rc
fi
.venv/bin/python scripts/height_table.py "$R" --data "$D" --splits train,val,test,ood --csv "out/s43-$T-column-s$S.csv" \
  >"out/s43-$T-column-s$S.txt" 2>>"$LOG"
echo "$R scored $(date +%T) rc $?" >>"$LOG"
