"""Shared test set-up: float64 JAX (switched on by importing plumecast) and helpers."""

from pathlib import Path

import numpy as np
import pytest

import plumecast  # noqa: F401  (enables JAX x64 for verification)

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "shared" / "reference"


@pytest.fixture
def reference_dir() -> Path:
    """The shared reference files beside the checkout; tests skip when they are absent."""
    if not REFERENCE_DIR.is_dir():
        pytest.skip(f"shared reference files not found at {REFERENCE_DIR}")
    return REFERENCE_DIR


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def tiny_variant(tmp_path: Path, old: str, new: str) -> Path:
    """The tiny preset written to ``tmp_path/room.toml`` with one piece of text replaced."""
    from importlib import resources

    text = resources.files("plumecast.presets").joinpath("tiny.toml").read_text()
    assert old in text
    path = tmp_path / "room.toml"
    path.write_text(text.replace(old, new))
    return path


def require_openfoam() -> None:
    """Skip the calling test, saying what to install, when OpenFOAM or foamlib is missing."""
    from plumecast.reference import openfoam_engine as ofe

    missing = ofe.openfoam_missing()
    if missing:
        pytest.skip(f"OpenFOAM not installed ({', '.join(missing)} missing); {ofe.INSTALL_HINT}")
    pytest.importorskip("foamlib", reason="needs foamlib: pip install 'plumecast[openfoam]'")
