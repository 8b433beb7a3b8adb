#!/usr/bin/env bash
# Session 45: once data/l-office-wide-l10-src-of.nc exists, the nine-level column (seed 0), its exchange closure, the verdict.
cd "$(dirname "$0")/.."
D=data/l-office-wide-l10-src-of.nc
until [ -f $D ]; do sleep 20; done
bash out/s36-run.sh $D low10s column 0 || exit 1
bash out/s36-run.sh $D low10s exchange 0 || exit 1
bash out/s45-verdict.sh > out/s45-verdict.txt 2>&1
echo "lane done $(date +%T)" >> out/s45-lane.log
