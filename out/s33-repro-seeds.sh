#!/usr/bin/env bash
# Session 33: the main job's physics-quick at seeds 1 and 2 with reproducible training (the
# command's default since the mend; seed 0 is out/s33-repro.sh's runs/physics-repro-1), then
# the picks against the last models on every split and on val alone.
set -eu
PLANE="--set observation_log_max=1.0 --set observation_spacing_cells=12 --set loss=field+root"
for s in 1 2; do
  env -u XLA_FLAGS .venv/bin/plumecast train data/paper-room.nc --variant physics --preset quick --set seed=$s \
    --out runs/physics-repro-s$s $PLANE > out/s33-repro-s$s.log 2>&1 &
done
wait
.venv/bin/python out/s33-sel-last.py data/paper-room.nc runs/physics-repro-1 runs/physics-repro-s1 runs/physics-repro-s2
.venv/bin/python out/s33-val-noise.py data/paper-room.nc runs/physics-repro-1 runs/physics-repro-s1 runs/physics-repro-s2
