#!/usr/bin/env bash
# Session 40: session 39's plane verdicts on OpenFOAM paper-room over seeds 0-4 (out/s40-seeds.sh's runs
# beside session 39's), on its val, test and OOD splits, then on the fresh draw.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
export SEEDS="0 1 2 3 4"
(
TAG=prw ROOM=paper-room-5seeds
source out/verdict-pairs.sh
pair memory physics plane-memory "memory closure minus plane physics"
pair markovian physics plane-markovian "Markovian closure minus plane physics"
pair memory markovian plane-memory-markovian "memory minus Markovian closure on the plane"
pair memory physics5 plane5-memory "memory closure minus plane physics continued"
pair markovian physics5 plane5-markovian "Markovian closure minus plane physics continued"
)
echo "======== the fresh draw, seeds 0-4"
bash out/s40-fresh.sh
