#!/usr/bin/env bash
# Session 41: the paper-room plane physics at 48 epochs (seeds 0-2), then from each its memory and
# Markovian closures and the control (out/s36-run.sh physics48, memory48, markovian48, control48), two
# lanes, memory first; each run scored on the splits (s36-run.sh) and once on session 40's fresh draw.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
run() { bash out/s36-run.sh data/paper-room-wide-of.nc prw "$1" "$2" && bash out/s40-score-fresh.sh "$1" "$2"; }
( run physics48 0; run physics48 2; run memory48 0; run memory48 2; run control48 0; run control48 2; run markovian48 2 ) &
( run physics48 1; run memory48 1; run markovian48 1; run control48 1; run markovian48 0 ) &
wait
echo "s41 lanes done $(date +%T)" >> out/s36-lanes.log
