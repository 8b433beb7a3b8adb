#!/usr/bin/env bash
# Session 39: the plane physics continued on the closures' schedule without a network (physics5), seeds 0-2,
# on OpenFOAM paper-room, beside out/s39-lanes.sh (docs/results.md, session 39's plan, added at 18:57).
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
for S in 0 1 2; do bash out/s36-run.sh data/paper-room-wide-of.nc prw physics5 $S; done
echo "s39 control done $(date +%T)" >> out/s36-lanes.log
