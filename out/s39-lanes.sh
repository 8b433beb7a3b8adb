#!/usr/bin/env bash
# Session 39: item 5's plane rows on OpenFOAM paper-room (the plane physics, its memory and Markovian
# closures, the data-driven variant; seeds 0-2), two lanes in the pre-registered order of
# docs/results.md's session 39 plan.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
R="bash out/s36-run.sh data/paper-room-wide-of.nc prw"
( $R physics 0; $R memory 0; $R markovian 0; $R memory 2; $R datadriven 0; $R datadriven 2 ) &
( $R physics 1; $R physics 2; $R memory 1; $R markovian 1; $R markovian 2; $R datadriven 1 ) &
wait
echo "s39 lanes done $(date +%T)" >> out/s36-lanes.log
