"""Session 33: is training bit-reproducible here? Three trainings of the same config, seed and data in one
process (the main job's plane physics, epochs 4/2/1/1); prints the largest difference of each val curve from
the first. usage: .venv/bin/python out/s33-determinism.py   (writes /tmp/det2-*)
"""
import numpy as np
from plumecast.train import train
from plumecast.train.config import preset_config
from plumecast.evaluate import read_data
ds = read_data("data/paper-room.nc")
cfg = preset_config("quick", variant="physics").replace(observation_log_max=1.0, observation_spacing_cells=12, loss="field+root", epochs=(4, 2, 1, 1))
curves = []
for i in range(3):
    r = train(ds, f"/tmp/det2-{i}", cfg, progress=False, evaluate=False, log=lambda m: None)
    curves.append(np.array([v["val"] for v in r.val_curve]))
print([float(np.abs(curves[0] - c).max()) for c in curves])
