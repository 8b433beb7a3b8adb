#!/usr/bin/env bash
# Session 42, lane b after paper-room seed 1: the l-office-wide column on nine levels, seeds 0 then 1.
cd "$(dirname "$0")/.."
until grep -q 'runs/prw10-column-s1 scored' out/s36-prw10-column-s1.log 2>/dev/null; do sleep 30; done
for S in 0 1; do bash out/s36-run.sh data/l-office-wide-l10-of.nc low10 column $S; done
