#!/usr/bin/env bash
# Session 34: score runs on the 24-val paper-room (val, test, OOD) and on the fresh set
# (paper-room-wide's test-wide-* and moving-wide-*), best-on-val and last models, into
# out/s34-{main,fresh}{,-last}-TAG.csv; then the tables of every tag scored so far.
#   bash out/s34-tables.sh TAG RUN...      e.g. bash out/s34-tables.sh s0 runs/v8-*-s0 runs/v24-*-s0
set -euo pipefail
PY=.venv/bin/python
TAG=$1; shift
$PY scripts/height_table.py "$@" --data data/paper-room.nc --splits val,test,ood --csv out/s34-main-$TAG.csv > /dev/null
$PY scripts/height_table.py "$@" --data data/paper-room-fresh.nc --splits test,ood --csv out/s34-fresh-$TAG.csv > /dev/null
$PY scripts/height_table.py "$@" --model last --data data/paper-room.nc --splits val,test,ood --csv out/s34-main-last-$TAG.csv > /dev/null
$PY scripts/height_table.py "$@" --model last --data data/paper-room-fresh.nc --splits test,ood --csv out/s34-fresh-last-$TAG.csv > /dev/null
$PY out/s34-picks.py runs/v8-* runs/v24-* > out/s34-picks.md
$PY out/s34-verdict.py > out/s34-verdict.md
cat out/s34-picks.md out/s34-verdict.md
