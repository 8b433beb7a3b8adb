#!/usr/bin/env bash
# Session 29's track B, as revised at 03:21 before any of its runs: the drift closure, seed 0, then the plane seed 0.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
until grep -q "eval end" out/s28-markovian-s1.log 2>/dev/null; do sleep 30; done
bash out/s29-drift.sh 0 05:00 > out/s29-drift-s0.log 2>&1
bash out/s29-plane.sh 0 05:00 > out/s29-plane-s0.log 2>&1
