#!/usr/bin/env bash
# Session 33: the embedded drift's bisection, as run (repository root). Each commit in a
# worktree beside the checkout, run on this checkout's venv through PYTHONPATH; the plane
# physics with the main job's settings, seed 0.
#   data/paper-room.nc       : `plumecast generate paper-room` at HEAD (67 scenarios, 8 val)
#   ../i13/data/paper-room.nc: the same at d10c5c1 (59 scenarios, no val; the 59 equal HEAD's bit for bit)
set -eu
ROOT=$PWD
PLANE="--set observation_log_max=1.0 --set observation_spacing_cells=12 --set loss=field+root"
at() {  # at COMMIT ARGS...: plumecast at COMMIT, run in its worktree ../bis-COMMIT
  local c=$1 d=../bis-$(echo "$1" | tr -c 'a-z0-9\n' 'p'); shift
  [ -d "$d" ] || git worktree add -f "$d" "$c" >/dev/null
  (cd "$d" && PYTHONPATH=$PWD/src "$ROOT/.venv/bin/python" -c \
    'import sys; from plumecast.cli import app; sys.argv[0]="plumecast"; app()' "$@")
}
[ -f ../i13/data/paper-room.nc ] || { git worktree add -f ../i13 d10c5c1 >/dev/null; (cd ../i13 && mkdir -p data &&
  PYTHONPATH=$PWD/src "$ROOT/.venv/bin/python" -c 'import sys; from plumecast.cli import app; sys.argv[0]="plumecast"; app()' \
  generate paper-room --out data/paper-room.nc); }
(cd ../i13 && PYTHONPATH=$PWD/src "$ROOT/.venv/bin/python" -c 'import sys; from plumecast.cli import app; sys.argv[0]="plumecast"; app()' \
  train data/paper-room.nc --variant physics --preset quick --out runs/physics-quick $PLANE)  # issue 13's commit, seed 0
for c in d71530d a171c31; do  # before / after the fused training loop and val selection; data without val
  at $c train "$ROOT/../i13/data/paper-room.nc" --variant physics --preset quick --out runs/physics-s0 $PLANE
done
for c in a171c31 f017db4^; do  # data with val, every epoch run (patience 0)
  at $c train "$ROOT/data/paper-room.nc" --variant physics --preset quick --out runs/physics-valdata-p0-s0 $PLANE --set patience=0
done
.venv/bin/plumecast train data/paper-room.nc --variant physics --preset quick --out runs/physics-p0-s0 $PLANE --set patience=0
.venv/bin/plumecast train ../i13/data/paper-room.nc --variant physics --preset quick --out runs/physics-i13data-s0 $PLANE
.venv/bin/python out/s33-sel-last.py data/paper-room.nc ../bis-a171c31/runs/physics-valdata-p0-s0 runs/physics-p0-s0 \
  ../bis-f017db4p/runs/physics-valdata-p0-s0
.venv/bin/python out/s33-sel-last.py data/paper-room.nc ../bis-d71530d/runs/physics-s0 ../bis-a171c31/runs/physics-s0 \
  runs/physics-i13data-s0 --models last
