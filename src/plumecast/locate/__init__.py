"""Locating a source from sensor readings with a trained plane model (``plumecast locate``, ``locate-eval``).

* :mod:`~plumecast.locate.readings`: the readings CSV, read and checked;
* :mod:`~plumecast.locate.core`: the method (library scan, posterior over cells with the
  rate and start summed out, gradient refinement through the model) and its settings;
* :mod:`~plumecast.locate.evaluate`: readings drawn from a dataset's ground truth, located
  and scored;
* :mod:`~plumecast.locate.placement`: a fixed sensor layout designed from the model's own
  forecasts (``plumecast sensors``, ``locate-eval --layout designed``);
* :mod:`~plumecast.locate.picture`: the posterior map.

docs/locate.md walks through it.
"""

from plumecast.locate.core import Library, LocateResult, LocateSettings, build_library, default_limit, locate
from plumecast.locate.readings import LocateError, Readings, check_readings, read_readings, write_readings

__all__ = ["LocateError", "Readings", "read_readings", "check_readings", "write_readings", "LocateSettings",
           "LocateResult", "Library", "build_library", "default_limit", "locate"]
