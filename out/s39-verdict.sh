#!/usr/bin/env bash
# Session 39: the verdict of item 5's plane rows on OpenFOAM paper-room (docs/results.md, session 39's plan).
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
TAG=prw ROOM=paper-room
source out/verdict-pairs.sh
plane_pairs
pair memory physics5 plane5-memory "memory closure minus plane physics continued"
pair markovian physics5 plane5-markovian "Markovian closure minus plane physics continued"
pair physics5 physics plane5-plane "plane physics continued minus plane physics"
echo "== per split and height class, mean over seeds of the median final-time relative L2"
.venv/bin/python out/s36-classes.py $(ls out/s36-prw-*-s[012].csv)
