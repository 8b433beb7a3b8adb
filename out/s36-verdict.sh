#!/usr/bin/env bash
# Sessions 36-38: the verdict of item 5's plane rows on OpenFOAM l-office-wide (docs/results.md, session 36's plan).
set -euo pipefail
cd "$(dirname "$0")/.."  # the repository root
TAG=low ROOM=l-office-wide
source out/verdict-pairs.sh
plane_pairs
pair memory32 physics32 plane32-memory "memory closure minus 32-epoch plane physics"
pair markovian32 physics32 plane32-markovian "Markovian closure minus 32-epoch plane physics"
pair memory32 markovian32 plane32-memory-markovian "memory minus Markovian closure on the 32-epoch plane"
pair exchange column column-exchange "exchange closure (memory) minus column"
pair exchange-markovian column column-exchange-markovian "exchange closure (Markovian) minus column"
pair exchange exchange-markovian column-exchange-memory-markovian "exchange closure: memory minus Markovian"
echo "== per split and height class, mean over seeds of the median final-time relative L2"
.venv/bin/python out/s36-classes.py $(for v in physics memory markovian datadriven; do seeds $v; done) \
    $(for v in column physics32 memory32 markovian32 exchange exchange-markovian; do seeds $v; done)
