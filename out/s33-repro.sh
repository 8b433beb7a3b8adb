#!/usr/bin/env bash
# Session 33: the main job's physics-quick (seed 0) trained twice side by side, XLA_FLAGS unset
# (the command asks for reproducible CPU results itself); compares the two summaries.
set -eu
PLANE="--set observation_log_max=1.0 --set observation_spacing_cells=12 --set loss=field+root"
for i in 1 2; do
  rm -rf runs/physics-repro-$i
  env -u XLA_FLAGS .venv/bin/plumecast train data/paper-room.nc --variant physics --preset quick \
    --out runs/physics-repro-$i $PLANE > out/s33-repro-$i.log 2>&1 &
done
wait
.venv/bin/python -c "
import json
a, b = (json.load(open(f'runs/physics-repro-{i}/summary.json')) for i in (1, 2))
print('val curves identical:', a['val_curve'] == b['val_curve'], '; final-time errors identical:', a['trained'] == b['trained'])"
