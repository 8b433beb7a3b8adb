#!/usr/bin/env bash
# Session 36: one run of item 5's table on an OpenFOAM room, on the columns' footing ($L: TVD,
# field+log, 480 s windows (paper-room, TAG prw: 600 s, session 39), best-on-val), then scored per
# split and height class.
# usage: s36-run.sh DATA TAG NAME SEED   (NAME: physics, column, memory, markovian, datadriven, physicsN,
#   memoryN, markovianN, controlN, exchange, exchange-markovian, physics5, datadriven-rb)
#   physics/column: 16 epochs (paper-room 15) from nothing; datadriven: 8 epochs; memory/markovian: 5 epochs at
#   learning rate 1e-3 from runs/TAG-physics-sSEED (session 30's closure settings); physicsN (32, 48): the plane
#   physics at N epochs; memoryN/markovianN: the closures from runs/TAG-physicsN-sSEED (sessions 37-38, 41);
#   controlN: that physics continued on the closures' schedule, no network (session 41);
#   exchange/exchange-markovian: session 23's exchange closure and its Markovian ablation from
#   runs/TAG-column-sSEED (session 38); physics5: the plane physics continued on the closures' schedule
#   from runs/TAG-physics-sSEED, no network (session 39).
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
D=$1; T=$2; V=$3; S=$4; R=runs/$T-$V-s$S; LOG=out/s36-$T-$V-s$S.log
case $T in  # the columns' footing of each room: l-office's L (session 22), paper-room's P (session 19)
  prw|prw10|prw10s) OBS=1.0; W=600; E=15 ;;  # prw10: the nine-level column of session 42; prw10s: session 43's sources
  *) OBS=0; W=480; E=16 ;;
esac
L="--preset quick --set observation_log_max=$OBS --set observation_spacing_cells=12 --set curriculum_s=[$W] --set window_s=$W --set advection=tvd --set loss=field+log"
CLOSURE=(--set "epochs=[5]" --set learning_rate=1e-3)
EXCHANGE=(--set 'closure_options={"reservoir": "column", "target": "exchange"}')
case $V in  # X: the run's own options, an array so that a JSON value with spaces stays one word
  physics|column) X=(--variant "$V" --set "epochs=[$E]") ;;
  physics5) X=(--variant physics "${CLOSURE[@]}" --init-from "runs/$T-physics-s$S") ;;  # the closures' schedule, no network
  physics[0-9]*) X=(--variant physics --set "epochs=[${V#physics}]") ;;  # physics32, physics48: N epochs
  datadriven|datadriven-rb) X=(--variant datadriven --set "epochs=[8]") ;;  # -rb: session 41's rerun, with rollbacks
  memory|markovian) X=(--variant "$V" "${CLOSURE[@]}" --init-from "runs/$T-physics-s$S") ;;
  memory[0-9]*|markovian[0-9]*) N=${V##*[a-z]}; X=(--variant "${V%$N}" "${CLOSURE[@]}" --init-from "runs/$T-physics$N-s$S") ;;
  control[0-9]*) X=(--variant physics "${CLOSURE[@]}" --init-from "runs/$T-physics${V#control}-s$S") ;;  # physicsN continued, no network
  exchange) X=(--variant memory "${CLOSURE[@]}" "${EXCHANGE[@]}" --init-from "runs/$T-column-s$S") ;;
  exchange-markovian) X=(--variant markovian "${CLOSURE[@]}" "${EXCHANGE[@]}" --init-from "runs/$T-column-s$S") ;;
  *) echo "unknown run name $V" >&2; exit 2 ;;
esac
echo "$R start $(date +%T)" >>"$LOG"
if [ ! -f "$R/summary.json" ]; then
  .venv/bin/plumecast train "$D" $L "${X[@]}" --set seed="$S" --out "$R" --no-progress >>"$LOG" 2>&1
  rc=$?  # before any other command
  echo "$R end $(date +%T) rc $rc" >>"$LOG"
  [ $rc = 0 ] || exit $rc
fi
.venv/bin/python scripts/height_table.py "$R" --data "$D" --splits train,val,test,ood --csv "out/s36-$T-$V-s$S.csv" >"out/s36-$T-$V-s$S.txt" 2>>"$LOG"
echo "$R scored $(date +%T) rc $?" >>"$LOG"
