"""Peak memory of training on a dataset larger than paper-room, the concentration loaded whole against read lazily.

    .venv/bin/python benchmarks/bench_memory.py --source data/paper-room.nc --factor 4 --repeats 3
    .venv/bin/python benchmarks/bench_memory.py --source data/paper-room.nc --factor 4 --chunks default --only lazy

Builds a dataset ``--factor`` times the size of ``--source`` (default ``data/paper-room.nc``,
67 scenarios of 301 snapshots on 26 x 49 cells) by repeating its scenarios under new
names (``NAME-r1``, ``NAME-r2``, ...; same splits, tracks and fields), validated and
written once into a temporary folder, the concentration compressed as
:func:`plumecast.io.dataset.write_dataset` compresses it and stored in chunks of
``--chunks``:

* ``scenario`` (the default): what ``write_dataset`` writes, one scenario and up to 4 MiB
  of its snapshots per chunk, so reading a batch's windows decompresses those scenarios only;
* ``default``: netCDF-C's default chunks, what ``write_dataset`` wrote before (for this
  dataset 90 scenarios x 101 snapshots x 9 x 17 cells, 56 MB each): correct, but a lazy
  read of a few scenarios decompresses chunks of 90.

Then, for each repeat, one fresh Python process per mode
trains on it (``plumecast.train.train``, the quick preset cut to one epoch of its first
phase: every train scenario once through one 60 s window, the val score before and after,
no summary; the figure is memory, not learning):

* ``eager``: the default, :func:`~plumecast.io.dataset.read_dataset` then the training
  split on the device (``TrainData``);
* ``lazy``: ``train(..., lazy=True)`` (``plumecast train --lazy``), the dataset opened
  with :func:`~plumecast.io.dataset.open_dataset_lazy` and each batch read from the file.

Each child reports its peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``,
the whole process: Python, JAX's CPU buffers, numpy, netCDF), the same after importing
plumecast and JAX but before touching the data (the floor every mode pays), and wall
times; the table gives medians over repeats. Both modes read the same file, and the
script checks they end with the same parameters. On Linux a process's ``ru_maxrss``
starts at its parent's peak (it survives the ``vfork``/``exec`` that starts it), so the
dataset is built in a child process too and this script imports nothing large; the
children also report ``VmHWM`` from ``/proc/self/status`` (the peak of their own memory
map, reset by ``exec``) as a check.

Without ``data/paper-room.nc`` (it is git-ignored), make it first with ``plumecast
generate paper-room --out data/paper-room.nc`` (the embedded engine; minutes), or pass
any plumecast dataset as ``--source``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODES = ("eager", "lazy")


def build_dataset(source: Path, factor: int, out: Path, chunks: str) -> dict:
    """``source``'s scenarios repeated ``factor`` times under new names, written to ``out``; what was built."""
    import numpy as np
    import xarray as xr

    from plumecast.io.atomic import atomic_path
    from plumecast.io.dataset import read_dataset, validate_dataset, write_dataset

    ds = read_dataset(source)
    names = [str(s) for s in ds["scenario"].values]
    copies = []
    for k in range(factor):
        copy = ds.copy()
        if k:
            copy = copy.assign_coords(scenario=[f"{n}-r{k}" for n in names])
        copies.append(copy)
    big = xr.concat(copies, dim="scenario", data_vars="minimal", coords="minimal", compat="override",
                    combine_attrs="override")
    big.attrs["history"] = f"{source.name} repeated {factor} times by benchmarks/bench_memory.py"
    for variable in big.variables.values():  # the source's encodings (fixed-width names) would cut the new names
        variable.encoding = {}
    n, T, ny, nx = big["concentration"].shape
    if chunks == "scenario":  # what write_dataset writes: scenario-and-time chunks
        write_dataset(big, out)
    else:  # netCDF-C's default chunks, as write_dataset wrote before it chose its own
        validate_dataset(big, str(out))
        with atomic_path(out) as tmp:
            big.to_netcdf(tmp, engine="netcdf4", encoding={"concentration": {"zlib": True, "complevel": 1}})
    splits = {s: int(np.sum(big["split"].values == s)) for s in ("train", "val", "test", "ood")}
    import netCDF4

    with netCDF4.Dataset(out) as nc:
        chunking = nc.variables["concentration"].chunking()
    return {"scenarios": n, "snapshots": T, "grid": [ny, nx], "splits": splits, "chunks": chunking,
            "concentration_mb": n * T * ny * nx * 4 / 2**20, "file_mb": out.stat().st_size / 2**20}


def own_peak_mb() -> float | None:
    """``VmHWM`` of this process (peak RSS of its own memory map), MiB; None where /proc has none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def child(mode: str, data: Path, run_dir: Path) -> None:
    """Train once in this process and print one JSON line: peak RSS and times."""
    import resource

    t0 = time.perf_counter()
    import jax
    import numpy as np

    from plumecast.train import preset_config, train

    floor_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    config = preset_config("quick", epochs=(1, 0, 0, 0), patience=0)
    t1 = time.perf_counter()
    result = train(data, run_dir, config, progress=False, evaluate=False, log=lambda m: None, lazy=mode == "lazy")
    t2 = time.perf_counter()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    leaves = [np.asarray(a, float) for a in jax.tree.leaves(result.system) if hasattr(a, "shape")]
    print(json.dumps({"mode": mode, "peak_rss_mb": peak_kb / 1024, "floor_rss_mb": floor_kb / 1024,
                      "vm_hwm_mb": own_peak_mb(),
                      "train_s": t2 - t1, "process_s": t2 - t0, "history": result.history,
                      "leaf_sums": [float(np.sum(a)) for a in leaves]}))


def run_child(*args: str) -> dict:
    """Run this script with ``args`` in a fresh process; its last output line (JSON) and its wall time."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: child failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=ROOT / "data" / "paper-room.nc")
    parser.add_argument("--factor", type=int, default=4, help="copies of the source's scenarios")
    parser.add_argument("--repeats", type=int, default=1, help="processes per mode (alternating); medians reported")
    parser.add_argument("--chunks", choices=("scenario", "default"), default="scenario",
                        help="chunks of the concentration in the file (see the module docstring)")
    parser.add_argument("--only", choices=MODES, help="run one mode only")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.data, args.run_dir)
        return
    if args.build:
        print(json.dumps(build_dataset(args.source, args.factor, args.build, args.chunks)))
        return
    if not args.source.is_file():
        raise SystemExit(f"{args.source} not found: make it with `plumecast generate paper-room --out "
                         f"{args.source}` or pass another dataset as --source")
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        tmp = Path(tmp)
        data = tmp / f"{args.source.stem}-x{args.factor}.nc"
        t0 = time.perf_counter()
        about = run_child("--build", str(data), "--source", str(args.source), "--factor", str(args.factor),
                          "--chunks", args.chunks)
        print(f"dataset: {args.factor} x {args.source.name} = {about['scenarios']} scenarios x {about['snapshots']} "
              f"snapshots x {about['grid'][0]} x {about['grid'][1]} cells (splits {about['splits']}); concentration "
              f"{about['concentration_mb']:.0f} MiB in memory, file {about['file_mb']:.0f} MiB, chunks {about['chunks']}; built in "
              f"{time.perf_counter() - t0:.0f} s")
        try:
            load = os.getloadavg()
            print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
        except OSError:
            pass
        modes = (args.only,) if args.only else MODES
        runs = {m: [] for m in modes}
        for r in range(args.repeats):
            for mode in modes:
                res = run_child("--child", mode, "--data", str(data), "--run-dir", str(tmp / f"run-{mode}-{r}"))
                runs[mode].append(res)
                print(f"  repeat {r + 1} {mode:5s}: peak RSS {res['peak_rss_mb']:.0f} MiB (VmHWM {res['vm_hwm_mb']:.0f}; "
                      f"after imports {res['floor_rss_mb']:.0f}), train {res['train_s']:.1f} s, process "
                      f"{res['wall_s']:.1f} s", flush=True)
        if len(modes) == 2:  # the same training both ways, to float round-off (another compiled batch shape)
            def worst(pairs):
                return max((abs(a - b) / max(abs(a), 1e-30) for a, b in pairs), default=0.0)

            params = worst((a, b) for e, z in zip(runs["eager"], runs["lazy"])
                           for a, b in zip(e["leaf_sums"], z["leaf_sums"], strict=True))
            losses = worst((a["loss"], b["loss"]) for e, z in zip(runs["eager"], runs["lazy"])
                           for a, b in zip(e["history"], z["history"], strict=True))
            print(f"eager against lazy: largest relative difference of a parameter leaf's sum {params:.1e}, of an "
                  f"epoch's mean loss {losses:.1e}")
        print()
        print("| mode | peak RSS MiB | after imports MiB | peak - imports MiB | train s | process s | runs (peak MiB) |")
        print("|---|---|---|---|---|---|---|")
        for mode in modes:
            rs = runs[mode]
            med = {k: statistics.median(r[k] for r in rs) for k in ("peak_rss_mb", "floor_rss_mb", "train_s", "wall_s")}
            print(f"| {mode} | {med['peak_rss_mb']:.0f} | {med['floor_rss_mb']:.0f} | "
                  f"{med['peak_rss_mb'] - med['floor_rss_mb']:.0f} | {med['train_s']:.1f} | {med['wall_s']:.1f} | "
                  + ", ".join(f"{r['peak_rss_mb']:.0f}" for r in rs) + " |")


if __name__ == "__main__":
    main()
