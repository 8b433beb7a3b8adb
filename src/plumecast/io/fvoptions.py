"""The point sources an OpenFOAM case declares itself, read from its fvOptions.

A scalar case usually states its emission in fvOptions: a semi-implicit source of the
field on ``selectionMode points`` (the OpenFOAM engine writes one such entry per
constant-rate window, inside ``system/controlDict``'s ``scalarTransport`` function). The
importer then needs no manifest to know where and when the case emitted, and knows the
emission sits in the one cell OpenFOAM puts a point source in
(:func:`plumecast.io.openfoam.emitting_cell_centres`), not at the declared point.

Read, in this order: ``system/fvOptions``, ``constant/fvOptions`` and the ``fvOptions`` of
every function object in ``system/controlDict``. An entry counts when its ``type`` is
``scalarSemiImplicitSource`` (openfoam.com: ``injectionRateSuSp { FIELD (Su Sp); }``) or
``semiImplicitSource`` (openfoam.org: ``sources { FIELD { explicit Su; implicit Sp; } }``)
and it names the imported field. Its window is ``[timeStart, timeStart + duration]`` (all
time without ``timeStart``); on fixed time steps OpenFOAM applies it in each step whose new
time lies in the window, over the whole step, so it emits over those steps
(:func:`_emitting_span`), else over the window; ``volumeMode absolute`` takes ``Su`` as the rate (field units
times m^3/s: mass per second for a field of mass per m^3), ``specific`` as a rate per m^3
of the cell it emits into.

Refused with :class:`~plumecast.io.openfoam.OpenFOAMImportError` naming the file and entry:
an implicit part ``Sp`` other than zero (a decay, not an emission), a negative or
non-finite rate, a point that is not three numbers, an unknown ``volumeMode``, and two
windows at different points that overlap in time (a dataset scenario holds one source).
Entries that select cells otherwise (``cellZone``, ``cellSet``, ``all``, several points)
are no point source: they are listed in the notes and the case's source must come from the
manifest. A file foamlib cannot parse (``#include``, macros) is noted and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plumecast.io.openfoam import CellGeometry, OpenFOAMImportError, containing_cells, require_foamlib

__all__ = ["CasePointSource", "read_case_point_source", "SOURCE_TYPES", "FVOPTIONS_FILES"]

SOURCE_TYPES = ("scalarSemiImplicitSource", "semiImplicitSource")
FVOPTIONS_FILES = ("system/fvOptions", "constant/fvOptions")


@dataclass(frozen=True)
class CasePointSource:
    """A case's point source of one field: constant-rate windows, as its fvOptions declare them.

    ``starts_s, ends_s (n,)``: window ``k`` emits over ``[starts_s[k], ends_s[k])``, in order of start;
    ``points_m (n, 3)``; ``rates (n,)``: field units x m^3/s. Windows at one point add up;
    windows at different points never overlap. Outside every window the source stands
    where it last emitted (before the first, at the first window's point). ``entries``:
    where each window was read (file and entry), for the dataset's history.
    """

    starts_s: np.ndarray
    ends_s: np.ndarray
    points_m: np.ndarray
    rates: np.ndarray
    entries: tuple[str, ...]
    path = None  # no waypoints: the positions are piecewise constant (what source_problem reads)

    @property
    def moving(self) -> bool:
        return len(np.unique(self.points_m, axis=0)) > 1

    def _active(self, t_s) -> np.ndarray:
        t = np.asarray(t_s, float)[..., None]
        return (self.starts_s <= t) & (t < self.ends_s)

    def rate_at(self, t_s) -> np.ndarray:
        return (self._active(t_s) * self.rates).sum(axis=-1)

    def position_at(self, t_s) -> np.ndarray:
        """``(..., 3)`` (m): the point of the window emitting at each time, else where the source last emitted.

        The latest window started by ``t`` is the emitting one whenever one emits: windows at other
        points never overlap it, and one at the same point has the same point.
        """
        latest = np.searchsorted(self.starts_s, np.asarray(t_s, float), side="right") - 1
        return self.points_m[np.maximum(latest, 0)]

    def config(self) -> dict:
        """The windows for a dataset's history (JSON): where read, and each window's start, end, point and rate."""
        listed = lambda a: np.where(np.isfinite(a), a, None).tolist()  # noqa: E731 - JSON has no infinity
        return {"entries": list(self.entries), "start_s": listed(self.starts_s), "end_s": listed(self.ends_s),
                "point_m": self.points_m.tolist(), "rate": self.rates.tolist()}


def _entries(case: Path) -> tuple[list[tuple[str, dict]], list[str], dict | None]:
    """``([(where, entry dict)], notes, controlDict)``: every dictionary with a ``type`` in the case's fvOptions."""
    FoamFile = require_foamlib().FoamFile
    found, notes = [], []

    def parse(rel: str) -> dict | None:
        try:
            return FoamFile(case / rel).as_dict()
        except Exception as e:  # noqa: BLE001 - any parse failure: note it, the manifest can still describe the source
            notes.append(f"{rel} not read ({type(e).__name__}): its sources are not taken from it")
            return None

    for rel in FVOPTIONS_FILES:
        if (case / rel).is_file() and (d := parse(rel)) is not None:
            found += [(f"{rel} {name}", e) for name, e in d.items() if isinstance(e, dict) and "type" in e]
    control = parse("system/controlDict") if (case / "system/controlDict").is_file() else None
    if control is not None:
        functions = control.get("functions")
        for fname, fn in (functions.items() if isinstance(functions, dict) else ()):
            options = fn.get("fvOptions") if isinstance(fn, dict) else None
            if isinstance(options, dict):
                found += [(f"system/controlDict functions/{fname}/fvOptions {name}", e) for name, e in options.items()
                          if isinstance(e, dict) and "type" in e]
    return found, notes, control


def _fixed_steps(control: dict | None) -> tuple[float, float] | None:
    """``(startTime, deltaT)`` of a run on fixed time steps, else None (adjustTimeStep, or no controlDict)."""
    if control is None or str(control.get("adjustTimeStep", "no")).lower() in ("yes", "on", "true", "1"):
        return None
    try:
        t0, dt = float(control.get("startTime", 0.0)), float(control["deltaT"])
    except (KeyError, TypeError, ValueError):
        return None
    return (t0, dt) if np.isfinite(t0) and np.isfinite(dt) and dt > 0 else None


def _emitting_span(start: float, end: float, steps: tuple[float, float] | None) -> tuple[float, float]:
    """``[a, b)``: the time a window ``[start, end]`` emits over.

    OpenFOAM applies an option in the step to a new time inside its window, over the whole
    step, so on fixed steps the window emits over those steps (it may be empty); else over the
    window itself.
    """
    if steps is None:
        return start, end
    t0, dt = steps
    first = np.ceil((start - t0) / dt - 1e-9) if np.isfinite(start) else -np.inf
    last = np.floor((end - t0) / dt + 1e-9) if np.isfinite(end) else np.inf
    return t0 + (first - 1) * dt, t0 + last * dt


def _number(value, what: str, where: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise OpenFOAMImportError(f"{where}: {what} must be a number, got {value!r}") from None
    if not np.isfinite(x):
        raise OpenFOAMImportError(f"{where}: {what} must be finite, got {value!r}")
    return x


def _su_sp(entry: dict, field: str, where: str) -> tuple[float, float] | None:
    """``(Su, Sp)`` of ``field`` in a semi-implicit source entry, or None when it does not name the field."""
    inject = entry.get("injectionRateSuSp")
    if isinstance(inject, dict):
        if field not in inject:
            return None
        pair = np.ravel(np.asarray(inject[field], dtype=object))
        if len(pair) != 2:
            raise OpenFOAMImportError(f"{where}: injectionRateSuSp {field} must be (Su Sp), got {inject[field]!r}")
        return _number(pair[0], "Su", where), _number(pair[1], "Sp", where)
    sources = entry.get("sources")
    if isinstance(sources, dict):
        if not isinstance(sources.get(field), dict):
            return None
        part = sources[field]
        return _number(part.get("explicit", 0.0), "explicit", where), _number(part.get("implicit", 0.0), "implicit", where)
    return None


def read_case_point_source(case_dir: str | Path, field: str, geom: CellGeometry
                           ) -> tuple[CasePointSource | None, list[str]]:
    """``(source or None, notes)``: the point source of ``field`` the case's fvOptions declare (module docstring).

    ``geom``: the case's mesh, for ``volumeMode specific`` (the volume of the cell a point
    emits into). ``notes`` says what was read and what could not be used, for the history.
    """
    case = Path(case_dir)
    entries, notes, control = _entries(case)
    steps = _fixed_steps(control)
    starts, ends, points, rates, names = [], [], [], [], []
    for where, e in entries:
        if e.get("type") not in SOURCE_TYPES or e.get("active", True) in (False, "false", "off", "no"):
            continue
        su_sp = _su_sp(e, field, where)
        if su_sp is None:
            continue
        su, sp = su_sp
        mode = e.get("selectionMode", e.get("select"))
        pts = np.asarray(e.get("points", []), dtype=object)
        if mode != "points" or pts.size != 3:
            notes.append(f"{where}: a source of {field!r} on selectionMode {mode!r}"
                         + (f" with {pts.size // 3} points" if mode == "points" else "") + ", not one point: not read")
            continue
        point = np.array([_number(v, "points", where) for v in pts.ravel()])
        if sp != 0.0:
            raise OpenFOAMImportError(f"{where}: the implicit part Sp = {sp:g} of {field!r} is a decay or a gain "
                                      "proportional to the field, not an emission rate; plumecast's sources emit only")
        volume_mode = e.get("volumeMode", "absolute")
        if volume_mode == "specific":
            cell, found = containing_cells(geom, point[None])
            if not found[0]:
                raise OpenFOAMImportError(f"{where}: the point ({', '.join(f'{v:g}' for v in point)}) m lies in no "
                                          "cell of the mesh")
            su *= float(geom.volumes[cell[0]])
        elif volume_mode != "absolute":
            raise OpenFOAMImportError(f"{where}: volumeMode must be absolute or specific, got {volume_mode!r}")
        if su < 0:
            raise OpenFOAMImportError(f"{where}: the rate Su = {su:g} of {field!r} is negative; plumecast's sources emit only")
        start, end = -np.inf, np.inf  # without timeStart, OpenFOAM keeps an option on all the time
        if "timeStart" in e:
            start = _number(e["timeStart"], "timeStart", where)
            duration = _number(e["duration"], "duration", where) if "duration" in e else np.inf
            if duration < 0:
                raise OpenFOAMImportError(f"{where}: duration must be >= 0, got {duration:g}")
            end = start + duration
        start, end = _emitting_span(start, end, steps)
        if not end > start:  # between two time steps: OpenFOAM never applied it
            continue
        starts.append(start), ends.append(end), points.append(point), rates.append(su), names.append(where)
    if not names:
        return None, notes
    order = np.argsort(starts, kind="stable")
    names = [names[k] for k in order]
    source = CasePointSource(np.array(starts)[order], np.array(ends)[order], np.array(points)[order],
                             np.array(rates)[order], tuple(names))
    a, b, p = source.starts_s, source.ends_s, source.points_m
    overlap = np.minimum(b[:, None], b[None]) - np.maximum(a[:, None], a[None])
    apart = (p[:, None] != p[None]).any(axis=-1)
    clash = np.argwhere(np.triu((overlap > 0) & apart, 1))
    if len(clash):
        i, j = clash[0]
        raise OpenFOAMImportError(f"{names[i]} and {names[j]}: point sources of {field!r} at two points emit at once "
                                  f"(for {overlap[i, j]:g} s); a scenario holds one source: import them as separate "
                                  "cases or describe the source in the manifest")
    notes.append(f"source of {field!r} read from {len(names)} fvOptions entr{'y' if len(names) == 1 else 'ies'} "
                 f"({names[0]}{' ...' if len(names) > 1 else ''})")
    return source, notes
