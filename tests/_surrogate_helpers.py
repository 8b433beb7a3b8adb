"""A tiny trained run with its stored room, built once per test session (what-if and sweep tests)."""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

from typer.testing import CliRunner

from plumecast.cli import app

runner = CliRunner()

TINY_CONFIG = dict(window_s=4.0, curriculum_s=(4.0,), epochs=(1,), batch_size=2)


@functools.lru_cache(maxsize=None)
def tiny_run() -> tuple[Path, Path]:
    """``(data, run)``: the tiny preset's dataset (the 3D room with its desk) and a layered run trained on it."""
    from plumecast.train import preset_config, train

    root = Path(tempfile.mkdtemp(prefix="plumecast-surrogate-"))
    data = root / "tiny.nc"
    r = runner.invoke(app, ["generate", "tiny", "--out", str(data)])
    assert r.exit_code == 0, r.output
    run = root / "layered"
    train(data, run, preset_config("quick", variant="layered", **TINY_CONFIG), progress=False, evaluate=False,
          log=lambda msg: None)
    return data, run


def run_copy(tmp_path: Path) -> Path:
    """A copy of the tiny run that a test may change."""
    _, run = tiny_run()
    dest = tmp_path / "run"
    shutil.copytree(run, dest)
    return dest


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, *phrases):
    """The command failed with one named error (``error: ...``) that holds every phrase."""
    assert result.exit_code != 0, result.output
    text = " ".join(result.output.split())  # the console wraps long lines
    assert text.startswith("error:"), result.output
    assert text.count("error:") == 1, result.output
    for p in phrases:
        assert p in text, (p, result.output)
    return text
