#!/usr/bin/env bash
# Session 33: the main job's plane physics (physics-quick settings) at seeds 1 and 2, on the
# current code (repository root) and at d10c5c1 (a worktree at $I13 with its own paper-room data).
# usage: out/s33-seeds.sh SEED   (run from the repository root; I13 defaults to ../i13)
set -u
S=$1; I13=${I13:-../i13}
PLANE="--set observation_log_max=1.0 --set observation_spacing_cells=12 --set loss=field+root"
.venv/bin/plumecast train data/paper-room.nc --variant physics --preset quick --set seed=$S --out runs/physics-quick-s$S $PLANE > out/s33-physics-s$S.log 2>&1 &
(cd $I13 && PYTHONPATH=$PWD/src $OLDPWD/.venv/bin/python -c 'import sys; from plumecast.cli import app; sys.argv[0]="plumecast"; app()' \
  train data/paper-room.nc --variant physics --preset quick --set seed=$S --out runs/physics-quick-s$S $PLANE > out/physics-s$S.log 2>&1) &
wait
