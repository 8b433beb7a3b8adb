"""The ``plumecast`` command line: one typer app, commands grouped by stage of the data flow."""

from plumecast.cli.app import app
from plumecast.cli import data as _data  # noqa: F401  (generate, info, plot)
from plumecast.cli import model as _model  # noqa: F401  (train, forecast)
from plumecast.cli import imports as _imports  # noqa: F401  (import openfoam|fluent)
from plumecast.cli import evaluate as _evaluate  # noqa: F401  (evaluate, compare)
from plumecast.cli import locate as _locate  # noqa: F401  (locate, locate-eval)

__all__ = ["app"]
