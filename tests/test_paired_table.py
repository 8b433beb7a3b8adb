"""scripts/paired_table.py: per-scenario paired differences between two sets of runs."""

import csv

import numpy as np
import pytest
from conftest import load_script


@pytest.fixture(scope="module")
def paired_table():
    return load_script("paired_table")


def _rows(run, split, figures):
    return [dict(run=run, split=split, scenario=f"s{i:02d}", relative_l2=v) for i, v in enumerate(figures)]


def _write(rows, path):
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_model_lower_on_every_scenario_wins_and_its_interval_excludes_zero(paired_table):
    base = np.linspace(0.2, 0.5, 12)
    better = base - np.linspace(0.01, 0.05, 12)
    rows = _rows("b", "test", base) + _rows("m", "test", better)
    ahead = paired_table.paired(paired_table.scenario_means(rows, ["m"], "test"),
                                paired_table.scenario_means(rows, ["b"], "test"))
    assert ahead["n"] == 12 and ahead["wins"] == 12 and ahead["p"] < 0.01
    assert ahead["high"] < 0 and ahead["median_diff"] == pytest.approx(-0.03)
    behind = paired_table.paired(paired_table.scenario_means(rows, ["b"], "test"),
                                 paired_table.scenario_means(rows, ["m"], "test"))
    assert behind["wins"] == 0 and behind["low"] > 0 and behind["p"] == pytest.approx(ahead["p"])
    assert paired_table.verdict(ahead) == "ahead" and paired_table.verdict(behind) == "behind"


def test_an_interval_off_zero_without_a_small_p_is_a_tie(paired_table):
    """Few scenarios: lower in 7 of 8 by a little, higher in one by more: the percentile interval
    of the median can lie below zero while the signed-rank test says nothing (session 21's case)."""
    base = np.linspace(0.1, 0.3, 8)
    model = base + np.array([-0.009, -0.006, -0.005, -0.004, -0.003, -0.001, -0.0005, +0.017])
    rows = _rows("b", "ood", base) + _rows("m", "ood", model)
    f = paired_table.paired(paired_table.scenario_means(rows, ["m"], "ood"),
                            paired_table.scenario_means(rows, ["b"], "ood"))
    assert f["wins"] == 7 and f["high"] < 0 and f["p"] > 0.05
    assert paired_table.verdict(f) == "tie"


def test_a_few_large_gains_move_the_mean_not_the_median(paired_table):
    """Lower by 0.1 in 10 of 30 scenarios, within 0.001 either way elsewhere (session 44's closure): the median
    rule ties, the mean's interval lies below zero; one gain alone leaves the mean's interval across zero."""
    base = np.linspace(0.1, 0.5, 30)
    noise = 0.001 * np.where(np.arange(30) % 2 == 0, 1.0, -1.0)
    model = base + np.where(np.arange(30) % 3 == 0, -0.1, noise)
    rows = _rows("b", "test", base) + _rows("m", "test", model)
    f = paired_table.paired(paired_table.scenario_means(rows, ["m"], "test"),
                            paired_table.scenario_means(rows, ["b"], "test"))
    assert paired_table.verdict(f) == "tie" and f["mean_diff"] == pytest.approx(-0.1 / 3, abs=1e-3)
    assert f["mean_high"] < 0 and paired_table.mean_verdict(f) == "ahead"
    one = base + np.where(np.arange(30) == 0, -0.1, noise)
    f = paired_table.paired(paired_table.scenario_means(_rows("b", "test", base) + _rows("m", "test", one), ["m"], "test"),
                            paired_table.scenario_means(_rows("b", "test", base), ["b"], "test"))
    assert f["mean_low"] < 0 < f["mean_high"] and paired_table.mean_verdict(f) == "tie"
    table = paired_table.table({"test": ({}, {}, f)}, mean=True)
    assert table.splitlines()[2].count("|") == 13 and table.endswith("tie |")


def test_runs_of_a_set_are_averaged_per_scenario_before_the_difference(paired_table):
    base = np.linspace(0.2, 0.5, 8)
    rows = _rows("b", "ood", base) + _rows("m0", "ood", base + 0.1) + _rows("m1", "ood", base - 0.1)
    f = paired_table.paired(paired_table.scenario_means(rows, ["m0", "m1"], "ood"),
                            paired_table.scenario_means(rows, ["b"], "ood"))
    assert f["median_diff"] == pytest.approx(0.0, abs=1e-12) and f["model"] == pytest.approx(f["base"])
    one = paired_table.paired(paired_table.scenario_means(rows, ["m0"], "ood"),
                              paired_table.scenario_means(rows, ["b"], "ood"))
    assert one["median_diff"] == pytest.approx(0.1) and one["wins"] == 0


def test_a_run_missing_a_scenario_or_an_unknown_run_is_an_error(paired_table, tmp_path, capsys):
    rows = _rows("b", "test", [0.2, 0.3, 0.4]) + _rows("m", "test", [0.1, 0.2])
    with pytest.raises(ValueError, match="run 'm' lacks"):
        paired_table.scenario_means(rows, ["b", "m"], "test")
    with pytest.raises(ValueError, match="no scenario of split 'ood'"):
        paired_table.scenario_means(rows, ["b"], "ood")
    path = _write(rows, tmp_path / "figures.csv")
    assert paired_table.main([str(path), "--model", "m", "--base", "nope", "--splits", "test"]) == 2
    assert "'nope'" in capsys.readouterr().err
    assert paired_table.main([str(path), "--model", "m", "--base", "b", "--splits", "test"]) == 2
    out = capsys.readouterr()
    assert "lacks some" in out.err and out.out == ""  # nothing printed but the error


def test_the_table_prints_one_line_per_split(paired_table):
    rows = []
    for split in ("test", "ood"):
        rows += _rows("b", split, [0.3, 0.4, 0.5, 0.6]) + _rows("m", split, [0.25, 0.45, 0.4, 0.5])
    lines = paired_table.table(paired_table.compare(rows, ["m"], ["b"], ["test", "ood"])).splitlines()
    assert len(lines) == 4 and lines[2].startswith("| test | 4 | 0.450 | 0.425 |") and "3 of 4" in lines[3]
    assert lines[2].endswith("| tie |")  # 4 scenarios, one of them the other way: nothing decided


def test_the_figure_is_written_and_a_bad_split_leaves_none(paired_table, tmp_path):
    rows = _rows("b", "test", [0.3, 0.4, 0.5, 0.6]) + _rows("m", "test", [0.25, 0.45, 0.4, 0.5])
    path = paired_table.figure(paired_table.compare(rows, ["m"], ["b"], ["test"]), tmp_path / "paired.png",
                               title="m against b")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paired_table.main([str(_write(rows, tmp_path / "f.csv")), "--model", "m", "--base", "b", "--splits",
                              "test,ood", "--figure", str(tmp_path / "none.png")]) == 2  # no ood rows
    assert not (tmp_path / "none.png").exists()
