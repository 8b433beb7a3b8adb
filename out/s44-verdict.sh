#!/usr/bin/env bash
# Session 44: the exchange closure (memory, Markovian) on the rebuilt nine-level paper-room column
# (runs/prw10s-NAME-sS from out/s44-lanes.sh), paired by scenario over SEEDS (default 0 1) against the column
# (runs/prw10s-column-sS, out/s43-run.sh) on val, test and OOD, per height class, then on session 40's fresh draw
# rebuilt with the sources where OpenFOAM emits (data/paper-room-wide-fresh-l10-src-of.nc; scored here when absent).
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
SEEDS=${SEEDS:-0 1}; N=$(echo $SEEDS | wc -w)
MSEEDS=${MSEEDS-}  # the Markovian ablation's seeds: none (the plan's change at 09:25); MSEEDS=0 once runs/prw10s-exchange-markovian-s0 exists
files() { local s; for s in ${2:-$SEEDS}; do echo "$1-s$s.csv"; done; }
names() { local s; for s in ${2:-$SEEDS}; do echo "$1-s$s"; done | paste -sd,; }
for V in exchange exchange-markovian; do
  [ $V = exchange ] && SS=$SEEDS || SS=$MSEEDS
  for S in $SS; do
    C=out/s44-fresh-prw10s-$V-s$S.csv
    [ -f "$C" ] || .venv/bin/python scripts/height_table.py runs/prw10s-$V-s$S --data data/paper-room-wide-fresh-l10-src-of.nc \
        --splits test,ood --csv "$C" >"${C%.csv}.txt" || { echo "scoring failed" >&2; rm -f "$C"; exit 1; }
  done
done
pairs() {  # $1: column csv prefix, $2: closure csv prefix, $3: splits, $4: figure tag
  echo "== exchange (memory) minus column"
  .venv/bin/python scripts/paired_table.py $(files $1-column) $(files $2-exchange) --model $(names prw10s-exchange) \
      --base $(names prw10s-column) --splits $3 --figure docs/img/paired-paper-room-$4-exchange.png \
      --title "paper-room$5 (OpenFOAM, sources where OpenFOAM emits): exchange closure (memory) minus column, $N seeds"
  if [ -z "$MSEEDS" ]; then
    .venv/bin/python out/s36-classes.py $(files $1-column) $(files $2-exchange); return
  fi
  echo "== exchange (Markovian) minus column, seeds $MSEEDS"
  .venv/bin/python scripts/paired_table.py $(files $1-column "$MSEEDS") $(files $2-exchange-markovian "$MSEEDS") \
      --model $(names prw10s-exchange-markovian "$MSEEDS") --base $(names prw10s-column "$MSEEDS") --splits $3
  echo "== exchange: memory minus Markovian, seeds $MSEEDS"
  .venv/bin/python scripts/paired_table.py $(files $2-exchange "$MSEEDS") $(files $2-exchange-markovian "$MSEEDS") \
      --model $(names prw10s-exchange "$MSEEDS") --base $(names prw10s-exchange-markovian "$MSEEDS") --splits $3
  echo "== per split and height class, mean over seeds of the median final-time relative L2"
  .venv/bin/python out/s36-classes.py $(files $1-column) $(files $2-exchange) $(files $2-exchange-markovian "$MSEEDS")
}
pairs out/s43-prw10s out/s36-prw10s val,test,ood nine-source ""
echo "======== the fresh draw"
pairs out/s43-fresh-prw10s out/s44-fresh-prw10s test,ood fresh-nine-source " fresh draw"
