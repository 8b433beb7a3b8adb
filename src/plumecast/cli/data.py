"""Commands: generate, info, plot (the 3D reference data)."""

from plumecast.cli.app import app  # noqa: F401
