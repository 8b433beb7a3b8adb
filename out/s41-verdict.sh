#!/usr/bin/env bash
# Session 41: the paper-room plane physics at 48 epochs against the 15-epoch one, and its closures against
# it and against the control (out/s41-lanes.sh's runs), paired by scenario over the seeds run (SEEDS,
# default 0 1 2), on val, test and OOD, then on session 40's fresh draw; and the classes table of both.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
pairs() {
    pair physics48 physics plane48-physics15 "plane physics, 48 minus 15 epochs"
    pair memory48 physics48 plane48-memory "memory closure minus 48-epoch plane physics"
    pair markovian48 physics48 plane48-markovian "Markovian closure minus 48-epoch plane physics"
    pair memory48 control48 plane48c-memory "memory closure minus 48-epoch plane physics continued"
    pair markovian48 control48 plane48c-markovian "Markovian closure minus 48-epoch plane physics continued"
    pair memory48 markovian48 plane48-memory-markovian "memory minus Markovian closure on the 48-epoch plane"
}
FAMILIES="physics physics48 control48 memory48 markovian48"
(TAG=prw ROOM=paper-room; source out/verdict-pairs.sh; pairs)
echo "== splits: per split and height class, mean over seeds of the median final-time relative L2"
.venv/bin/python out/s36-classes.py $(for V in $FAMILIES; do for S in ${SEEDS:-0 1 2}; do
    [ -f out/s36-prw-$V-s$S.csv ] && echo out/s36-prw-$V-s$S.csv; done; done)
echo "======== the fresh draw"
for V in $FAMILIES; do for S in ${SEEDS:-0 1 2}; do bash out/s40-score-fresh.sh $V $S || exit; done; done
(TAG=prw ROOM=paper-room-fresh CSV=out/s40-fresh-prw SPLITS=test,ood; source out/verdict-pairs.sh; pairs)
echo "== fresh: per split and height class, mean over seeds of the median final-time relative L2"
.venv/bin/python out/s36-classes.py $(for V in $FAMILIES; do for S in ${SEEDS:-0 1 2}; do
    [ -f out/s40-fresh-prw-$V-s$S.csv ] && echo out/s40-fresh-prw-$V-s$S.csv; done; done)
echo "======== data-driven, seed 1 trained again with rollbacks (out/s41-datadriven.sh), against the plane physics"
.venv/bin/python scripts/paired_table.py out/s36-prw-physics-s{0,1,2}.csv out/s36-prw-datadriven-s0.csv \
    out/s36-prw-datadriven-rb-s1.csv out/s36-prw-datadriven-s2.csv \
    --model prw-datadriven-s0,prw-datadriven-rb-s1,prw-datadriven-s2 --base prw-physics-s0,prw-physics-s1,prw-physics-s2 \
    --splits val,test,ood --figure docs/img/paired-paper-room-datadriven-rb-plane.png \
    --title "paper-room (OpenFOAM): data-driven minus plane physics, 3 seeds (seed 1 with rollbacks)"
