#!/usr/bin/env bash
# Session 31: the confirmation on fresh l-office-xl scenarios (docs/results.md, proposed at 11:32).
# Needs data/l-office-xl-fresh-of.nc (out/s31-make-fresh.py, then plumecast generate ... --engine openfoam).
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
D=data/l-office-xl-fresh-of.nc
for F in column exch exch-avg; do
    echo "ens-$F start $(date +%T)"
    .venv/bin/python scripts/height_table.py runs/lox-$F-s0 runs/lox-$F-s1 runs/lox-$F-s2 --ensemble ens-$F --data $D \
        --splits test,ood --csv out/s31-fresh-ens-$F.csv > out/s31-fresh-ens-$F.txt
    echo "ens-$F end $(date +%T) rc $?"
done
echo "== the hypothesis: ens-exch minus ens-column on the fresh scenarios"
.venv/bin/python scripts/paired_table.py out/s31-fresh-ens-column.csv out/s31-fresh-ens-exch.csv --model ens-exch \
    --base ens-column --splits test,ood --figure docs/img/paired-l-office-xl-fresh-ensemble.png \
    --title "l-office-xl, fresh scenarios: ensemble of 3 exchange closures minus ensemble of 3 columns"
echo "== beside: ens-exch-avg minus ens-column on the fresh scenarios"
.venv/bin/python scripts/paired_table.py out/s31-fresh-ens-column.csv out/s31-fresh-ens-exch-avg.csv --model ens-exch-avg \
    --base ens-column --splits test,ood
