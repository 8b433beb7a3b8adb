#!/usr/bin/env bash
# Session 43, lane b: on OpenFOAM l-office-wide with nine levels, the column's seed 2, then session 23's
# exchange closure (memory) and its Markovian ablation on each nine-level column (out/s36-run.sh, tag low10:
# l-office's footing; 5 epochs at 1e-3 from runs/low10-column-sS, best-on-val), seed by seed.
cd "$(dirname "$0")/.."
D=data/l-office-wide-l10-of.nc
bash out/s36-run.sh $D low10 column 2
for S in 0 1 2; do
  for V in exchange exchange-markovian; do bash out/s36-run.sh $D low10 $V $S; done
done
