"""Importing many OpenFOAM cases: the path before issue 14 against the multi-case path, in one run.

Builds ``--cases`` synthetic finished scalar cases of one box mesh (default 49 x 26 x 12
cells, as the paper room at 0.5 m), each with ``--snapshots`` ascii snapshots of ``T``
written at OpenFOAM's default precision (6 digits) plus U and nut, then times:

- old: one case at a time with a fresh mesh each time and foamlib parsing every file
  (``import_openfoam(case, fast=False, levels=0)`` per case, as the importer did before);
- new, 1 job: ``import_openfoam_cases`` (mesh parsed once, sampler built once, numpy
  readers, flow levels written) in this process;
- new, N jobs: the same with ``--jobs`` processes.

With ``--windows N`` every case also declares its source as a walk in fvOptions, one
constant-rate window per entry (as the OpenFOAM engine writes a moving source), which both
paths read.

Prints the median wall time of ``--repeats`` runs of each, side by side:

    .venv/bin/python benchmarks/bench_import.py --cases 8 --snapshots 100 --repeats 3 --jobs 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' OpenFOAM case writer

from _openfoam_case import _header, centres, write_case  # noqa: E402

from plumecast.io.openfoam import CaseSpec, import_openfoam, import_openfoam_cases  # noqa: E402


def write_scalar(path: Path, values: np.ndarray) -> None:
    """An ascii volScalarField as OpenFOAM writes it (writePrecision 6)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "\n".join(f"{v:.6g}" for v in values.tolist())
    path.write_text(_header("ascii", "volScalarField", path.parent.name, path.name)
                    + f"\ndimensions      [0 0 0 0 0 0 0];\n\ninternalField   nonuniform List<scalar> \n{len(values)}\n"
                    + f"(\n{body}\n)\n;\n\nboundaryField\n{{\n    walls\n    {{\n        type zeroGradient;\n    }}\n}}\n")


def write_walk(case: Path, n_windows: int, shape: tuple[int, int, int], dt: float = 0.5) -> None:
    """A ``system/fvOptions`` of ``n_windows`` point-source windows along the room's x (one per step)."""
    entries = "".join(
        f"w{i}\n{{\n    type scalarSemiImplicitSource;\n    timeStart {(i + 0.5) * dt:g};\n    duration {dt:g};\n"
        f"    selectionMode points;\n    points (({0.5 + (0.5 * shape[0] - 1) * i / n_windows:.6g} 1.3 1.5));\n"
        f"    volumeMode absolute;\n    injectionRateSuSp {{ T (0.001 0); }}\n}}\n" for i in range(n_windows))
    (case / "system" / "fvOptions").write_text(_header("ascii", "dictionary", "system", "fvOptions") + "\n" + entries)


def build_cases(root: Path, n_cases: int, n_snapshots: int, shape: tuple[int, int, int],
                n_windows: int = 0) -> list[Path]:
    """``n_cases`` cases of one mesh of ``shape`` (nx, ny, nz) cells of 0.5 x 0.5 x 0.25 m (a walk of ``n_windows``)."""
    nx, ny, nz = shape
    xs, ys, zs = np.linspace(0, 0.5 * nx, nx + 1), np.linspace(0, 0.5 * ny, ny + 1), np.linspace(0, 0.25 * nz, nz + 1)
    first = write_case(root / "case-00", xs=xs, ys=ys, zs=zs, times=())  # mesh, U and nut
    x, y, z = centres(xs, ys, zs)
    rng = np.random.default_rng(0)
    cases = [first]
    for k in range(1, n_cases):
        cases.append(root / f"case-{k:02d}")
        shutil.copytree(first, cases[-1])
    for k, case in enumerate(cases):
        sx, sy = rng.uniform(1, 0.5 * nx - 1), rng.uniform(1, 0.5 * ny - 1)
        blob = np.exp(-((x - sx) ** 2 + (y - sy) ** 2) / 4.0 - (z - 1.5) ** 2)
        for t in range(1, n_snapshots + 1):
            write_scalar(case / f"{2 * t:g}" / "T", blob * (1 - np.exp(-t / 30.0)) + 1e-4 * t)
        if n_windows:
            write_walk(case, n_windows, shape)
    return cases


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=8)
    ap.add_argument("--snapshots", type=int, default=100)
    ap.add_argument("--shape", default="49,26,12", help="nx,ny,nz mesh cells")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--windows", type=int, default=0, help="fvOptions source windows per case (a walk); 0: none")
    args = ap.parse_args(argv)
    shape = tuple(int(v) for v in args.shape.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        t0 = time.perf_counter()
        cases = build_cases(Path(tmp), args.cases, args.snapshots, shape, args.windows)
        print(f"{args.cases} cases of {shape[0]} x {shape[1]} x {shape[2]} cells, {args.snapshots} snapshots each, "
              f"{args.windows} fvOptions windows each, "
              f"written in {time.perf_counter() - t0:.1f} s; {args.repeats} repeats, {os.cpu_count()} CPUs",
              flush=True)
        common = dict(height_m=1.5, cell_m=0.5)
        specs = [CaseSpec(c) for c in cases]

        def old():
            return [import_openfoam(c, fast=False, levels=0, **common) for c in cases]

        def new(jobs):
            return lambda: import_openfoam_cases(specs, jobs=jobs, **common)

        runs = {"old (one case at a time, foamlib)": old, "new, 1 job": new(1), f"new, {args.jobs} jobs": new(args.jobs)}
        times, results = {}, {}
        for r in range(args.repeats):
            for name, fn in runs.items():
                t = time.perf_counter()
                results[name] = fn()
                times.setdefault(name, []).append(time.perf_counter() - t)
                print(f"  repeat {r + 1}: {name}: {times[name][-1]:.2f} s", flush=True)
        # The paths must agree before their times mean anything.
        first = results[next(iter(runs))]
        for name in list(runs)[1:]:
            for v in ("concentration", "source_x", "source_rate"):
                np.testing.assert_allclose(results[name][v].values, np.concatenate([ds[v].values for ds in first]),
                                           rtol=1e-6, atol=0)
        base = statistics.median(times[next(iter(runs))])
        print(f"\n{'path':<36} {'median s':>9} {'per case s':>11} {'speed-up':>9}")
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"{name:<36} {med:>9.2f} {med / args.cases:>11.3f} {base / med:>8.1f}x")


if __name__ == "__main__":
    main()
