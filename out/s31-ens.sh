#!/usr/bin/env bash
# Session 31: one seed ensemble of l-office-xl runs scored on val, test and OOD. usage: s31-ens.sh NAME RUN...
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
N=$1; shift
echo "$N start $(date +%T)"
.venv/bin/python scripts/height_table.py "$@" --ensemble $N --data data/l-office-xl-of.nc --splits val,test,ood \
    --csv out/s31-$N.csv > out/s31-$N.txt
echo "$N end $(date +%T) rc $?"
