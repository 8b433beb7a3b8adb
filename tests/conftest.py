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
