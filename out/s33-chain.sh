#!/usr/bin/env bash
# Session 33: the main job's layered physics and memory hybrid (seed 0, scripts/demo.sh's
# settings) on the current code (repository root) and at d10c5c1 (worktree $I13, its own data).
set -u
I13=${I13:-../i13}
PLANE="--set observation_log_max=1.0 --set observation_spacing_cells=12 --set loss=field+root"
LAYER='closure_options={"reservoir": true}'
chain() {  # chain PLUMECAST-COMMAND... (run in the folder holding data/ and runs/)
  "$@" train data/paper-room.nc --variant layered --preset quick --out runs/layered-quick $PLANE &&
  "$@" train data/paper-room.nc --variant memory --preset quick --out runs/memory-quick --init-from runs/layered-quick --set "$LAYER" $PLANE
}
chain .venv/bin/plumecast > out/s33-chain-head.log 2>&1 &
(cd $I13 && chain env PYTHONPATH=$PWD/src $OLDPWD/.venv/bin/python -c 'import sys; from plumecast.cli import app; sys.argv[0]="plumecast"; app()' > out/chain.log 2>&1) &
wait
