#!/usr/bin/env bash
# Session 38: the exchange closure (memory, Markovian) on the l-office-wide columns and the Markovian
# closure on the 32-epoch plane physics, seeds 0-2, two lanes (docs/results.md, session 38's plan).
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
R="bash out/s36-run.sh data/l-office-wide-of.nc low"
( $R exchange 0; $R exchange 2; $R exchange-markovian 1; $R markovian32 0; $R markovian32 2 ) &
( $R exchange 1; $R exchange-markovian 0; $R exchange-markovian 2; $R markovian32 1 ) &
wait
echo "s38 lanes done $(date +%T)" >> out/s36-lanes.log
