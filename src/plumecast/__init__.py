"""plumecast: learned plane forecasts of scalar spread in buildings.

The 3D reference simulator and the verification tests run in float64, so JAX's 64-bit
mode is switched on here; the learned model states its float32 dtype explicitly.
"""

import jax

jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"
