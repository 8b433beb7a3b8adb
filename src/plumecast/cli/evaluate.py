"""Commands: evaluate, compare (metrics, figures and reports of trained models)."""

from plumecast.cli.app import app  # noqa: F401
