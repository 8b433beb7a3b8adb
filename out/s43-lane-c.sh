#!/usr/bin/env bash
# Session 43, lane c: after the embedded five-level column seed 0 ends (lane a stopped there for time), score it,
# then the nine-level paper-room column on the rebuilt sources, seed 1.
cd "$(dirname "$0")/.."
while pgrep -f "train data/paper-room.nc --variant column" >/dev/null; do sleep 20; done
.venv/bin/python scripts/height_table.py runs/emb5-column-s0 --data data/paper-room.nc --splits train,val,test,ood \
  --csv out/s43-emb5-column-s0.csv >out/s43-emb5-column-s0.txt 2>>out/s43-emb5-column-s0.log
echo "runs/emb5-column-s0 scored $(date +%T) rc $?" >>out/s43-emb5-column-s0.log
bash out/s43-run.sh data/paper-room-wide-l10-src-of.nc prw10s 1
