#!/usr/bin/env bash
# The table of issue 14 on one dataset: {plane physics, column physics} x {no closure,
# Markovian, memory}, plus the data-driven variant, for the seeds given, with the main
# job's plane settings; then a comparison per seed (val, test, OOD) and the table
# per split and source height class (scripts/height_table.py), and at the end the table
# over all seeds (scripts/seed_table.py --group name).
#
#   scripts/variant_table.sh data/paper-room-of.nc of 0 1 2
#   TRAIN_EXTRA="--set curriculum_s=[60,120,240,480]" scripts/variant_table.sh data/l-office-of.nc lo 0 1 2
#
# TRAIN_EXTRA: options added to every training (a room whose horizon is not the quick
# curriculum's 600 s needs its own curriculum).
#
# Runs land in runs/<tag>-<variant>-s<seed>, comparisons in out/<tag>-s<seed>. Finished runs
# are reused and interrupted ones resumed, so the script can be stopped and rerun. Runs
# select their model on the val split; nothing here looks at test or OOD to choose.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 DATA TAG SEED [SEED...]" >&2
  exit 2
fi
cd "$(dirname "$0")/.."
DATA=$1 TAG=$2
shift 2
PLUMECAST=${PLUMECAST:-.venv/bin/plumecast}
PYTHON=$(dirname "$PLUMECAST")/python
PLANE=(--set observation_log_max=1.0 --set observation_spacing_cells=12 --set loss=field+root)
read -r -a EXTRA <<< "${TRAIN_EXTRA:-}"

train() {  # train RUN VARIANT SEED [options...]
  local run="runs/$1" variant="$2" seed="$3"
  shift 3
  if [ -f "$run/summary.json" ]; then
    echo "reusing the finished run $run"
  elif [ -d "$run/checkpoints" ]; then
    # A resumed run keeps the settings in its config.json (resume refuses --set and --init-from).
    "$PLUMECAST" train "$DATA" --variant "$variant" --preset quick --out "$run" --resume --no-progress
  else
    "$PLUMECAST" train "$DATA" --variant "$variant" --preset quick --out "$run" --no-progress \
      --set "seed=$seed" "${PLANE[@]}" "${EXTRA[@]}" "$@"
  fi
}

for seed in "$@"; do
  p="$TAG-physics-s$seed" c="$TAG-column-s$seed"
  train "$p" physics "$seed"
  train "$c" column "$seed"
  train "$TAG-markovian-s$seed" markovian "$seed" --init-from "runs/$p"
  train "$TAG-memory-s$seed" memory "$seed" --init-from "runs/$p"
  train "$TAG-column-markovian-s$seed" markovian "$seed" --init-from "runs/$c" --set 'closure_options={"reservoir": "column"}'
  train "$TAG-column-memory-s$seed" memory "$seed" --init-from "runs/$c" --set 'closure_options={"reservoir": "column"}'
  train "$TAG-datadriven-s$seed" datadriven "$seed" --init-from "runs/$p"
  runs=()
  for v in physics column markovian memory column-markovian column-memory datadriven; do
    runs+=("runs/$TAG-$v-s$seed")
  done
  "$PLUMECAST" compare "${runs[@]}" --data "$DATA" --out "out/$TAG-s$seed"
  "$PYTHON" scripts/height_table.py "${runs[@]}" --data "$DATA" --csv "out/$TAG-s$seed/height_table.csv"
done
# All seeds: each model's rows and its mean over the seeds (grouped by run name: a closure on
# the plane and on the column share a variant), then the seed each model would pick on val.
folders=()
for seed in "$@"; do folders+=("out/$TAG-s$seed"); done
"$PYTHON" scripts/seed_table.py "${folders[@]}" --runs-dir runs --group name --pick name
