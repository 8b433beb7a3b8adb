# Sourced by out/s36-verdict.sh, out/s39-verdict.sh and session 40's scripts: the paired verdict of one
# family of runs against another over seeds SEEDS (default 0 1 2). Set before sourcing: TAG (the runs'
# tag, e.g. low), ROOM (the figures' room name, e.g. l-office-wide); optionally CSV (the score files'
# prefix, default out/s36-$TAG) and SPLITS (default val,test,ood). A pair whose seeds have not all been
# scored is named and skipped.
seeds() { local c=${CSV:-out/s36-$TAG} s; for s in ${SEEDS:-0 1 2}; do echo "$c-$1-s$s.csv"; done; }
names() { local s; for s in ${SEEDS:-0 1 2}; do echo "$TAG-$1-s$s"; done | paste -sd,; }
pair() {  # MODEL BASE FIGURE TITLE
    echo "== $1 - $2"
    for f in $(seeds $1) $(seeds $2); do [ -f "$f" ] || { echo "not run: $f"; return 0; }; done
    .venv/bin/python scripts/paired_table.py $(seeds $2) $(seeds $1) --model $(names $1) --base $(names $2) \
        --splits "${SPLITS:-val,test,ood}" --figure "docs/img/paired-$ROOM-$3.png" --title "$ROOM (OpenFOAM): $4, $(echo ${SEEDS:-0 1 2} | wc -w) seeds"
}
plane_pairs() {  # item 5's plane rows: both closures and the data-driven variant against the plane physics
    pair memory physics plane-memory "memory closure minus plane physics"
    pair markovian physics plane-markovian "Markovian closure minus plane physics"
    pair memory markovian plane-memory-markovian "memory minus Markovian closure on the plane"
    pair datadriven physics datadriven-plane "data-driven minus plane physics"
}
