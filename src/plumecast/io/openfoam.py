"""Import a finished OpenFOAM case: mesh, U, nut and a scalar over time, onto the plane.

This is the one module of plumecast that imports ``foamlib`` (an optional extra:
``pip install 'plumecast[openfoam]'``); it is imported lazily, so the rest of plumecast
works without it.

What is read
    ``constant/polyMesh/{points,faces,owner,neighbour}`` (ascii or binary), the scalar
    field (``T`` or ``s`` unless named) in every time directory that holds it, and ``U``
    and ``nut`` from the latest time directory holding both (or the one named). Cell
    centres, volumes and extents are computed from the polyhedra (face triangulation and
    pyramid decomposition, as OpenFOAM does), so any mesh of polyhedral cells works.
    The vertical axis is z.

Decomposed cases
    When the case has ``processor*`` folders and no reconstructed time directory holds
    the scalar, the processor meshes and fields are read and their cells concatenated:
    the plane extraction below needs only cell centres, volumes, extents and values, so
    no ``reconstructPar`` is needed.

Plane extraction (the recipe of ``OPENFOAM.md``)
    A cell takes part at height ``h`` with weight ``max(0, 1 - |z_c - h| / dz)``, where
    ``z_c`` is its centre and ``dz`` its vertical extent: on a mesh layered in z this is
    linear interpolation between the two cell layers bracketing ``h`` (exactly the
    layer when a centre lies on ``h``). The weighted cells are binned by their centre
    into the coarse plane cells (``cell_m`` squares from the mesh's lower x, y corner)
    and area-averaged there with their horizontal area ``volume / dz``; a non-uniform or
    unstructured hex mesh is handled the same way. The coarse cell's fluid fraction is
    the smaller of the horizontal cell areas just below and just above ``h`` in it,
    divided by its area, so an obstacle whose top lies exactly at ``h`` counts as solid.
    Mesh cells wider than the coarse cell are rejected (bin by centre needs them
    smaller).

Malformed input (a truncated or unreadable file, a missing field, NaN, field sizes that
disagree with the mesh, an empty case) raises :class:`OpenFOAMImportError` naming the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from plumecast import __version__
from plumecast.io.dataset import nonnegative_viscosity
from plumecast.io.preflight import require_memory

GENERATOR = "plumecast-import-openfoam"
DEFAULT_SCALAR_NAMES = ("T", "s")
INSTALL_HINT = "install the optional extra: pip install 'plumecast[openfoam]' (or: pip install foamlib)"


class OpenFOAMImportError(ValueError):
    """An OpenFOAM case or file that cannot be imported; the message names the file."""


def require_foamlib():
    """The ``foamlib`` module, imported on first use; OpenFOAMImportError with the install hint if absent."""
    try:
        import foamlib
    except ImportError:
        raise OpenFOAMImportError(f"reading OpenFOAM files needs foamlib, which is not installed; {INSTALL_HINT}") from None
    return foamlib


_TOKENS = re.compile(rb"//[^\n]*|/\*.*?\*/|\(|\)|[^\s()]+", re.DOTALL)
_NUMBER = re.compile(rb"[-+]?((\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|nan|inf|infinity)", re.IGNORECASE)
_LIST_START = re.compile(rb"(\d+)\s*\(")
_FIELD_START = re.compile(rb"internalField\s+nonuniform\s+List<(\w+)>\s*(\d+)\s*\(")
_ITEM_BYTES = {b"scalar": 1, b"vector": 3, b"symmTensor": 6, b"tensor": 9, b"sphericalTensor": 1}


def _precheck(path: Path, what: str, element_bytes: tuple[int, ...] | None) -> None:
    """Cheap structural checks before foamlib parses a file.

    foamlib's parser can take exponential time on a truncated or garbled ascii list, so
    the data list is walked here first (linear time) and the first bad token is reported
    with its line; binary lists are checked for their full length.
    """
    data = path.read_bytes()
    m = re.search(rb"\bformat\s+(\w+)\s*;", data[:4000])
    binary = bool(m and m.group(1) == b"binary")
    head_end = data.find(b"}", data.find(b"FoamFile")) + 1 if b"FoamFile" in data[:4000] else 0
    fm = _FIELD_START.search(data, head_end)
    if element_bytes is None:  # a volume field: only a nonuniform internalField needs checking
        if not fm:
            if b"internalField" not in data:
                raise OpenFOAMImportError(f"{path}: no internalField in {what}; truncated or malformed file?")
            return
        starts = [fm.end() - 1]
        counts = [int(fm.group(2))]
        sizes = [8 * _ITEM_BYTES.get(fm.group(1), 1)]
        width = _ITEM_BYTES.get(fm.group(1), 1)
    else:
        lm = _LIST_START.search(data, head_end)
        if not lm:
            raise OpenFOAMImportError(f"{path}: no list of {what} after the header; truncated or malformed file?")
        starts, counts, sizes, width = [lm.end() - 1], [int(lm.group(1))], list(element_bytes), None

    def line_of(pos: int) -> int:
        return data.count(b"\n", 0, pos) + 1

    if binary:
        pos = starts[0]
        for k, size in enumerate(sizes):
            if k > 0:  # a second list follows (faceCompactList)
                lm = _LIST_START.match(data, pos + 1 + (data[pos + 1:pos + 2] == b"\n"))
                lm = lm or _LIST_START.search(data, pos + 1)
                if not lm:
                    raise OpenFOAMImportError(f"{path}: second binary list of {what} missing; truncated file?")
                pos, counts = lm.end() - 1, counts + [int(lm.group(1))]
            end = pos + 1 + counts[k] * size
            if data[end:end + 1] != b")":
                raise OpenFOAMImportError(
                    f"{path}:{line_of(pos)}: binary list of {counts[k]} {what} needs {counts[k] * size} bytes, "
                    f"{max(0, len(data) - pos - 1)} follow without its closing ')'; truncated or malformed file?"
                )
            pos = end
        return
    depth, numbers = 0, 0
    for tok in _TOKENS.finditer(data, starts[0]):
        t = tok.group(0)
        if t.startswith((b"//", b"/*")):
            continue
        if t == b"(":
            depth += 1
        elif t == b")":
            depth -= 1
            if depth == 0:
                break
        elif _NUMBER.fullmatch(t):
            numbers += 1
        else:
            raise OpenFOAMImportError(
                f"{path}:{line_of(tok.start())}: {t[:40].decode(errors='replace')!r} is not a number in the list of {what}"
            )
    else:
        raise OpenFOAMImportError(
            f"{path}:{line_of(len(data))}: the list of {what} is not closed; truncated file?"
        )
    if width is not None and numbers != counts[0] * width:
        raise OpenFOAMImportError(
            f"{path}:{line_of(starts[0])}: the list announces {counts[0]} values but holds {numbers // width} "
            f"({numbers} numbers); truncated or malformed file?"
        )


def _read_entry(path: Path, what: str, element_bytes: tuple[int, ...] = (8,)):
    """The top-level data of a FoamFile (points, faces, owner, ...)."""
    foamlib = require_foamlib()
    if not path.is_file():
        raise OpenFOAMImportError(f"{path}: missing {what}")
    _precheck(path, what, element_bytes)
    try:
        return foamlib.FoamFile(path)[None]
    except Exception as e:  # noqa: BLE001 - foamlib raises parse errors of several kinds
        raise OpenFOAMImportError(f"{path}: cannot read {what} ({_short(e)}); truncated or malformed file?") from None


def _short(e: Exception) -> str:
    msg = " ".join(str(e).split())
    return f"{type(e).__name__}: {msg[:300]}"


# ----------------------------------------------------------------------------- mesh


@dataclass
class CellGeometry:
    """Cell centres ``(n, 3)``, volumes ``(n,)`` and bounding boxes ``lo, hi (n, 3)``."""

    centres: np.ndarray = field(repr=False)
    volumes: np.ndarray = field(repr=False)
    lo: np.ndarray = field(repr=False)
    hi: np.ndarray = field(repr=False)

    @property
    def n_cells(self) -> int:
        return len(self.volumes)

    @staticmethod
    def concatenate(parts: list["CellGeometry"]) -> "CellGeometry":
        return CellGeometry(*(np.concatenate([getattr(p, a) for p in parts]) for a in ("centres", "volumes", "lo", "hi")))


def _faces_compact(faces, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Faces as (offsets (F+1,), flat vertex labels) whatever foamlib returned."""
    if isinstance(faces, tuple) and len(faces) == 2:
        offsets, flat = (np.asarray(a, dtype=np.int64) for a in faces)
        return offsets, flat
    if isinstance(faces, np.ndarray) and faces.ndim == 2:
        f = faces.astype(np.int64)
        return np.arange(f.shape[0] + 1) * f.shape[1], f.ravel()
    try:
        sizes = np.array([len(f) for f in faces], dtype=np.int64)
        flat = np.concatenate([np.asarray(f, dtype=np.int64) for f in faces]) if len(sizes) else np.zeros(0, np.int64)
    except TypeError:
        raise OpenFOAMImportError(f"{path}: faces are not a list of vertex lists") from None
    return np.concatenate([[0], np.cumsum(sizes)]), flat


def _label_bytes(path: Path) -> int:
    try:
        head = path.read_bytes()[:4000]
    except OSError:
        return 4
    m = re.search(rb"label\s*=\s*(\d+)", head)
    return int(m.group(1)) // 8 if m else 4


def read_mesh(mesh_dir: str | Path) -> CellGeometry:
    """Cell geometry of a ``polyMesh`` folder (ascii or binary files)."""
    mesh_dir = Path(mesh_dir)
    if not mesh_dir.is_dir():
        raise OpenFOAMImportError(f"{mesh_dir}: no mesh folder (constant/polyMesh); is this an OpenFOAM case?")
    lb = _label_bytes(mesh_dir / "owner")
    points = np.asarray(_read_entry(mesh_dir / "points", "mesh points", (24,)), dtype=float)
    offsets, flat = _faces_compact(_read_entry(mesh_dir / "faces", "mesh faces", (lb, lb)), mesh_dir / "faces")
    owner = np.asarray(_read_entry(mesh_dir / "owner", "face owners", (lb,)), dtype=np.int64).ravel()
    neighbour = np.asarray(_read_entry(mesh_dir / "neighbour", "face neighbours", (lb,)), dtype=np.int64).ravel()
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise OpenFOAMImportError(f"{mesh_dir / 'points'}: expected a list of 3D points, got shape {points.shape}")
    if not np.isfinite(points).all():
        raise OpenFOAMImportError(f"{mesh_dir / 'points'}: holds non-finite coordinates")
    n_faces = len(offsets) - 1
    sizes = np.diff(offsets)
    if n_faces <= 0 or (sizes < 3).any() or offsets[-1] != len(flat):
        raise OpenFOAMImportError(f"{mesh_dir / 'faces'}: malformed face list ({n_faces} faces)")
    if len(flat) and (flat.min() < 0 or flat.max() >= len(points)):
        raise OpenFOAMImportError(f"{mesh_dir / 'faces'}: vertex label out of range for {len(points)} points")
    if len(owner) != n_faces:
        raise OpenFOAMImportError(f"{mesh_dir / 'owner'}: {len(owner)} owners for {n_faces} faces")
    if len(neighbour) > n_faces:
        raise OpenFOAMImportError(f"{mesh_dir / 'neighbour'}: {len(neighbour)} neighbours for {n_faces} faces")
    n_cells = int(owner.max()) + 1 if len(owner) else 0
    if len(neighbour):
        n_cells = max(n_cells, int(neighbour.max()) + 1)
    if owner.min() < 0 or (len(neighbour) and neighbour.min() < 0):
        raise OpenFOAMImportError(f"{mesh_dir}: negative cell label in owner/neighbour")

    # Face centres and area vectors: a fan of triangles about the vertex mean.
    face_of = np.repeat(np.arange(n_faces), sizes)
    p = points[flat]
    vmean = np.zeros((n_faces, 3))
    np.add.at(vmean, face_of, p)
    vmean /= sizes[:, None]
    pos = np.arange(len(flat)) - offsets[face_of]
    nxt = offsets[face_of] + (pos + 1) % sizes[face_of]
    q = points[flat[nxt]]
    c0 = vmean[face_of]
    tri_a = 0.5 * np.cross(p - c0, q - c0)
    tri_c = (c0 + p + q) / 3.0
    sf = np.zeros((n_faces, 3))
    np.add.at(sf, face_of, tri_a)
    mag = np.linalg.norm(tri_a, axis=1)
    wsum = np.zeros(n_faces)
    np.add.at(wsum, face_of, mag)
    cf = np.zeros((n_faces, 3))
    np.add.at(cf, face_of, tri_c * mag[:, None])
    cf = np.where(wsum[:, None] > 0, cf / np.maximum(wsum, 1e-300)[:, None], vmean)

    # Face bounding boxes, then cell bounding boxes.
    flo = np.minimum.reduceat(p, offsets[:-1], axis=0)
    fhi = np.maximum.reduceat(p, offsets[:-1], axis=0)
    lo = np.full((n_cells, 3), np.inf)
    hi = np.full((n_cells, 3), -np.inf)
    nb_faces = np.arange(len(neighbour))
    for cells, faces in ((owner, slice(None)), (neighbour, nb_faces)):
        np.minimum.at(lo, cells, flo[faces])
        np.maximum.at(hi, cells, fhi[faces])

    # Cell volumes and centroids by pyramids on each face about an estimated centre.
    nfc = np.zeros(n_cells)
    est = np.zeros((n_cells, 3))
    np.add.at(est, owner, cf)
    np.add.at(nfc, owner, 1)
    np.add.at(est, neighbour, cf[nb_faces])
    np.add.at(nfc, neighbour, 1)
    if (nfc < 4).any():
        raise OpenFOAMImportError(f"{mesh_dir}: {int((nfc < 4).sum())} cells have fewer than 4 faces; broken mesh")
    est /= nfc[:, None]
    vol = np.zeros(n_cells)
    mom = np.zeros((n_cells, 3))
    pv = np.einsum("ij,ij->i", sf, cf - est[owner]) / 3.0
    np.add.at(vol, owner, pv)
    np.add.at(mom, owner, pv[:, None] * (0.75 * cf + 0.25 * est[owner]))
    nb = neighbour
    pvn = -np.einsum("ij,ij->i", sf[nb_faces], cf[nb_faces] - est[nb]) / 3.0
    np.add.at(vol, nb, pvn)
    np.add.at(mom, nb, pvn[:, None] * (0.75 * cf[nb_faces] + 0.25 * est[nb]))
    if (vol <= 0).any():
        raise OpenFOAMImportError(f"{mesh_dir}: {int((vol <= 0).sum())} cells have non-positive volume; broken mesh")
    return CellGeometry(mom / vol[:, None], vol, lo, hi)


def read_faces(mesh_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Face centres ``(F, 3)`` (the mean of each face's vertices) and face owners ``(F,)``.

    Read from a ``polyMesh`` folder (ascii or binary); faces in the mesh's order, internal
    faces first, then each boundary patch's. The owner is the cell label on the side the
    face normal points away from (OpenFOAM's convention).
    """
    mesh_dir = Path(mesh_dir)
    lb = _label_bytes(mesh_dir / "owner")
    points = np.asarray(_read_entry(mesh_dir / "points", "mesh points", (24,)), dtype=float)
    offsets, flat = _faces_compact(_read_entry(mesh_dir / "faces", "mesh faces", (lb, lb)), mesh_dir / "faces")
    owner = np.asarray(_read_entry(mesh_dir / "owner", "face owners", (lb,)), dtype=np.int64).ravel()
    if len(owner) != len(offsets) - 1:
        raise OpenFOAMImportError(f"{mesh_dir / 'owner'}: {len(owner)} owners for {len(offsets) - 1} faces")
    sizes = np.diff(offsets)
    centres = np.add.reduceat(points[flat], offsets[:-1], axis=0) / sizes[:, None]
    return centres, owner


# ----------------------------------------------------------------------------- fields


def read_field(path: str | Path, n_cells: int, *, vector: bool = False) -> np.ndarray:
    """The internal field of a volume field file as ``(n,)`` or ``(n, 3)`` floats."""
    foamlib = require_foamlib()
    path = Path(path)
    if not path.is_file():
        raise OpenFOAMImportError(f"{path}: missing field file")
    _precheck(path, "field values", None)
    try:
        data = foamlib.FoamFieldFile(path).internal_field
    except Exception as e:  # noqa: BLE001
        raise OpenFOAMImportError(f"{path}: cannot read the field ({_short(e)}); truncated or malformed file?") from None
    arr = np.asarray(data, dtype=float)
    want = (n_cells, 3) if vector else (n_cells,)
    if arr.ndim == 0 or (vector and arr.shape == (3,)):
        arr = np.broadcast_to(arr, want).copy()  # a uniform field
    if arr.shape != want:
        what = "vectors" if vector else "scalars"
        raise OpenFOAMImportError(
            f"{path}: field has {arr.shape[0] if arr.ndim else 1} values of shape {arr.shape[1:]} but the mesh has "
            f"{n_cells} cells of {what}; mesh and field sizes disagree"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        raise OpenFOAMImportError(f"{path}: field holds {int(bad.reshape(len(arr), -1).any(axis=1).sum())} cells of NaN or inf")
    return arr


_TIME_RE = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


def time_dirs(root: Path) -> list[tuple[float, Path]]:
    """Time directories of a case (or processor) folder, sorted by time."""
    out = []
    for p in root.iterdir() if root.is_dir() else ():
        if p.is_dir() and _TIME_RE.match(p.name):
            out.append((float(p.name), p))
    return sorted(out)


@dataclass
class CaseData:
    """A case read into memory: geometry, flow and the scalar over time."""

    geometry: CellGeometry
    times: np.ndarray
    scalar: np.ndarray = field(repr=False)  # (time, n)
    U: np.ndarray = field(repr=False)  # (n, 3)
    nut: np.ndarray = field(repr=False)  # (n,)
    scalar_name: str = "T"
    flow_time: str = ""
    decomposed: int = 0  # number of processor folders read, 0 when reconstructed


def _pick_scalar(roots: list[Path], name: str | None) -> str:
    if name:
        return name
    for cand in DEFAULT_SCALAR_NAMES:
        if any((d / cand).is_file() for r in roots for _, d in time_dirs(r)):
            return cand
    seen = sorted({f.name for r in roots for _, d in time_dirs(r) for f in d.iterdir() if f.is_file()})
    raise OpenFOAMImportError(
        f"{roots[0].parent if len(roots) > 1 else roots[0]}: missing field: no scalar named "
        f"{' or '.join(DEFAULT_SCALAR_NAMES)} in any time directory (fields found: {', '.join(seen) or 'none'}); "
        "name it with --field"
    )


def _read_root(root: Path, scalar_name: str, flow_time: str | None) -> tuple[CellGeometry, dict, np.ndarray, np.ndarray, str]:
    geom = read_mesh(root / "constant" / "polyMesh")
    n = geom.n_cells
    tds = time_dirs(root)
    scalars = {t: d / scalar_name for t, d in tds if (d / scalar_name).is_file()}
    if not scalars:
        raise OpenFOAMImportError(f"{root}: missing field: no time directory holds the scalar {scalar_name!r}")
    if flow_time is not None:
        match = [d for t, d in tds if d.name == flow_time or np.isclose(t, float(flow_time))]
        if not match:
            raise OpenFOAMImportError(f"{root}: no time directory {flow_time!r} for the flow fields")
        fdir = match[0]
    else:
        with_flow = [d for _, d in tds if (d / "U").is_file() and (d / "nut").is_file()]
        if not with_flow:
            missing = "U and nut" if not any((d / "U").is_file() for _, d in tds) else "nut"
            if missing == "nut" and any((d / "nut").is_file() for _, d in tds):
                missing = "U and nut in the same time directory"
            raise OpenFOAMImportError(f"{root}: missing field: no time directory holds {missing}")
        fdir = with_flow[-1]
    U = read_field(fdir / "U", n, vector=True)
    nut = read_field(fdir / "nut", n)
    values = {t: read_field(p, n) for t, p in scalars.items()}
    return geom, values, U, nut, fdir.name


def read_case(case_dir: str | Path, *, field_name: str | None = None, flow_time: str | None = None) -> CaseData:
    """Read a finished (or decomposed) case; OpenFOAMImportError names what is wrong."""
    case = Path(case_dir)
    if not case.is_dir():
        raise OpenFOAMImportError(f"{case}: no such case directory")
    procs = sorted((p for p in case.iterdir() if p.is_dir() and re.fullmatch(r"processor\d+", p.name)),
                   key=lambda p: int(p.name[9:]))
    name = _pick_scalar([case] + procs, field_name)
    reconstructed = any((d / name).is_file() and t > 0 for t, d in time_dirs(case)) or not procs
    if reconstructed:
        geom, values, U, nut, ftime = _read_root(case, name, flow_time)
        times = np.array(sorted(values))
        scalar = np.stack([values[t] for t in times])
        return CaseData(geom, times, scalar, U, nut, name, ftime, 0)
    parts = []
    for proc in procs:
        if not time_dirs(proc):
            raise OpenFOAMImportError(
                f"{proc}: decomposed case without time directories; run the case or `reconstructPar` first"
            )
        if not (proc / "constant" / "polyMesh").is_dir():
            raise OpenFOAMImportError(
                f"{proc}: decomposed case without a processor mesh (constant/polyMesh); run `reconstructPar` in "
                f"{case} and import again"
            )
        parts.append(_read_root(proc, name, flow_time))
    t0 = sorted(parts[0][1])
    for proc, part in zip(procs, parts):
        if sorted(part[1]) != t0:
            raise OpenFOAMImportError(
                f"{proc}: its times of {name!r} differ from {procs[0].name}'s; the decomposed case is incomplete"
            )
    geom = CellGeometry.concatenate([p[0] for p in parts])
    times = np.array(t0)
    scalar = np.stack([np.concatenate([p[1][t] for p in parts]) for t in t0])
    U = np.concatenate([p[2] for p in parts])
    nut = np.concatenate([p[3] for p in parts])
    return CaseData(geom, times, scalar, U, nut, name, parts[0][4], len(procs))


# ----------------------------------------------------------------------------- plane


@dataclass
class MeshPlaneSampler:
    """Weights that map the cell values of an OpenFOAM mesh to the coarse plane grid.

    Made by :func:`mesh_plane_sampler` (the recipe is in the module doc); not to be confused
    with :class:`plumecast.reference.plane.PlaneSampler`, the embedded solver's sampler on a
    ``Grid3D``.
    """

    cells: np.ndarray = field(repr=False)  # participating cell labels
    bins: np.ndarray = field(repr=False)  # flat coarse index of each
    weights: np.ndarray = field(repr=False)  # hat weight x horizontal area
    fluid_fraction: np.ndarray = field(repr=False)  # (ny, nx)
    x_m: np.ndarray = field(repr=False)
    y_m: np.ndarray = field(repr=False)
    height_m: float = 0.0

    @property
    def shape(self) -> tuple[int, int]:
        return self.fluid_fraction.shape

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Cell values ``(..., n)`` to the plane ``(..., ny, nx)``; 0 in solid coarse cells."""
        values = np.asarray(values, float)
        ny, nx = self.shape
        lead = values.shape[:-1]
        v = values[..., self.cells].reshape(-1, len(self.cells))
        num = np.zeros((v.shape[0], ny * nx))
        den = np.zeros(ny * nx)
        np.add.at(den, self.bins, self.weights)
        for r in range(v.shape[0]):
            np.add.at(num[r], self.bins, self.weights * v[r])
        out = np.where(den > 0, num / np.maximum(den, 1e-300), 0.0)
        out = np.where(self.fluid_fraction.ravel() > 0, out, 0.0)
        return out.reshape(*lead, ny, nx)


def mesh_plane_sampler(geom: CellGeometry, height_m: float, cell_m: float, origin_xy=None,
                       extent_xy=None) -> MeshPlaneSampler:
    """The sampler of a mesh's cells about ``height_m``, binned into ``cell_m`` squares.

    ``geom`` is an OpenFOAM cell geometry (:func:`read_mesh`); the coarse grid starts at
    ``origin_xy`` and covers ``extent_xy`` (default: the mesh's lower x, y corner and its
    extent). See the module doc for the weights and the fluid fraction.
    """
    if not (np.isfinite(cell_m) and cell_m > 0):
        raise OpenFOAMImportError(f"cell size must be positive, got {cell_m}")
    if not np.isfinite(height_m):
        raise OpenFOAMImportError(f"plane height must be a finite number of metres, got {height_m}")
    zlo, zhi = geom.lo[:, 2].min(), geom.hi[:, 2].max()
    if not zlo < height_m < zhi:
        raise OpenFOAMImportError(f"plane height {height_m} m is outside the mesh's z range ({zlo:g}, {zhi:g}) m")
    wide = np.maximum(geom.hi[:, 0] - geom.lo[:, 0], geom.hi[:, 1] - geom.lo[:, 1])
    near = (geom.lo[:, 2] <= height_m) & (geom.hi[:, 2] >= height_m)
    if (wide[near] > cell_m * (1 + 1e-6)).any():
        raise OpenFOAMImportError(
            f"mesh cells up to {wide[near].max():.4g} m wide at the plane are coarser than the {cell_m} m plane cells; "
            f"choose --cell >= {wide[near].max():.4g}"
        )
    x0, y0 = (geom.lo[:, 0].min(), geom.lo[:, 1].min()) if origin_xy is None else origin_xy
    if extent_xy is None:
        lx, ly = geom.hi[:, 0].max() - x0, geom.hi[:, 1].max() - y0
    else:
        lx, ly = extent_xy
    nx = max(1, int(np.ceil(lx / cell_m - 1e-6)))
    ny = max(1, int(np.ceil(ly / cell_m - 1e-6)))
    if nx < 2 or ny < 2:
        raise OpenFOAMImportError(
            f"--cell {cell_m:g} m gives a plane grid of {ny} x {nx} cells over the mesh's {lx:g} x {ly:g} m; the "
            f"plane model needs at least 2 x 2: choose --cell <= {min(lx, ly) / 2:g}"
        )
    dz = geom.hi[:, 2] - geom.lo[:, 2]
    area = geom.volumes / dz
    hat = np.clip(1.0 - np.abs(geom.centres[:, 2] - height_m) / dz, 0.0, None)
    ix = np.floor((geom.centres[:, 0] - x0) / cell_m).astype(int)
    iy = np.floor((geom.centres[:, 1] - y0) / cell_m).astype(int)
    inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    flat = iy * nx + ix
    eps = 1e-9 * max(zhi - zlo, 1.0)
    frac = []
    for z in (height_m - eps, height_m + eps):
        hit = inside & (geom.lo[:, 2] < z) & (geom.hi[:, 2] > z)
        a = np.zeros(ny * nx)
        np.add.at(a, flat[hit], area[hit])
        frac.append(a)
    fraction = np.clip(np.minimum(*frac) / cell_m**2, 0.0, 1.0)
    fraction[fraction < 1e-9] = 0.0
    fraction[fraction > 1 - 1e-9] = 1.0  # round-off of volume / height
    use = inside & (hat > 0)
    cells = np.flatnonzero(use)
    return MeshPlaneSampler(
        cells=cells,
        bins=flat[cells],
        weights=hat[cells] * area[cells],
        fluid_fraction=fraction.reshape(ny, nx),
        x_m=x0 + (np.arange(nx) + 0.5) * cell_m,
        y_m=y0 + (np.arange(ny) + 0.5) * cell_m,
        height_m=float(height_m),
    )


# ----------------------------------------------------------------------------- import


def source_problem(source, geom: CellGeometry, sampler: MeshPlaneSampler, times) -> str | None:
    """Why a declared source cannot be in this case, or None.

    On the plane: (x, y) in a fluid plane cell (as every importer checks). In 3D: the
    point inside a mesh cell's bounding box (the cells whose centres are nearest), so a
    source inside an obstacle (a hole in the mesh) or outside the room is refused. On a
    mesh of axis-aligned hexahedra the box is the cell; on other polyhedra it is a
    slightly larger region, so a point just outside a slanted wall can pass.
    """
    from scipy.spatial import cKDTree

    from plumecast.io.dataset import source_outside_plane

    cell = float(sampler.x_m[1] - sampler.x_m[0]) if len(sampler.x_m) > 1 else 1.0
    x_lo, y_lo = sampler.x_m[0] - cell / 2, sampler.y_m[0] - cell / 2
    zr = (float(geom.lo[:, 2].min()), float(geom.hi[:, 2].max()))
    problem = source_outside_plane(source, sampler.fluid_fraction, x_lo=x_lo, y_lo=y_lo, dx=cell, dy=cell,
                                   times=times, z_range=zr)
    if problem:
        return problem
    t = np.asarray(times, float)
    if source.path is not None:
        way = np.asarray(source.path, float)[:, 0]
        t = np.union1d(t, np.union1d(way, np.linspace(way[0], way[-1], 501)))
    points = np.unique(source.position_at(t), axis=0)
    k = min(8, geom.n_cells)
    _, idx = cKDTree(geom.centres).query(points, k=k)
    idx = np.asarray(idx).reshape(len(points), k)
    eps = 1e-9 * max(1.0, float(np.abs(geom.hi).max()))
    inside = ((geom.lo[idx] - eps <= points[:, None, :]) & (points[:, None, :] <= geom.hi[idx] + eps)).all(axis=2)
    outside = np.flatnonzero(~inside.any(axis=1))
    if outside.size:
        x, y, z = points[outside[0]]
        return (f"the source at ({x:g}, {y:g}, {z:g}) m lies in no cell of the mesh: inside an obstacle or outside "
                "the room")
    return None



def import_openfoam(
    case_dir: str | Path,
    *,
    height_m: float,
    cell_m: float,
    field_name: str | None = None,
    flow_time: str | None = None,
    scenario_name: str | None = None,
    split: str = "train",
    source=None,
    mass_unit: str = "mg",
):
    """A finished OpenFOAM case to a validated plumecast dataset (one scenario).

    ``source`` is a :class:`plumecast.scenario.Source` (position or path, rate) or None
    (unknown: zeros, said so in ``history``).
    """
    from plumecast.io.dataset import make_dataset

    case = Path(case_dir)
    if not (np.isfinite(cell_m) and cell_m > 0):
        raise OpenFOAMImportError(f"cell size must be positive, got {cell_m}")
    if not np.isfinite(height_m):
        raise OpenFOAMImportError(f"plane height must be a finite number of metres, got {height_m}")
    data = read_case(case, field_name=field_name, flow_time=flow_time)
    sampler = mesh_plane_sampler(data.geometry, height_m, cell_m)
    if not (sampler.fluid_fraction > 0).any():
        raise OpenFOAMImportError(f"{case}: no fluid at the plane height {height_m} m")
    ny, nx = sampler.shape
    times = data.times
    require_memory(ny * nx * 8 * (3 * len(times) + 12), f"a plane grid of {ny} x {nx} cells at {len(times)} times",
                   "choose a larger --cell")
    if source is not None:
        problem = source_problem(source, data.geometry, sampler, times)
        if problem:
            raise OpenFOAMImportError(f"{case}: {problem}")
    nut_file = f"{case}/{data.flow_time}/nut" if not data.decomposed else f"{case}/processor*/{data.flow_time}/nut"
    nut = np.array(data.nut, float)
    try:
        nut[sampler.cells], nut_note = nonnegative_viscosity(nut[sampler.cells])
    except ValueError as e:
        raise OpenFOAMImportError(f"{nut_file}: {e} (in the cells about the plane)") from None
    conc = sampler(data.scalar)
    u = sampler(data.U.T)
    history = [
        f"plumecast {__version__} import openfoam {case.name}: scalar {data.scalar_name!r} at {len(times)} times, "
        f"U and nut from time {data.flow_time}, plane at {height_m} m binned into {cell_m} m cells "
        f"({data.geometry.n_cells} mesh cells"
        + (f", {data.decomposed} processor folders concatenated)" if data.decomposed else ")"),
        f"concentration unit: {mass_unit}/m^3 (OpenFOAM fields carry no mass unit)",
    ]
    if nut_note:
        history.append(nut_note)
    if source is None:
        sxyz = np.zeros((len(times), 3))
        srate = np.zeros(len(times))
        history.append("source: not described, recorded as position (0, 0, 0) and rate 0")
    else:
        sxyz = source.position_at(times)
        srate = source.rate_at(times)
    vol = data.geometry.volumes
    config = {
        "importer": "openfoam",
        "case": case.name,
        "field": data.scalar_name,
        "flow_time": data.flow_time,
        "plane_height_m": height_m,
        "cell_m": cell_m,
        "decomposed_processors": data.decomposed,
        "source": None if source is None else {
            "rate": [list(r) for r in source.rate],
            **({"position_m": list(source.position_m)} if source.position_m is not None else {}),
            **({"path": [list(w) for w in source.path]} if source.path is not None else {}),
        },
    }
    ds = make_dataset(
        scenario_names=[scenario_name or case.name],
        splits=[split],
        times_s=times,
        x_m=sampler.x_m,
        y_m=sampler.y_m,
        concentration=conc[None],
        u=u[0],
        v=u[1],
        w=u[2],
        nu_t=sampler(nut),
        fluid_fraction=sampler.fluid_fraction,
        source_xyz=sxyz[None],
        source_rate=srate[None],
        plane_height_m=height_m,
        mass_unit=mass_unit,
        generator=GENERATOR,
        generator_version=__version__,
        scenario_config=config,
        origin=str(case),
    )
    # The 3D scalar mass in the case (injected and outflow are not known from the fields).
    ds["mass_room"] = (("scenario", "time"), (data.scalar @ vol)[None], {"units": mass_unit})
    ds.attrs["history"] = "\n".join(history)
    return ds


# ----------------------------------------------------------------------------- face fields


def read_face_field(path: str | Path, mesh_dir: str | Path) -> tuple[np.ndarray, dict[str, tuple[str, int, np.ndarray]]]:
    """A surface scalar field (e.g. ``phi``): internal-face values, ``{patch: (type, startFace, values)}``."""
    foamlib = require_foamlib()
    path, mesh_dir = Path(path), Path(mesh_dir)
    for p in (path, mesh_dir / "boundary"):
        if not p.is_file():
            raise OpenFOAMImportError(f"{p}: missing file")
    try:
        f = foamlib.FoamFieldFile(path)
        internal = np.asarray(f.internal_field, dtype=float).ravel()
        bfield = f.boundary_field
        patches = foamlib.FoamFile(mesh_dir / "boundary")[None]
        out = {}
        for name, info in patches:
            n = int(info["nFaces"])
            values = np.broadcast_to(np.asarray(bfield[name].get("value", 0.0), float), (n,)).copy()
            out[name] = (str(info.get("type", "")), int(info["startFace"]), values)
    except Exception as e:  # noqa: BLE001 - foamlib raises parse errors of several kinds
        raise OpenFOAMImportError(f"{path}: cannot read the face field ({_short(e)})") from None
    if not (np.isfinite(internal).all() and all(np.isfinite(v[2]).all() for v in out.values())):
        raise OpenFOAMImportError(f"{path}: face field holds NaN or inf")
    return internal, out
