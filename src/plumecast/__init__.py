"""plumecast: learned plane forecasts of scalar spread in buildings.

Importing plumecast does not change JAX's settings. The 3D reference simulator needs
float64 and switches JAX's 64-bit mode on where it runs (:func:`plumecast.numerics.enable_x64`);
the learned model states its dtype explicitly. The ``plumecast`` command (importing
:mod:`plumecast.cli`) asks XLA for run-to-run identical CPU results before JAX starts
(:func:`plumecast.numerics.reproducible_cpu`).
"""

__version__ = "0.1.0"
