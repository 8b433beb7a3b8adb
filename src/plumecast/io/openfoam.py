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
    The vertical axis is z. With flow levels, also ``phi`` (the face volume fluxes) of the
    flow time and ``polyMesh/boundary``: summed onto the column's cells
    (:mod:`plumecast.reference.coarse_flux`, :func:`read_face_fluxes`), or left out, said
    so in ``history``, when the flow time holds no ``phi``.

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

import hashlib
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


def _read_entry(path: Path, what: str, element_bytes: tuple[int, ...] = (8,), *, fast: bool = True):
    """The top-level data of a FoamFile (points, faces, owner, ...).

    ``fast``: try the numpy reader of the common list forms first (:func:`_fast_mesh_list`);
    anything else, and every malformed file, goes through the checked foamlib path.
    """
    foamlib = require_foamlib()
    if not path.is_file():
        raise OpenFOAMImportError(f"{path}: missing {what}")
    if fast:
        quick = _fast_mesh_list(path.read_bytes(), element_bytes)
        if quick is not None:
            return quick
    _precheck(path, what, element_bytes)
    try:
        return foamlib.FoamFile(path)[None]
    except Exception as e:  # noqa: BLE001 - foamlib raises parse errors of several kinds
        raise OpenFOAMImportError(f"{path}: cannot read {what} ({_short(e)}); truncated or malformed file?") from None


def _short(e: Exception) -> str:
    msg = " ".join(str(e).split())
    return f"{type(e).__name__}: {msg[:300]}"


# ----------------------------------------------------------------------------- fast lists
#
# foamlib parses an ascii field of 15,000 cells in about 5 ms and the linear pre-check above
# (which guards foamlib against garbled lists) takes another 20 ms: importing 300 snapshots
# of 36 cases spent nearly all its time there. The readers below take the forms OpenFOAM
# itself writes (a nonuniform List<scalar>/List<vector> internalField, vectorField points,
# labelList owner/neighbour, faceList/faceCompactList faces; ascii, or binary with 64-bit
# little-endian scalars) straight into numpy, in about 1 ms. They return None on anything
# unexpected (a comment inside the list, a count that does not match, a token that is not
# a number, another precision), and the caller then takes the checked foamlib path, which
# names the file and line at fault; so they never decide an error message.
# tests/test_import_many.py checks them against foamlib value for value.

_FLOAT_BITS = re.compile(rb"scalar\s*=\s*(\d+)")
_LABEL_BITS = re.compile(rb"label\s*=\s*(\d+)")
_LIST_END = re.compile(rb"\)\s*;")


def _format_of(head: bytes) -> tuple[bool, int, int, bool]:
    """(binary, scalar bytes, label bytes, little-endian) from a FoamFile header."""
    m = re.search(rb"\bformat\s+(\w+)\s*;", head)
    binary = bool(m and m.group(1) == b"binary")
    fb = _FLOAT_BITS.search(head)
    lb = _LABEL_BITS.search(head)
    return binary, int(fb.group(1)) // 8 if fb else 8, int(lb.group(1)) // 8 if lb else 4, b"MSB" not in head


def _ascii_tuples(body: bytes, count: int, width: int, dtype) -> np.ndarray | None:
    """``count`` parenthesised tuples of ``width`` numbers ("(a b c) ...") as a ``(count, width)`` array."""
    toks = body.replace(b"(", b" ( ").replace(b")", b" ) ").split()
    step = width + 2
    if len(toks) != count * step:
        return None
    if count and (set(toks[0::step]) != {b"("} or set(toks[step - 1::step]) != {b")"}):
        return None
    try:
        return np.array([toks[k::step] for k in range(1, width + 1)], dtype=dtype).T.reshape(count, width)
    except ValueError:
        return None


def _fast_internal_field(data: bytes, vector: bool) -> np.ndarray | None:
    """A nonuniform internalField read with numpy, or None when the file is not in the common form."""
    head = data[:4000]
    fm = _FIELD_START.search(data)
    if fm is None:
        return None
    width = {b"scalar": 1, b"vector": 3}.get(fm.group(1))
    if width is None or (width == 3) != vector:
        return None
    count, start = int(fm.group(2)), fm.end()  # start: just after the list's "("
    binary, fbytes, _, little = _format_of(head)
    if binary:
        if fbytes != 8 or not little:
            return None
        end = start + 8 * width * count
        if data[end:end + 1] != b")" or not re.match(rb"\s*;", data[end + 1:end + 64]):
            return None
        arr = np.frombuffer(data, dtype="<f8", count=width * count, offset=start).astype(float)
        return arr.reshape(count, 3) if vector else arr
    if width == 1:
        end = data.find(b")", start)
        if end < 0 or not re.match(rb"\s*;", data[end + 1:end + 64]):
            return None
        body = data[start:end]
        if b"(" in body or b"/" in body:
            return None
        try:
            arr = np.array(body.split(), dtype=float)
        except ValueError:
            return None
        return arr if arr.size == count else None
    m = _LIST_END.search(data, start)
    if m is None or b"/" in data[start:m.start()]:
        return None
    return _ascii_tuples(data[start:m.start()], count, 3, float)


def _fast_mesh_list(data: bytes, element_bytes: tuple[int, ...]) -> np.ndarray | tuple | None:
    """A polyMesh list (points ``(24,)``, labels ``(lb,)``, faces ``(lb, lb)``) read with numpy, or None."""
    head = data[:4000]
    head_end = data.find(b"}", data.find(b"FoamFile")) + 1 if b"FoamFile" in head else 0
    binary, fbytes, lbytes, little = _format_of(head)
    lm = _LIST_START.search(data, head_end)
    if lm is None or not little:
        return None
    count, start = int(lm.group(1)), lm.end()
    points, faces = element_bytes == (24,), len(element_bytes) == 2
    if binary:
        if points and fbytes != 8:
            return None
        dtype = "<f8" if points else f"<i{lbytes}"
        width = 3 if points else 1
        size = np.dtype(dtype).itemsize * width
        end = start + size * count
        if data[end:end + 1] != b")":
            return None
        first = np.frombuffer(data, dtype=dtype, count=width * count, offset=start)
        if not faces:
            return first.astype(float).reshape(count, 3) if points else first.astype(np.int64)
        lm2 = _LIST_START.search(data, end + 1)  # faceCompactList: offsets, then the flat labels
        if lm2 is None or data[end + 1:lm2.start()].strip():
            return None
        count2, start2 = int(lm2.group(1)), lm2.end()
        end2 = start2 + lbytes * count2
        if data[end2:end2 + 1] != b")":
            return None
        flat = np.frombuffer(data, dtype=dtype, count=count2, offset=start2).astype(np.int64)
        return first.astype(np.int64), flat
    m = _LIST_END.search(data, start)
    end = m.start() if m else data.rfind(b")")
    if end < start or b"/" in data[start:end]:
        return None
    body = data[start:end]
    if points:
        return _ascii_tuples(body, count, 3, float)
    if not faces:
        if b"(" in body:
            return None
        try:
            arr = np.array(body.split(), dtype=np.int64)
        except ValueError:
            return None
        return arr if arr.size == count else None
    # faceList "k(a b ...)": only when every face has the same number of vertices, as blockMesh
    # writes (quads); polygonal meshes (snappyHexMesh) take foamlib, once per distinct mesh.
    k = re.match(rb"\s*(\d+)\s*\(", body)
    if k is None:
        return None
    n_vert = int(k.group(1))
    toks = body.replace(b"(", b" ( ").replace(b")", b" ) ").split()
    step = n_vert + 3
    if len(toks) != count * step or set(toks[0::step]) != {k.group(1)} or set(toks[1::step]) != {b"("} \
            or set(toks[step - 1::step]) != {b")"}:
        return None
    try:
        labels = np.array([toks[j::step] for j in range(2, 2 + n_vert)], dtype=np.int64).T
    except ValueError:
        return None
    return labels.reshape(count, n_vert)


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


def read_mesh(mesh_dir: str | Path, *, fast: bool = True) -> CellGeometry:
    """Cell geometry of a ``polyMesh`` folder (ascii or binary files); ``fast``: see :func:`read_field`."""
    mesh_dir = Path(mesh_dir)
    if not mesh_dir.is_dir():
        raise OpenFOAMImportError(f"{mesh_dir}: no mesh folder (constant/polyMesh); is this an OpenFOAM case?")
    lb = _label_bytes(mesh_dir / "owner")
    points = np.asarray(_read_entry(mesh_dir / "points", "mesh points", (24,), fast=fast), dtype=float)
    offsets, flat = _faces_compact(_read_entry(mesh_dir / "faces", "mesh faces", (lb, lb), fast=fast),
                                   mesh_dir / "faces")
    owner = np.asarray(_read_entry(mesh_dir / "owner", "face owners", (lb,), fast=fast), dtype=np.int64).ravel()
    neighbour = np.asarray(_read_entry(mesh_dir / "neighbour", "face neighbours", (lb,), fast=fast),
                           dtype=np.int64).ravel()
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


def read_field(path: str | Path, n_cells: int, *, vector: bool = False, fast: bool = True) -> np.ndarray:
    """The internal field of a volume field file as ``(n,)`` or ``(n, 3)`` floats.

    ``fast`` (default): the numpy reader of the common forms first, foamlib for the rest
    and for every malformed file; False: foamlib always (the path before the numpy
    reader, kept for verification and benchmarks/bench_import.py).
    """
    foamlib = require_foamlib()
    path = Path(path)
    if not path.is_file():
        raise OpenFOAMImportError(f"{path}: missing field file")
    arr = _fast_internal_field(path.read_bytes(), vector) if fast else None
    if arr is None:
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


def read_cell_addressing(processor_dir: str | Path) -> np.ndarray:
    """The global cell label of each of a processor's cells (``constant/polyMesh/cellProcAddressing``).

    ``decomposePar`` writes it; with it a decomposed field goes back into the full mesh's
    cell order without ``reconstructPar``.
    """
    path = Path(processor_dir) / "constant" / "polyMesh" / "cellProcAddressing"
    labels = np.asarray(_read_entry(path, "cell addressing", (_label_bytes(path),)), dtype=np.int64).ravel()
    if len(labels) and labels.min() < 0:
        raise OpenFOAMImportError(f"{path}: negative cell label")
    return labels


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


FLOW_CASE_HINT = ("a scalar case run on a frozen flow (scalarTransportFoam) usually holds none: give --flow-case DIR, "
                  "the finished flow case on the same mesh")


def _flow_dir(root: Path, tds: list[tuple[float, Path]], flow_time: str | None) -> tuple[Path | None, str | None]:
    """The time directory to read U and nut from, or (None, what is missing)."""
    if flow_time is not None:
        try:
            match = [d for t, d in tds if d.name == flow_time or np.isclose(t, float(flow_time))]
        except ValueError:
            match = [d for _, d in tds if d.name == flow_time]
        if not match:
            raise OpenFOAMImportError(f"{root}: no time directory {flow_time!r} for the flow fields")
        return match[0], None
    with_flow = [d for _, d in tds if (d / "U").is_file() and (d / "nut").is_file()]
    if with_flow:
        return with_flow[-1], None
    missing = "U and nut" if not any((d / "U").is_file() for _, d in tds) else "nut"
    if missing == "nut" and any((d / "nut").is_file() for _, d in tds):
        missing = "U and nut in the same time directory"
    return None, f"{root}: missing field: no time directory holds {missing}"


@dataclass
class CaseLayout:
    """Where a case keeps its mesh and fields, found without parsing any field.

    ``roots`` is ``[case]`` for a reconstructed case, else its ``processor*`` folders (whose
    cells are concatenated in that order). ``scalar_files[t][r]`` is the scalar of time
    ``times[t]`` in root ``r``; ``flow_files[r]`` the ``(U, nut)`` of root ``r``, or None
    when the case holds no flow (``flow_missing`` says what is missing).
    """

    case: Path
    roots: list[Path]
    scalar_name: str | None
    times: np.ndarray
    scalar_files: list[list[Path]] = field(repr=False)
    flow_files: list[tuple[Path, Path]] | None = field(repr=False)
    flow_time: str | None
    flow_missing: str | None
    decomposed: int

    @property
    def mesh_dirs(self) -> list[Path]:
        return [r / "constant" / "polyMesh" for r in self.roots]

    def require_flow(self, hint: bool = False) -> list[tuple[Path, Path]]:
        if self.flow_files is None:
            raise OpenFOAMImportError(self.flow_missing + (f"; {FLOW_CASE_HINT}" if hint else ""))
        return self.flow_files

    @property
    def nut_name(self) -> str:
        t = self.flow_time
        return f"{self.case}/{t}/nut" if not self.decomposed else f"{self.case}/processor*/{t}/nut"


def _processors(case: Path) -> list[Path]:
    return sorted((p for p in case.iterdir() if p.is_dir() and re.fullmatch(r"processor\d+", p.name)),
                  key=lambda p: int(p.name[9:]))


def _check_processor(proc: Path, case: Path) -> None:
    if not time_dirs(proc):
        raise OpenFOAMImportError(
            f"{proc}: decomposed case without time directories; run the case or `reconstructPar` first"
        )
    if not (proc / "constant" / "polyMesh").is_dir():
        raise OpenFOAMImportError(
            f"{proc}: decomposed case without a processor mesh (constant/polyMesh); run `reconstructPar` in "
            f"{case} and import again"
        )


def case_layout(case_dir: str | Path, *, field_name: str | None = None, flow_time: str | None = None) -> CaseLayout:
    """The layout of a finished (or decomposed) scalar case; OpenFOAMImportError names what is wrong."""
    case = Path(case_dir)
    if not case.is_dir():
        raise OpenFOAMImportError(f"{case}: no such case directory")
    procs = _processors(case)
    name = _pick_scalar([case] + procs, field_name)
    reconstructed = any((d / name).is_file() and t > 0 for t, d in time_dirs(case)) or not procs
    roots = [case] if reconstructed else procs
    per_root, flows, flow_names, missing = [], [], [], None
    for root in roots:
        if not reconstructed:
            _check_processor(root, case)
        tds = time_dirs(root)
        scalars = {t: d / name for t, d in tds if (d / name).is_file()}
        if not scalars:
            raise OpenFOAMImportError(f"{root}: missing field: no time directory holds the scalar {name!r}")
        per_root.append(scalars)
        fdir, why = _flow_dir(root, tds, flow_time)
        if fdir is None:
            missing = missing or why
        else:
            flows.append((fdir / "U", fdir / "nut"))
            flow_names.append(fdir.name)
    t0 = sorted(per_root[0])
    for root, scalars in zip(roots, per_root):
        if sorted(scalars) != t0:
            raise OpenFOAMImportError(
                f"{root}: its times of {name!r} differ from {roots[0].name}'s; the decomposed case is incomplete"
            )
    return CaseLayout(
        case=case, roots=roots, scalar_name=name, times=np.array(t0, float),
        scalar_files=[[s[t] for s in per_root] for t in t0],
        flow_files=None if missing else flows, flow_time=None if missing else flow_names[0],
        flow_missing=missing, decomposed=0 if reconstructed else len(roots),
    )


def flow_layout(case_dir: str | Path, *, flow_time: str | None = None) -> CaseLayout:
    """The layout of a finished flow case (U and nut, no scalar needed), for ``--flow-case``."""
    case = Path(case_dir)
    if not case.is_dir():
        raise OpenFOAMImportError(f"{case}: no such flow case directory")
    procs = _processors(case)
    # As for the scalar: the case root unless only the processors hold a computed (t > 0) flow.
    reconstructed = not procs or any((d / "U").is_file() and t > 0 for t, d in time_dirs(case))
    roots = [case] if reconstructed else procs
    flows, names = [], []
    for root in roots:
        if not reconstructed:
            _check_processor(root, case)
        fdir, why = _flow_dir(root, time_dirs(root), flow_time)
        if fdir is None:
            raise OpenFOAMImportError(f"{why} (the flow case)")
        flows.append((fdir / "U", fdir / "nut"))
        names.append(fdir.name)
    return CaseLayout(case=case, roots=roots, scalar_name=None, times=np.zeros(0), scalar_files=[],
                      flow_files=flows, flow_time=names[0], flow_missing=None,
                      decomposed=0 if reconstructed else len(roots))


def layout_geometry(layout: CaseLayout, *, fast: bool = True) -> tuple[CellGeometry, list[int]]:
    """The cell geometry of a case (processor meshes concatenated) and the cell count of each root."""
    parts = [read_mesh(d, fast=fast) for d in layout.mesh_dirs]
    geom = parts[0] if len(parts) == 1 else CellGeometry.concatenate(parts)
    return geom, [p.n_cells for p in parts]


def mesh_signature(layout: CaseLayout) -> str:
    """A hash of the case's mesh files: cases with the same signature share one parsed mesh."""
    h = hashlib.blake2b(digest_size=16)
    for d in layout.mesh_dirs:
        for name in ("points", "faces", "owner", "neighbour"):
            f = d / name
            h.update(name.encode())
            h.update(f.read_bytes() if f.is_file() else b"<missing>")
    return h.hexdigest()


def _read_values(files: list[Path], counts: list[int], *, vector: bool = False, fast: bool = True) -> np.ndarray:
    """One field over the case's roots, concatenated in root order."""
    parts = [read_field(f, n, vector=vector, fast=fast) for f, n in zip(files, counts)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def read_flow(layout: CaseLayout, counts: list[int], *, fast: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``U (n, 3)`` in m/s and ``nut (n,)`` in m^2/s of a case holding them."""
    files = layout.require_flow()
    U = _read_values([u for u, _ in files], counts, vector=True, fast=fast)
    nut = _read_values([n for _, n in files], counts, fast=fast)
    return U, nut


def read_case(case_dir: str | Path, *, field_name: str | None = None, flow_time: str | None = None,
              fast: bool = True) -> CaseData:
    """Read a finished (or decomposed) case; OpenFOAMImportError names what is wrong."""
    layout = case_layout(case_dir, field_name=field_name, flow_time=flow_time)
    geom, counts = layout_geometry(layout, fast=fast)
    U, nut = read_flow(layout, counts, fast=fast)
    scalar = np.stack([_read_values(files, counts, fast=fast) for files in layout.scalar_files])
    return CaseData(geom, layout.times, scalar, U, nut, layout.scalar_name, layout.flow_time, layout.decomposed)


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
    _matrix: object = field(default=None, repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        return self.fluid_fraction.shape

    def matrix(self):
        """The sparse ``(ny * nx, len(cells))`` averaging matrix: weights over each coarse cell's sum, 0 in solids.

        Built once per sampler; applying it to all snapshots in one product replaces a
        Python loop of ``np.add.at`` per snapshot.
        """
        if self._matrix is None:
            from scipy.sparse import csr_matrix

            ny, nx = self.shape
            den = np.bincount(self.bins, weights=self.weights, minlength=ny * nx)
            keep = (self.fluid_fraction.ravel() > 0) & (den > 0)
            w = np.where(keep[self.bins], self.weights / np.maximum(den[self.bins], 1e-300), 0.0)
            self._matrix = csr_matrix((w, (self.bins, np.arange(len(self.cells)))), shape=(ny * nx, len(self.cells)))
        return self._matrix

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Cell values ``(..., n)`` to the plane ``(..., ny, nx)``; 0 in solid coarse cells."""
        values = np.asarray(values, float)
        ny, nx = self.shape
        lead = values.shape[:-1]
        v = values[..., self.cells].reshape(-1, len(self.cells))
        out = np.asarray((self.matrix() @ v.T).T)
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


def containing_cells(geom: CellGeometry, points) -> tuple[np.ndarray, np.ndarray]:
    """``(cell (n,), found (n,))``: for each point ``(n, 3)`` the lowest-numbered cell whose box holds it.

    Boxes of the 8 cells whose centres are nearest, with a round-off margin; ``cell`` is 0
    where ``found`` is False (inside an obstacle or outside the room).
    """
    from scipy.spatial import cKDTree

    flat = np.asarray(points, float).reshape(-1, 3)
    k = min(8, geom.n_cells)
    _, idx = cKDTree(geom.centres).query(flat, k=k)
    idx = np.asarray(idx).reshape(len(flat), k)
    eps = 1e-9 * max(1.0, float(np.abs(geom.hi).max()))
    inside = ((geom.lo[idx] - eps <= flat[:, None, :]) & (flat[:, None, :] <= geom.hi[idx] + eps)).all(axis=2)
    found = inside.any(axis=1)
    lowest = np.where(inside, idx, np.iinfo(np.int64).max).min(axis=1)
    return np.where(found, lowest, 0), found


def emitting_cell_centres(geom: CellGeometry, xyz) -> np.ndarray:
    """``(..., 3)`` centres (m) of the cells a point source at ``xyz (..., 3)`` emits into in OpenFOAM.

    fvOptions' ``selectionMode points`` takes the one cell ``findCell`` returns: the cell
    holding the point, and for a point on a face, edge or corner the lowest-numbered of the
    cells touching it (on blockMesh meshes, numbered x fastest, then y, then z: the lower
    cell along z, then y, then x; measured in tests/test_openfoam_engine.py)
    (:func:`containing_cells`). A point in no cell keeps its position.
    """
    p = np.asarray(xyz, float)
    flat = p.reshape(-1, 3)
    cell, found = containing_cells(geom, flat)
    return np.where(found[:, None], geom.centres[cell], flat).reshape(p.shape)


def source_problem(source, geom: CellGeometry, sampler: MeshPlaneSampler, times) -> str | None:
    """Why a declared source cannot be in this case, or None.

    On the plane: (x, y) in a fluid plane cell (as every importer checks). In 3D: the
    point inside a mesh cell's bounding box (the cells whose centres are nearest), so a
    source inside an obstacle (a hole in the mesh) or outside the room is refused. On a
    mesh of axis-aligned hexahedra the box is the cell; on other polyhedra it is a
    slightly larger region, so a point just outside a slanted wall can pass.
    """
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
    outside = np.flatnonzero(~containing_cells(geom, points)[1])
    if outside.size:
        x, y, z = points[outside[0]]
        return (f"the source at ({x:g}, {y:g}, {z:g}) m lies in no cell of the mesh: inside an obstacle or outside "
                "the room")
    return None



@dataclass(frozen=True)
class CaseSpec:
    """One case of an import: its folder, scenario name (default: the folder's), split and source.

    ``source`` is a :class:`plumecast.scenario.Source` (position or path, rate) or None
    (unknown: zeros, said so in ``history``).
    """

    path: Path
    name: str | None = None
    split: str = "train"
    source: object = None

    @property
    def scenario(self) -> str:
        return self.name or Path(self.path).name


# The state every parsing worker shares: set once per worker by _init_worker (through the
# pool's pipe, never a file), so the sampler is not sent again with every task.
_WORKER: dict = {}


def _init_worker(state: dict) -> None:
    _WORKER.clear()
    _WORKER.update(state)


def _scalar_task(files_by_time: list[list[Path]], counts: list[int], order) -> tuple[np.ndarray, np.ndarray]:
    """Read one case's scalar at some times: the plane frames ``(t, ny, nx)`` and the 3D mass ``(t,)``.

    ``order`` (or None) puts the case's cells in the order of the mesh the sampler was built on.
    """
    fast = _WORKER["fast"]
    values = np.stack([_read_values(files, counts, fast=fast) for files in files_by_time])
    if order is not None:
        values = values[:, order]
    return _WORKER["sampler"](values), values @ _WORKER["geom"].volumes


def _flow_task(layout: CaseLayout, counts: list[int], order) -> tuple[np.ndarray, np.ndarray]:
    U, nut = read_flow(layout, counts, fast=_WORKER["fast"])
    return (U, nut) if order is None else (U[order], nut[order])


def _source_task(case: Path, field: str) -> tuple:
    """The case's fvOptions point source of ``field`` and the notes on reading it (:mod:`plumecast.io.fvoptions`).

    In the pool because foamlib parses a long walk's fvOptions (one entry per window) in seconds.
    """
    from plumecast.io.fvoptions import read_case_point_source

    return read_case_point_source(case, field, _WORKER["geom"])


_TASKS = {"scalar": _scalar_task, "flow": _flow_task, "source": _source_task}


def _run_task(task: tuple) -> tuple:
    kind, args = task[0], task[1:]
    return _TASKS[kind](*args)


class TaskFailed(Exception):
    """Task ``index`` failed with ``error`` (so that the caller can name its case)."""

    def __init__(self, index: int, error: Exception):
        super().__init__(index, error)
        self.index, self.error = index, error


def process_pool_context():
    """The multiprocessing context for the importers' parsing pools.

    ``fork`` when this process runs a single thread and has not loaded JAX: workers start
    in milliseconds and inherit the imported modules. Otherwise ``spawn``: forking a
    process with other threads running (JAX starts its own) can deadlock the child, and
    a spawned worker pays about a second to import numpy, xarray and this module.
    """
    import multiprocessing
    import sys
    import threading

    safe = threading.active_count() == 1 and "jax" not in sys.modules and "fork" in multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if safe else "spawn")


def _run_tasks(tasks: list[tuple], state: dict, jobs: int, on_done) -> list:
    """Run ``tasks`` in this process (``jobs`` <= 1) or a pool of ``jobs`` processes; results in task order.

    ``on_done(i, result)`` is called as task ``i`` finishes; workers start as
    :func:`process_pool_context` says. The first failing task's exception is raised and
    the tasks not yet started are cancelled.
    """
    results: list = [None] * len(tasks)
    if jobs <= 1 or len(tasks) <= 1:
        _init_worker(state)
        try:
            for i, task in enumerate(tasks):
                try:
                    results[i] = _run_task(task)
                except Exception as e:
                    raise TaskFailed(i, e) from None
                on_done(i, results[i])
        finally:
            _WORKER.clear()
        return results
    return run_in_pool(_run_task, tasks, jobs, on_done, initializer=_init_worker, initargs=(state,))


def run_in_pool(fn, tasks: list, jobs: int, on_done, *, initializer=None, initargs: tuple = ()) -> list:
    """``fn(task)`` for every task in a pool of ``jobs`` processes (:func:`process_pool_context`); results in task order.

    ``on_done(i, result)`` is called as task ``i`` finishes. The first failure raises
    :class:`TaskFailed` naming the task, and the tasks not yet started are cancelled.
    Both importers parse their cases through it.
    """
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    results: list = [None] * len(tasks)
    ex = ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=process_pool_context(),
                             initializer=initializer, initargs=initargs)
    try:
        pending = {ex.submit(fn, t): i for i, t in enumerate(tasks)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_EXCEPTION)
            for f in done:
                i = pending.pop(f)
                try:
                    results[i] = f.result()  # re-raises the worker's error (an importer error names the file)
                except Exception as e:
                    raise TaskFailed(i, e) from None
                on_done(i, results[i])
    finally:
        ex.shutdown(wait=True, cancel_futures=True)
    return results


def _match_cells(a: CellGeometry, b: CellGeometry) -> tuple[np.ndarray | None, str | None]:
    """How mesh ``b``'s cells map onto mesh ``a``'s: ``(order, None)`` with ``b_values[order]`` in ``a``'s
    order (``order`` None when already the same), or ``(None, how they differ)``.

    A decomposed case holds the same cells as the reconstructed one in another order
    (processor by processor), so cells are matched by their centres; the volumes and
    extents must then agree too.
    """
    if a.n_cells != b.n_cells:
        return None, f"{b.n_cells} cells against {a.n_cells}"
    tol = 1e-9 * max(1.0, float(np.abs(a.hi).max()))

    def same(order):
        bb = (lambda x: x) if order is None else (lambda x: x[order])
        return (np.abs(a.centres - bb(b.centres)).max() <= tol and np.abs(a.lo - bb(b.lo)).max() <= tol
                and np.abs(a.hi - bb(b.hi)).max() <= tol
                and np.abs(a.volumes - bb(b.volumes)).max() <= 1e-9 * float(a.volumes.max()))

    if same(None):
        return None, None
    from scipy.spatial import cKDTree

    dist, order = cKDTree(b.centres).query(a.centres)
    if dist.max() <= tol and len(np.unique(order)) == a.n_cells and same(order):
        return order, None
    return None, (f"the same number of cells ({a.n_cells}) but in other places: cell centres up to "
                  f"{float(dist.max()):.3g} m from the nearest of the other mesh")


def _level_samplers(geom: CellGeometry, plane: MeshPlaneSampler, height_m: float, cell_m: float,
                    levels: int | None) -> tuple[int, np.ndarray, list[MeshPlaneSampler]]:
    """The layers ``n``, the heights (m) of ``column_levels_m(mesh top, plane height, n)`` and a sampler at each.

    ``levels`` None: the finest column of up to ``DEFAULT_COLUMN_LEVELS`` layers that keeps a
    cell centre in every layer (:func:`plumecast.io.dataset.finest_column_levels`); a given
    number that leaves a layer empty is refused. The room height is the mesh's top (z = 0
    is taken as the floor); a level at the plane height reuses the plane's sampler, so that
    level equals the plane's flow exactly.
    """
    from plumecast.io.dataset import column_levels_m, column_too_fine, finest_column_levels

    if levels is not None and levels <= 0:
        return 0, np.zeros(0), []
    zlo, zhi = float(geom.lo[:, 2].min()), float(geom.hi[:, 2].max())
    centres_z = geom.centres[:, 2]
    try:
        n = finest_column_levels(zhi, height_m, centres_z) if levels is None else int(levels)
        z = column_levels_m(zhi, height_m, n) if n else np.zeros(0)
        problem = column_too_fine(zhi, height_m, n, centres_z) if n else None
    except ValueError as e:
        raise OpenFOAMImportError(f"flow levels: {e}; choose --levels 0") from None
    if problem:
        finest = finest_column_levels(zhi, height_m, centres_z, upto=n)
        raise OpenFOAMImportError(f"--levels {n}: {problem} (the mesh is {zhi:g} m high); the finest column this "
                                  f"mesh allows has --levels {finest}" + (" (0: none)" if not finest else ""))
    z = z[z > zlo]
    samplers = []
    for zk in z:
        if np.isclose(zk, height_m, rtol=0, atol=1e-9 * max(1.0, zhi)):
            samplers.append(plane)
            continue
        try:
            samplers.append(mesh_plane_sampler(geom, float(zk), cell_m))
        except OpenFOAMImportError as e:
            raise OpenFOAMImportError(f"flow level at {zk:g} m: {e}; or choose --levels 0 (no levels)") from None
    return n, z, samplers


def _level_fluxes(layout: CaseLayout, counts: list[int], order, geom: CellGeometry, sampler: MeshPlaneSampler,
                  cell_m: float, level_z: np.ndarray, fast: bool) -> tuple[dict, str]:
    """The flow's ``phi`` summed onto the column's cells (:mod:`plumecast.reference.coarse_flux`) and a history line.

    ``layout`` holds the flow (its flow time), ``counts`` its cells per root and ``order``
    (or None) puts its cells in ``geom``'s order. Without ``phi`` at the flow time, or when
    the sums do not balance, no fluxes (``{}``) and the line says why; a malformed ``phi``
    raises OpenFOAMImportError naming the file.
    """
    from plumecast.io.dataset import FLUX_DIVERGENCE_TOL
    from plumecast.reference.coarse_flux import column_fluxes, relative_divergence

    phis = [u.parent / "phi" for u, _ in layout.require_flow()]
    missing = [p for p in phis if not p.is_file()]
    if missing:
        return {}, (f"coarse level fluxes: not written, no phi at the flow time {layout.flow_time} ({missing[0]} is "
                    "missing)")
    where = phis[0] if len(phis) == 1 else f"{layout.case}/processor*/{layout.flow_time}/phi"
    faces = _face_fluxes_of(list(zip(layout.mesh_dirs, phis)), counts, fast=fast)
    if order is not None:  # this flow's cell labels to geom's (a decomposed flow case, cells in another order)
        label = np.empty(len(order), np.int64)
        label[order] = np.arange(len(order))
        faces = (label[faces[0]], faces[1], label[faces[2]], faces[3])
    try:
        fluxes = column_fluxes(geom.centres, geom.volumes, faces, x0=float(sampler.x_m[0]) - cell_m / 2,
                               y0=float(sampler.y_m[0]) - cell_m / 2, cell_m=cell_m, shape=sampler.shape,
                               levels_m=level_z, height_m=float(geom.hi[:, 2].max()), tolerance=FLUX_DIVERGENCE_TOL)
    except ValueError as e:
        return {}, f"coarse level fluxes: not written, {where}: {e}"
    return fluxes, (f"coarse level fluxes: {where} summed onto the column's cells (net outflow of a cell at most "
                    f"{relative_divergence(fluxes):.1e} of the largest face flux)")


def _source_config(source) -> dict | None:
    if source is None:
        return None
    return {
        "rate": [list(r) for r in source.rate],
        **({"position_m": list(source.position_m)} if source.position_m is not None else {}),
        **({"path": [list(w) for w in source.path]} if source.path is not None else {}),
    }


# A declared source and the case's own fvOptions source must agree: in position within this many plane
# cells wherever the declared source emits, in total emission within this share (a unit slip is a factor 1000).
SOURCE_AGREEMENT_CELLS = 1.0
SOURCE_AGREEMENT_MASS = 0.1


def _check_own_source(own, spec: CaseSpec, geom, sampler, times, cell_m: float) -> None:
    """Refuse a case's fvOptions point source ``own`` that cannot be the case's source.

    Inside the mesh and on the plane's fluid (:func:`source_problem`), and against the case's
    declared source where there is one (positions within ``SOURCE_AGREEMENT_CELLS`` plane
    cells wherever the declared source emits, emitted mass within ``SOURCE_AGREEMENT_MASS``):
    :class:`OpenFOAMImportError` naming both, for the caller to prefix with the case.
    """
    fmt = lambda p: ", ".join(f"{v:g}" for v in p)  # noqa: E731
    starts = own.starts_s[np.isfinite(own.starts_s)]
    problem = source_problem(own, geom, sampler, np.union1d(times, starts[(starts >= times[0]) & (starts <= times[-1])]))
    if problem:
        raise OpenFOAMImportError(f"its fvOptions point source ({own.entries[0]}): {problem}")
    if spec.source is None:
        return
    on = times[spec.source.rate_at(times) > 0]
    gap = np.linalg.norm(spec.source.position_at(on) - own.position_at(on), axis=-1)
    if gap.size and gap.max() > SOURCE_AGREEMENT_CELLS * cell_m:
        i = int(np.argmax(gap))
        raise OpenFOAMImportError(
            f"at t = {on[i]:g} s the declared source ({fmt(spec.source.position_at(on[i]))}) m is "
            f"{gap[i]:.3g} m from the point source the case's fvOptions declare ({fmt(own.position_at(on[i]))}) m "
            f"({own.entries[0]}); correct the manifest or the case")
    fine = np.linspace(times[0], times[-1], 20 * len(times) + 1)
    declared, emitted = (np.trapezoid(s.rate_at(fine), fine) for s in (spec.source, own))
    if abs(declared - emitted) > SOURCE_AGREEMENT_MASS * max(declared, emitted):
        raise OpenFOAMImportError(
            f"the declared source emits {declared:.4g} over {times[0]:g} .. {times[-1]:g} s, the case's "
            f"fvOptions {emitted:.4g} ({own.entries[0]}); their units or rates differ: correct the manifest or "
            "the case")


def import_openfoam_cases(
    cases,
    *,
    height_m: float,
    cell_m: float,
    field_name: str | None = None,
    flow_time: str | None = None,
    flow_case: str | Path | None = None,
    mass_unit: str = "mg",
    levels: int | None = None,
    jobs: int = 1,
    progress=None,
    fast: bool = True,
    source_cell: bool = False,
):
    """Finished OpenFOAM cases on one mesh to one validated dataset, one scenario per case.

    ``cases``: :class:`CaseSpec` objects or case folders. Every case must share the mesh
    and the snapshot times; the mesh is parsed once per distinct set of mesh files (a
    case whose mesh files differ is parsed and compared, and refused when its cells
    differ) and the plane sampler is built once. U and nut come from ``flow_case`` (a
    finished flow case on the same mesh, its latest time holding both, or ``flow_time``)
    when given, else from each case, whose flows must then agree (one dataset holds one
    flow). ``levels`` > 0 also samples U and nut at ``column_levels_m(mesh top, height_m,
    levels)`` into the optional level variables (and sums phi onto the column's cells);
    None picks the finest column of up to ``DEFAULT_COLUMN_LEVELS`` layers that keeps a mesh
    cell centre in every layer; 0 writes none. ``jobs`` > 1 parses the cases' fields in
    that many processes; ``progress(done, total)`` counts finished cases. ``fast``: see
    :func:`read_field`. ``source_cell``: record each declared source at the centre of the
    mesh cell a point source there emits into (:func:`emitting_cell_centres`), for cases
    whose sources are fvOptions ``selectionMode points``. Any error raises OpenFOAMImportError
    naming the case (and file).
    """
    from plumecast.io.dataset import SPLITS, make_dataset

    specs = [c if isinstance(c, CaseSpec) else CaseSpec(Path(c)) for c in cases]
    if not specs:
        raise OpenFOAMImportError("no OpenFOAM case given")
    if not (np.isfinite(cell_m) and cell_m > 0):
        raise OpenFOAMImportError(f"cell size must be positive, got {cell_m}")
    if not np.isfinite(height_m):
        raise OpenFOAMImportError(f"plane height must be a finite number of metres, got {height_m}")
    if levels is not None and (int(levels) != levels or levels < 0):
        raise OpenFOAMImportError(f"levels must be a whole number >= 0, got {levels}")
    multi = len(specs) > 1
    names = [c.scenario for c in specs]

    def where(k: int) -> str:
        return f"case {names[k]!r} ({specs[k].path})" if multi else str(specs[k].path)

    def named(k: int, e: Exception) -> OpenFOAMImportError:
        return OpenFOAMImportError(f"{where(k)}: {e}" if multi else str(e))

    seen: dict[str, int] = {}
    for k, c in enumerate(specs):
        if c.split not in SPLITS:
            raise OpenFOAMImportError(f"{where(k)}: split {c.split!r} is not one of {', '.join(SPLITS)}")
        if names[k] in seen:
            raise OpenFOAMImportError(f"{where(k)}: scenario name {names[k]!r} is already used by "
                                      f"{specs[seen[names[k]]].path}; name the cases apart")
        seen[names[k]] = k

    # 1. Layouts (file names only, no parsing).
    layouts = []
    for k, c in enumerate(specs):
        try:
            layout = case_layout(c.path, field_name=field_name, flow_time=None if flow_case else flow_time)
            if flow_case is None:
                layout.require_flow(hint=True)
        except OpenFOAMImportError as e:
            raise named(k, e) from None
        layouts.append(layout)
    flow = flow_layout(flow_case, flow_time=flow_time) if flow_case is not None else None

    # 2. Meshes: one parse per distinct set of mesh files; every case must have the first's cells.
    # parsed[sig] = (geometry, cells per root, order of its cells in the first mesh's order or None)
    parsed: dict[str, tuple[CellGeometry, list[int], np.ndarray | None]] = {}
    counts: list[list[int]] = []
    orders: list[np.ndarray | None] = []
    geom = None
    for k, layout in enumerate(layouts + ([flow] if flow else [])):
        sig = mesh_signature(layout)
        label = where(k) if k < len(layouts) else f"flow case {flow.case}"
        if sig not in parsed:
            try:
                g, n_root = layout_geometry(layout, fast=fast)
            except OpenFOAMImportError as e:
                raise (named(k, e) if k < len(layouts) else OpenFOAMImportError(f"{label}: {e}")) from None
            order = None
            if geom is None:
                geom = g
            else:
                order, diff = _match_cells(geom, g)
                if diff:
                    raise OpenFOAMImportError(
                        f"{label}: its mesh differs from {where(0)}'s ({diff}); one dataset needs one mesh and plane "
                        "grid: import it separately"
                    )
            parsed[sig] = (g, n_root, order)
        counts.append(parsed[sig][1])
        orders.append(parsed[sig][2])

    # 3. The plane and level samplers, built once.
    sampler = mesh_plane_sampler(geom, height_m, cell_m)
    if not (sampler.fluid_fraction > 0).any():
        raise OpenFOAMImportError(f"{where(0)}: no fluid at the plane height {height_m} m")
    try:
        n_layers, level_z, level_samplers = _level_samplers(geom, sampler, height_m, cell_m,
                                                            None if levels is None else int(levels))
    except OpenFOAMImportError as e:
        raise OpenFOAMImportError(f"{where(0)}: {e}") from None
    times = layouts[0].times
    for k, layout in enumerate(layouts[1:], 1):
        if not np.array_equal(layout.times, times):
            raise OpenFOAMImportError(
                f"{where(k)}: its {len(layout.times)} times of {layout.scalar_name!r} "
                f"({layout.times[0]:g} .. {layout.times[-1]:g} s) differ from {where(0)}'s {len(times)} "
                f"({times[0]:g} .. {times[-1]:g} s); one dataset needs one time axis"
            )
    ny, nx = sampler.shape
    require_memory(ny * nx * 8 * (3 * len(times) * len(specs) + 12 + 9 * len(level_z)),
                   f"a plane grid of {ny} x {nx} cells at {len(times)} times for {len(specs)} case(s)",
                   "choose a larger --cell or import fewer cases at once")
    for k, c in enumerate(specs):
        if c.source is not None:
            problem = source_problem(c.source, geom, sampler, times)
            if problem:
                raise OpenFOAMImportError(f"{where(k)}: {problem}")

    # 4. Parse each case's fvOptions source (first: checked as each finishes, so that a bad one
    # stops the import early), its fields (times in chunks so that every job has work), and the flow.
    jobs = max(1, int(jobs))
    chunks = min(len(times), max(1, -(-jobs // len(specs)))) if jobs > 1 else 1
    tasks = [("source", c.path, layouts[k].scalar_name) for k, c in enumerate(specs)]
    owner = list(range(len(specs)))
    for k, layout in enumerate(layouts):
        for part in np.array_split(np.arange(len(times)), chunks):
            tasks.append(("scalar", [layout.scalar_files[t] for t in part], counts[k], orders[k]))
            owner.append(k)
        if flow is None:
            tasks.append(("flow", layout, counts[k], orders[k]))
            owner.append(k)
    if flow is not None:
        tasks.append(("flow", flow, counts[-1], orders[-1]))
        owner.append(0)
    left = np.bincount(owner, minlength=len(specs))
    report = progress or (lambda done, total: None)
    report(0, len(specs))

    own_sources: list = [None] * len(specs)
    notes_by_case: list[list[str]] = [[] for _ in specs]

    def on_done(i: int, result) -> None:
        k = owner[i]
        if tasks[i][0] == "source":
            own, notes = result
            notes_by_case[k] = [f"{names[k]}: {n}" for n in notes] if multi else notes
            if own is not None:
                try:
                    _check_own_source(own, specs[k], geom, sampler, times, cell_m)
                except OpenFOAMImportError as e:
                    raise OpenFOAMImportError(f"{where(k)}: {e}") from None
            own_sources[k] = own
        left[k] -= 1
        if left[k] == 0:
            report(int((left == 0).sum()), len(specs))

    state = {"sampler": sampler, "geom": geom, "fast": fast}
    try:
        results = _run_tasks(tasks, state, jobs, on_done)
    except OpenFOAMImportError:  # a case's fvOptions source refused as it finished
        raise
    except TaskFailed as t:
        k = owner[t.index]
        label = where(k) if tasks[t.index][1] is not flow else f"flow case {flow.case}"
        if tasks[t.index][0] == "source":  # fvOptions errors name the file relative to the case
            raise OpenFOAMImportError(f"{where(k)}: {t.error}") from None
        if isinstance(t.error, OpenFOAMImportError):
            raise (named(k, t.error) if tasks[t.index][1] is not flow else
                   OpenFOAMImportError(f"{label}: {t.error}")) from None
        # A worker that died (out of memory, killed) or failed otherwise rather than a file at fault.
        raise OpenFOAMImportError(f"{label}: parsing its fields failed: {_short(t.error)}") from None
    except Exception as e:  # the pool itself broke (a worker killed before any task ran)
        raise OpenFOAMImportError(f"parsing the cases' fields failed: {_short(e)}") from None
    source_notes = [n for notes in notes_by_case for n in notes]  # in case order, however the pool finished

    conc = np.zeros((len(specs), len(times), ny, nx))
    mass = np.zeros((len(specs), len(times)))
    filled = np.zeros(len(specs), int)
    flows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for task, k, res in zip(tasks, owner, results):
        if task[0] == "scalar":
            m = len(task[1])
            conc[k, filled[k]:filled[k] + m], mass[k, filled[k]:filled[k] + m] = res
            filled[k] += m
        elif task[0] == "flow":
            flows[k] = res
    U, nut = flows[0]
    if flow is None:  # one dataset holds one flow: every case must carry the first's
        for k in range(1, len(specs)):
            Uk, nutk = flows[k]
            gap_u = float(np.abs(Uk - U).max())
            gap_n = float(np.abs(nutk - nut).max())
            if gap_u > 1e-6 * max(float(np.abs(U).max()), 1e-30) or gap_n > 1e-6 * max(float(np.abs(nut).max()), 1e-30):
                raise OpenFOAMImportError(
                    f"{where(k)}: its flow (U, nut from time {layouts[k].flow_time}) differs from {where(0)}'s by up "
                    f"to {gap_u:.3g} m/s and {gap_n:.3g} m^2/s; one dataset holds one flow field: give --flow-case "
                    "(the flow all cases ran on) or import the cases separately"
                )
    nut_layout = flow if flow is not None else layouts[0]
    nut = np.array(nut, float)
    used = np.unique(np.concatenate([sampler.cells] + [s.cells for s in level_samplers]))
    try:
        nut[used], nut_note = nonnegative_viscosity(nut[used])
    except ValueError as e:
        raise OpenFOAMImportError(f"{nut_layout.nut_name}: {e} (in the cells about the plane)") from None

    # 5. The dataset.
    flow_from = (f"U and nut from time {layouts[0].flow_time}" if flow is None
                 else f"U and nut from the flow case {flow.case} at time {flow.flow_time}")
    scalar_names = sorted({lay.scalar_name for lay in layouts})
    if multi:
        head = (f"plumecast {__version__} import openfoam {len(specs)} cases ({', '.join(names[:6])}"
                f"{', ...' if len(names) > 6 else ''}): scalar {' / '.join(map(repr, scalar_names))} at {len(times)} "
                f"times, {flow_from}, plane at {height_m} m binned into {cell_m} m cells ({geom.n_cells} mesh cells, "
                f"{len(parsed)} distinct set(s) of mesh files parsed)")
    else:
        case, data = specs[0].path, layouts[0]
        head = (f"plumecast {__version__} import openfoam {Path(case).name}: scalar {data.scalar_name!r} at "
                f"{len(times)} times, {flow_from}, plane at {height_m} m binned into {cell_m} m cells "
                f"({geom.n_cells} mesh cells"
                + (f", {data.decomposed} processor folders concatenated)" if data.decomposed else ")"))
    history = [head, f"concentration unit: {mass_unit}/m^3 (OpenFOAM fields carry no mass unit)"]
    if nut_note:
        history.append(nut_note)
    if len(level_z):
        history.append(f"flow levels: U and nut at {len(level_z)} heights "
                       f"{', '.join(f'{z:.3g}' for z in level_z)} m (column of {n_layers} layers of the mesh's "
                       f"{float(geom.hi[:, 2].max()):g} m height)")
    sxyz = np.zeros((len(specs), len(times), 3))
    srate = np.zeros((len(specs), len(times)))
    unknown = [names[k] for k, c in enumerate(specs) if c.source is None and own_sources[k] is None]
    for k, c in enumerate(specs):
        own = own_sources[k]
        if own is not None:  # where the case's own point source emitted; the declared rate (its units) first
            # A snapshot holds the rate of the step it starts; the last (of several) starts none and takes the
            # step that ends there (the left limit), where the windows end.
            at = times if len(times) == 1 else np.append(times[:-1], np.nextafter(times[-1], -np.inf))
            sxyz[k] = emitting_cell_centres(geom, own.position_at(at))
            srate[k] = c.source.rate_at(times) if c.source is not None else own.rate_at(at)
        elif c.source is not None:
            sxyz[k], srate[k] = c.source.position_at(times), c.source.rate_at(times)
            if source_cell:
                sxyz[k] = emitting_cell_centres(geom, sxyz[k])
    read_own = [names[k] for k in range(len(specs)) if own_sources[k] is not None]
    if read_own:
        history.append("source: the position where the case's fvOptions point source emits (the centre of the mesh "
                       "cell OpenFOAM puts it in), the rate as declared or else as the fvOptions give it"
                       + (f" ({len(read_own)} of {len(specs)} cases)" if multi else ""))
    if source_cell and len(read_own) < len(specs):
        history.append("source: recorded at the centre of the mesh cell a point source there emits into "
                       "(OpenFOAM's selectionMode points; --source-cell)")
    history += [f"fvOptions: {n}" for n in source_notes]
    if unknown:
        history.append("source: not described, recorded as position (0, 0, 0) and rate 0"
                       + (f" ({', '.join(unknown)})" if multi else ""))
    per_case = [
        {"case": Path(c.path).name, "scenario": names[k], "split": c.split, "field": layouts[k].scalar_name,
         "flow_time": layouts[k].flow_time, "decomposed_processors": layouts[k].decomposed,
         "source": _source_config(c.source),
         **({"fvOptions_source": own_sources[k].config()} if own_sources[k] is not None else {})}
        for k, c in enumerate(specs)
    ]
    config = {
        "importer": "openfoam",
        **{k: v for k, v in per_case[0].items() if k not in ("scenario", "split")},
        "plane_height_m": height_m,
        "cell_m": cell_m,
        "flow_case": None if flow is None else str(flow.case),
        "levels_m": [float(z) for z in level_z],
    }
    if flow is not None:
        config["flow_time"] = flow.flow_time
    if multi:
        config["cases"] = per_case
    level_vars = None
    if len(level_z):
        level_vars = {"z_m": level_z, "nu_t": np.stack([s(nut) for s in level_samplers])}
        for i, comp in enumerate("uvw"):
            level_vars[comp] = np.stack([s(U[:, i]) for s in level_samplers])
        k_flow = len(layouts) if flow is not None else 0
        try:
            fluxes, note = _level_fluxes(flow if flow is not None else layouts[0], counts[k_flow], orders[k_flow], geom,
                                         sampler, cell_m, level_z, fast)
        except OpenFOAMImportError as e:
            raise (OpenFOAMImportError(f"flow case {flow.case}: {e}") if flow is not None else named(0, e)) from None
        level_vars.update(fluxes)
        history.append(note)
    u = sampler(U.T)
    ds = make_dataset(
        scenario_names=names,
        splits=[c.split for c in specs],
        times_s=times,
        x_m=sampler.x_m,
        y_m=sampler.y_m,
        concentration=conc,
        u=u[0],
        v=u[1],
        w=u[2],
        nu_t=sampler(nut),
        fluid_fraction=sampler.fluid_fraction,
        source_xyz=sxyz,
        source_rate=srate,
        plane_height_m=height_m,
        mass_unit=mass_unit,
        generator=GENERATOR,
        generator_version=__version__,
        scenario_config=config,
        # The 3D scalar mass in each case (injected and outflow are not known from the fields).
        budget={"mass_room": mass},
        levels=level_vars,
        origin=str(specs[0].path) if not multi else f"{len(specs)} OpenFOAM cases ({specs[0].path}, ...)",
    )
    ds.attrs["history"] = "\n".join(history)
    return ds


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
    flow_case: str | Path | None = None,
    levels: int | None = None,
    jobs: int = 1,
    fast: bool = True,
    source_cell: bool = False,
):
    """A finished OpenFOAM case to a validated plumecast dataset (one scenario).

    ``source`` is a :class:`plumecast.scenario.Source` (position or path, rate) or None
    (unknown: zeros, said so in ``history``). See :func:`import_openfoam_cases` for the rest.
    """
    return import_openfoam_cases(
        [CaseSpec(Path(case_dir), scenario_name, split, source)], height_m=height_m, cell_m=cell_m,
        field_name=field_name, flow_time=flow_time, flow_case=flow_case, mass_unit=mass_unit, levels=levels,
        jobs=jobs, fast=fast, source_cell=source_cell,
    )


# ----------------------------------------------------------------------------- face fields


def _boundary_patches(mesh_dir: Path) -> list[tuple[str, dict]]:
    """The patches of ``polyMesh/boundary``: ``[(name, {type, nFaces, startFace, ...})]`` in file order."""
    foamlib = require_foamlib()
    path = mesh_dir / "boundary"
    if not path.is_file():
        raise OpenFOAMImportError(f"{path}: missing file")
    try:
        patches = [(str(name), dict(info)) for name, info in foamlib.FoamFile(path)[None]]
        for _, info in patches:
            info["nFaces"], info["startFace"] = int(info["nFaces"]), int(info["startFace"])
    except Exception as e:  # noqa: BLE001 - foamlib raises parse errors of several kinds
        raise OpenFOAMImportError(f"{path}: cannot read the patches ({_short(e)}); truncated or malformed file?") from None
    return patches


def _face_field(path: Path, mesh_dir: Path) -> tuple[np.ndarray, list[tuple[str, dict, np.ndarray]]]:
    """A surface scalar field: internal-face values and ``[(patch, boundary info, values)]`` in the boundary's order.

    Read by foamlib (ascii or binary; about 0.15 s for the 130,000 faces of a 40,000-cell
    mesh); a patch without a value (``empty``) gets zeros, a uniform value is repeated.
    """
    foamlib = require_foamlib()
    if not path.is_file():
        raise OpenFOAMImportError(f"{path}: missing file")
    patches = _boundary_patches(mesh_dir)
    _precheck(path, "face values", None)
    try:
        f = foamlib.FoamFieldFile(path)
        internal = np.asarray(f.internal_field, dtype=float).ravel()
        bfield = f.boundary_field
        values = {name: bfield[name].get("value") if name in bfield else None for name, _ in patches}
    except Exception as e:  # noqa: BLE001 - foamlib raises parse errors of several kinds
        raise OpenFOAMImportError(f"{path}: cannot read the face field ({_short(e)}); truncated or malformed file?") from None
    out = []
    for name, info in patches:
        n, v = info["nFaces"], values[name]
        if isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str):
            v = v[1]  # foamlib reads an empty list ("nonuniform 0()") as ("nonuniform", [])
        try:
            if v is None or np.ndim(v) == 0:  # no value (an empty patch), or a uniform one
                arr = np.full(n, 0.0 if v is None else float(v))
            else:
                arr = np.asarray(v, float).ravel()
        except (TypeError, ValueError):
            raise OpenFOAMImportError(f"{path}: patch {name!r} holds a value that is not a list of numbers") from None
        if arr.size != n:
            raise OpenFOAMImportError(f"{path}: patch {name!r} has {arr.size} values for its {n} faces in "
                                      f"{mesh_dir / 'boundary'}; field and mesh disagree")
        out.append((name, info, arr))
    if not (np.isfinite(internal).all() and all(np.isfinite(a).all() for _, _, a in out)):
        raise OpenFOAMImportError(f"{path}: face field holds NaN or inf")
    return internal, out


def read_face_field(path: str | Path, mesh_dir: str | Path) -> tuple[np.ndarray, dict[str, tuple[str, int, np.ndarray]]]:
    """A surface scalar field (e.g. ``phi``): internal-face values, ``{patch: (type, startFace, values)}``."""
    internal, patches = _face_field(Path(path), Path(mesh_dir))
    return internal, {name: (str(info.get("type", "")), info["startFace"], arr) for name, info, arr in patches}


def _root_face_fluxes(mesh_dir: Path, phi_path: Path, n_cells: int | None, fast: bool):
    """One case or processor folder: owner, neighbour and phi checked against each other."""
    lb = _label_bytes(mesh_dir / "owner")
    owner = np.asarray(_read_entry(mesh_dir / "owner", "face owners", (lb,), fast=fast), dtype=np.int64).ravel()
    neighbour = np.asarray(_read_entry(mesh_dir / "neighbour", "face neighbours", (lb,), fast=fast),
                           dtype=np.int64).ravel()
    internal, patches = _face_field(phi_path, mesh_dir)
    if len(internal) != len(neighbour):
        raise OpenFOAMImportError(f"{phi_path}: {len(internal)} internal face values for the {len(neighbour)} internal "
                                  f"faces of {mesh_dir}; field and mesh disagree")
    for name, info, _ in patches:
        if info["startFace"] < len(neighbour) or info["startFace"] + info["nFaces"] > len(owner):
            raise OpenFOAMImportError(f"{mesh_dir / 'boundary'}: patch {name!r} (faces {info['startFace']} + "
                                      f"{info['nFaces']}) lies outside the {len(owner) - len(neighbour)} boundary faces")
    if n_cells is None:
        n_cells = int(max(owner.max(initial=-1), neighbour.max(initial=-1))) + 1
    if len(owner) and (owner.min() < 0 or owner.max() >= n_cells or (len(neighbour) and neighbour.max() >= n_cells)):
        raise OpenFOAMImportError(f"{mesh_dir}: owner/neighbour labels outside the mesh's {n_cells} cells")
    return owner, neighbour, internal, patches, n_cells


def _face_fluxes_of(roots: list[tuple[Path, Path]], counts: list[int] | None = None, *, fast: bool = True
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`read_face_fluxes` of ``(mesh folder, phi file)`` pairs, one per case or processor folder.

    Several roots are a decomposed case: their cells are concatenated in the given order
    (``counts`` cells each, as :func:`layout_geometry` reads them), and each processor
    patch is joined to its partner on the neighbouring processor (same faces, same order)
    into internal faces.
    """
    face_cells, face_flux, boundary_cells, boundary_flux = [], [], [], []
    sides: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, Path]] = {}
    offset = 0
    for r, (mesh_dir, phi_path) in enumerate(roots):
        owner, neighbour, internal, patches, n = _root_face_fluxes(
            Path(mesh_dir), Path(phi_path), None if counts is None else counts[r], fast)
        face_cells.append(np.stack([owner[:len(neighbour)], neighbour], axis=1) + offset)
        face_flux.append(internal)
        for name, info, values in patches:
            cells = owner[info["startFace"]:info["startFace"] + info["nFaces"]] + offset
            if info.get("type") == "processor" and len(roots) > 1:
                sides[(int(info["myProcNo"]), int(info["neighbProcNo"]))] = (cells, values, Path(phi_path))
            else:
                boundary_cells.append(cells)
                boundary_flux.append(values)  # outward from the owner, as OpenFOAM orients boundary faces
        offset += n
    for (me, other), (cells, values, path) in sides.items():
        if me > other:
            continue
        partner = sides.get((other, me))
        if partner is None or len(partner[0]) != len(cells):
            raise OpenFOAMImportError(f"{path}: the processor patch to processor {other} has "
                                      f"{len(cells)} faces, its partner {0 if partner is None else len(partner[0])}; "
                                      "an incomplete decomposed case? run reconstructPar")
        scale = max(float(np.abs(values).max(initial=0.0)), 1e-300)
        if float(np.abs(values + partner[1]).max(initial=0.0)) > 1e-6 * scale:
            raise OpenFOAMImportError(f"{path}: the fluxes through the processor patch to processor {other} are not "
                                      f"the opposite of {partner[2]}'s; the processors hold different times?")
        face_cells.append(np.stack([cells, partner[0]], axis=1))
        face_flux.append(values)  # phi on processor 'me' is outward from its cell: from me to other
    empty = np.zeros(0, np.int64)
    return (np.concatenate(face_cells), np.concatenate(face_flux),
            np.concatenate(boundary_cells) if boundary_cells else empty,
            np.concatenate(boundary_flux) if boundary_flux else np.zeros(0))


def _phi_files(case_dir: str | Path, time: str) -> list[tuple[Path, Path]]:
    """``(mesh folder, phi file)`` of a case at ``time``: the case itself, or its processors when only they hold it."""
    case = Path(case_dir)
    procs = _processors(case) if case.is_dir() else []
    if (case / time / "phi").is_file() or not procs or not (procs[0] / time / "phi").is_file():
        return [(case / "constant" / "polyMesh", case / time / "phi")]
    return [(p / "constant" / "polyMesh", p / time / "phi") for p in procs]


def read_face_fluxes(case_dir: str | Path, time: str, *, fast: bool = True
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The volume fluxes ``phi`` (m^3/s) of a case's faces at the time folder ``time``.

    Returns ``(face_cells (F, 2), face_flux (F,), boundary_cells (B,), boundary_flux
    (B,))`` as :func:`plumecast.reference.coarse_flux.coarse_level_fluxes` takes them:
    each internal face's owner and neighbour and its flux from owner to neighbour, each
    boundary face's cell and its outward flux (every patch but a decomposed case's
    processor patches, which become internal faces). Cells are labelled as
    :func:`read_mesh` (or, decomposed, :func:`layout_geometry`) orders them. Ascii or
    binary; OpenFOAMImportError names a missing or malformed file.
    """
    return _face_fluxes_of(_phi_files(case_dir, time), fast=fast)
