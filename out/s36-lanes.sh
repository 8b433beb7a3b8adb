#!/usr/bin/env bash
# Session 36: item 5's plane rows on OpenFOAM l-office-wide, two lanes (this machine has two cores).
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
D=data/l-office-wide-of.nc; T=low; R="bash out/s36-run.sh $D $T"
after() { while [ ! -f "runs/$T-$1/summary.json" ]; do sleep 30; done; }  # a closure needs its plane physics
( $R physics 0; $R physics 2; $R memory 0; $R markovian 0; $R memory 2; $R datadriven 1 ) &
( $R physics 1; $R datadriven 0; after physics-s1; $R memory 1; $R markovian 1; after physics-s2; $R markovian 2; $R datadriven 2 ) &
wait
echo "lanes done $(date +%T)" >> out/s36-lanes.log
