# Sourced by out/s36-verdict.sh and out/s39-verdict.sh: the paired verdict of one family of runs against
# another over seeds 0-2. Set before sourcing: TAG (the runs' tag, e.g. low), ROOM (the figures' room
# name, e.g. l-office-wide); optionally CSV (the score files' prefix, default out/s36-$TAG) and SPLITS
# (default val,test,ood). A pair whose three seeds have not all been scored is named and skipped.
seeds() { local c=${CSV:-out/s36-$TAG}; echo "$c-$1-s0.csv $c-$1-s1.csv $c-$1-s2.csv"; }
names() { echo "$TAG-$1-s0,$TAG-$1-s1,$TAG-$1-s2"; }
pair() {  # MODEL BASE FIGURE TITLE
    echo "== $1 - $2"
    for f in $(seeds $1) $(seeds $2); do [ -f "$f" ] || { echo "not run: $f"; return 0; }; done
    .venv/bin/python scripts/paired_table.py $(seeds $2) $(seeds $1) --model $(names $1) --base $(names $2) \
        --splits "${SPLITS:-val,test,ood}" --figure "docs/img/paired-$ROOM-$3.png" --title "$ROOM (OpenFOAM): $4, 3 seeds"
}
plane_pairs() {  # item 5's plane rows: both closures and the data-driven variant against the plane physics
    pair memory physics plane-memory "memory closure minus plane physics"
    pair markovian physics plane-markovian "Markovian closure minus plane physics"
    pair memory markovian plane-memory-markovian "memory minus Markovian closure on the plane"
    pair datadriven physics datadriven-plane "data-driven minus plane physics"
}
