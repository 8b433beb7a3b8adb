#!/usr/bin/env bash
# Session 33: the tables of docs/results.md's first section, from the runs of
# out/s33-bisect.sh, out/s33-seeds.sh 1 and 2, out/s33-chain.sh and `make demo`'s physics-quick.
set -eu
I13=${I13:-../i13}
.venv/bin/python out/s33-sel-last.py data/paper-room.nc runs/physics-quick runs/physics-quick-s1 runs/physics-quick-s2 \
  runs/layered-quick runs/memory-quick
.venv/bin/python out/s33-sel-last.py data/paper-room.nc $I13/runs/physics-quick $I13/runs/physics-quick-s1 \
  $I13/runs/physics-quick-s2 $I13/runs/layered-quick $I13/runs/memory-quick --models last
.venv/bin/python out/s33-val-noise.py data/paper-room.nc runs/physics-quick runs/physics-quick-s1 runs/physics-quick-s2 \
  ../bis-a171c31/runs/physics-valdata-p0-s0 runs/physics-p0-s0 runs/layered-quick runs/memory-quick
