#!/usr/bin/env bash
# Session 44: the exchange closure (memory, then Markovian) on the rebuilt paper-room column of one seed.
# usage: s44-lanes.sh SEED   (two lanes: seeds 0 and 1 side by side)
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
S=$1; D=data/paper-room-wide-l10-src-of.nc
for V in exchange exchange-markovian; do
  bash out/s36-run.sh "$D" prw10s "$V" "$S"; echo "prw10s $V s$S rc $?" >>out/s44-lanes.log
done
