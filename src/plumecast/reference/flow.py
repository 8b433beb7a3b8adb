"""Steady incompressible ventilation flow (RANS with a mixing-length eddy viscosity).

(solver to be written: see solve_flow)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Flow3D:
    """A converged 3D flow on a Grid3D's staggered faces.

    ``u (nz, ny, nx+1)``, ``v (nz, ny+1, nx)``, ``w (nz+1, ny, nx)`` are face-normal
    velocities in m/s (zero on wall faces, the prescribed values on inlet/outlet faces);
    ``nu_t (nz, ny, nx)`` is the cell-centred turbulent kinematic viscosity in m^2/s
    (zero in solid cells). ``diagnostics`` records iterations, final residual and
    divergence and the tolerances they were held to.
    """

    u: np.ndarray = field(repr=False)
    v: np.ndarray = field(repr=False)
    w: np.ndarray = field(repr=False)
    nu_t: np.ndarray = field(repr=False)
    diagnostics: dict = field(default_factory=dict)
