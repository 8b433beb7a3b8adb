"""Property-based tests (Hypothesis): random corruptions of the inputs plumecast parses.

The scenario TOML, Fluent exports, OpenFOAM field files and ``--set`` values are corrupted
at random. A corruption that makes the input invalid must give one error line that names
the file (or the key), a non-zero exit through the command line, and nothing written; a
random mutation that happens to leave a valid input may succeed, but never with a
traceback. Kept fast: few examples, no deadline.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from plumecast.cli import app
from plumecast.scenario import ScenarioError, load_scenario_set
from plumecast.train import TrainConfig, TrainError

runner = CliRunner()
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TINY = resources.files("plumecast.presets").joinpath("tiny.toml").read_text()
KEY_LINE = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*)(\s*=\s*)(.*)$")
KEY_LINES = [i for i, ln in enumerate(TINY.splitlines()) if KEY_LINE.match(ln)]


def snapshot(folder: Path) -> dict:
    return {str(p): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


def invoke_and_check(args, folder: Path, must_fail: bool, names: str) -> None:
    """The CLI gave no traceback; a failure is one line naming ``names`` and wrote nothing."""
    before = snapshot(folder)
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    if must_fail:
        assert r.exit_code != 0, r.output
    if r.exit_code != 0:
        lines = [ln for ln in r.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), r.output
        assert names in lines[0], (names, lines[0])
        assert snapshot(folder) == before, "a failed command wrote something"


# ----------------------------------------------------------------------------- scenario TOML


@st.composite
def toml_corruption(draw):
    """The tiny preset with one key renamed to an unknown name or one value of a wrong type."""
    lines = TINY.splitlines()
    k = draw(st.sampled_from(KEY_LINES))
    indent, key, eq, value = KEY_LINE.match(lines[k]).groups()
    if draw(st.booleans()):
        new_key = "zz" + draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8))
        lines[k] = f"{indent}{new_key}{eq}{value}"
    else:
        is_string = value.startswith('"')
        wrong = ["true", "1.5", "[]", "{ a = 1 }"] if is_string else ['"zz"', "true", "nan", "-inf", "{ a = 1 }"]
        lines[k] = f"{indent}{key}{eq}{draw(st.sampled_from(wrong))}"
    return "\n".join(lines) + "\n"


@FAST
@given(text=toml_corruption())
def test_scenario_toml_corruptions_fail_cleanly_through_the_cli(text):
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        path = folder / "room.toml"
        path.write_text(text)
        invoke_and_check(["generate", path, "--out", folder / "out.nc"], folder, True, str(path))


@FAST
@given(data=st.data())
def test_scenario_toml_truncated_or_mangled(data):
    raw = TINY.encode()
    cut = data.draw(st.integers(0, len(raw)))
    junk = data.draw(st.binary(max_size=8))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "room.toml"
        path.write_bytes(raw[:cut] + junk + raw[cut + data.draw(st.integers(0, 40)):])
        try:
            load_scenario_set(path)
        except ScenarioError as e:
            assert str(e).startswith(str(path)) and "\n" not in str(e).strip()


NUMBER = re.compile(r"-?\d+\.\d+(?:e-?\d+)?")


@FAST
@given(data=st.data())
def test_scenario_toml_random_numbers_load_or_fail_naming_the_file(data):
    """Any number of the file replaced by any float: a scenario set, or a ScenarioError naming the file."""
    spots = list(NUMBER.finditer(TINY))
    m = data.draw(st.sampled_from(spots))
    value = data.draw(st.floats(allow_nan=True, allow_infinity=True, width=64))
    literal = "nan" if value != value else ("inf" if value == float("inf") else "-inf" if value == -float("inf")
                                            else repr(value))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "room.toml"
        path.write_text(TINY[: m.start()] + literal + TINY[m.end():])
        try:
            sset = load_scenario_set(path)
        except ScenarioError as e:
            assert str(e).startswith(str(path)) and "\n" not in str(e).strip()
        else:
            assert all(np.isfinite(v) for v in sset.room.size_m)


# ----------------------------------------------------------------------------- Fluent exports


def fluent_report(rows: list[str]) -> str:
    head = ['                         "Surface Integral Report"', "", "           Area-Weighted Average",
            "           Turbulent Viscosity           [kg/(m s)]", "-------------------------------- --------------------"]
    tail = ["                ---------------- --------------------", f"{'Net':>32} {'0.5':>20}"]
    return "\n".join(head + rows + tail) + "\n"


ROWS = [f"{f'x{i}y{j}z1':>32} {0.001 * (i + j):>20.6f}" for j in range(1, 4) for i in range(1, 5) if (i, j) != (3, 2)]


@st.composite
def fluent_corruption(draw):
    rows = list(ROWS)
    k = draw(st.integers(0, len(rows) - 1))
    kind = draw(st.sampled_from(["value", "z", "duplicate", "truncate", "stray", "negative", "index"]))
    cell, value = rows[k].split()
    if kind == "value":
        rows[k] = f"{cell} {draw(st.sampled_from(['abc', 'nan', 'inf', '1.2.3', '--', '0x1']))}"
    elif kind == "z":
        rows[k] = f"{cell[:-1]}{draw(st.integers(2, 10**6))} {value}"
    elif kind == "duplicate":
        rows.insert(draw(st.integers(0, len(rows))), rows[k])
    elif kind == "stray":
        rows.append(f"x{draw(st.integers(200, 10**12))}y{draw(st.integers(200, 10**12))}z1 0.001")
    elif kind == "negative":
        rows[k] = f"{cell} {-draw(st.floats(1e-6, 1e3))!r}"
    elif kind == "index":
        rows[k] = f"x{draw(st.integers(-10**6, 0))}y1z1 {value}"
    text = fluent_report(rows)
    if kind == "truncate":  # cut somewhere before the closing 'Net' line
        lines = text.splitlines()
        text = "\n".join(lines[: draw(st.integers(5, len(lines) - 2))]) + "\n"
    return text


@FAST
@given(text=fluent_corruption())
def test_fluent_corruptions_fail_cleanly_through_the_cli(text):
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        path = folder / "nut.txt"
        path.write_text(text)
        invoke_and_check(["import", "fluent", path, "--out", folder / "o.nc"], folder, True, str(path))


@FAST
@given(data=st.data())
def test_fluent_random_bytes_never_give_a_traceback(data):
    raw = fluent_report(ROWS).encode()
    at = data.draw(st.integers(0, len(raw)))
    new = raw[:at] + data.draw(st.binary(max_size=12)) + raw[at + data.draw(st.integers(0, 30)):]
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        path = folder / "nut.txt"
        path.write_bytes(new)
        invoke_and_check(["import", "fluent", path, "--out", folder / "o.nc"], folder, False, str(path))


# ----------------------------------------------------------------------------- OpenFOAM field files


@pytest.fixture(scope="module")
def of_case(tmp_path_factory):
    pytest.importorskip("foamlib", reason="needs foamlib: pip install 'plumecast[openfoam]'")
    from _openfoam_case import write_case

    return write_case(tmp_path_factory.mktemp("of") / "case")


@st.composite
def field_corruption(draw, text: str):
    """An ascii scalar field with a bad token, a wrong count or its list cut short."""
    head, _, body = text.partition("internalField")
    m = re.search(r"(\d+)\n\(\n", body)
    count, start = int(m.group(1)), m.end()
    end = body.index("\n)", start)
    values = body[start:end].split("\n")
    kind = draw(st.sampled_from(["token", "count", "cut"]))
    if kind == "token":
        values[draw(st.integers(0, len(values) - 1))] = draw(st.sampled_from(["abc", "1.2.3", "nan", "inf", "1e", "--1"]))
        body = body[:start] + "\n".join(values) + body[end:]
    elif kind == "count":
        new = draw(st.integers(0, 10 * count).filter(lambda n: n != count))
        body = body[: m.start()] + f"{new}\n(\n" + body[start:]
    else:
        body = body[: draw(st.integers(start, end - 1))]
    return head + "internalField" + body


@FAST
@given(data=st.data())
def test_openfoam_field_corruptions_fail_cleanly_through_the_cli(of_case, data):
    field = of_case / "2" / "T"
    original = field.read_text()
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        case = folder / "case"
        shutil.copytree(of_case, case)
        (case / "2" / "T").write_text(data.draw(field_corruption(original)))
        invoke_and_check(["import", "openfoam", case, "--height", "0.45", "--cell", "0.5", "--out", folder / "o.nc"],
                         folder, True, str(case / "2" / "T"))


# ----------------------------------------------------------------------------- --set values

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@FAST
@given(key=st.sampled_from(TrainConfig.field_names()), value=JSON)
def test_set_values_are_accepted_or_refused_naming_the_key(key, value):
    try:
        cfg = TrainConfig().replace(**{key: value})
    except TrainError as e:
        assert key in str(e) and "\n" not in str(e), str(e)
    else:  # what was accepted is a sound, saveable config
        assert TrainConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg


@FAST
@given(value=st.floats(allow_nan=True, allow_infinity=True) | st.booleans() | st.text(max_size=4))
def test_whole_number_settings_take_only_whole_numbers(value):
    with pytest.raises(TrainError, match="batch_size must be a whole number"):
        TrainConfig().replace(batch_size=value)
