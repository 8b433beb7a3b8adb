#!/usr/bin/env bash
# Session 40: the data-driven variant on OpenFOAM paper-room, seeds 0-2, against the plane physics.
# Seeds 1 and 2 were trained with `bash out/s36-run.sh data/paper-room-wide-of.nc prw datadriven S`;
# seed 1 diverged in epoch 3 (training stopped with an error after 21 non-finite losses) and is
# scored here at its best-on-val epoch before the stop (runs/prw-datadriven-s1/selected).
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
D=data/paper-room-wide-of.nc
C=out/s40-prw-datadriven-s1-stopped.csv
[ -f $C ] || .venv/bin/python scripts/height_table.py runs/prw-datadriven-s1 --data $D --splits train,val,test,ood \
    --csv $C >out/s40-prw-datadriven-s1-stopped.txt || exit 1
.venv/bin/python scripts/paired_table.py out/s36-prw-physics-s{0,1,2}.csv out/s36-prw-datadriven-s0.csv $C \
    out/s36-prw-datadriven-s2.csv --model prw-datadriven-s0,prw-datadriven-s1,prw-datadriven-s2 \
    --base prw-physics-s0,prw-physics-s1,prw-physics-s2 --splits val,test,ood \
    --figure docs/img/paired-paper-room-datadriven-plane.png \
    --title "paper-room (OpenFOAM): data-driven minus plane physics, 3 seeds (seed 1 stopped by divergence at epoch 3)"
