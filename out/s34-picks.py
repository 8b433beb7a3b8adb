"""Session 34: each run's pick on its own val split against its last model (summary.json only)."""
import json
import sys
from pathlib import Path

print("| run | val scenarios | pick epoch | pick val | last epoch | last val | pick lower on | sign test p |")
print("|---|---|---|---|---|---|---|---|")
for run in map(Path, sys.argv[1:]):
    if not (run / "summary.json").exists():  # still training
        continue
    s = json.loads((run / "summary.json").read_text())
    sel, last, ev = s["selected"], s.get("last") or {}, s.get("pick_evidence") or {}
    n = ev.get("scenarios") or len(s.get("point_error_val") or {}) or "?"
    if ev:
        lower, p = f"{ev['selected_lower_on']} of {ev['scenarios']}", f"{ev['sign_test_p']:.2f}"
    else:
        lower, p = "(pick is the last epoch)" if sel and sel["epoch"] == last.get("epoch") else "", ""
    pick_epoch = "untrained start" if sel and sel["phase"] == -1 else sel["epoch"]
    print(f"| {run.name} | {n} | {pick_epoch} | {sel['val']:.3f} | {last.get('epoch', '')} | "
          f"{last.get('val', float('nan')):.3f} | {lower} | {p} |")
