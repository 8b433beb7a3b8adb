"""OpenFOAM (ESI v1912, the Debian package) as the 3D reference engine.

``generate_openfoam(scenario_set, work_dir, progress=None)`` turns the same ScenarioSet as
the embedded engine into OpenFOAM cases, runs them and returns the plane dataset in the
same schema (the caller writes it with ``write_dataset``).

Cases (under ``work_dir``; see ``docs/importers.md``):

``flow-<key>/``  one per room (reused while the room, flow settings and fine cell are
    unchanged). ``blockMesh`` box of ``fine_cell_m`` cells; the solid cells of
    ``Room.discretise`` (plan walls and obstacles) are removed with a cellSet written here
    and ``subsetMesh -patch obstacles`` (exactly the embedded engine's cells); inlets and
    outlets are carved from the wall patch with ``topoSet`` (patchToFace + boxToFace) and
    ``createPatch``. Steady ``simpleFoam`` with k-epsilon and wall functions; every inlet
    and outlet gets the fixed face velocity of ``Grid3D`` (the embedded engine's boundary
    condition, so both engines move the same air), pressure has zero gradient and a
    reference cell.
``scalar-<scenario>/``  one per scenario on the frozen flow (U and phi copied; while it is
    written and run it holds ``plumecast-owner.json`` naming the process, and a generation
    refuses, before writing anything, to rewrite a case another running process owns):
    ``scalarTransportFoam`` hosts the ``scalarTransport`` function object, which solves
    ``s`` with the diffusivity field ``Deff = D_m + nut / Sc_t`` (computed here from the
    flow's nut; v1912 can neither read nut in setExprFields nor compile code). Sources
    are ``scalarSemiImplicitSource`` fvOptions on the cell holding the source point, with
    a constant rate each; time-varying and moving sources become chains of such sources,
    each active in its own time window (window mean rate, window midpoint position,
    windows at most one snapshot long and short enough that a moving source advances
    less than half a fine cell). ``writeObjects`` writes ``s`` every snapshot and
    ``surfaceFieldValue`` records the outflow ``sum(phi s)`` on every outlet each step.

The plane is extracted from the 3D cells as the importer does (the two layers bracketing
the plane, area-averaged into the plane cells): :mod:`plumecast.io.openfoam`. The flow (U,
nut) is also sampled the same way at the column of heights ``column_levels_m`` (the
dataset's ``u_level`` ... ``nu_t_level``), and the flow case's face fluxes ``phi`` are
summed onto the column's cells (``flux_x_level`` ... ``volume_level``,
:mod:`plumecast.reference.coarse_flux`); these come from the flow case alone. The mass
budget per scenario: ``mass_room`` = volume integral of s, ``mass_injected`` = sum of
window rate x active time steps, ``mass_outflow`` = time integral of the outlet flux.
Inlets carry s = 0 with zero diffusivity on the inlet faces, so the outlets are the only
way out and ``mass_room + mass_outflow = mass_injected`` to solver tolerance.

Scenario cases run in parallel (one process each) up to ``workers`` (default: the CPU
count, or ``PLUMECAST_OPENFOAM_WORKERS``) in a thread pool of this process, or, with
``scheduler`` (``"local"`` or a Dask scheduler address; :func:`plumecast.reference.generate.dask_client`),
as one Dask task per scenario: the worker runs the case (the case folders must be on a
filesystem the workers share with this process) and writes the scenario's cache entry
itself, so a lost client or worker loses only the cases in flight. Each finished scenario's plane frames, budget
and run time are cached as ``work_dir/result-<key>.nc``, so an interrupted generation
resumes where it stopped. A failing application raises
:class:`OpenFOAMError` naming the case and its log.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr

from plumecast import __version__
from plumecast.geometry import Grid3D
from plumecast.io.atomic import remove_stale_temporaries
from plumecast.reference.generate import (INLINE, dask_client, read_scenario_cache, run_tasks, scenario_key,
                                          write_scenario_cache)
from plumecast.scenario import Scenario, ScenarioSet

GENERATOR = "plumecast-openfoam"
APPS = ("blockMesh", "subsetMesh", "topoSet", "createPatch", "simpleFoam", "scalarTransportFoam")
# What a case decomposed over MPI ranks needs besides (Debian: openfoam pulls in openmpi-bin).
PARALLEL_APPS = ("decomposePar", "reconstructPar", "mpirun")
INSTALL_HINT = (
    "install OpenFOAM (Debian/Ubuntu: apt-get install -y --no-install-recommends openfoam) so that "
    "blockMesh, simpleFoam and scalarTransportFoam are on PATH, and foamlib (pip install 'plumecast[openfoam]')"
)
FLOW_MAX_ITERATIONS = 1000
FLOW_WRITE_EVERY = 100
TURBULENT_INTENSITY = 0.05
MIXING_LENGTH_M = 0.1
C_MU = 0.09


class OpenFOAMError(RuntimeError):
    """OpenFOAM missing, or a case that failed; the message names the case and its log."""


def openfoam_missing(procs: int = 1) -> list[str]:
    """The OpenFOAM applications (and, for ``procs > 1``, MPI tools) this engine needs that are not on PATH."""
    return [a for a in APPS + (PARALLEL_APPS if procs > 1 else ()) if shutil.which(a) is None]


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("WM_PROJECT_DIR", "/usr/share/openfoam")
    env.setdefault("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers run as root; Open MPI refuses that unasked
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return env


def run_app(case: Path, app: str, *args: str, timeout: float | None = None, procs: int = 1) -> Path:
    """Run the OpenFOAM application ``app`` in ``case`` (log in ``case/log.<app>``); returns the log.

    ``procs > 1`` runs it with ``mpirun -np procs ... -parallel`` on a case already split
    by :func:`decompose`. OpenFOAMError names the case and the log when the application is
    missing, fails or runs past ``timeout`` seconds.
    """
    log = case / f"log.{app}"
    # --oversubscribe: more ranks than this host's cores is slow, not wrong; a cluster's hostfile sets slots anyway.
    command = (["mpirun", "-np", str(procs), "--oversubscribe", app, "-parallel"] if procs > 1 else [app])
    with open(log, "w") as fh:
        try:
            rc = subprocess.run([*command, "-case", str(case), *args], stdout=fh, stderr=subprocess.STDOUT,
                                env=_env(), timeout=timeout).returncode
        except FileNotFoundError:
            raise OpenFOAMError(f"{command[0]} not found; {INSTALL_HINT}") from None
        except subprocess.TimeoutExpired:
            raise OpenFOAMError(f"case {case}: {app} ran past {timeout:.0f} s; see {log}") from None
    text = log.read_text(errors="replace")
    if rc != 0 or "FOAM FATAL" in text:
        tail = "\n".join(text.strip().splitlines()[-12:])
        raise OpenFOAMError(f"case {case}: {app} failed (exit code {rc}); see {log}:\n{tail}")
    return log


def decompose(case: Path, procs: int, size_m) -> None:
    """Split ``case`` (its mesh and the fields of 0/) into ``procs`` subdomains with ``decomposePar``.

    ``method simple`` cuts along the room's longest horizontal side: the Debian build's
    scotch library is a stub, and cuts across the long side keep the interfaces small.
    """
    lx, ly = size_m[0], size_m[1]
    n = f"({procs} 1 1)" if lx >= ly else f"(1 {procs} 1)"
    _foam_file(case / "system/decomposeParDict", "dictionary", "decomposeParDict",
               f"numberOfSubdomains {procs};\nmethod simple;\nsimpleCoeffs\n{{\n    n {n};\n    delta 0.001;\n}}")
    run_app(case, "decomposePar", "-force")


# ----------------------------------------------------------------------------- dictionaries

_BANNER = "/* written by plumecast {v} for OpenFOAM v1912 */\n"


def _foam_file(path: Path, cls: str, obj: str, body: str, location: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    loc = f'    location    "{location}";\n' if location else ""
    path.write_text(
        _BANNER.format(v=__version__)
        + f"FoamFile\n{{\n    version     2.0;\n    format      ascii;\n    class       {cls};\n{loc}"
        + f"    object      {obj};\n}}\n\n{body}\n"
    )


def _vec(v) -> str:
    return "(" + " ".join(f"{float(c):.10g}" for c in v) + ")"


def _scalar_list(values: np.ndarray) -> str:
    return f"nonuniform List<scalar>\n{len(values)}\n(\n" + "\n".join(f"{v:.10g}" for v in values) + "\n)"


def _write_mesh_dicts(case: Path, sset: ScenarioSet, grid: Grid3D) -> None:
    lx, ly, lz = sset.room.size_m
    nz, ny, nx = grid.shape
    _foam_file(case / "system/blockMeshDict", "dictionary", "blockMeshDict", f"""scale 1;
vertices ((0 0 0) ({lx} 0 0) ({lx} {ly} 0) (0 {ly} 0) (0 0 {lz}) ({lx} 0 {lz}) ({lx} {ly} {lz}) (0 {ly} {lz}));
blocks (hex (0 1 2 3 4 5 6 7) ({nx} {ny} {nz}) simpleGrading (1 1 1));
edges ();
boundary
(
    walls {{ type wall; faces ((0 3 2 1) (4 5 6 7) (0 1 5 4) (1 2 6 5) (2 3 7 6) (3 0 4 7)); }}
    obstacles {{ type wall; faces (); }}
);
mergePatchPairs ();""")
    eps = 0.01 * grid.cell_m
    actions = []
    for p in sset.room.inlets + sset.room.outlets:
        axis, side = p.face[0], p.face[1]
        size = {"x": lx, "y": ly, "z": lz}[axis]
        at = 0.0 if side == "-" else size
        a0, a1, b0, b1 = p.rect_m
        first, second = {"x": ("y", "z"), "y": ("x", "z"), "z": ("x", "y")}[axis]
        lo, hi = {}, {}
        lo[axis], hi[axis] = at - eps, at + eps
        lo[first], hi[first] = a0, a1
        lo[second], hi[second] = b0, b1
        box = f"({lo['x']} {lo['y']} {lo['z']}) ({hi['x']} {hi['y']} {hi['z']})"
        actions.append(f"    {{ name {p.name}; type faceSet; action new; source patchToFace; patch walls; }}")
        actions.append(f"    {{ name {p.name}; type faceSet; action subset; source boxToFace; box {box}; }}")
    _foam_file(case / "system/topoSetDict", "dictionary", "topoSetDict", "actions\n(\n" + "\n".join(actions) + "\n);")
    patches = "\n".join(
        f"    {{ name {p.name}; patchInfo {{ type patch; }} constructFrom set; set {p.name}; }}"
        for p in sset.room.inlets + sset.room.outlets
    )
    _foam_file(case / "system/createPatchDict", "dictionary", "createPatchDict",
               f"pointSync false;\npatches\n(\n{patches}\n);")


def _control(app: str, end: float, dt: float, write_interval: float, functions: str = "") -> str:
    return f"""application {app};
startFrom startTime;
startTime 0;
stopAt endTime;
endTime {end:.10g};
deltaT {dt:.10g};
writeControl runTime;
writeInterval {write_interval:.10g};
purgeWrite 0;
writeFormat ascii;
writePrecision 12;
writeCompression off;
timeFormat general;
timePrecision 8;
runTimeModifiable false;
functions
{{
{functions}
}}"""


def _bc_block(entries: dict[str, str]) -> str:
    return "boundaryField\n{\n" + "\n".join(f"    {name}\n    {{\n        {bc}\n    }}" for name, bc in entries.items()) + "\n}"


def _write_flow_case(case: Path, sset: ScenarioSet, grid: Grid3D) -> None:
    room = sset.room
    nu = sset.flow.kinematic_viscosity_m2_s
    speeds = [abs(grid.patch_velocity(p)).max() for p in room.inlets]
    u_ref = max(speeds)
    k_in = 1.5 * (TURBULENT_INTENSITY * u_ref) ** 2
    eps_in = C_MU**0.75 * k_in**1.5 / MIXING_LENGTH_M
    walls = ("walls", "obstacles")
    U = {w: "type noSlip;" for w in walls}
    p = {w: "type zeroGradient;" for w in walls}
    k = {w: f"type kqRWallFunction; value uniform {k_in:.6g};" for w in walls}
    eps = {w: f"type epsilonWallFunction; value uniform {eps_in:.6g};" for w in walls}
    nut = {w: "type nutkWallFunction; value uniform 0;" for w in walls}
    for patch in room.inlets:
        U[patch.name] = f"type fixedValue; value uniform {_vec(grid.patch_velocity(patch))};"
        k[patch.name] = f"type fixedValue; value uniform {k_in:.6g};"
        eps[patch.name] = f"type fixedValue; value uniform {eps_in:.6g};"
    for patch in room.outlets:
        U[patch.name] = f"type fixedValue; value uniform {_vec(grid.patch_velocity(patch))};"
        k[patch.name] = f"type inletOutlet; inletValue uniform {k_in:.6g}; value uniform {k_in:.6g};"
        eps[patch.name] = f"type inletOutlet; inletValue uniform {eps_in:.6g}; value uniform {eps_in:.6g};"
    for patch in room.inlets + room.outlets:
        p[patch.name] = "type zeroGradient;"
        nut[patch.name] = "type calculated; value uniform 0;"
    for name, cls, dims, internal, bcs in (
        ("U", "volVectorField", "[0 1 -1 0 0 0 0]", "uniform (0 0 0)", U),
        ("p", "volScalarField", "[0 2 -2 0 0 0 0]", "uniform 0", p),
        ("k", "volScalarField", "[0 2 -2 0 0 0 0]", f"uniform {k_in:.6g}", k),
        ("epsilon", "volScalarField", "[0 2 -3 0 0 0 0]", f"uniform {eps_in:.6g}", eps),
        ("nut", "volScalarField", "[0 2 -1 0 0 0 0]", "uniform 0", nut),
    ):
        _foam_file(case / "0" / name, cls, name, f"dimensions {dims};\ninternalField {internal};\n{_bc_block(bcs)}", "0")
    _foam_file(case / "constant/transportProperties", "dictionary", "transportProperties",
               f"transportModel Newtonian;\nnu {nu:.10g};")
    _foam_file(case / "constant/turbulenceProperties", "dictionary", "turbulenceProperties",
               "simulationType RAS;\nRAS\n{\n    RASModel kEpsilon;\n    turbulence on;\n    printCoeffs off;\n}")
    _foam_file(case / "system/controlDict", "dictionary", "controlDict",
               _control("simpleFoam", FLOW_MAX_ITERATIONS, 1, FLOW_WRITE_EVERY).replace("purgeWrite 0;", "purgeWrite 2;"))
    _foam_file(case / "system/fvSchemes", "dictionary", "fvSchemes", """ddtSchemes { default steadyState; }
gradSchemes { default Gauss linear; }
divSchemes
{
    default none;
    div(phi,U) bounded Gauss upwind;
    div(phi,k) bounded Gauss upwind;
    div(phi,epsilon) bounded Gauss upwind;
    div((nuEff*dev2(T(grad(U))))) Gauss linear;
}
laplacianSchemes { default Gauss linear corrected; }
interpolationSchemes { default linear; }
snGradSchemes { default corrected; }
wallDist { method meshWave; }""")
    _foam_file(case / "system/fvSolution", "dictionary", "fvSolution", """solvers
{
    p { solver GAMG; smoother GaussSeidel; tolerance 1e-8; relTol 0.05; }
    "(U|k|epsilon)" { solver smoothSolver; smoother symGaussSeidel; tolerance 1e-8; relTol 0.1; }
}
SIMPLE
{
    nNonOrthogonalCorrectors 0;
    consistent no;
    pRefCell 0;
    pRefValue 0;
    residualControl { p 1e-4; U 1e-5; "(k|epsilon)" 1e-5; }
}
relaxationFactors
{
    fields { p 0.3; }
    equations { U 0.7; ".*" 0.7; }
}""")


def flow_case_key(sset: ScenarioSet, procs: int = 1) -> str:
    """The key that names a room's OpenFOAM flow case, ``flow-<key>`` in the work folder.

    A hash of the room and flow configuration, the fine cell, the plumecast version and,
    when decomposed, the rank count (a decomposed solve converges to a slightly different
    flow): the flow case is reused while these are unchanged.
    """
    cfg = {k: v for k, v in sset.config.items() if k in ("room", "flow")}
    key = {"room": cfg, "fine": sset.simulation.fine_cell_m, "v": __version__, "engine": 1}
    if procs > 1:  # serial keys stay as they were, so existing work folders stay valid
        key["procs"] = procs
    raw = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def _flow_case(sset: ScenarioSet, grid: Grid3D, work_dir: Path, procs: int = 1) -> tuple[Path, dict]:
    """Mesh and steady flow of the room (reused when a finished one is there), on ``procs`` MPI ranks."""
    case = work_dir / f"flow-{flow_case_key(sset, procs)}"
    done = case / "plumecast-done.json"
    if done.is_file():
        try:
            return case, json.loads(done.read_text())
        except json.JSONDecodeError:
            pass
    if case.exists():
        shutil.rmtree(case)
    case.mkdir(parents=True)
    t0 = time.perf_counter()
    _write_mesh_dicts(case, sset, grid)
    _write_flow_case(case, sset, grid)
    run_app(case, "blockMesh")
    if not grid.fluid.all():
        labels = np.flatnonzero(grid.fluid.ravel())  # blockMesh order: x fastest, then y, then z = (z, y, x) C order
        _foam_file(case / "constant/polyMesh/sets/fluid", "cellSet", "fluid",
                   f"{len(labels)}\n(\n" + "\n".join(map(str, labels)) + "\n)", "constant/polyMesh/sets")
        run_app(case, "subsetMesh", "fluid", "-patch", "obstacles", "-overwrite")
    run_app(case, "topoSet")
    run_app(case, "createPatch", "-overwrite")
    _check_patches(case, sset)
    # subsetMesh and createPatch rewrite the fields of 0/ for the patches they knew: write them anew.
    shutil.rmtree(case / "0")
    _write_flow_case(case, sset, grid)
    if procs > 1:
        decompose(case, procs, sset.room.size_m)
    log = run_app(case, "simpleFoam", procs=procs)
    if procs > 1:  # the scalar cases copy the flow from the case root: gather it there, once
        run_app(case, "reconstructPar")
        for proc in case.glob("processor*"):
            shutil.rmtree(proc)
    text = log.read_text(errors="replace")
    m = re.search(r"SIMPLE solution converged in (\d+) iterations", text)
    times = [float(t) for t in re.findall(r"^Time = (\S+)", text, re.M)]
    iterations = int(m.group(1)) if m else int(times[-1]) if times else 0
    residuals = {}
    for f in ("Ux", "Uy", "Uz", "p", "k", "epsilon"):
        r = re.findall(rf"Solving for {f}, Initial residual = (\S+),", text)
        if r:
            residuals[f] = float(r[-1].rstrip(","))
    # Stationarity: the change of U over the last write interval, relative to max |U|.
    from plumecast.io.openfoam import read_field, read_mesh, time_dirs

    tds = time_dirs(case)
    change = float("nan")
    if len(tds) >= 3:
        n = read_mesh(case / "constant/polyMesh").n_cells
        ua, ub = (read_field(d / "U", n, vector=True) for _, d in tds[-2:])
        change = float(np.abs(ub - ua).max() / max(np.abs(ub).max(), 1e-30))
    info = {
        "iterations": iterations,
        "relative_change_U_last_100": change,
        "stationary": bool(change < 1e-3),
        "converged": bool(m) or bool(change < 1e-3),
        "residual_control_met": bool(m),
        "initial_residuals_last": residuals,
        "max_iterations": FLOW_MAX_ITERATIONS,
        "seconds": round(time.perf_counter() - t0, 2),
        "final_time": _latest_time(case),
    }
    done.write_text(json.dumps(info))
    return case, info


def _check_patches(case: Path, sset: ScenarioSet) -> None:
    text = (case / "constant/polyMesh/boundary").read_text()
    for p in sset.room.inlets + sset.room.outlets:
        m = re.search(rf"\b{re.escape(p.name)}\s*\{{[^}}]*nFaces\s+(\d+)", text)
        if not m or int(m.group(1)) == 0:
            raise OpenFOAMError(f"case {case}: patch {p.name!r} got no faces from topoSet/createPatch; see {case}/log.topoSet")


def _latest_time(case: Path) -> str:
    from plumecast.io.openfoam import time_dirs

    tds = time_dirs(case)
    return tds[-1][1].name if tds else "0"


# ----------------------------------------------------------------------------- sources


def source_windows(scenario: Scenario, horizon_s: float, dt: float, max_window_s: float, fine_cell_m: float):
    """Constant-rate windows ``(t0, t1, rate, (x, y, z))`` on the time-step grid.

    Window ends are multiples of ``dt``; each holds the exact mean rate of the piecewise
    linear rate over it and the source's position at its middle (moving sources: windows
    short enough that the source advances less than half a fine cell).
    """
    src = scenario.source
    n_steps = int(round(horizon_s / dt))
    breaks = {0, n_steps}
    for t, _ in src.rate:
        breaks.add(int(np.clip(round(t / dt), 0, n_steps)))
    max_steps = max(1, int(np.floor(max_window_s / dt + 1e-9)))
    if src.moving:
        path = np.asarray(src.path, float)
        vmax = _max_speed(scenario)
        if vmax > 0:
            max_steps = max(1, min(max_steps, int(np.floor(0.5 * fine_cell_m / vmax / dt + 1e-9))))
        for t in path[:, 0]:
            breaks.add(int(np.clip(round(t / dt), 0, n_steps)))
    edges = sorted(breaks)
    wins = []
    for a, b in zip(edges[:-1], edges[1:]):
        k = a
        while k < b:
            e = min(b, k + max_steps)
            t0, t1 = k * dt, e * dt
            tt = np.linspace(t0, t1, 65)
            rate = float(np.trapezoid(src.rate_at(tt), tt) / (t1 - t0))
            pos = tuple(float(c) for c in src.position_at(0.5 * (t0 + t1)))
            if wins and wins[-1][3] == pos and np.isclose(wins[-1][2], rate, rtol=1e-12, atol=0):
                wins[-1] = (wins[-1][0], t1, wins[-1][2], pos)
            else:
                wins.append((t0, t1, rate, pos))
            k = e
    return [w for w in wins if w[2] > 0]


def _max_speed(scenario: Scenario) -> float:
    """Largest speed along a moving source's path, m/s (0 for a static source)."""
    if not scenario.source.moving:
        return 0.0
    path = np.asarray(scenario.source.path, float)
    speed = np.linalg.norm(np.diff(path[:, 1:], axis=0), axis=1) / np.diff(path[:, 0])
    return float(speed.max()) if speed.size else 0.0


def injected_mass(windows, times: np.ndarray) -> np.ndarray:
    """Cumulative mass injected by the source ``windows`` (``source_windows``) up to each of ``times``."""
    out = np.zeros(len(times))
    for t0, t1, rate, _ in windows:
        out += rate * np.clip(np.minimum(times, t1) - t0, 0.0, None)
    return out


# ----------------------------------------------------------------------------- flow levels


def level_flow(geom, U: np.ndarray, nut: np.ndarray, heights_m, plane_cell_m: float, extent_xy) -> dict:
    """The flow case's U and nut at several heights: ``dict(z_m, u, v, w, nu_t)``, fields ``(level, ny, nx)``.

    Each level is sampled as the plane is (``mesh_plane_sampler`` from the origin over
    ``extent_xy``, ``nu_t`` clipped at 0), so a level at the plane height equals the
    dataset's plane fields. The levels come from the flow alone and enter no cache key.
    """
    from plumecast.io.openfoam import mesh_plane_sampler

    z = np.asarray(heights_m, dtype=float).ravel()
    out = {"z_m": z, "u": [], "v": [], "w": [], "nu_t": []}
    for height in z:
        s = mesh_plane_sampler(geom, float(height), plane_cell_m, origin_xy=(0.0, 0.0), extent_xy=extent_xy)
        out["u"].append(s(U[:, 0]))
        out["v"].append(s(U[:, 1]))
        out["w"].append(s(U[:, 2]))
        out["nu_t"].append(np.clip(s(nut), 0.0, None))
    return {k: (v if k == "z_m" else np.stack(v)) for k, v in out.items()}


def level_fluxes(flow_case: Path, flow_time: str, geom, heights_m, room_height_m: float, plane_cell_m: float,
                 shape) -> dict:
    """The flow case's ``phi`` summed onto the cells of the column of ``heights_m``: ``dict(flux_x, ..., volume)``.

    The plane grid of ``shape (ny, nx)`` starts at the origin, as the plane sampler's
    (:mod:`plumecast.reference.coarse_flux`). OpenFOAMError when ``phi`` cannot be read or
    does not balance on the column's cells to the dataset's tolerance.
    """
    from plumecast.io.dataset import FLUX_DIVERGENCE_TOL
    from plumecast.io.openfoam import OpenFOAMImportError, read_face_fluxes
    from plumecast.reference.coarse_flux import column_fluxes

    try:
        faces = read_face_fluxes(flow_case, flow_time)  # cells labelled as read_mesh labels them
        return column_fluxes(geom.centres, geom.volumes, faces, x0=0.0, y0=0.0, cell_m=plane_cell_m, shape=shape,
                             levels_m=heights_m, height_m=room_height_m, tolerance=FLUX_DIVERGENCE_TOL)
    except (OpenFOAMImportError, ValueError) as e:
        raise OpenFOAMError(f"case {flow_case}: summing phi at time {flow_time} onto the flow levels: {e}; see "
                            f"{flow_case}/log.simpleFoam") from None


# ----------------------------------------------------------------------------- scalar cases


def _time_step(sset: ScenarioSet, umax: float, scenario: Scenario | None = None) -> float:
    """The implicit scalar step: a whole fraction of a snapshot, at most ``openfoam_max_courant``
    in the fastest cell and 0.5 s; for a moving source also short enough that it advances at
    most half a fine cell per step (each step's source sits in one cell)."""
    sim = sset.simulation
    target = min(sim.openfoam_max_courant * sim.fine_cell_m / max(umax, 1e-9), 0.5, sim.snapshot_s)
    vmax = _max_speed(scenario) if scenario is not None else 0.0
    if vmax > 0:
        target = min(target, 0.5 * sim.fine_cell_m / vmax)
    n = int(np.ceil(sim.snapshot_s / target - 1e-9))
    return sim.snapshot_s / n


def _write_scalar_case(case: Path, flow_case: Path, flow_time: str, sset: ScenarioSet, sc: Scenario,
                       deff: np.ndarray, dt: float, windows) -> None:
    sim = sset.simulation
    room = sset.room
    if case.exists():
        shutil.rmtree(case)
    (case / "constant").mkdir(parents=True)
    shutil.copytree(flow_case / "constant/polyMesh", case / "constant/polyMesh",
                    ignore=shutil.ignore_patterns("sets"))
    (case / "0").mkdir()
    for name in ("U", "phi", "nut"):
        text = (flow_case / flow_time / name).read_text()
        (case / "0" / name).write_text(text.replace(f'location    "{flow_time}"', 'location    "0"'))
    inlets = [p.name for p in room.inlets]
    zero_grad = {'".*"': "type zeroGradient;"}
    s_bc = dict(zero_grad, **{n: "type fixedValue; value uniform 0;" for n in inlets})
    d_bc = dict(zero_grad, **{n: "type fixedValue; value uniform 0;" for n in inlets})
    _foam_file(case / "0/T", "volScalarField", "T", f"dimensions [0 0 0 0 0 0 0];\ninternalField uniform 0;\n{_bc_block(zero_grad)}", "0")
    _foam_file(case / "0/s", "volScalarField", "s", f"dimensions [0 0 0 0 0 0 0];\ninternalField uniform 0;\n{_bc_block(s_bc)}", "0")
    _foam_file(case / "0/Deff", "volScalarField", "Deff",
               f"dimensions [0 2 -1 0 0 0 0];\ninternalField {_scalar_list(deff)};\n{_bc_block(d_bc)}", "0")
    _foam_file(case / "constant/transportProperties", "dictionary", "transportProperties", "DT DT [0 2 -1 0 0 0 0] 0;")
    sources = []
    for i, (t0, t1, rate, pos) in enumerate(windows):
        # Active while the solver's new time t lies in (t0, t1]: the window [t0, t1] shifted by half a step.
        sources.append(f"""            src{i}
            {{
                type scalarSemiImplicitSource;
                timeStart {t0 + 0.5 * dt:.10g};
                duration {t1 - t0:.10g};
                selectionMode points;
                points ({_vec(pos)});
                volumeMode absolute;
                injectionRateSuSp {{ s ({rate:.12g} 0); }}
            }}""")
    outflow = "\n".join(f"""    out_{p.name}
    {{
        type surfaceFieldValue;
        libs ("libfieldFunctionObjects.so");
        regionType patch;
        name {p.name};
        operation weightedSum;
        weightField s;
        fields (phi);
        writeFields false;
        writeControl timeStep;
        writeInterval 1;
        log false;
    }}""" for p in room.outlets)
    functions = f"""    readDeff
    {{
        type readFields;
        libs ("libfieldFunctionObjects.so");
        fields (Deff);
    }}
    scalar
    {{
        type scalarTransport;
        libs ("libsolverFunctionObjects.so");
        field s;
        phi phi;
        nut Deff;
        bounded01 false;
        nCorr 0;
        writeControl runTime;
        writeInterval {sim.horizon_s * 10:.10g};
        fvOptions
        {{
{chr(10).join(sources)}
        }}
    }}
    writeS
    {{
        type writeObjects;
        libs ("libutilityFunctionObjects.so");
        objects (s);
        writeOption anyWrite;
        writeControl runTime;
        writeInterval {sim.snapshot_s:.10g};
    }}
{outflow}"""
    _foam_file(case / "system/controlDict", "dictionary", "controlDict",
               _control("scalarTransportFoam", sim.horizon_s, dt, sim.horizon_s * 10, functions))
    _foam_file(case / "system/fvSchemes", "dictionary", "fvSchemes", """ddtSchemes { default Euler; }
gradSchemes { default Gauss linear; }
divSchemes { default none; div(phi,T) Gauss upwind; div(phi,s) Gauss limitedLinear 1; }
laplacianSchemes { default Gauss linear corrected; }
interpolationSchemes { default linear; }
snGradSchemes { default corrected; }""")
    _foam_file(case / "system/fvSolution", "dictionary", "fvSolution", """solvers
{
    "(T|s)" { solver PBiCGStab; preconditioner DILU; tolerance 1e-14; relTol 0; }
}
SIMPLE { nNonOrthogonalCorrectors 0; }""")


def read_outflow(case: Path, outlets, times_out: np.ndarray, dt: float) -> np.ndarray:
    """Cumulative mass that left a scalar case through ``outlets`` up to each of ``times_out``.

    From the outlets' ``surfaceFieldValue`` records (``sum(phi s)`` every time step of
    ``dt``); OpenFOAMError when a record is missing.
    """
    total = np.zeros(len(times_out))
    for p in outlets:
        files = sorted((case / "postProcessing" / f"out_{p.name}").glob("*/surfaceFieldValue.dat"))
        if not files:
            raise OpenFOAMError(f"case {case}: no outflow record for outlet {p.name!r}; see {case}/log.scalarTransportFoam")
        rows = [ln.split() for ln in files[-1].read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        data = np.array([[float(v) for v in r[:2]] for r in rows])
        t, flux = data[:, 0], data[:, 1]
        total += np.array([dt * flux[t <= T + 0.25 * dt].sum() for T in times_out])
    return total


# Scalar cases are named by scenario (``scalar-<name>``), so two generations in one work
# folder whose scenarios share names would rewrite each other's cases. Each case holds this
# file, naming the process that wrote it, from writing until its run is done.
OWNER_FILE = "plumecast-owner.json"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def case_in_use(case: Path) -> dict | None:
    """The owner record of a scalar case written by another process that is still running, or None."""
    try:
        owner = json.loads((case / OWNER_FILE).read_text())
        pid = int(owner["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no owner (finished, or written by an older plumecast) or unreadable: free
    return owner if pid != os.getpid() and _pid_alive(pid) else None


def _claim_case(case: Path, sset: ScenarioSet) -> None:
    (case / OWNER_FILE).write_text(json.dumps({"pid": os.getpid(), "room": sset.name}))


def _scalar_run(case: Path, sset: ScenarioSet, geom, sampler, windows, dt: float, keep_fields: bool,
                procs: int = 1) -> dict:
    try:
        return _scalar_run_owned(case, sset, geom, sampler, windows, dt, keep_fields, procs)
    finally:
        (case / OWNER_FILE).unlink(missing_ok=True)


def _scalar_run_owned(case: Path, sset: ScenarioSet, geom, sampler, windows, dt: float, keep_fields: bool,
                      procs: int = 1) -> dict:
    from plumecast.io.openfoam import read_cell_addressing, read_field, time_dirs

    t0 = time.perf_counter()
    if procs > 1:
        decompose(case, procs, sset.room.size_m)
    run_app(case, "scalarTransportFoam", procs=procs)
    run_seconds = time.perf_counter() - t0
    # Where each root's cells go in the full mesh: the case itself, or its processors' addressing.
    roots = [(case, None)] if procs == 1 else [(p, read_cell_addressing(p)) for p in sorted(case.glob("processor*"))]
    if procs > 1 and sum(len(a) for _, a in roots) != geom.n_cells:
        raise OpenFOAMError(f"case {case}: its {len(roots)} processors hold {sum(len(a) for _, a in roots)} cells, "
                            f"the mesh {geom.n_cells}; see {case}/log.decomposePar")

    written = {root: time_dirs(root) for root, _ in roots}  # listed once, not per snapshot

    def field_at(T: float) -> np.ndarray:
        s = np.zeros(geom.n_cells)
        for root, addressing in roots:
            match = [d for t, d in written[root] if np.isclose(t, T, rtol=0, atol=1e-6 * max(1.0, T))]
            if not match or not (match[0] / "s").is_file():
                raise OpenFOAMError(f"case {case}: no field s written at t = {T:g} s in {root}; "
                                    f"see {case}/log.scalarTransportFoam")
            if addressing is None:
                s = read_field(match[0] / "s", geom.n_cells)
            else:
                s[addressing] = read_field(match[0] / "s", len(addressing))
        return s

    sim = sset.simulation
    times = sim.times_s
    frames, mass = [], []
    for T in times:
        s = np.zeros(geom.n_cells) if T == 0 else field_at(T)
        frames.append(sampler(s))
        mass.append(float(s @ geom.volumes))
    sc_outflow = read_outflow(case, sset.room.outlets, times, dt)
    for root, _ in roots:  # the plane and budget are extracted: drop the 3D snapshots (disk)
        for t, d in written[root]:
            if t > 0 and not keep_fields:
                shutil.rmtree(d, ignore_errors=True)
    return {
        "concentration": np.stack(frames),
        "mass_room": np.array(mass),
        "mass_injected": injected_mass(windows, times),
        "mass_outflow": sc_outflow,
        "run_seconds": np.asarray(run_seconds),
    }


def _scalar_task(case: Path, sset: ScenarioSet, geom, sampler, windows, dt: float, keep_fields: bool,
                 cache: Path, procs: int = 1) -> dict:
    """One Dask task: run a scenario's case and cache its result here, on the worker (survives a lost client)."""
    from plumecast.io.openfoam import OpenFOAMImportError

    try:
        result = _scalar_run(case, sset, geom, sampler, windows, dt, keep_fields, procs)
    except OpenFOAMImportError as e:
        raise OpenFOAMError(f"case {case}: {e}; see {case}/log.scalarTransportFoam") from None
    try:
        write_scenario_cache(cache, result)
        result["_cached"] = True
    except OSError:  # the client writes it
        result["_cached"] = False
    return result


def generate_openfoam(
    scenario_set: ScenarioSet,
    work_dir: str | Path,
    progress: Callable[[int, int], None] | None = None,
    *,
    workers: int | None = None,
    keep_fields: bool = False,
    scheduler: str | None = None,
    procs: int = 1,
) -> xr.Dataset:
    """Generate the plane dataset of ``scenario_set`` with OpenFOAM; cases live in ``work_dir``.

    ``progress(done, total)`` is called as scenario cases finish (total = scenarios + 1 for
    the flow). Finished scenarios are cached in ``work_dir`` and not run again.
    ``keep_fields`` keeps each scenario's 3D snapshots of ``s`` (by default they are
    deleted once the plane and budget are extracted; logs, dictionaries and
    postProcessing stay); it runs every scenario, since the cache holds only the plane.
    ``procs > 1`` decomposes the flow case and every scalar case over that many MPI ranks
    (``decomposePar``, ``mpirun ... -parallel``); ``workers`` then defaults to the CPUs
    divided by ``procs``. Raises OpenFOAMError (a RuntimeError) when OpenFOAM, MPI or foamlib is missing
    or a case fails; GeometryError/ScenarioError for an invalid room or source.
    """
    from plumecast.io.dataset import column_levels_m, make_dataset
    from plumecast.io.openfoam import (OpenFOAMImportError, emitting_cell_centres, mesh_plane_sampler, read_field,
                                      read_mesh, require_foamlib)

    if int(procs) != procs or procs < 1:
        raise OpenFOAMError(f"procs must be a whole number >= 1, got {procs!r}")
    procs = int(procs)
    missing = openfoam_missing(procs)
    if missing:
        raise OpenFOAMError(f"OpenFOAM applications not found: {', '.join(missing)}; {INSTALL_HINT}")
    try:
        require_foamlib()
    except OpenFOAMImportError as e:
        raise OpenFOAMError(str(e)) from None
    sset = scenario_set
    sim = sset.simulation
    grid = sset.room.discretise(sim.fine_cell_m)
    sset.validate_sources(grid)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(work)  # cache writes a killed run left half-done
    total = len(sset.scenarios) + 1
    report = progress or (lambda d, t: None)
    report(0, total)
    t_start = time.perf_counter()

    try:
        flow_case, flow_info = _flow_case(sset, grid, work, procs)
        ftime = flow_info["final_time"]
        geom = read_mesh(flow_case / "constant/polyMesh")
        U = read_field(flow_case / ftime / "U", geom.n_cells, vector=True)
        nut = read_field(flow_case / ftime / "nut", geom.n_cells)
    except OpenFOAMImportError as e:
        raise OpenFOAMError(f"reading the flow case: {e}") from None
    if geom.n_cells != int(grid.fluid.sum()):
        raise OpenFOAMError(
            f"case {flow_case}: mesh has {geom.n_cells} cells, the room has {int(grid.fluid.sum())} fluid cells; "
            f"see {flow_case}/log.subsetMesh"
        )
    report(1, total)
    lx, ly, _ = sset.room.size_m
    sampler = mesh_plane_sampler(geom, sim.plane_height_m, sim.plane_cell_m, origin_xy=(0.0, 0.0), extent_xy=(lx, ly))
    # The flow levels' heights and the flow's phi summed onto their cells: from the flow alone,
    # so done before the scalar runs (a flux that does not balance stops the generation early).
    level_z = column_levels_m(sset.room.size_m[2], sim.plane_height_m, sim.column_levels)
    fluxes = level_fluxes(flow_case, ftime, geom, level_z, sset.room.size_m[2], sim.plane_cell_m, sampler.shape)
    deff = sim.molecular_diffusivity_m2_s + np.clip(nut, 0.0, None) / sim.turbulent_schmidt
    umax = float(np.linalg.norm(U, axis=1).max())
    dt = _time_step(sset, umax)
    max_window = sim.snapshot_s

    # A finished scenario's plane frames and budget are cached beside its case, keyed by
    # everything that determines them, so an interrupted generation resumes where it stopped.
    results: dict[str, dict] = {}
    jobs = {}
    steps = {sc.name: _time_step(sset, umax, sc) for sc in sset.scenarios}
    todo = []
    for sc in sset.scenarios:
        run_key = f"{flow_case.name}-dt{steps[sc.name]:.10g}-{GENERATOR}-{__version__}" + (f"-np{procs}" if procs > 1 else "")
        cache = work / f"result-{scenario_key(sset, sc, run_key)}.nc"
        # A cached result holds the plane, not the 3D fields that keep_fields asks for.
        cached = read_scenario_cache(cache) if cache.exists() and not keep_fields else None
        if cached is not None:
            results[sc.name] = cached
        else:
            todo.append((sc, cache, work / f"scalar-{re.sub(r'[^A-Za-z0-9_.-]', '_', sc.name)}"))
    # Before any case is written: refuse to touch a case another running generation owns.
    busy = {case.name: owner for _, _, case in todo if (owner := case_in_use(case)) is not None}
    if busy:
        first, owner = next(iter(busy.items()))
        raise OpenFOAMError(
            f"work folder {work}: {len(busy)} scalar case(s) ({', '.join(sorted(busy)[:4])}"
            f"{' ...' if len(busy) > 4 else ''}) belong to a generation still running (process {owner.get('pid')}, "
            f"room {owner.get('room')!r}); cases are named by scenario, so wait for it to finish, give the "
            f"scenarios other names, or generate into another folder"
        )
    for sc, cache, case in todo:
        windows = source_windows(sc, sim.horizon_s, steps[sc.name], max_window, sim.fine_cell_m)
        _write_scalar_case(case, flow_case, ftime, sset, sc, deff, steps[sc.name], windows)
        _claim_case(case, sset)
        jobs[sc.name] = (case, windows, cache)
    n_cached = len(results)
    done = 1 + n_cached
    report(done, total)
    n_workers = (workers or int(os.environ.get("PLUMECAST_OPENFOAM_WORKERS", 0))
                 or max(1, (os.cpu_count() or 1) // procs))
    n_workers = max(1, min(n_workers, max(1, len(jobs))))
    if scheduler not in (None, INLINE) and jobs:
        with dask_client(scheduler, workers=n_workers if scheduler == "local" else None) as client:
            n_workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
            geom_f, sampler_f = client.scatter([geom, sampler], broadcast=True)
            tasks = {name: (_scalar_task, case, sset, geom_f, sampler_f, windows, steps[name], keep_fields, cache, procs)
                     for name, (case, windows, cache) in jobs.items()}

            def finished(name, result):
                nonlocal done
                if not result.pop("_cached"):
                    write_scenario_cache(jobs[name][2], result)
                results[name] = result
                done += 1
                report(done, total)

            try:
                run_tasks(client, tasks, finished, lambda name: f"scenario {name!r} (case {jobs[name][0]})")
            except BaseException:
                # The cases of tasks that did not finish still name this process as their owner; free them
                # (a worker that is still running one keeps writing into it only until the cluster closes).
                for name, (case, _, _) in jobs.items():
                    if name not in results:
                        (case / OWNER_FILE).unlink(missing_ok=True)
                raise
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        futures = {pool.submit(_scalar_run, case, sset, geom, sampler, windows, steps[name], keep_fields, procs): name
                   for name, (case, windows, _) in jobs.items() if name not in results}
        try:
            for fut in as_completed(futures):
                name = futures[fut]
                try:
                    results[name] = fut.result()
                except OpenFOAMImportError as e:
                    raise OpenFOAMError(f"scenario {name!r}: {e}") from None
                write_scenario_cache(jobs[name][2], results[name])
                done += 1
                report(done, total)
        except BaseException:
            for f in futures:
                f.cancel()
            raise

    ordered = [results[s.name] for s in sset.scenarios]
    times = sim.times_s
    # limitedLinear is TVD in space, but with implicit Euler at Courant numbers above 1 it is
    # not strictly bounded: a few plane values undershoot zero by a few millionths of the
    # plume's peak (l-office: -5.6e-5 mg/m^3 against a peak of 15). A concentration cannot
    # be negative, so the plane is clipped at 0 and what was clipped is recorded; the mass
    # budget keeps the unclipped 3D integral. Done after the cache, so no cache key changes.
    concentration = np.stack([r["concentration"] for r in ordered])
    clipped = {s.name: {"values": int((r["concentration"] < 0).sum()),
                        "lowest_relative": float(r["concentration"].min() / max(r["concentration"].max(), 1e-300))}
               for s, r in zip(sset.scenarios, ordered) if (r["concentration"] < 0).any()}
    concentration = np.clip(concentration, 0.0, None)
    try:
        levels = level_flow(geom, U, nut, level_z, sim.plane_cell_m, (lx, ly))
    except OpenFOAMImportError as e:
        raise OpenFOAMError(f"case {flow_case}: sampling the flow levels: {e}") from None
    levels.update(fluxes)
    ds = make_dataset(
        scenario_names=[s.name for s in sset.scenarios],
        splits=[s.split for s in sset.scenarios],
        times_s=times,
        x_m=sampler.x_m,
        y_m=sampler.y_m,
        concentration=concentration,
        u=sampler(U[:, 0]),
        v=sampler(U[:, 1]),
        w=sampler(U[:, 2]),
        nu_t=np.clip(sampler(nut), 0.0, None),
        fluid_fraction=sampler.fluid_fraction,
        # Where OpenFOAM emits (one cell per point), which the coarse models deposit.
        source_xyz=emitting_cell_centres(geom, np.stack([s.source.position_at(times) for s in sset.scenarios])),
        source_rate=np.stack([s.source.rate_at(times) for s in sset.scenarios]),
        plane_height_m=sim.plane_height_m,
        mass_unit=sim.mass_unit,
        generator=GENERATOR,
        generator_version=f"{__version__} (OpenFOAM v1912)",
        scenario_config=sset.config_json(),
        budget={k: np.stack([r[k] for r in ordered]) for k in ("mass_room", "mass_injected", "mass_outflow")},
        levels=levels,
    )
    ds.attrs["flow_diagnostics"] = json.dumps(flow_info, sort_keys=True, default=float)
    ds.attrs["fine_cell_m"] = sim.fine_cell_m
    ds.attrs["openfoam_time_step_s"] = dt  # static sources' step; every scenario's below
    ds.attrs["openfoam_time_steps_s"] = json.dumps(steps)
    ds.attrs["openfoam_work_dir"] = str(work)
    ds.attrs["openfoam_procs"] = procs  # MPI ranks per case (flow and scalar)
    ds.attrs["openfoam_negative_clipped"] = json.dumps(clipped)  # per scenario: count, lowest / scenario peak
    # Wall time of every scalarTransportFoam run, cached ones included, so the cost of a
    # generation interrupted and resumed is still on record.
    run_seconds = {s.name: round(float(r.get("run_seconds", np.nan)), 2) for s, r in zip(sset.scenarios, ordered)}
    ds.attrs["openfoam_scalar_seconds"] = json.dumps(run_seconds)
    ds.attrs["openfoam_scalar_seconds_total"] = float(sum(run_seconds.values()))
    ds.attrs["openfoam_flow_seconds"] = float(flow_info.get("seconds", np.nan))
    ds.attrs["history"] = (
        f"plumecast {__version__} generate {sset.name} --engine openfoam: simpleFoam k-epsilon flow "
        f"({flow_info['iterations']} iterations, stationary {flow_info.get('stationary')}) on {geom.n_cells} cells of "
        f"{sim.fine_cell_m} m{f' on {procs} MPI ranks' if procs > 1 else ''}; scalarTransport on the frozen flow, dt {dt:g} s (Courant <= {sim.openfoam_max_courant:g}; moving sources "
        f"down to {min(steps.values()):g} s), Deff = D_m + nut/Sc_t "
        f"(Sc_t {sim.turbulent_schmidt}); {len(jobs)} of {len(sset.scenarios)} scenarios run with {n_workers} "
        f"{'Dask ' if scheduler not in (None, INLINE) else ''}worker(s) in {time.perf_counter() - t_start:.1f} s ({n_cached} from the cache of an earlier run); "
        "sources recorded at the centre of the cell each emits into"
    )
    return ds
