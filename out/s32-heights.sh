#!/usr/bin/env bash
# Session 32: the fresh2 verdicts split by source height (below / above the plane), reported, choosing nothing.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
for F in exch-avg exch; do
    for c in below above; do
        echo "== ens-$F minus ens-column, the second fresh draw, sources $c the plane"
        cat out/s32-fresh2-ens-column.csv out/s32-fresh2-ens-$F.csv | grep -E "^run,|,$c," | awk '!(/^run,/ && seen++)' \
            > out/s32-fresh2-$F-$c.csv
        .venv/bin/python scripts/paired_table.py out/s32-fresh2-$F-$c.csv --model ens-$F --base ens-column --splits test,ood
    done
done
