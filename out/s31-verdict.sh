#!/usr/bin/env bash
# Session 31: the seed-ensemble verdict on l-office-xl (docs/results.md, "Seed ensembles of the exchange closure").
# Needs out/s31-ens-*.csv (out/s31-ens.sh) and the single runs' CSVs (sessions 26-29 and out/s31-exch.sh).
set -euo pipefail
cd "$(dirname "$0")/.."  # the repository root
PT=".venv/bin/python scripts/paired_table.py"
median() { .venv/bin/python -c "import csv,sys,statistics as s; print(f'{s.median(float(r[\"relative_l2\"]) for r in csv.DictReader(open(sys.argv[1])) if r[\"split\"]==\"val\"):.4f}')" "$1"; }
echo "== the choice on val: the memory families' ensembles (lowest val median is the candidate)"
best=""; bestv=9
for F in exch exch-avg exch-wd1e-2; do
    v=$(median out/s31-ens-$F.csv); echo "ens-$F val median $v"
    if .venv/bin/python -c "import sys; sys.exit(0 if float('$v') < float('$bestv') else 1)"; then best=$F; bestv=$v; fi
done
echo "candidate: ens-$best (val $bestv)"
echo "== verdict: ens-$best minus ens-column"
$PT out/s31-ens-column.csv out/s31-ens-$best.csv --model ens-$best --base ens-column --splits val,test,ood \
    --figure docs/img/paired-l-office-xl-ensemble.png \
    --title "l-office-xl: ensemble of 3 exchange closures ($best) minus ensemble of 3 columns"
for c in below above; do
    echo "== ens-$best minus ens-column, sources $c the plane"
    cat out/s31-ens-column.csv out/s31-ens-$best.csv | grep -E "^run,|,$c," | awk '!(/^run,/ && seen++)' > out/s31-$c.csv
    $PT out/s31-$c.csv --model ens-$best --base ens-column --splits test,ood
done
echo "== beside, choosing nothing: every family's ensemble minus ens-column"
for F in exch exch-avg exch-wd1e-2 exch-markovian-wd1e-2; do
    echo "-- ens-$F"; $PT out/s31-ens-column.csv out/s31-ens-$F.csv --model ens-$F --base ens-column --splits val,test,ood
done
echo "== memory minus Markovian (weight-decayed), ensembles"
$PT out/s31-ens-exch-markovian-wd1e-2.csv out/s31-ens-exch-wd1e-2.csv --model ens-exch-wd1e-2 \
    --base ens-exch-markovian-wd1e-2 --splits val,test,ood
echo "== the column ensemble minus its single columns (mean of three)"
$PT out/s26-lox-column-s{0,1,2}.csv out/s31-ens-column.csv --model ens-column \
    --base lox-column-s0,lox-column-s1,lox-column-s2 --splits val,test,ood
echo "== the unaveraged exchange ensemble minus its single members (mean of three)"
$PT out/s26-lox-exch-s0.csv out/s31-lox-exch-s{1,2}.csv out/s31-ens-exch.csv --model ens-exch \
    --base lox-exch-s0,lox-exch-s1,lox-exch-s2 --splits val,test,ood
