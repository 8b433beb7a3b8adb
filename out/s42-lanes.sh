#!/usr/bin/env bash
# Session 42: the paper-room column on nine levels (data/paper-room-wide-l10-of.nc), two lanes.
# Lane a: seeds 0 then 2; lane b: seed 1 (its second job, the five-level seed 2, was stopped before it started: out/s42-lane-b.sh
# took the lane for l-office-wide, docs/results.md session 42).
cd "$(dirname "$0")/.."
D10=data/paper-room-wide-l10-of.nc; D5=data/paper-room-wide-of.nc
( bash out/s36-run.sh $D10 prw10 column 0; bash out/s36-run.sh $D10 prw10 column 2 ) &
( bash out/s36-run.sh $D10 prw10 column 1; bash out/s36-run.sh $D5 prw column 2 ) &
wait
