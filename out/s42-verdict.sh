#!/usr/bin/env bash
# Session 42: the paper-room column on nine levels (runs/prw10-column-sS) against the five-level column
# (runs/prw-column-sS), paired by scenario over the seeds run (SEEDS, default 0 1 2) on train, val, test and
# OOD, then on session 40's fresh draw (rebuilt on nine levels: data/paper-room-wide-fresh-l10-of.nc); and
# both per split and source height class; then the same for l-office-wide (LSEEDS, default 0 1), its fresh
# draw the 88 l-office-xl scenarios of sessions 31-32 rebuilt on nine levels (out/l-office-xl-fresh{,2}-l10.toml).
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
SEEDS=${SEEDS:-0 1 2}; N=$(echo $SEEDS | wc -w)
files() { local s; for s in $SEEDS; do echo "$1-s$s.csv"; done; }
names() { local s; for s in $SEEDS; do echo "$1-s$s"; done | paste -sd,; }
for S in $SEEDS; do  # the fresh draw, scored once per run
    for T in prw prw10; do
        R=runs/$T-column-s$S C=out/s42-fresh-$T-column-s$S.csv D=data/paper-room-wide-fresh-of.nc
        [ $T = prw10 ] && D=data/paper-room-wide-fresh-l10-of.nc
        [ -f "$C" ] && continue
        .venv/bin/python scripts/height_table.py "$R" --data "$D" --splits test,ood --csv "$C" >"${C%.csv}.txt" \
            || { echo "scoring $R failed" >&2; rm -f "$C"; exit 1; }
    done
done
echo "== nine levels minus five, $N seeds"
.venv/bin/python scripts/paired_table.py $(files out/s36-prw-column) $(files out/s36-prw10-column) \
    --model $(names prw10-column) --base $(names prw-column) --splits train,val,test,ood \
    --figure docs/img/paired-paper-room-column9-column5.png --title "paper-room (OpenFOAM): column on nine levels minus on five, $N seeds"
echo "== per split and height class, mean over seeds of the median final-time relative L2"
.venv/bin/python out/s36-classes.py $(files out/s36-prw-column) $(files out/s36-prw10-column)
echo "======== the fresh draw"
.venv/bin/python scripts/paired_table.py $(files out/s42-fresh-prw-column) $(files out/s42-fresh-prw10-column) \
    --model $(names prw10-column) --base $(names prw-column) --splits test,ood \
    --figure docs/img/paired-paper-room-fresh-column9-column5.png --title "paper-room fresh draw (OpenFOAM): column on nine levels minus on five, $N seeds"
.venv/bin/python out/s36-classes.py $(files out/s42-fresh-prw-column) $(files out/s42-fresh-prw10-column)
echo "======== l-office-wide: nine levels (runs/low10-column-sS) minus five (runs/low-column-sS), seeds ${LSEEDS:=0 1}"
SEEDS=$LSEEDS; N=$(echo $SEEDS | wc -w)
for S in $SEEDS; do  # the 88 fresh l-office-xl scenarios of sessions 31-32, rebuilt on nine levels; scored once
    for F in l-office-xl-fresh l-office-xl-fresh2; do
        C=out/s42-$F-low10-column-s$S.csv
        [ -f "$C" ] || .venv/bin/python scripts/height_table.py runs/low10-column-s$S --data data/$F-l10-of.nc \
            --splits test,ood --csv "$C" >"${C%.csv}.txt" || { echo "scoring failed" >&2; rm -f "$C"; exit 1; }
    done
done
.venv/bin/python scripts/paired_table.py $(files out/s36-low-column) $(files out/s36-low10-column) \
    --model $(names low10-column) --base $(names low-column) --splits train,val,test,ood \
    --figure docs/img/paired-l-office-wide-column9-column5.png --title "l-office-wide (OpenFOAM): column on nine levels minus on five, $N seeds"
.venv/bin/python out/s36-classes.py $(files out/s36-low-column) $(files out/s36-low10-column)
echo "== the 88 fresh scenarios (session 38's scores of the five-level columns)"
.venv/bin/python scripts/paired_table.py out/s38-l-office-xl-fresh.csv out/s38-l-office-xl-fresh2.csv \
    $(for S in $SEEDS; do echo out/s42-l-office-xl-fresh-low10-column-s$S.csv out/s42-l-office-xl-fresh2-low10-column-s$S.csv; done) \
    --model $(names low10-column) --base $(names low-column) --splits test,ood \
    --figure docs/img/paired-l-office-wide-fresh-column9-column5.png --title "l-office fresh draw (OpenFOAM): column on nine levels minus on five, $N seeds"
