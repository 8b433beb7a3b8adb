#!/usr/bin/env bash
# Session 34: tables of the chains of out/s34-chain.sh (prefixes v8 and v24, seeds 0-2) on the
# 24-val paper-room and on the fresh set (paper-room-wide's test-wide-* and moving-wide-*).
set -euo pipefail
PY=.venv/bin/python
RUNS=()
for m in physics layered memory column; do for p in v8 v24; do for s in 0 1 2; do
  [ -f runs/$p-$m-s$s/summary.json ] && RUNS+=(runs/$p-$m-s$s)
done; done; done
$PY scripts/height_table.py "${RUNS[@]}" --data data/paper-room.nc --splits val,test,ood --csv out/s34-main.csv > out/s34-main.md
$PY scripts/height_table.py "${RUNS[@]}" --data data/paper-room-fresh.nc --splits test,ood --csv out/s34-fresh.csv > out/s34-fresh.md
$PY scripts/height_table.py "${RUNS[@]}" --model last --data data/paper-room.nc --splits val,test,ood --csv out/s34-main-last.csv > out/s34-main-last.md
$PY scripts/height_table.py "${RUNS[@]}" --model last --data data/paper-room-fresh.nc --splits test,ood --csv out/s34-fresh-last.csv > out/s34-fresh-last.md
$PY out/s34-picks.py "${RUNS[@]}" > out/s34-picks.md
$PY out/s34-verdict.py > out/s34-verdict.md
cat out/s34-picks.md out/s34-verdict.md
