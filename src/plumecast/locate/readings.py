"""Sensor readings: the CSV a building management system exports, read and checked.

Columns (a header row; names exact, order free, other columns ignored):

=================  ==========================================================================
column             meaning
=================  ==========================================================================
``sensor_id``      any text naming the sensor; a sensor keeps one position
``x_m``, ``y_m``   the sensor's position on the plane, m, in the room's frame (the dataset's)
``time_s``         seconds since the run's t = 0 (the moment the plane was clean)
``value``          the reading, in the dataset's mass unit per m^3 (mg/m^3 for paper-room);
                   a value below the sensor's detection limit (0 included) means "below the limit"
``detection_limit`` optional, per row: the sensor's detection limit (same unit, > 0); without
                   the column, ``--detection-limit`` applies to every reading
=================  ==========================================================================

:func:`read_readings` refuses, with one line naming the row and the problem, an empty
file, missing columns, text where a number belongs, NaN, infinite or negative values and
a sensor that moves. :func:`check_readings` then checks the readings against a model's
plane and the run's horizon: a sensor outside the plane or in a solid cell, and times
before 0 or beyond twice the training horizon, are refused.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["COLUMNS", "LocateError", "Readings", "read_readings", "check_readings", "write_readings"]

COLUMNS = ("sensor_id", "x_m", "y_m", "time_s", "value")
OPTIONAL_COLUMNS = ("detection_limit",)


class LocateError(ValueError):
    """Readings or settings that cannot be used to locate a source; the message names the problem."""


@dataclass(frozen=True)
class Readings:
    """Readings of ``K`` sensors: ``R`` rows, each one sensor at one time.

    ``sensor`` (R,) indexes ``sensor_ids`` / ``sensor_xy`` (K, 2); ``limit`` (R,) is the
    detection limit of each reading, NaN where the file gave none (the command's
    ``--detection-limit`` applies there).
    """

    sensor_ids: tuple[str, ...]
    sensor_xy: np.ndarray
    sensor: np.ndarray
    time: np.ndarray
    value: np.ndarray
    limit: np.ndarray

    @property
    def n_sensors(self) -> int:
        return len(self.sensor_ids)

    def with_limit(self, default: float) -> "Readings":
        """The readings with every missing detection limit set to ``default``."""
        limit = np.where(np.isnan(self.limit), float(default), self.limit)
        return Readings(self.sensor_ids, self.sensor_xy, self.sensor, self.time, self.value, limit)

    @classmethod
    def from_arrays(cls, sensor_ids, sensor_xy, sensor, time, value, limit=None) -> "Readings":
        sensor = np.asarray(sensor, int)
        time, value = np.asarray(time, float), np.asarray(value, float)
        limit = np.full(len(time), np.nan) if limit is None else np.broadcast_to(np.asarray(limit, float), time.shape).copy()
        return cls(tuple(str(s) for s in sensor_ids), np.asarray(sensor_xy, float).reshape(-1, 2), sensor, time, value,
                   limit)


def _number(text: str, column: str, row: int, origin: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise LocateError(f"{origin}: row {row}: {column} is {text!r}, not a number") from None
    if math.isnan(value):
        raise LocateError(f"{origin}: row {row}: {column} is NaN")
    if math.isinf(value):
        raise LocateError(f"{origin}: row {row}: {column} is infinite")
    return value


def read_readings(path: str | Path) -> Readings:
    """The readings of a CSV file (see the module docstring); :class:`LocateError` names any problem."""
    path = Path(path)
    origin = str(path)
    if not path.is_file():
        raise LocateError(f"{origin}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise LocateError(f"{origin}: cannot read the readings ({e})") from None
    if not text.strip():
        raise LocateError(f"{origin}: the file is empty; expected a header {','.join(COLUMNS)} and readings")
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise LocateError(f"{origin}: missing column(s) {', '.join(missing)} (the header is {','.join(header)}; "
                          f"expected {','.join(COLUMNS)})")
    has_limit = "detection_limit" in header
    ids: dict[str, int] = {}
    xy: list[tuple[float, float]] = []
    sensor, times, values, limits = [], [], [], []
    for row, rec in enumerate(reader, start=2):
        if all((v or "").strip() == "" for v in rec.values() if isinstance(v, str)):
            continue  # blank line
        sid = (rec.get("sensor_id") or "").strip()
        if not sid:
            raise LocateError(f"{origin}: row {row}: empty sensor_id")
        x, y, t, v = (_number((rec.get(c) or "").strip(), c, row, origin) for c in ("x_m", "y_m", "time_s", "value"))
        if v < 0:
            raise LocateError(f"{origin}: row {row}: negative reading {v:g} of sensor {sid!r} (concentrations are >= 0)")
        lim = math.nan
        if has_limit and (rec.get("detection_limit") or "").strip():
            lim = _number(rec["detection_limit"].strip(), "detection_limit", row, origin)
            if lim <= 0:
                raise LocateError(f"{origin}: row {row}: detection_limit {lim:g} of sensor {sid!r} must be > 0")
        if sid not in ids:
            ids[sid] = len(ids)
            xy.append((x, y))
        else:
            x0, y0 = xy[ids[sid]]
            if not (math.isclose(x, x0, abs_tol=1e-6) and math.isclose(y, y0, abs_tol=1e-6)):
                raise LocateError(f"{origin}: row {row}: sensor {sid!r} moved from ({x0:g}, {y0:g}) m to ({x:g}, {y:g}) m; "
                                  "a sensor keeps one position (use another sensor_id)")
        sensor.append(ids[sid])
        times.append(t)
        values.append(v)
        limits.append(lim)
    if not sensor:
        raise LocateError(f"{origin}: the file holds a header but no readings")
    return Readings.from_arrays(list(ids), xy, sensor, times, values, limits)


def check_readings(readings: Readings, model, horizon_s: float, *, origin: str = "readings") -> list[str]:
    """Refuse readings that do not fit the model's plane or the run's horizon; return warnings.

    A sensor must lie on the plane, in a fluid cell; reading times must lie in ``[0, 2
    horizon_s]`` (beyond the training horizon the model extrapolates: a warning).
    """
    c = model.config
    fluid = np.asarray(model.fluid) > 0
    x_lo, y_lo = c.x0 - 0.5 * c.dx, c.y0 - 0.5 * c.dy
    x_hi, y_hi = x_lo + c.nx * c.dx, y_lo + c.ny * c.dy
    for sid, (x, y) in zip(readings.sensor_ids, readings.sensor_xy):
        fx, fy = (x - x_lo) / c.dx, (y - y_lo) / c.dy
        if not (-1e-9 <= fx <= c.nx + 1e-9 and -1e-9 <= fy <= c.ny + 1e-9):
            raise LocateError(f"{origin}: sensor {sid!r} at ({x:g}, {y:g}) m lies outside the plane "
                              f"(x {x_lo:g} .. {x_hi:g} m, y {y_lo:g} .. {y_hi:g} m)")
        i, j = min(max(int(math.floor(fx)), 0), c.nx - 1), min(max(int(math.floor(fy)), 0), c.ny - 1)
        if not fluid[j, i]:
            raise LocateError(f"{origin}: sensor {sid!r} at ({x:g}, {y:g}) m lies in a solid cell of the plane "
                              f"(row {j}, column {i})")
    t = readings.time
    if (t < 0).any():
        k = int(np.argmin(t))
        raise LocateError(f"{origin}: reading time {t[k]:g} s is before the run's t = 0 (times are seconds since the "
                          "plane was clean)")
    top = 2.0 * float(horizon_s)
    if (t > top + 1e-9).any():
        raise LocateError(f"{origin}: reading time {float(t.max()):g} s is beyond twice the run's training horizon "
                          f"({float(horizon_s):g} s); the model is not trusted that far")
    warnings = []
    if (t > horizon_s + 1e-9).any():
        warnings.append(f"readings up to {float(t.max()):g} s go beyond the training horizon of {float(horizon_s):g} s; "
                        "the model extrapolates there")
    return warnings


def write_readings(path: str | Path, readings: Readings) -> Path:
    """Write readings as the CSV :func:`read_readings` reads (atomically)."""
    from plumecast.io.atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            limit = not np.isnan(readings.limit).all()
            w.writerow(list(COLUMNS) + (["detection_limit"] if limit else []))
            for k, t, v, lim in zip(readings.sensor, readings.time, readings.value, readings.limit):
                x, y = readings.sensor_xy[k]
                row = [readings.sensor_ids[k], f"{x:.6g}", f"{y:.6g}", f"{t:.6g}", f"{v:.6g}"]
                w.writerow(row + ([f"{lim:.6g}" if np.isfinite(lim) else ""] if limit else []))
    return path
