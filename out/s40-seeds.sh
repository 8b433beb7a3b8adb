#!/usr/bin/env bash
# Session 40: seeds 3 and 4 of session 39's plane runs on OpenFOAM paper-room (the plane physics, its
# memory and Markovian closures, the control), two lanes in the order of docs/results.md's session 40
# plan; then the verdicts over seeds 0-4 on the splits (s40-verdict5) and, with the fresh data, on it.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
R="bash out/s36-run.sh data/paper-room-wide-of.nc prw"
( $R physics 3; $R memory 3; $R markovian 3; $R physics5 3 ) &
( $R physics 4; $R memory 4; $R markovian 4; $R physics5 4 ) &
wait
echo "s40 seeds done $(date +%T)" >> out/s36-lanes.log
