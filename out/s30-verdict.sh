#!/usr/bin/env bash
# Session 30: the verdict of the plane closures against their plane physics (and memory against Markovian),
# over the seeds given. usage: s30-verdict.sh SEED...
set -euo pipefail
cd "$(dirname "$0")/.."  # the repository root
list() { local out=""; for S in "${@:2}"; do out="$out${out:+,}$1-s$S"; done; echo "$out"; }
csvs() { for S in "${@:2}"; do echo "out/$1-s$S.csv"; done; }
P=$(csvs s29-lox-plane "$@"); ME=$(csvs s30-lox-plane-memory "$@"); MA=$(csvs s30-lox-plane-markovian "$@")
for V in memory markovian; do
    M=$(csvs s30-lox-plane-$V "$@")
    echo "== $V closure minus its plane physics, seeds $*"
    .venv/bin/python scripts/paired_table.py $P $M --model "$(list lox-plane-$V "$@")" --base "$(list lox-plane "$@")" \
        --splits val,test,ood --figure docs/img/paired-l-office-xl-plane-$V.png \
        --title "l-office-xl: plane physics + $V closure minus the plane physics, seeds $*"
done
echo "== memory minus Markovian, seeds $*"
.venv/bin/python scripts/paired_table.py $MA $ME --model "$(list lox-plane-memory "$@")" \
    --base "$(list lox-plane-markovian "$@")" --splits val,test,ood
