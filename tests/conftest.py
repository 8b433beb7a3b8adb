"""Shared test set-up: float64 JAX for the whole session, and helpers.

Importing plumecast leaves JAX in its default 32-bit mode; the verification tests compare
to round-off in float64, so 64-bit mode is switched on here, before any test module makes
an array (as JAX-based libraries such as diffrax do in their conftest).
"""

from pathlib import Path

import jax
import numpy as np
import pytest

from plumecast.numerics import enable_x64, reproducible_cpu

reproducible_cpu()  # before any test computes: the suite's numbers repeat from run to run
enable_x64()

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "shared" / "reference"


@pytest.fixture(autouse=True, scope="module")
def _compilation_caches_per_module():
    """Drop JAX's compiled functions after each test module.

    The whole suite in one process compiles hundreds of functions; on the drift-closure
    branch XLA's compiler segfaulted late in such a run (docs/results.md, session 29's
    drift section), though neither half of the suite did. Clearing between modules keeps
    what the process holds to one module's compilations.
    """
    yield
    jax.clear_caches()


@pytest.fixture
def reference_dir() -> Path:
    """The shared reference files beside the checkout; tests skip when they are absent."""
    if not REFERENCE_DIR.is_dir():
        pytest.skip(f"shared reference files not found at {REFERENCE_DIR}")
    return REFERENCE_DIR


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def load_script(name: str):
    """The module of ``scripts/<name>.py`` (scripts are not a package), for testing its functions."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


@pytest.fixture(scope="session")
def tiny_openfoam(tmp_path_factory):
    """``(scenario set, dataset, progress calls, work folder)`` of the tiny preset generated with OpenFOAM.

    Once per session (about 5 s), shared by tests/test_openfoam_engine.py and
    tests/test_coarse_flux.py; skips when OpenFOAM or foamlib is missing.
    """
    from plumecast.reference import openfoam_engine as ofe
    from plumecast.scenario import load_scenario_set

    require_openfoam()
    sset = load_scenario_set("tiny")
    work = tmp_path_factory.mktemp("of") / "cases"
    calls = []
    ds = ofe.generate_openfoam(sset, work, progress=lambda d, t: calls.append((d, t)), workers=1)
    return sset, ds, calls, work
