#!/usr/bin/env bash
# Session 43, lane a: the main job's column (scripts/demo.sh's column-quick: preset quick, observation factor
# on 12-cell control points, field+root loss) on embedded paper-room with nine levels (data/paper-room-l10.nc,
# out/paper-room-l10.toml) and with the presets' five (data/paper-room.nc), seeds 0-2 each, side by side on
# this machine; each scored per split and source height class into out/s43-emb{5,9}-column-sS.csv.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
PLANE=(--set observation_log_max=1.0 --set observation_spacing_cells=12 --set loss=field+root)
for S in ${SEEDS:-0 1 2}; do
  for N in 9 5; do
    D=data/paper-room.nc; [ $N = 9 ] && D=data/paper-room-l10.nc
    R=runs/emb$N-column-s$S LOG=out/s43-emb$N-column-s$S.log
    echo "$R start $(date +%T)" >>"$LOG"
    if [ ! -f "$R/summary.json" ]; then
      .venv/bin/plumecast train "$D" --variant column --preset quick "${PLANE[@]}" --set seed="$S" --out "$R" \
        --no-progress >>"$LOG" 2>&1
      rc=$?  # before any other command
      echo "$R end $(date +%T) rc $rc" >>"$LOG"
      [ $rc = 0 ] || continue
    fi
    .venv/bin/python scripts/height_table.py "$R" --data "$D" --splits train,val,test,ood \
      --csv "out/s43-emb$N-column-s$S.csv" >"out/s43-emb$N-column-s$S.txt" 2>>"$LOG"
    echo "$R scored $(date +%T) rc $?" >>"$LOG"
  done
done
