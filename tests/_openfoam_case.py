"""A tiny OpenFOAM case writer for the importer tests and scripts/bad_inputs.py.

A box of hexahedra with optional solid cells and graded spacing, ascii or binary, written
without OpenFOAM (the importer needs foamlib only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HEADER = """FoamFile
{{
    version     2.0;
    format      {fmt};
    class       {cls};{arch}
    location    "{loc}";
    object      {obj};
}}
"""


def _header(fmt, cls, loc, obj):
    arch = '\n    arch        "LSB;label=32;scalar=64";' if fmt == "binary" else ""
    return HEADER.format(fmt=fmt, cls=cls, arch=arch, loc=loc, obj=obj)


def _list(arr, fmt, dtype) -> bytes:
    """An OpenFOAM list body: 'N (items)' in ascii or 'N(raw bytes)' in binary."""
    arr = np.asarray(arr)
    n = len(arr)
    if fmt == "binary":
        return f"{n}\n(".encode() + np.ascontiguousarray(arr, dtype=dtype).tobytes() + b")\n"
    if arr.ndim == 1:
        body = "\n".join(repr(v) if dtype == "<f8" else str(int(v)) for v in arr.tolist())
    else:
        body = "\n".join("(" + " ".join(repr(float(c)) for c in row) + ")" for row in arr)
    return f"{n}\n(\n{body}\n)\n".encode()


def box_mesh(xs, ys, zs, solid=None):
    """Points, faces (list of 4-lists), owner, neighbour, n_cells of a box of hexes."""
    xs, ys, zs = (np.asarray(a, float) for a in (xs, ys, zs))
    nx, ny, nz = len(xs) - 1, len(ys) - 1, len(zs) - 1
    fluid = np.ones((nz, ny, nx), bool) if solid is None else ~np.asarray(solid, bool)
    label = -np.ones((nz, ny, nx), int)
    label[fluid] = np.arange(fluid.sum())
    Z, Y, X = np.meshgrid(zs, ys, xs, indexing="ij")
    points = np.stack([X.ravel(), Y.ravel(), Z.ravel()], axis=1)

    def p(i, j, k):
        return i + (nx + 1) * (j + (ny + 1) * k)

    internal, boundary = [], []
    for k in range(nz):
        for j in range(ny):
            for i in range(nx):
                if not fluid[k, j, i]:
                    continue
                c = label[k, j, i]
                # Faces on the + side of this cell along x, y, z (normal +axis), and the - side on boundaries.
                plus = {
                    "x": [p(i + 1, j, k), p(i + 1, j + 1, k), p(i + 1, j + 1, k + 1), p(i + 1, j, k + 1)],
                    "y": [p(i, j + 1, k), p(i, j + 1, k + 1), p(i + 1, j + 1, k + 1), p(i + 1, j + 1, k)],
                    "z": [p(i, j, k + 1), p(i + 1, j, k + 1), p(i + 1, j + 1, k + 1), p(i, j + 1, k + 1)],
                }
                minus = {
                    "x": [p(i, j, k), p(i, j, k + 1), p(i, j + 1, k + 1), p(i, j + 1, k)],
                    "y": [p(i, j, k), p(i + 1, j, k), p(i + 1, j, k + 1), p(i, j, k + 1)],
                    "z": [p(i, j, k), p(i, j + 1, k), p(i + 1, j + 1, k), p(i + 1, j, k)],
                }
                for ax, (di, dj, dk), n_ax in (("x", (1, 0, 0), nx), ("y", (0, 1, 0), ny), ("z", (0, 0, 1), nz)):
                    ii, jj, kk = i + di, j + dj, k + dk
                    idx = {"x": ii, "y": jj, "z": kk}[ax]
                    if idx < n_ax and fluid[kk, jj, ii]:
                        internal.append((c, label[kk, jj, ii], plus[ax]))
                    else:
                        boundary.append((c, plus[ax]))
                    ii, jj, kk = i - di, j - dj, k - dk
                    idx = {"x": ii, "y": jj, "z": kk}[ax]
                    if idx < 0 or not fluid[kk, jj, ii]:
                        boundary.append((c, minus[ax]))
    internal.sort(key=lambda t: (t[0], t[1]))
    faces = [f for _, _, f in internal] + [f for _, f in boundary]
    owner = [o for o, _, _ in internal] + [o for o, _ in boundary]
    neighbour = [n for _, n, _ in internal]
    return points, faces, np.array(owner), np.array(neighbour), int(fluid.sum()), len(internal)


def write_mesh(root: Path, xs, ys, zs, solid=None, fmt="ascii"):
    points, faces, owner, neighbour, n_cells, n_int = box_mesh(xs, ys, zs, solid)
    d = root / "constant" / "polyMesh"
    d.mkdir(parents=True, exist_ok=True)
    loc = "constant/polyMesh"
    (d / "points").write_bytes(_header(fmt, "vectorField", loc, "points").encode() + _list(points, fmt, "<f8"))
    if fmt == "binary":
        offsets = np.arange(len(faces) + 1) * 4
        flat = np.asarray(faces).ravel()
        body = _list(offsets, fmt, "<i4") + _list(flat, fmt, "<i4")
        (d / "faces").write_bytes(_header(fmt, "faceCompactList", loc, "faces").encode() + body)
    else:
        body = f"{len(faces)}\n(\n" + "\n".join("4(" + " ".join(map(str, f)) + ")" for f in faces) + "\n)\n"
        (d / "faces").write_bytes(_header(fmt, "faceList", loc, "faces").encode() + body.encode())
    (d / "owner").write_bytes(_header(fmt, "labelList", loc, "owner").encode() + _list(owner, fmt, "<i4"))
    (d / "neighbour").write_bytes(_header(fmt, "labelList", loc, "neighbour").encode() + _list(neighbour, fmt, "<i4"))
    n_b = len(faces) - n_int
    (d / "boundary").write_text(
        _header("ascii", "polyBoundaryMesh", loc, "boundary")
        + f"1\n(\n    walls\n    {{\n        type wall;\n        nFaces {n_b};\n        startFace {n_int};\n    }}\n)\n"
    )
    return n_cells


def write_field(path: Path, name: str, values, fmt="ascii"):
    values = np.asarray(values, float)
    vector = values.ndim == 2
    cls, typ = ("volVectorField", "vector") if vector else ("volScalarField", "scalar")
    dims = "[0 1 -1 0 0 0 0]" if vector else "[0 0 0 0 0 0 0]"
    path.parent.mkdir(parents=True, exist_ok=True)
    head = _header(fmt, cls, path.parent.name, name) + f"\ndimensions      {dims};\n\n"
    body = f"internalField   nonuniform List<{typ}> ".encode() + _list(values, fmt, "<f8").rstrip(b"\n") + b";\n"
    bf = "\nboundaryField\n{\n    walls\n    {\n        type            zeroGradient;\n    }\n}\n"
    path.write_bytes(head.encode() + body + bf.encode())


XS = np.linspace(0.0, 2.0, 9)  # 8 cells of 0.25 m
YS = np.linspace(0.0, 1.0, 5)  # 4 cells
ZS = np.linspace(0.0, 1.0, 5)  # 4 cells, centres 0.125 ... 0.875


def centres(xs, ys, zs, solid=None):
    cx, cy, cz = ((a[1:] + a[:-1]) / 2 for a in (xs, ys, zs))
    Z, Y, X = np.meshgrid(cz, cy, cx, indexing="ij")
    keep = np.ones(X.shape, bool) if solid is None else ~solid
    return X[keep], Y[keep], Z[keep]


def scalar_at(x, y, z, t):
    return t * (1.0 + x + 2.0 * y + 3.0 * z)


def flow_at(x, y, z, flow_scale=1.0):
    """The test cases' velocity (n, 3) in m/s and nut (n,) in m^2/s at cell centres."""
    U = flow_scale * np.stack([0.1 * x, -0.2 * y, 0.05 + 0 * z], 1)
    return U, flow_scale * 1e-3 * (1 + x)


def write_case(root: Path, fmt="ascii", xs=XS, ys=YS, zs=ZS, solid=None, times=(0.0, 2.0, 4.0), scalar="T",
               flow_dir="0", skip=(), scale=1.0, flow_scale=1.0):
    """A case of the box mesh: U and nut (times ``flow_scale``) in ``flow_dir``, the scalar (times ``scale``) at ``times``."""
    write_mesh(root, xs, ys, zs, solid, fmt)
    x, y, z = centres(xs, ys, zs, solid)
    (root / "system").mkdir(exist_ok=True)
    U, nut = flow_at(x, y, z, flow_scale)
    if "U" not in skip:
        write_field(root / flow_dir / "U", "U", U, fmt)
    if "nut" not in skip:
        write_field(root / flow_dir / "nut", "nut", nut, fmt)
    for t in times:
        write_field(root / f"{t:g}" / scalar, scalar, scale * scalar_at(x, y, z, t), fmt)
    return root
