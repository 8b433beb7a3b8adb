"""Commands: train, forecast (the coarse model and training engine)."""

from plumecast.cli.app import app  # noqa: F401
