"""The ``plumecast`` command line: one typer app, commands grouped by stage of the data flow."""

from plumecast.numerics import reproducible_cpu

reproducible_cpu()  # before any JAX computation: identical runs of one command give identical numbers

from plumecast.cli.app import app  # noqa: E402
from plumecast.cli import data as _data  # noqa: E402, F401  (generate, info, plot)
from plumecast.cli import model as _model  # noqa: E402, F401  (train, forecast)
from plumecast.cli import imports as _imports  # noqa: E402, F401  (import openfoam|fluent)
from plumecast.cli import evaluate as _evaluate  # noqa: E402, F401  (evaluate, compare)
from plumecast.cli import locate as _locate  # noqa: E402, F401  (locate, locate-eval)

__all__ = ["app"]
