#!/usr/bin/env bash
# Session 44's tail hypothesis (docs/results.md, registered at 09:32): the exchange closure with memory
# (runs/prw10s-exchange-s{0,1}) against its column (runs/prw10s-column-s{0,1}) on the second fresh paper-room draw
# (data/paper-room-wide-fresh2-l10-of.nc), judged on the mean per-scenario difference (paired_table.py --mean),
# the median rule beside it. Scores each run once (when its CSV is absent); chooses nothing.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
D=data/paper-room-wide-fresh2-l10-of.nc
[ -f "$D" ] || { echo "$D is missing: plumecast generate out/paper-room-wide-fresh2-l10.toml --engine openfoam --out $D" >&2; exit 2; }
for V in column exchange; do
  for S in 0 1; do
    C=out/s44-fresh2-prw10s-$V-s$S.csv
    [ -f "$C" ] || .venv/bin/python scripts/height_table.py runs/prw10s-$V-s$S --data "$D" --splits test,ood --csv "$C" \
        >"${C%.csv}.txt" || { echo "scoring runs/prw10s-$V-s$S failed" >&2; rm -f "$C"; exit 1; }
  done
done
echo "== the tail hypothesis: exchange closure (memory) minus column, second fresh draw, 2 seeds"
.venv/bin/python scripts/paired_table.py out/s44-fresh2-prw10s-column-s{0,1}.csv out/s44-fresh2-prw10s-exchange-s{0,1}.csv \
    --model prw10s-exchange-s0,prw10s-exchange-s1 --base prw10s-column-s0,prw10s-column-s1 --splits test,ood --mean \
    --figure docs/img/paired-paper-room-fresh2-exchange.png \
    --title "paper-room second fresh draw (OpenFOAM): exchange closure (memory) minus column, 2 seeds"
.venv/bin/python out/s36-classes.py out/s44-fresh2-prw10s-column-s{0,1}.csv out/s44-fresh2-prw10s-exchange-s{0,1}.csv
