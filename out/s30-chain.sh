#!/usr/bin/env bash
# Session 30: after seed 1's pair, the 1e-4 pair of seed 0, then seed 2's pair at 1e-3 (each pair side by side).
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
while pgrep -f "s30-plane-closure.sh .* 1 07:40" > /dev/null; do sleep 10; done
out/s30-plane-closure.sh memory 0 08:00 1e-4 > out/s30-plane-memory-lr1e-4-s0.log 2>&1 &
out/s30-plane-closure.sh markovian 0 08:00 1e-4 > out/s30-plane-markovian-lr1e-4-s0.log 2>&1
wait
out/s30-plane-closure.sh memory 2 08:20 > out/s30-plane-memory-s2.log 2>&1 &
out/s30-plane-closure.sh markovian 2 08:20 > out/s30-plane-markovian-s2.log 2>&1
wait
echo "chain end $(date +%T)"
