#!/usr/bin/env bash
# Session 36, item 3: the column on OpenFOAM l-office-wide, seeds 0-2, two at a time, on out/s36-run.sh's footing.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
R="bash out/s36-run.sh data/l-office-wide-of.nc low column"
( $R 0; $R 2 ) &
( $R 1 ) &
wait
echo "columns done $(date +%T)" >> out/s36-lanes.log
