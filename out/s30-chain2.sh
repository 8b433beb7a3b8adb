#!/usr/bin/env bash
# Session 30: after out/s30-chain.sh, the data-driven seeds 0 and 1 side by side, then seed 2.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
while pgrep -f "s30-chain.sh" > /dev/null; do sleep 10; done
out/s30-datadriven.sh 0 8 08:30 > out/s30-datadriven-s0.log 2>&1 &
out/s30-datadriven.sh 1 8 08:30 > out/s30-datadriven-s1.log 2>&1
wait
out/s30-datadriven.sh 2 8 08:52 > out/s30-datadriven-s2.log 2>&1
echo "chain2 end $(date +%T)"
