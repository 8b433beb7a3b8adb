"""scripts/locate_errors.py: pooled position errors of locate-eval outputs, not-located cases as infinite."""

import json
import math
from pathlib import Path

import pytest
from conftest import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("locate_errors")


def _output(path: Path, errors, systems=("run", "untrained physics")):
    cases = []
    for s in systems:
        for k, e in enumerate(errors):
            located = e is not None
            err = (e if s == systems[0] else 0.0) if located else None
            cases.append({"scenario": f"c{k}", "system": s, "status": "located" if located else "cannot_locate",
                          "moving": False, "position_error_m": err, "in_region": located and e < 2,
                          **{key: err for key in ("scan_position_error_m", "mean_position_error_m",
                                                  "median_position_error_m")},
                          "rate_error_rel": 0.1 if located else None, "start_error_s": 1.0 if located else None,
                          "region_area_m2": 3.0 if located else None, "locate_s": 1.0, "time_per_case_s": 1.5})
    path.mkdir()
    (path / "locate_eval.json").write_text(json.dumps({"summary": {s: {} for s in systems}, "cases": cases}))
    return path


def test_pools_outputs_counts_misses_and_draws(script, tmp_path, capsys):
    a = _output(tmp_path / "a", [0.5, 1.5, None])
    b = _output(tmp_path / "b", [3.0])
    cases = script.load_cases([a, b])
    assert len(cases) == 4 and {c["system"] for c in cases} == {"run"}  # the first system only
    e = script.errors(cases)
    assert sorted(e[:3].tolist())[:2] == [0.5, 1.5] and math.isinf(e[2]) and e[3] == 3.0
    png = tmp_path / "fig.png"
    assert script.main([f"pooled={a},{b}", f"one={a}", "--out", str(png)]) == 0
    out = capsys.readouterr().out
    # pooled: 4 cases, 3 located (median 1.5), all cases: median of (0.5, 1.5, 3, inf) = 2.25; within 1 m 1 of 4
    assert "| pooled | 4 | 3 | 1.50 | 2.25 | 25% | 50% |" in out
    # one output: the miss counts as the largest error, so the median of all cases is 1.5 (located: 1.0)
    assert "| one | 3 | 2 | 1.00 | 1.50 | 33% | 67% |" in out
    assert png.stat().st_size > 0
    with pytest.raises(SystemExit):
        script.main(["no-equals-sign"])
    with pytest.raises(SystemExit, match="cannot read"):
        script.main([f"x={tmp_path / 'missing'}"])
