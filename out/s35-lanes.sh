#!/usr/bin/env bash
# Session 35: two lanes of training (this machine has two cores), item 5's embedded rows.
set -uo pipefail
( bash out/s35-markov.sh 0; bash out/s35-markov.sh 2; bash out/s34-ext.sh 1 ) &
( bash out/s35-markov.sh 1; bash out/s34-ext.sh 2 ) &
wait
echo "lanes done $(date)" >> out/s35-lanes.log
