"""Session 31: the fresh l-office-xl scenarios of the confirmation proposed in docs/results.md (11:32).

Writes out/l-office-xl-fresh.toml: l-office-xl's room (its preset text up to the first
scenario) with 16 static test releases drawn with seed 31 at least LO_XL_CLEARANCE_M (plan)
from every static source of l-office-xl, heights cycled over its classes, and 12 OOD walks
drawn with seed 32, keeping in draw order only walks with under 30 % of their route within
0.5 m of a training walk's route of l-office-xl (scripts/walk_overlap.py's measure).
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import make_presets as mp  # noqa: E402
import walk_overlap as wo  # noqa: E402

from plumecast.scenario import load_scenario_set  # noqa: E402

sset = load_scenario_set("l-office-xl")
static_xy = [tuple(sc.source.position_m[:2]) for sc in sset.scenarios if not sc.source.moving]
train_routes = [wo.route_points(sc.source.path) for sc in sset.scenarios if sc.split == "train" and sc.source.moving]
propose, blocked, heights, furniture = mp._l_office_cells()
releases = mp.draw_releases(16, 31, propose, heights, furniture, static_xy, mp.LO_XL_CLEARANCE_M, blocked)
walks = []
for poly, speed in mp.l_office_xl_walks(400, 32):
    path = mp.ping_pong(poly, speed, horizon_s=mp.LO_HORIZON_S)
    share = wo.near_share(wo.route_points(path), train_routes, 0.5)
    if share < 0.30:
        walks.append((poly, speed, path, share))
    if len(walks) == 12:
        break
assert len(walks) == 12, len(walks)
text = (ROOT / "src/plumecast/presets/l-office-xl.toml").read_text()
head = text[: text.index("[[scenarios]]")].replace('name = "l-office-xl"', 'name = "l-office-xl-fresh"')
lines = [head.rstrip("\n"), ""]
for i, (x, y, z) in enumerate(releases):
    cls = next(c for c, h in mp.LO_HEIGHTS_M.items() if h == z)
    lines += ["[[scenarios]]", f'name = "fresh-test-{i:02d}-{cls}"', 'split = "test"',
              f"source = {{ position_m = {mp.fmt((x, y, z))}, rate = [[0.0, 1.0]] }}", ""]
for i, (poly, speed, path, share) in enumerate(walks):
    cls = next(c for c, h in mp.LO_HEIGHTS_M.items() if h == poly[0][2])
    lines += ["[[scenarios]]", f'name = "fresh-ood-walk-{i:02d}-{cls}"', 'split = "ood"',
              f"# drawn: {speed} m/s along {len(poly)} waypoints, forth and back; {share:.2f} of its route near a training walk's",
              f"source = {{ rate = [[0.0, 1.0]], path = {mp.fmt(path)} }}", ""]
out = ROOT / "out/l-office-xl-fresh.toml"
out.write_text("\n".join(lines))
print(f"wrote {out}: {len(releases)} test releases, {len(walks)} OOD walks (route shares "
      f"{', '.join(f'{w[3]:.2f}' for w in walks)})")
