"""The room a trained run forecasts in: ``RUN/room.nc``, stored with the run and checked by hash.

A forecast needs, besides the source, the plane's grid, fluid mask and flow, the plane
height, the units and the time span the model was trained for. Training stores them with
the run (:func:`store_run_room`), so a trained run answers "what if" questions without
the dataset (``plumecast forecast RUN --scenario-file``, ``plumecast sweep``).

``room.nc`` (netCDF, written atomically) holds:

==================  =========  =================================================
variable            dims       meaning
==================  =========  =================================================
x, y                x, y       plane cell centres, m
fluid               y, x       1 where the plane cell holds fluid
fluid_fraction      y, x       fluid area fraction of the plane cell
u, v, w, nu_t       y, x       plane flow (m/s) and turbulent viscosity (m^2/s)
room_fluid          rz, ry, rx the room's 3D fluid mask (1 = air) on cells of
                               ``room_cell_m``; only when the dataset described the
                               room (generated data: walls, desks, floor, ceiling)
==================  =========  =================================================

Attributes: ``plane_height_m``, ``dx_m``, ``dy_m``, ``mass_unit``, ``horizon_s`` and
``snapshot_s`` (of the training data), ``room_size_m`` (when known), ``room_cell_m``,
``train_source_z_m`` (lowest and highest training source), ``data_generator``,
``scenario_config`` (the data's room, simulation and flow settings, JSON, without its
scenarios), ``room_version``.

``config.json`` records the file's SHA-256 under ``room``; :func:`load_run_room` refuses a
missing file or one whose hash differs, with a one-line message. Runs trained before
plumecast stored rooms have no ``room`` entry: they still forecast dataset scenarios
(``--data``), and ``plumecast attach-room RUN --data DATA`` stores the room of the data
they were trained on (after checking that its grid and flow are the run's).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from plumecast.io.atomic import atomic_path

__all__ = ["ROOM_FILE", "RoomError", "RunRoom", "plane_fields", "room_from_dataset", "write_room", "read_room", "store_run_room",
           "load_run_room", "file_sha256"]

ROOM_FILE = "room.nc"
ROOM_VERSION = 1


class RoomError(ValueError):
    """A run's stored room that is missing, changed or unreadable; the message names the problem."""


@dataclass(frozen=True)
class RunRoom:
    """Everything a forecast needs besides the source (see the module docstring)."""

    x: np.ndarray
    y: np.ndarray
    dx: float
    dy: float
    fluid: np.ndarray  # (ny, nx) int8
    fluid_fraction: np.ndarray
    u: np.ndarray
    v: np.ndarray
    w: np.ndarray
    nu_t: np.ndarray
    plane_height_m: float
    horizon_s: float
    snapshot_s: float
    mass_unit: str
    room_size_m: tuple[float, float, float] | None = None
    room_fluid: np.ndarray | None = field(default=None, repr=False)  # (nz, ny, nx) bool on room_cell_m cells
    room_cell_m: float | None = None
    train_source_z_m: tuple[float, float] | None = None
    data_generator: str = ""
    scenario_config: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ views
    @property
    def shape(self) -> tuple[int, int]:
        return self.fluid.shape

    @property
    def has_geometry(self) -> bool:
        return self.room_fluid is not None

    def obstacles(self) -> list[tuple[str, tuple[float, ...]]]:
        """``(name, (x0, x1, y0, y1, z0, z1))`` of the room's obstacles (desks), when the config names them."""
        room = self.scenario_config.get("room", {}) if isinstance(self.scenario_config, dict) else {}
        out = []
        for o in room.get("obstacles", []) or []:
            try:
                out.append((str(o["name"]), tuple(float(v) for v in o["box_m"])))
            except (KeyError, TypeError, ValueError):
                continue
        return out

    def as_dataset(self) -> xr.Dataset:
        """The room as an xarray dataset (the netCDF layout; also what :func:`plumecast.forecast.check_grid` reads)."""
        yx = ("y", "x")
        data = {
            "fluid": (yx, np.asarray(self.fluid, np.int8), {"long_name": "1 in fluid cells"}),
            "fluid_fraction": (yx, np.asarray(self.fluid_fraction, float)),
            "u": (yx, np.asarray(self.u, float), {"units": "m/s"}),
            "v": (yx, np.asarray(self.v, float), {"units": "m/s"}),
            "w": (yx, np.asarray(self.w, float), {"units": "m/s"}),
            "nu_t": (yx, np.asarray(self.nu_t, float), {"units": "m^2/s"}),
        }
        if self.room_fluid is not None:
            data["room_fluid"] = (("rz", "ry", "rx"), np.asarray(self.room_fluid, np.int8),
                                  {"long_name": "1 where the room's 3D cell holds air"})
        attrs = {
            "room_version": ROOM_VERSION,
            "plane_height_m": float(self.plane_height_m),
            "dx_m": float(self.dx),
            "dy_m": float(self.dy),
            "mass_unit": self.mass_unit,
            "horizon_s": float(self.horizon_s),
            "snapshot_s": float(self.snapshot_s),
            "data_generator": self.data_generator,
            "scenario_config": json.dumps(self.scenario_config, sort_keys=True),
        }
        if self.room_size_m is not None:
            attrs["room_size_m"] = np.asarray(self.room_size_m, float)
        if self.room_cell_m is not None:
            attrs["room_cell_m"] = float(self.room_cell_m)
        if self.train_source_z_m is not None:
            attrs["train_source_z_m"] = np.asarray(self.train_source_z_m, float)
        coords = {"x": ("x", np.asarray(self.x, float), {"units": "m"}), "y": ("y", np.asarray(self.y, float), {"units": "m"})}
        return xr.Dataset(data, coords=coords, attrs=attrs)

    # ------------------------------------------------------------------ checks
    def where(self, x: float, y: float, z: float) -> str | None:
        """None when ``(x, y, z)`` lies in the room's air, else what is wrong ("inside obstacle 'desk-0'", ...).

        With the room's 3D geometry the check is the generator's (the 3D cell holding the
        point must be air); without it, the plane's extent and the room's height (when
        known) are checked, and :meth:`plane_ok` checks the plane's walls.
        """
        if not all(math.isfinite(v) for v in (x, y, z)):
            return "not a finite position"
        height = self.room_size_m[2] if self.room_size_m is not None else None
        if z < 0:
            return "below the floor (z < 0)"
        if height is not None and z > height + 1e-9:
            return f"above the ceiling (the room is {height:g} m high)"
        if self.room_fluid is not None:
            idx = _cell_index(x, y, z, self.room_fluid.shape, float(self.room_cell_m))
            if idx is None:
                return "outside the room"
            if not self.room_fluid[idx]:
                for name, (x0, x1, y0, y1, z0, z1) in self.obstacles():
                    if x0 <= x <= x1 and y0 <= y <= y1 and z0 <= z <= z1:
                        return f"inside obstacle {name!r}"
                return "inside a wall or obstacle"
            return None
        lo_x, hi_x = self.x[0] - self.dx / 2, self.x[-1] + self.dx / 2
        lo_y, hi_y = self.y[0] - self.dy / 2, self.y[-1] + self.dy / 2
        if not (lo_x <= x <= hi_x and lo_y <= y <= hi_y):
            return "outside the room"
        return None

    def plane_ok(self, x, y) -> np.ndarray:
        """Whether a source at ``(x, y)`` (arrays) deposits on fluid cells of the plane (bilinear, as the model does)."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        fluid = np.asarray(self.fluid, float)
        ny, nx = fluid.shape
        sx = np.clip((x - self.x[0]) / self.dx, 0, nx - 1)
        sy = np.clip((y - self.y[0]) / self.dy, 0, ny - 1)
        ix, iy = np.clip(np.floor(sx).astype(int), 0, nx - 2), np.clip(np.floor(sy).astype(int), 0, ny - 2)
        fx, fy = sx - ix, sy - iy
        total = ((1 - fy) * (1 - fx) * fluid[iy, ix] + (1 - fy) * fx * fluid[iy, ix + 1]
                 + fy * (1 - fx) * fluid[iy + 1, ix] + fy * fx * fluid[iy + 1, ix + 1])
        return total > 1e-9

    def cell_of(self, x: float, y: float) -> tuple[int, int] | None:
        """``(j, i)`` of the plane cell holding ``(x, y)``, or None outside the plane."""
        i = int(math.floor((x - (self.x[0] - self.dx / 2)) / self.dx))
        j = int(math.floor((y - (self.y[0] - self.dy / 2)) / self.dy))
        ny, nx = self.shape
        if not (0 <= i < nx and 0 <= j < ny):
            return None
        return j, i


def _cell_index(x, y, z, shape, cell_m):
    """The 3D cell ``(k, j, i)`` holding a point, or None outside the box (as ``Grid3D.cell_index``)."""
    idx = []
    for coord, n in zip((z, y, x), shape):
        i = int(np.floor(coord / cell_m))
        if coord < 0 or i > n or (i == n and not np.isclose(coord, n * cell_m)):
            return None
        idx.append(min(i, n - 1))
    return tuple(idx)


def _room_geometry(config: dict, ds) -> tuple[np.ndarray | None, float | None]:
    """The room's 3D fluid mask from a dataset's scenario config (generated data), or ``(None, None)``."""
    if not isinstance(config, dict) or "room" not in config or "plan_cell_m" not in config.get("room", {}):
        return None, None
    try:
        from plumecast.scenario import scenario_set_from_config

        sset = scenario_set_from_config(config, "the dataset's scenario config")
        cell = float(ds.attrs.get("fine_cell_m", sset.simulation.fine_cell_m))
        grid = sset.room.discretise(cell)
    except Exception:  # a config this plumecast cannot build a room from: no geometry, plane checks only
        return None, None
    return np.asarray(grid.fluid, bool), cell


def plane_fields(ds) -> dict:
    """The plane's grid, mask, flow, height and mass unit as a dataset or a room file holds them (same names)."""
    return dict(
        x=np.asarray(ds["x"].values, float),
        y=np.asarray(ds["y"].values, float),
        dx=float(ds.attrs["dx_m"]),
        dy=float(ds.attrs["dy_m"]),
        fluid=np.asarray(ds["fluid"].values, np.int8),
        fluid_fraction=np.asarray(ds["fluid_fraction"].values, float),
        **{k: np.asarray(ds[k].values, float) for k in ("u", "v", "w", "nu_t")},
        plane_height_m=float(ds.attrs["plane_height_m"]),
        mass_unit=str(ds.attrs["mass_unit"]),
    )


def room_from_dataset(ds, *, horizon_s: float | None = None, snapshot_s: float | None = None,
                      train_split: str = "train") -> RunRoom:
    """The room of a plane dataset (its plane, flow, units, time span; the 3D room when its config describes one)."""
    times = np.asarray(ds["time"].values, float)
    horizon_s = float(times[-1] - times[0]) if horizon_s is None else float(horizon_s)
    snapshot_s = float(times[1] - times[0]) if snapshot_s is None else float(snapshot_s)
    try:
        config = json.loads(ds.attrs.get("scenario_config", "{}")) or {}
    except (TypeError, ValueError):
        config = {}
    if not isinstance(config, dict):
        config = {}
    size = config.get("room", {}).get("size_m") if isinstance(config.get("room"), dict) else None
    try:
        size = tuple(float(v) for v in size) if size is not None and len(size) == 3 else None
    except (TypeError, ValueError):
        size = None
    room_fluid, cell = _room_geometry(config, ds)
    splits = np.asarray([str(s) for s in ds["split"].values])
    z = np.asarray(ds["source_z"].values, float)[splits == train_split]
    zr = (float(z.min()), float(z.max())) if z.size else None
    kept = {k: v for k, v in config.items() if k != "scenarios"}
    return RunRoom(
        **plane_fields(ds),
        horizon_s=horizon_s,
        snapshot_s=snapshot_s,
        room_size_m=size,
        room_fluid=room_fluid,
        room_cell_m=cell,
        train_source_z_m=zr,
        data_generator=str(ds.attrs.get("generator", "")),
        scenario_config=kept,
    )


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_room(room: RunRoom, path: str | Path) -> str:
    """Write ``room`` atomically to ``path``; return the file's SHA-256."""
    with atomic_path(path) as tmp:
        room.as_dataset().to_netcdf(tmp, engine="netcdf4")
        digest = file_sha256(tmp)
    return digest


def read_room(path: str | Path, sha256: str | None = None) -> RunRoom:
    """Read a room file; with ``sha256``, refuse a file whose hash differs."""
    path = Path(path)
    if not path.is_file():
        raise RoomError(f"{path}: no such file")
    if sha256 is not None:
        got = file_sha256(path)
        if got != sha256:
            raise RoomError(f"{path} does not match the SHA-256 recorded in config.json (recorded {sha256[:12]}..., "
                            f"found {got[:12]}...): the stored room was changed or replaced")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            ds = ds.load()
        a = ds.attrs
        size = a.get("room_size_m")
        zr = a.get("train_source_z_m")
        return RunRoom(
            **plane_fields(ds),
            horizon_s=float(a["horizon_s"]),
            snapshot_s=float(a["snapshot_s"]),
            room_size_m=tuple(float(v) for v in np.atleast_1d(size)) if size is not None else None,
            room_fluid=np.asarray(ds["room_fluid"].values) > 0 if "room_fluid" in ds else None,
            room_cell_m=float(a["room_cell_m"]) if "room_cell_m" in a else None,
            train_source_z_m=tuple(float(v) for v in np.atleast_1d(zr)) if zr is not None else None,
            data_generator=str(a.get("data_generator", "")),
            scenario_config=json.loads(a.get("scenario_config", "{}")),
        )
    except RoomError:
        raise
    except Exception as e:  # netCDF4 raises OSError, RuntimeError, KeyError, ValueError for bad files
        raise RoomError(f"{path}: not a readable plumecast room file ({type(e).__name__}: {e})") from None


def store_run_room(run_dir: str | Path, room: RunRoom) -> dict:
    """Write ``RUN/room.nc``; return the ``config.json`` entry that records it (file name and SHA-256)."""
    digest = write_room(room, Path(run_dir) / ROOM_FILE)
    return {"file": ROOM_FILE, "sha256": digest, "version": ROOM_VERSION}


def load_run_room(run_dir: str | Path, run_json: dict) -> RunRoom:
    """The room stored with a run, its hash checked against ``config.json`` (``run_json``)."""
    run_dir = Path(run_dir)
    entry = run_json.get("room") if isinstance(run_json, dict) else None
    if not entry:
        raise RoomError(f"{run_dir} stores no room: it was trained before plumecast stored rooms with runs; forecast "
                        f"dataset scenarios with --data DATA --scenario NAME, or store the room of its training data "
                        f"with `plumecast attach-room {run_dir} --data DATA`")
    try:
        name, digest = str(entry["file"]), str(entry["sha256"])
    except (KeyError, TypeError):
        raise RoomError(f"{run_dir}/config.json: malformed 'room' entry {entry!r}") from None
    path = run_dir / name
    if not path.is_file():
        raise RoomError(f"{path} is missing (config.json records a stored room); restore it, or store the room again "
                        f"with `plumecast attach-room {run_dir} --data DATA`")
    return read_room(path, digest)
