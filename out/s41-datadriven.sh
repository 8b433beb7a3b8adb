#!/usr/bin/env bash
# Session 41: the data-driven seed that diverged in session 40 (runs/prw-datadriven-s1, stopped by an error
# in epoch 3), trained again with the same options on the code that rolls a diverged epoch back at half the
# rate, into runs/prw-datadriven-rb-s1, and scored (out/s36-prw-datadriven-rb-s1.{csv,txt}). Run it after
# out/s41-lanes.sh: a third training on two cores slows all three.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
bash out/s36-run.sh data/paper-room-wide-of.nc prw datadriven-rb 1
