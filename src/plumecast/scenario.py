"""Scenarios: sources (static, time-varying, moving), scenario sets with splits, presets.

A scenario set is one room, one steady flow and many scenarios that differ by source.
Each scenario has exactly one source; its emission rate is piecewise linear in time and
its position is fixed or follows timed waypoints (piecewise linear, held at the ends).
Units: metres, seconds, and a mass unit named by the set (default ``mg``): rates in
mass/s, concentrations in mass/m^3.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import annotated_types as at
import numpy as np
from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from plumecast.geometry import (FACES, Box, GeometryError, Grid3D, Patch, Room, parse_ascii_plan,
                                plan_from_rectangles)
from plumecast.io.dataset import MASS_UNITS, SPLITS, column_too_fine, finest_column_levels
from plumecast.schema import NonNegative, Number, Positive, PositiveWhole, describe, load_toml_model, raising

MAX_SNAPSHOTS = 10_000_000


class ScenarioError(ValueError):
    """A scenario or scenario file that cannot be used as written."""


@dataclass(frozen=True)
class Source:
    """A point source: rate ``(t_s, rate)`` pairs and either a position or a path.

    ``path`` holds ``(t_s, x_m, y_m, z_m)`` waypoints with increasing times; before the
    first and after the last waypoint the source stands still.
    """

    rate: tuple[tuple[float, float], ...]
    position_m: tuple[float, float, float] | None = None
    path: tuple[tuple[float, float, float, float], ...] | None = None

    def __post_init__(self):
        if (self.position_m is None) == (self.path is None):
            raise ScenarioError("a source needs exactly one of 'position_m' and 'path'")
        rate = np.asarray(self.rate, dtype=float)
        if rate.ndim != 2 or rate.shape[1] != 2 or len(rate) < 1:
            raise ScenarioError(f"source rate must be a list of [t_s, rate] pairs, got {self.rate}")
        if not np.isfinite(rate).all() or (rate[:, 1] < 0).any():
            raise ScenarioError(f"source rate must be finite and non-negative, got {self.rate}")
        if (np.diff(rate[:, 0]) <= 0).any():
            raise ScenarioError(f"source rate times must increase, got {rate[:, 0].tolist()}")
        if self.path is not None:
            path = np.asarray(self.path, dtype=float)
            if path.ndim != 2 or path.shape[1] != 4 or len(path) < 2:
                raise ScenarioError("a source path needs at least two [t_s, x_m, y_m, z_m] waypoints")
            if not np.isfinite(path).all():
                raise ScenarioError("source path has non-finite values")
            if (np.diff(path[:, 0]) <= 0).any():
                raise ScenarioError(f"source path times must increase, got {path[:, 0].tolist()}")
        elif not np.isfinite(np.asarray(self.position_m, dtype=float)).all():
            raise ScenarioError(f"source position must be finite, got {self.position_m}")

    @property
    def moving(self) -> bool:
        return self.path is not None

    def rate_at(self, t_s) -> np.ndarray:
        r = np.asarray(self.rate, dtype=float)
        return np.interp(t_s, r[:, 0], r[:, 1])

    def position_at(self, t_s) -> np.ndarray:
        """Position ``(..., 3)`` as (x, y, z) metres at times ``t_s``."""
        t = np.asarray(t_s, dtype=float)
        if self.path is None:
            return np.broadcast_to(np.asarray(self.position_m, dtype=float), t.shape + (3,)).copy()
        p = np.asarray(self.path, dtype=float)
        return np.stack([np.interp(t, p[:, 0], p[:, k]) for k in (1, 2, 3)], axis=-1)


@dataclass(frozen=True)
class Scenario:
    name: str
    split: str
    source: Source

    def __post_init__(self):
        if self.split not in SPLITS:
            raise ScenarioError(f"scenario {self.name!r}: split must be one of {SPLITS}, got {self.split!r}")


_SETTINGS = ConfigDict(extra="forbid")


@raising(ScenarioError)
@pydantic_dataclass(frozen=True, config=_SETTINGS)
class Simulation:
    """Time span, sampling, plane and transport constants of a scenario set.

    A pydantic dataclass: every field is typed and ranged where it is built (from the
    TOML or in code), NaN and infinity are refused, unknown keys are errors.
    """

    horizon_s: Positive = 600.0
    snapshot_s: Positive = 2.0
    plane_height_m: Positive = 1.5
    plane_cell_m: Positive = 0.5
    fine_cell_m: Positive = 0.25
    molecular_diffusivity_m2_s: NonNegative = 2.0e-5
    turbulent_schmidt: Positive = 0.7
    cfl: Annotated[float, Strict(), AllowInfNan(False), at.Gt(0), at.Le(1)] = 0.8
    # The OpenFOAM engine's scalar step is implicit (Euler), so accuracy, not positivity,
    # bounds it: at most this Courant number in the fastest cell (docs/importers.md).
    openfoam_max_courant: Positive = 3.0
    mass_unit: Literal[MASS_UNITS] = "mg"
    # Flow levels written to datasets: a column of this many equal layers of the room height,
    # the plane one of them (io.dataset.column_levels_m). Best where the plane's layer spans
    # whole fine cells on both sides of the plane. It enters no cache key: levels come from
    # the flow alone.
    column_levels: PositiveWhole = 5

    def __post_init__(self):
        n = self.horizon_s / self.snapshot_s
        if not (math.isfinite(n) and n <= MAX_SNAPSHOTS):
            raise ValueError(f"horizon {self.horizon_s} s over snapshots of {self.snapshot_s} s makes more than "
                             f"{MAX_SNAPSHOTS:,} snapshots")
        if not np.isclose(n, round(n)):
            raise ValueError(f"horizon {self.horizon_s} s is not a whole number of {self.snapshot_s} s snapshots")

    @property
    def times_s(self) -> np.ndarray:
        n = int(round(self.horizon_s / self.snapshot_s))
        return np.arange(n + 1) * self.snapshot_s


@raising(ScenarioError)
@pydantic_dataclass(frozen=True, config=_SETTINGS)
class FlowSettings:
    """Settings of the steady RANS flow solve (see plumecast.reference.flow)."""

    kinematic_viscosity_m2_s: Positive = 1.5e-5
    max_iterations: PositiveWhole = 20000
    residual_tol: Positive = 1e-4
    divergence_tol: Positive = 1e-8
    mixing_length_max_m: NonNegative = 0.3


@dataclass(frozen=True)
class ScenarioSet:
    name: str
    room: Room = field(repr=False)
    simulation: Simulation
    flow: FlowSettings
    scenarios: tuple[Scenario, ...]
    config: dict = field(repr=False, compare=False, default_factory=dict)

    def __post_init__(self):
        names = [s.name for s in self.scenarios]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ScenarioError(f"duplicate scenario names: {dup}")
        if not self.scenarios:
            raise ScenarioError(f"scenario set {self.name!r} has no scenarios")
        self._check_column()

    def _check_column(self) -> None:
        """ScenarioError, before any solve, when ``column_levels`` leaves a layer without a fine cell."""
        sim, height = self.simulation, float(self.room.size_m[2])
        nz = height / sim.fine_cell_m
        if not (0 < sim.plane_height_m < height and np.isclose(nz, round(nz))) or nz > 1e6:
            return  # the room's own checks (and the memory check) name these
        centres = (np.arange(round(nz)) + 0.5) * sim.fine_cell_m
        problem = column_too_fine(height, sim.plane_height_m, sim.column_levels, centres)
        if problem:
            finest = finest_column_levels(height, sim.plane_height_m, centres, upto=sim.column_levels)
            raise ScenarioError(f"simulation.column_levels = {sim.column_levels}: {problem} "
                                f"({sim.fine_cell_m:g} m fine cells in a room {height:g} m high); "
                                f"the finest column these cells allow has column_levels = {finest}")

    def select(self, names: list[str] | None) -> "ScenarioSet":
        """The same set restricted to ``names`` (in the set's order); unknown names raise."""
        if not names:
            return self
        known = {s.name for s in self.scenarios}
        missing = [n for n in names if n not in known]
        if missing:
            raise ScenarioError(f"unknown scenarios {missing}; known: {sorted(known)[:10]}...")
        keep = tuple(s for s in self.scenarios if s.name in set(names))
        return ScenarioSet(self.name, self.room, self.simulation, self.flow, keep, self.config)

    def config_json(self) -> str:
        return json.dumps(self.config, sort_keys=True)

    def validate_sources(self, grid: Grid3D) -> None:
        """Every source, at every time of the horizon, in a fluid cell of the 3D grid."""
        t = np.arange(0.0, self.simulation.horizon_s + 1e-9, min(0.1, self.simulation.snapshot_s))
        for sc in self.scenarios:
            pos = sc.source.position_at(t)
            what = "path" if sc.source.moving else "source"
            for ti, (x, y, z) in zip(t, pos):
                idx = grid.cell_index(x, y, z)
                if idx is None:
                    raise ScenarioError(
                        f"scenario {sc.name!r}: {what} at ({x:.3f}, {y:.3f}, {z:.3f}) m, t = {ti:.1f} s, "
                        "is outside the room"
                    )
                if not grid.fluid[idx]:
                    raise ScenarioError(
                        f"scenario {sc.name!r}: {what} at ({x:.3f}, {y:.3f}, {z:.3f}) m, t = {ti:.1f} s, "
                        "is inside a wall or obstacle"
                    )
                if not sc.source.moving:
                    break


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("plumecast.presets").iterdir() if p.name.endswith(".toml"))


def load_scenario_set(preset_or_path: str | Path) -> ScenarioSet:
    """A preset name (see ``preset_names()``) or the path of a scenario TOML file."""
    p = Path(preset_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise ScenarioError(f"scenario file {p} does not exist")
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ScenarioError(f"{p}: cannot be read ({e})") from None
        origin = str(p)
    elif str(preset_or_path) in preset_names():
        text = resources.files("plumecast.presets").joinpath(f"{preset_or_path}.toml").read_text()
        origin = f"preset {preset_or_path}"
    else:
        raise ScenarioError(f"{preset_or_path!r} is neither a preset ({', '.join(preset_names())}) nor a TOML file")
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{origin}: malformed TOML: {e}") from None
    return scenario_set_from_config(config, origin)


# ----------------------------------------------------------------------------- the file schema
# One pydantic model per table of a scenario file. Unknown tables and keys are errors
# ("did you mean"), every number is typed, ranged and finite; what the geometry and
# Source check themselves (overlaps, increasing times, ...) they still check.

_Point = tuple[Number, Number, Number]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ObstacleSpec(_Table):
    name: str
    box_m: tuple[Number, Number, Number, Number, Number, Number]


class InletSpec(_Table):
    """A supply inlet: its speed into the room is required."""

    name: str
    face: Literal[FACES]
    rect_m: tuple[Number, Number, Number, Number]
    speed_m_s: Positive


class OutletSpec(_Table):
    """An exhaust outlet: without a speed it shares the supply by area."""

    name: str
    face: Literal[FACES]
    rect_m: tuple[Number, Number, Number, Number]
    speed_m_s: Positive | None = None


class RoomSpec(_Table):
    size_m: tuple[Positive, Positive, Positive]
    plan_cell_m: Positive
    plan: str | None = None
    solid_rectangles_m: list[tuple[Number, Number, Number, Number]] = []
    obstacles: list[ObstacleSpec] = []
    inlets: list[InletSpec] = Field(min_length=1)
    outlets: list[OutletSpec] = Field(min_length=1)


class SourceSpec(_Table):
    rate: list[tuple[Number, NonNegative]] = Field(min_length=1)
    position_m: _Point | None = None
    path: list[tuple[Number, Number, Number, Number]] | None = None


class ScenarioSpec(_Table):
    name: str = Field(min_length=1)
    split: Literal[SPLITS]
    source: SourceSpec

    @model_validator(mode="after")
    def _source(self):
        self.to_scenario()  # the Source's own checks (one of position and path, increasing times)
        return self

    def to_scenario(self) -> Scenario:
        src = self.source
        try:
            return Scenario(self.name, self.split, Source(rate=tuple(src.rate), position_m=src.position_m,
                                                          path=None if src.path is None else tuple(src.path)))
        except ScenarioError as e:
            raise ValueError(f"source: {e}") from None


class ScenarioFile(_Table):
    """A scenario file: ``name``, ``[simulation]``, ``[flow]``, ``[room]`` and ``[[scenarios]]``."""

    name: str = "unnamed"
    simulation: Simulation = Field(default_factory=Simulation)
    flow: FlowSettings = Field(default_factory=FlowSettings)
    room: RoomSpec
    scenarios: list[ScenarioSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _plane_in_room(self):
        height = self.room.size_m[2]
        if not self.simulation.plane_height_m < height:
            raise ValueError(f"simulation.plane_height_m = {self.simulation.plane_height_m} m is not inside the "
                             f"room, whose height is {height} m")
        return self


def scenario_set_from_config(config: dict, origin: str = "config") -> ScenarioSet:
    """A scenario set from a parsed scenario file; ScenarioError names the file and the key at fault."""
    if not isinstance(config, dict):
        raise ScenarioError(f"{origin}: a scenario file is a table of tables, got {type(config).__name__}")
    try:
        spec = ScenarioFile.model_validate(config)
    except ValidationError as e:
        raise ScenarioError(f"{origin}: {describe(e, ScenarioFile, config)}") from None
    try:
        return _from_spec(spec, config)
    except (GeometryError, ScenarioError) as e:
        raise ScenarioError(f"{origin}: {e}") from None


def _from_spec(spec: ScenarioFile, config: dict) -> ScenarioSet:
    r = spec.room
    size = tuple(float(v) for v in r.size_m)
    if r.plan is not None:
        plan = parse_ascii_plan(r.plan)
    else:
        cells = [v / r.plan_cell_m for v in size[:2]]
        if not all(math.isclose(c, round(c), rel_tol=1e-9, abs_tol=1e-9) for c in cells):
            raise GeometryError(f"room size {size[:2]} m is not a whole number of {r.plan_cell_m} m plan cells")
        plan = plan_from_rectangles(size[:2], r.plan_cell_m, r.solid_rectangles_m)
    room = Room(
        size_m=size,
        plan_cell_m=float(r.plan_cell_m),
        plan=plan,
        obstacles=tuple(Box(o.name, *map(float, o.box_m)) for o in r.obstacles),
        inlets=tuple(Patch(p.name, p.face, tuple(map(float, p.rect_m)), float(p.speed_m_s)) for p in r.inlets),
        outlets=tuple(Patch(p.name, p.face, tuple(map(float, p.rect_m)),
                            None if p.speed_m_s is None else float(p.speed_m_s)) for p in r.outlets),
    )
    scenarios = tuple(s.to_scenario() for s in spec.scenarios)
    return ScenarioSet(spec.name, room, spec.simulation, spec.flow, scenarios, config)


class SourceFile(_Table):
    """The ``--source-toml`` of the importers: an optional name, split, mass unit and ``[source]``."""

    name: str | None = Field(None, min_length=1)
    split: Literal[SPLITS] | None = None
    mass_unit: Literal[MASS_UNITS] | None = None
    source: SourceSpec | None = None


def load_source_file(path: str | Path) -> tuple[SourceFile, Source | None]:
    """The importers' source description file, validated; ScenarioError names the file and the key."""
    p = Path(path)
    spec, _ = load_toml_model(p, SourceFile, ScenarioError)
    if spec.source is None:
        return spec, None
    try:
        src = Source(rate=tuple(spec.source.rate), position_m=spec.source.position_m,
                     path=None if spec.source.path is None else tuple(spec.source.path))
    except ScenarioError as e:
        raise ScenarioError(f"{p}: [source]: {e}") from None
    return spec, src
