#!/usr/bin/env bash
# Session 37, on OpenFOAM l-office-wide with out/s36-run.sh's settings, seeds 0-2 two at a time:
#   bash out/s37-runs.sh physics32   # the plane physics at 32 epochs (its val still fell at epoch 16)
#   bash out/s37-runs.sh memory32    # the memory closure (5 epochs, rate 1e-3) from each runs/low-physics32-sS,
#                                    # then its paired verdict against them (out/s37-memory32-verdict.txt)
# Runs runs/low-NAME-sS, scores out/s37-low-NAME-sS.{csv,txt}.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
N=$1; D=data/l-office-wide-of.nc
L="--preset quick --set observation_log_max=0 --set observation_spacing_cells=12 --set curriculum_s=[480] --set window_s=480 --set advection=tvd --set loss=field+log"
case $N in
  physics32) X() { echo "--variant physics --set epochs=[32]"; } ;;
  memory32) X() { echo "--variant memory --set epochs=[5] --set learning_rate=1e-3 --init-from runs/low-physics32-s$1"; } ;;
  *) echo "unknown run family $N" >&2; exit 2 ;;
esac
one() {
  R=runs/low-$N-s$1; LOG=out/s37-low-$N-s$1.log
  [ -f "$R/summary.json" ] || .venv/bin/plumecast train "$D" $(X "$1") $L --set seed="$1" --out "$R" --no-progress >>"$LOG" 2>&1
  echo "$R trained rc $?" >>"$LOG"
  .venv/bin/python scripts/height_table.py "$R" --data "$D" --splits train,val,test,ood --csv "out/s37-low-$N-s$1.csv" >"out/s37-low-$N-s$1.txt" 2>>"$LOG"
  echo "$R scored rc $?" >>"$LOG"
}
( one 0; one 2 ) &
( one 1 ) &
wait
if [ "$N" = memory32 ]; then
  .venv/bin/python scripts/paired_table.py out/s37-low-physics32-s{0,1,2}.csv out/s37-low-memory32-s{0,1,2}.csv \
      --model low-memory32-s0,low-memory32-s1,low-memory32-s2 --base low-physics32-s0,low-physics32-s1,low-physics32-s2 \
      --splits val,test,ood --figure docs/img/paired-l-office-wide-plane32-memory.png \
      --title "l-office-wide (OpenFOAM): memory closure minus 32-epoch plane physics, 3 seeds" > out/s37-memory32-verdict.txt
fi
echo "$N done $(date +%T)" >> out/s36-lanes.log
