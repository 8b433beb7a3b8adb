"""Commands: import openfoam, import fluent."""

from plumecast.cli.app import import_app  # noqa: F401
