"""plumecast: learned plane forecasts of scalar spread in buildings.

Importing plumecast does not change JAX's settings. The 3D reference simulator needs
float64 and switches JAX's 64-bit mode on where it runs (:func:`plumecast.numerics.enable_x64`);
the learned model states its dtype explicitly.
"""

__version__ = "0.1.0"
