#!/usr/bin/env bash
# Sessions 36-37: one run name of out/s36-run.sh on OpenFOAM l-office-wide, seeds 0-2, two at a time
# (a closure name needs its physics' runs first):
#   bash out/s36-seeds.sh column; bash out/s36-seeds.sh physics32; bash out/s36-seeds.sh memory32
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
R="bash out/s36-run.sh data/l-office-wide-of.nc low $1"
( $R 0; $R 2 ) &
( $R 1 ) &
wait
echo "$1 done $(date +%T)" >> out/s36-lanes.log
