"""Session 45: how long sub-cell structure lives on a dataset's plane: speeds, turbulent diffusivities and the
times they take across one plane cell (10 / 50 / 90 % over the fluid cells).

usage: .venv/bin/python out/s45-scales.py DATA.nc [--cell-m 0.5] [--schmidt 0.7] [--dt-s 0.4]
"""
import argparse

import numpy as np
import xarray as xr

ap = argparse.ArgumentParser()
ap.add_argument("data")
ap.add_argument("--cell-m", type=float, default=0.5)
ap.add_argument("--schmidt", type=float, default=0.7)
ap.add_argument("--molecular", type=float, default=2.0e-5)
ap.add_argument("--dt-s", type=float, default=0.4, help="the coarse model's time step")
a = ap.parse_args()
ds = xr.open_dataset(a.data)
fluid = ds["fluid_fraction"].values > 0.5
speed = np.hypot(ds["u"].values, ds["v"].values)[fluid]
diff = ds["nu_t"].values[fluid] / a.schmidt + a.molecular
q = [10, 50, 90]
s, d = np.percentile(speed, q), np.percentile(diff, q)
print(f"{a.data}: {fluid.sum()} fluid plane cells of {a.cell_m} m")
print(f"speed m/s 10/50/90 %: {' / '.join(f'{v:.3g}' for v in s)}; across a cell: "
      f"{' / '.join(f'{a.cell_m / v:.0f}' for v in s[::-1])} s (fast / median / slow)")
print(f"turbulent diffusivity m^2/s: {' / '.join(f'{v:.3g}' for v in d)}; across a cell (cell^2 / D): "
      f"{' / '.join(f'{a.cell_m ** 2 / v:.0f}' for v in d[::-1])} s")
print(f"model steps of {a.dt_s} s in the median times: advection {a.cell_m / s[1] / a.dt_s:.0f}, "
      f"diffusion {a.cell_m ** 2 / d[1] / a.dt_s:.0f}")
