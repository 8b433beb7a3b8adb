"""Cross-validation of the embedded 3D scalar solver against OpenFOAM on the same flow.

``generate_openfoam`` computes the steady k-epsilon flow of a room with ``simpleFoam`` and
transports the scalar with OpenFOAM's ``scalarTransport``. Here the embedded solver
(:func:`plumecast.reference.transport.simulate_scalar`) is run on *OpenFOAM's* flow for
the same room and sources, and the two plane series are compared per snapshot. Any
difference then comes from the scalar transport alone (scheme, time stepping, face
diffusivity, source placement), not from the flow model.

The flow (:func:`flow_from_openfoam`)
    The OpenFOAM mesh of the engine is the ``Grid3D``'s cells with the solid cells
    removed, so every OpenFOAM cell is one fluid cell of the grid (located by its centre,
    not by label order) and every face one MAC face. The face volume flux ``phi`` (m^3/s,
    owner to neighbour, outward on boundary faces) divided by the face area ``h^2`` gives
    the MAC face velocities; ``phi`` is what OpenFOAM's own scalar transport used, and it
    is discretely divergence-free up to the pressure solver's tolerance. The remaining
    divergence is removed by the embedded flow solver's projection (one Poisson solve on
    the fluid cells, inlet and outlet faces fixed), so the embedded transport, which is
    bounded only in a divergence-free flow, runs on a flow whose cells balance to
    round-off. ``nut`` (cell values) becomes ``nu_t``. The diagnostics record the raw and
    projected divergence, inflow and outflow, the flux left on wall faces and how much
    the projection changed the velocities.

The comparison (:func:`cross_validate`)
    Both planes are extracted from the 3D fields (OpenFOAM's kept snapshots of ``s``)
    with the embedded engine's plane sampler. Relative L2 error (embedded vs OpenFOAM)
    and Spearman rank correlation on the plane's fluid cells per compared snapshot
    (:mod:`plumecast.metrics`), plus the room mass of both and both mass budgets.
    Finished OpenFOAM cases are reused (``plumecast-crossval.json`` in each). By default a static source is placed, for the embedded run, at
    the centre of the one cell OpenFOAM injects into (``scalarSemiImplicitSource`` with
    ``selectionMode points`` picks a single cell; the paper-room sources lie on cell
    edges, where the embedded trilinear deposit would spread them over 4 or 8 cells).
    That cell is read from OpenFOAM's first non-zero snapshot. A moving source is given,
    for the embedded run, OpenFOAM's own constant-rate windows, each in the lowest-label
    cell holding its position (the rule the static sources show OpenFOAM follows).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from plumecast.geometry import Grid3D
from plumecast.reference.flow import Flow3D, divergence
from plumecast.scenario import FlowSettings, ScenarioSet, Source

__all__ = ["CrossValidation", "CrossValError", "flow_from_openfoam", "cross_validate", "openfoam_cells", "read_cells"]


class CrossValError(RuntimeError):
    """An OpenFOAM case that does not match the grid it is compared on."""


# ----------------------------------------------------------------------------- mesh <-> grid


def openfoam_cells(case_dir: str | Path, grid: Grid3D):
    """``(geometry, flat grid index of each OpenFOAM cell)``; every cell must be a distinct fluid cell."""
    from plumecast.io.openfoam import read_mesh

    case = Path(case_dir)
    geom = read_mesh(case / "constant/polyMesh")
    h = grid.cell_m
    nz, ny, nx = grid.shape
    ijk = np.floor(geom.centres[:, ::-1] / h).astype(np.int64)  # (k, j, i)
    off = geom.centres[:, ::-1] / h - ijk - 0.5
    if np.abs(off).max() > 1e-6 or not np.allclose(geom.volumes, h**3, rtol=1e-6):
        raise CrossValError(f"{case}: mesh cells are not the {h} m cells of the grid (centres or volumes differ)")
    if (ijk < 0).any() or (ijk >= np.array([nz, ny, nx])).any():
        raise CrossValError(f"{case}: mesh cells outside the grid's box {grid.shape}")
    flat = np.ravel_multi_index(ijk.T, grid.shape)
    if len(np.unique(flat)) != len(flat) or not grid.fluid.ravel()[flat].all() or len(flat) != int(grid.fluid.sum()):
        raise CrossValError(
            f"{case}: its {len(flat)} cells are not the grid's {int(grid.fluid.sum())} fluid cells one to one"
        )
    return geom, flat


def read_cells(path: str | Path, flat: np.ndarray, grid: Grid3D) -> np.ndarray:
    """A cell field file of the case onto the grid ``(nz, ny, nx)``; 0 in solid cells."""
    from plumecast.io.openfoam import read_field

    out = np.zeros(grid.fluid.size)
    out[flat] = read_field(path, len(flat))
    return out.reshape(grid.shape)


def _latest_flow_time(case: Path) -> Path:
    from plumecast.io.openfoam import time_dirs

    tds = [d for _, d in time_dirs(case) if (d / "phi").is_file() and (d / "nut").is_file()]
    if not tds:
        raise CrossValError(f"{case}: no time directory holds both phi and nut")
    return tds[-1]


# ----------------------------------------------------------------------------- the flow


def flow_from_openfoam(case_dir: str | Path, grid: Grid3D, *, time_dir: str | None = None,
                       project: bool = True) -> Flow3D:
    """OpenFOAM's flow (face flux ``phi`` and ``nut``) on the MAC faces of ``grid``.

    ``case_dir`` is a flow (or scalar) case of the OpenFOAM engine for this grid's room;
    fields from ``time_dir`` (default the latest holding ``phi`` and ``nut``). With
    ``project`` the remaining divergence is removed by a pressure-like projection on the
    fluid cells. ``diagnostics`` of the result: ``divergence_raw`` and ``divergence``
    (``max |div u| h / U_in``, before and after), ``inflow_m3_s``, ``outflow_m3_s``,
    ``grid_inflow_m3_s``, ``wall_flux_max_m3_s`` (largest |phi| on a wall face),
    ``projection_change`` (max velocity change / U_in), ``max_speed_m_s``.
    """
    from plumecast.io.openfoam import read_face_field, read_faces, read_field
    from plumecast.reference.flow import FlowOperators

    case = Path(case_dir)
    tdir = case / time_dir if time_dir else _latest_flow_time(case)
    geom, flat = openfoam_cells(case, grid)
    h = grid.cell_m
    nz, ny, nx = grid.shape
    mesh = case / "constant/polyMesh"
    fc, owner = read_faces(mesh)
    internal, bpatches = read_face_field(tdir / "phi", mesh)
    n_int = len(internal)
    phi = np.zeros(len(owner))
    phi[:n_int] = internal
    is_wall = np.zeros(len(owner), bool)
    wall_max = inflow = outflow = 0.0
    for ptype, start, val in bpatches.values():
        n = len(val)
        phi[start:start + n] = val
        if n == 0:
            continue
        if ptype == "wall":
            is_wall[start:start + n] = True
            wall_max = max(wall_max, float(np.abs(val).max()))
        else:
            inflow += float(-val[val < 0].sum())
            outflow += float(val[val > 0].sum())
    if not np.isfinite(phi).all():
        raise CrossValError(f"{tdir / 'phi'}: non-finite face fluxes")

    # Each face: the axis along which it lies on a grid line, away from its owner's centre.
    cown = geom.centres[owner]
    d = (fc - cown) / h  # +-0.5 along the face's axis, 0 along the others
    axis_xyz = np.argmax(np.abs(d), axis=1)
    if not np.allclose(np.abs(d[np.arange(len(d)), axis_xyz]), 0.5, atol=1e-6):
        raise CrossValError(f"{mesh}: faces are not the faces of the grid's cells")
    sign = np.sign(d[np.arange(len(d)), axis_xyz])
    vel = phi * sign / h**2  # along +axis
    ijk_own = np.unravel_index(flat[owner], grid.shape)  # (k, j, i)
    arrays = [np.zeros((nz, ny, nx + 1)), np.zeros((nz, ny + 1, nx)), np.zeros((nz + 1, ny, nx))]
    for ax in range(3):  # 0 x -> u, 1 y -> v, 2 z -> w
        sel = (axis_xyz == ax) & ~is_wall
        idx = [a[sel].copy() for a in ijk_own]
        zyx = 2 - ax
        idx[zyx] += (sign[sel] > 0).astype(np.int64)
        arrays[ax][tuple(idx)] = vel[sel]
    u, v, w = arrays
    inlet_area = sum(int(m.sum()) for m in grid.inlet_faces) * h**2
    grid_in = grid.volume_flow_in_m3_s()
    u_in = grid_in / inlet_area
    div_raw = float(np.abs(divergence(grid, u, v, w)).max()) * h / u_in
    change = 0.0
    if project:
        ops = FlowOperators(grid, FlowSettings())
        q = {0: w.copy(), 1: v.copy(), 2: u.copy()}
        ops.project(q)
        change = max(float(np.abs(q[a] - b).max()) for a, b in ((2, u), (1, v), (0, w))) / u_in
        u, v, w = q[2], q[1], q[0]
    div = float(np.abs(divergence(grid, u, v, w)).max()) * h / u_in
    nut = np.zeros(grid.fluid.size)
    nut[flat] = np.clip(read_field(tdir / "nut", len(flat)), 0.0, None)
    cu = 0.5 * (u[..., 1:] + u[..., :-1])
    cv = 0.5 * (v[:, 1:] + v[:, :-1])
    cw = 0.5 * (w[1:] + w[:-1])
    diagnostics = {
        "source": str(tdir),
        "cells": int(len(flat)),
        "divergence_raw": div_raw,
        "divergence": div,
        "divergence_definition": "max_cells |div u| * h / U_in",
        "projected": bool(project),
        "projection_change": change,
        "inflow_m3_s": inflow,
        "outflow_m3_s": outflow,
        "grid_inflow_m3_s": grid_in,
        "wall_flux_max_m3_s": wall_max,
        "inlet_speed_m_s": u_in,
        "max_speed_m_s": float(np.sqrt(cu**2 + cv**2 + cw**2)[grid.fluid].max()),
        "max_nu_t_m2_s": float(nut.max()),
    }
    return Flow3D(u=u, v=v, w=w, nu_t=nut.reshape(grid.shape), diagnostics=diagnostics)


# ----------------------------------------------------------------------------- the comparison


@dataclass
class CrossValidation:
    """Embedded solver on OpenFOAM's flow vs OpenFOAM's own scalar, per scenario and time.

    ``spearman`` and ``relative_l2`` are ``(S, T)`` on the plane's fluid cells (embedded
    as the forecast, OpenFOAM as the truth); ``embedded`` and ``openfoam`` the plane
    series ``(S, T, ny, nx)``; ``mass_*`` the room masses ``(S, T)``; ``budget_*`` the
    largest relative mass-budget error of each run; ``final_3d`` per scenario the
    Spearman and relative L2 over all fluid cells at the horizon; ``times_s`` the
    compared snapshot times (every ``every_s``).
    """

    names: tuple[str, ...]
    splits: tuple[str, ...]
    times_s: np.ndarray = field(repr=False)
    fluid: np.ndarray = field(repr=False)
    x_m: np.ndarray = field(repr=False)
    y_m: np.ndarray = field(repr=False)
    spearman: np.ndarray = field(repr=False)
    relative_l2: np.ndarray = field(repr=False)
    embedded: np.ndarray = field(repr=False)
    openfoam: np.ndarray = field(repr=False)
    mass_embedded: np.ndarray = field(repr=False)
    mass_openfoam: np.ndarray = field(repr=False)
    budget_embedded: float = 0.0
    budget_openfoam: float = 0.0
    source_cells: dict = field(default_factory=dict)
    final_3d: dict = field(default_factory=dict)
    flow_diagnostics: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def at(self, t_s: float) -> int:
        return int(np.argmin(np.abs(self.times_s - t_s)))

    def markdown(self, times_s: Sequence[float] | None = None) -> str:
        """Per scenario: Spearman and relative L2 at ``times_s`` (default 60, 300 s and the horizon)."""
        T = float(self.times_s[-1])
        times = list(times_s) if times_s else sorted({min(60.0, T), min(300.0, T), T})
        ks = [self.at(t) for t in times]
        head = "| scenario | split | " + " | ".join(f"Spearman {self.times_s[k]:g} s" for k in ks) + " | " + \
            " | ".join(f"rel. L2 {self.times_s[k]:g} s" for k in ks) + " | room mass ratio (emb/OF) final |"
        sep = "|" + "---|" * (2 + 2 * len(ks) + 1)
        rows = [head, sep]
        for i, (n, s) in enumerate(zip(self.names, self.splits)):
            ratio = self.mass_embedded[i, -1] / self.mass_openfoam[i, -1] if self.mass_openfoam[i, -1] > 0 else np.nan
            rows.append(f"| {n} | {s} | " + " | ".join(f"{self.spearman[i, k]:.3f}" for k in ks) + " | "
                        + " | ".join(f"{self.relative_l2[i, k]:.3f}" for k in ks) + f" | {ratio:.3f} |")
        return "\n".join(rows)


def _candidate_cells(p, grid: Grid3D) -> list[tuple[int, int, int]]:
    """Fluid cells ``(k, j, i)`` whose closed box holds the point ``p = (x, y, z)``, by label (C order)."""
    h = grid.cell_m
    p = np.asarray(p, float)
    cand = set()
    for dk in (0, 1):
        for dj in (0, 1):
            for di in (0, 1):
                k, j, i = (int(np.ceil(p[2] / h - 1e-9)) - 1 + dk, int(np.ceil(p[1] / h - 1e-9)) - 1 + dj,
                           int(np.ceil(p[0] / h - 1e-9)) - 1 + di)
                if all(0 <= a < n for a, n in zip((k, j, i), grid.shape)) and grid.fluid[k, j, i]:
                    lo = np.array([i, j, k]) * h
                    if np.all(p >= lo - 1e-9) and np.all(p <= lo + h + 1e-9):
                        cand.add((k, j, i))
    return sorted(cand)


def grid_geometry(grid: Grid3D):
    """The fluid cells of ``grid`` as an OpenFOAM cell geometry, numbered as blockMesh and subsetMesh number them."""
    from plumecast.io.openfoam import CellGeometry

    k, j, i = np.nonzero(grid.fluid)  # C order: x fastest, then y, then z
    h = grid.cell_m
    lo = np.stack([i, j, k], 1) * h
    return CellGeometry(centres=lo + 0.5 * h, volumes=np.full(len(k), h**3), lo=lo.astype(float), hi=lo + h)


def _centre(cell, h) -> tuple[float, float, float]:
    k, j, i = cell
    return ((i + 0.5) * h, (j + 0.5) * h, (k + 0.5) * h)


def _snap_source(src: Source, grid: Grid3D, s3d: np.ndarray) -> tuple[Source, tuple[int, int, int] | None]:
    """The static source moved to the centre of the cell OpenFOAM injected into.

    That cell is the candidate (a cell whose closed box holds the point) with the most
    scalar in OpenFOAM's first non-zero snapshot; if it is not the room's maximum the
    embedded deposit is kept (None returned).
    """
    cand = _candidate_cells(src.position_m, grid)
    if not cand:
        return src, None
    best = max(cand, key=lambda c: s3d[c])
    if s3d[best] <= 0 or s3d[best] < 0.999 * s3d[grid.fluid].max():
        return src, None  # not clearly the injection cell: keep the embedded deposit
    return replace(src, position_m=_centre(best, grid.cell_m)), best


def _snap_moving(sc, geom, sim, dt_openfoam: float) -> Source:
    """A moving source as OpenFOAM ran it: its constant-rate windows, each in one cell.

    The windows are the engine's own (``source_windows`` with OpenFOAM's time step); the
    cell of a window is the lowest-label cell holding its position (OpenFOAM's choice for
    points on cell faces, as measured on the static sources: ``emitting_cell_centres``).
    ``geom``: the grid's fluid cells (:func:`grid_geometry`). Returned as a Source whose path
    and rate are piecewise constant (jumps over 1e-6 of a step).
    """
    from plumecast.io.openfoam import emitting_cell_centres
    from plumecast.reference.openfoam_engine import source_windows

    wins = source_windows(sc, sim.horizon_s, dt_openfoam, sim.snapshot_s, sim.fine_cell_m)
    cells = emitting_cell_centres(geom, np.array([w[3] for w in wins]).reshape(-1, 3))
    eps = 1e-6 * dt_openfoam
    path, rate = [], []
    t_prev = 0.0
    for (t0, t1, r, _), c in zip(wins, cells):
        c = tuple(float(v) for v in c)
        if t0 > t_prev + eps:  # a gap without emission
            rate += [(t_prev + eps, 0.0), (t0 - eps, 0.0)] if rate else [(0.0, 0.0), (t0 - eps, 0.0)]
        path += [(t0, *c), (t1 - eps, *c)]
        rate += [(t0, r), (t1 - eps, r)]
        t_prev = t1
    if not path:
        return sc.source
    return Source(rate=tuple(rate), path=tuple(path))


MARKER = "plumecast-crossval.json"


def _identity(sset: ScenarioSet, sc) -> dict:
    """What a finished scalar case must have been run with to be reused (horizon aside)."""
    from plumecast.reference.openfoam_engine import flow_case_key

    sim = {k: v for k, v in asdict(sset.simulation).items() if k != "horizon_s"}
    src = sc.source
    return json.loads(json.dumps({"room": flow_case_key(sset), "simulation": sim, "rate": src.rate,
                                  "position_m": src.position_m, "path": src.path}))


def write_case_marker(case: Path, sset: ScenarioSet, sc) -> None:
    """Mark a finished scalar case (fields kept) as reusable for ``sc`` up to the set's horizon."""
    (case / MARKER).write_text(json.dumps({"identity": _identity(sset, sc), "horizon_s": sset.simulation.horizon_s}))


def _reusable(case: Path, sset: ScenarioSet, sc) -> bool:
    try:
        m = json.loads((case / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return m.get("identity") == _identity(sset, sc) and m.get("horizon_s", 0) >= sset.simulation.horizon_s - 1e-9


def _control_value(case: Path, key: str) -> float:
    import re

    m = re.search(rf"^{key}\s+(\S+);", (case / "system/controlDict").read_text(), re.M)
    if not m:
        raise CrossValError(f"{case}/system/controlDict: no {key}")
    return float(m.group(1))


def cross_validate(
    scenario_set: ScenarioSet,
    work_dir: str | Path,
    scenarios: Sequence[str] | None = None,
    *,
    horizon_s: float | None = None,
    every_s: float | None = None,
    workers: int | None = None,
    match_source_cells: bool = True,
    reuse: bool = True,
    progress: Callable[[str], None] | None = None,
) -> CrossValidation:
    """Run OpenFOAM (flow and scalar) and the embedded solver on OpenFOAM's flow; compare planes.

    ``scenarios`` names the scenarios (default all); ``horizon_s`` shortens the set's
    horizon. OpenFOAM cases live in ``work_dir`` and keep their 3D fields; with ``reuse``
    a finished scalar case of the same source, flow and settings with at least this
    horizon (its ``plumecast-crossval.json`` says so) is not run again. Both planes are
    extracted from the 3D fields with the embedded engine's plane sampler, at every
    snapshot or every ``every_s`` seconds (reading OpenFOAM's ascii fields is the slow
    part) and at the horizon. ``match_source_cells``: see the module docstring.
    """
    from plumecast.io.openfoam import emitting_cell_centres, time_dirs
    from plumecast.metrics import relative_l2, spearman
    from plumecast.reference.openfoam_engine import (flow_case_key, generate_openfoam, injected_mass, read_outflow,
                                                     source_windows)
    from plumecast.reference.plane import plane_sampler
    from plumecast.reference.transport import simulate_scalar

    say = progress or (lambda m: None)
    sset = scenario_set.select(list(scenarios) if scenarios else None)
    if horizon_s is not None:
        sim = replace(sset.simulation, horizon_s=float(horizon_s))
        sset = ScenarioSet(sset.name, sset.room, sim, sset.flow, sset.scenarios, sset.config)
    sim = sset.simulation
    grid = sset.room.discretise(sim.fine_cell_m)
    cell_geometry = grid_geometry(grid)  # OpenFOAM's cells and numbering, for the cell a source emits into
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    case_of = {sc.name: work / f"scalar-{sc.name}" for sc in sset.scenarios}
    need = [sc.name for sc in sset.scenarios if not (reuse and _reusable(case_of[sc.name], sset, sc))]
    t0 = time.perf_counter()
    ds = None
    if need:
        say(f"running OpenFOAM for {len(need)} scenario(s) in {work}: {', '.join(need)}")
        sub = sset.select(need)
        ds = generate_openfoam(sub, work, (lambda d, t: say(f"OpenFOAM {d}/{t}")), workers=workers, keep_fields=True)
        for sc in sub.scenarios:
            write_case_marker(case_of[sc.name], sset, sc)
    else:
        say(f"reusing the OpenFOAM cases in {work}")
    t_openfoam = time.perf_counter() - t0
    flow_case = work / f"flow-{flow_case_key(sset)}"
    try:
        flow_time = json.loads((flow_case / "plumecast-done.json").read_text())["final_time"]
    except (OSError, ValueError, KeyError):
        raise CrossValError(f"{flow_case}: no finished OpenFOAM flow case") from None
    flow = flow_from_openfoam(flow_case, grid, time_dir=flow_time)
    d = flow.diagnostics
    say(f"flow mapped: divergence raw {d['divergence_raw']:.2e}, projected {d['divergence']:.2e}; "
        f"inflow {d['inflow_m3_s']:.6g}, outflow {d['outflow_m3_s']:.6g} m3/s")
    _, flat = openfoam_cells(flow_case, grid)
    sampler = plane_sampler(grid, sim.plane_height_m, sim.plane_cell_m)
    times = sim.times_s
    if every_s:
        stride = max(1, int(round(every_s / sim.snapshot_s)))
        keep = sorted(set(range(0, len(times), stride)) | {1, len(times) - 1})
    else:
        keep = list(range(len(times)))
    kt = times[keep]
    vol = grid.cell_m**3

    # OpenFOAM: planes, room mass and budget from the kept fields; source cells.
    sources, cells, of_plane, of_mass, of_budget, final_of = [], {}, [], [], 0.0, {}
    lowest_label_rule_holds = True
    for sc in sset.scenarios:
        case = case_of[sc.name]
        tds = {round(t, 6): dd for t, dd in time_dirs(case) if (dd / "s").is_file() and t > 0}
        fields = []
        for t in kt:
            if t == 0:
                fields.append(np.zeros(grid.shape))
            elif round(float(t), 6) in tds:
                fields.append(read_cells(tds[round(float(t), 6)] / "s", flat, grid))
            else:
                raise CrossValError(f"{case}: no field s at t = {t:g} s (were the 3D fields kept?)")
        say(f"read {len(fields)} OpenFOAM fields of {sc.name}")
        fields = np.stack(fields)
        of_plane.append(sampler(fields))
        mass = fields.reshape(len(kt), -1).sum(axis=1) * vol
        of_mass.append(mass)
        final_of[sc.name] = fields[-1]
        dt_of = _control_value(case, "deltaT")
        wins = source_windows(sc, _control_value(case, "endTime"), dt_of, sim.snapshot_s, sim.fine_cell_m)
        inj = injected_mass(wins, kt)
        out = read_outflow(case, sset.room.outlets, kt, dt_of)
        of_budget = max(of_budget, float(np.abs(mass - (inj - out)).max() / max(inj.max(), 1e-300)))
        src = sc.source
        if match_source_cells and not src.moving:
            src, cell = _snap_source(src, grid, fields[1])
            cells[sc.name] = cell
            if cell is not None:
                emitting = emitting_cell_centres(cell_geometry, sc.source.position_m)
                lowest_label_rule_holds = lowest_label_rule_holds and np.allclose(emitting, _centre(cell, grid.cell_m))
        elif match_source_cells:
            src = _snap_moving(sc, cell_geometry, sim, dt_of)
            cells[sc.name] = "windows"
        sources.append(replace(sc, source=src))
    of_plane = np.stack(of_plane)
    extraction = 0.0
    if ds is not None:  # OpenFOAM's own dataset plane against the embedded extraction of the same fields
        for name in ds.scenario.values:
            i = [s.name for s in sset.scenarios].index(str(name))
            a = np.asarray(ds["concentration"].sel(scenario=name).values)[keep]
            scale = max(float(np.abs(a).max()), 1e-300)
            extraction = max(extraction, float(np.abs(a - of_plane[i]).max()) / scale)

    t1 = time.perf_counter()
    emb = simulate_scalar(grid, flow, sources, sim, keep_final_field=True)
    t_embedded = time.perf_counter() - t1
    say(f"embedded run: {emb.n_steps} steps of {emb.dt_s:.4g} s in {t_embedded:.1f} s")
    emb_plane = emb.concentration[:, keep]
    fluid = sampler.count > 0
    S, T = of_plane.shape[:2]
    sp = np.full((S, T), np.nan)
    rl = np.full((S, T), np.nan)
    for s in range(S):
        for k in range(T):
            sp[s, k] = spearman(emb_plane[s, k], of_plane[s, k], fluid)
            rl[s, k] = relative_l2(emb_plane[s, k], of_plane[s, k], fluid)
    from scipy.stats import spearmanr

    final_3d = {}
    for s, sc in enumerate(sset.scenarios):
        a, b = emb.final_field[s][grid.fluid], final_of[sc.name][grid.fluid]
        final_3d[sc.name] = {"spearman": float(spearmanr(a, b).statistic),
                             "relative_l2": float(np.linalg.norm(a - b) / np.linalg.norm(b))}
    h = grid.cell_m
    ny, nx = fluid.shape
    r = sampler.ratio
    return CrossValidation(
        names=tuple(s.name for s in sset.scenarios),
        splits=tuple(s.split for s in sset.scenarios),
        times_s=np.asarray(kt, float),
        fluid=fluid,
        x_m=(np.arange(nx) + 0.5) * h * r,
        y_m=(np.arange(ny) + 0.5) * h * r,
        spearman=sp,
        relative_l2=rl,
        embedded=emb_plane,
        openfoam=of_plane,
        mass_embedded=emb.mass_room[:, keep],
        mass_openfoam=np.stack(of_mass),
        budget_embedded=emb.relative_budget_error,
        budget_openfoam=of_budget,
        source_cells=cells,
        final_3d=final_3d,
        flow_diagnostics=flow.diagnostics,
        info={
            "openfoam_seconds": round(t_openfoam, 1),
            "embedded_seconds": round(t_embedded, 1),
            "embedded_dt_s": emb.dt_s,
            "openfoam_dt_s": _control_value(case_of[sset.scenarios[0].name], "deltaT"),
            "horizon_s": float(sim.horizon_s),
            "plane_extraction_max_rel_diff": extraction if ds is not None else None,
            "match_source_cells": match_source_cells,
            "lowest_label_rule_holds": lowest_label_rule_holds,
            "openfoam_ran": need,
        },
    )


def rerun_with_scheme(case: str | Path, dest: str | Path, scheme: str = "Gauss upwind") -> Path:
    """Copy a scalar case of the engine to ``dest`` and run it with another scheme for ``div(phi,s)``.

    Used to measure how much of the embedded/OpenFOAM difference is the advection scheme
    (``Gauss upwind`` is the embedded solver's). Reused when ``dest`` already finished.
    """
    from plumecast.reference.openfoam_engine import run_app

    case, dest = Path(case), Path(dest)
    done = dest / "plumecast-done.json"
    if done.is_file() and json.loads(done.read_text()).get("scheme") == scheme:
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for part in ("0", "constant", "system"):
        shutil.copytree(case / part, dest / part)
    schemes = (dest / "system/fvSchemes").read_text()
    if "Gauss limitedLinear 1" not in schemes:
        raise CrossValError(f"{case}/system/fvSchemes: no 'div(phi,s) Gauss limitedLinear 1' to replace")
    (dest / "system/fvSchemes").write_text(schemes.replace("Gauss limitedLinear 1", scheme))
    t0 = time.perf_counter()
    run_app(dest, "scalarTransportFoam")
    done.write_text(json.dumps({"scheme": scheme, "seconds": round(time.perf_counter() - t0, 1)}))
    return dest
