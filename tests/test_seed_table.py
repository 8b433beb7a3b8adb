"""scripts/seed_table.py: the per-variant means of the seed tables in docs/results.md."""

import csv
import json
from pathlib import Path

import pytest
from conftest import load_script


def _load():
    return load_script("seed_table")


def _compare(folder: Path, rows):
    folder.mkdir(parents=True)
    with (folder / "compare.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, ["run", "variant", "split", "spearman_final_median", "relative_l2_final_median"])
        w.writeheader()
        for run, variant, split, sp, l2 in rows:
            w.writerow(dict(run=run, variant=variant, split=split, spearman_final_median=sp, relative_l2_final_median=l2))


def test_means_per_variant(tmp_path, capsys):
    _compare(tmp_path / "c0", [("a0", "memory", "test", 0.9, 0.5), ("a0", "memory", "ood", 0.8, 0.4),
                               ("b0", "layered", "test", 0.7, 0.6), ("b0", "layered", "ood", 0.6, 0.5)])
    _compare(tmp_path / "c1", [("a1", "memory", "test", 0.7, 0.3), ("a1", "memory", "ood", 0.6, 0.2)])
    runs = tmp_path / "runs"
    for run, err in (("a0", 0.2), ("a1", 0.4)):
        (runs / run).mkdir(parents=True)
        (runs / run / "summary.json").write_text(json.dumps({"trained": {"train": {"median": err}}}))
    assert _load().main([str(tmp_path / "c0"), str(tmp_path / "c1"), "--runs-dir", str(runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "| **mean of 2** | memory | 0.300 | 0.800 | 0.400 | 0.700 | 0.300 |" in lines
    # b0 has no summary.json: its train column is empty, and so is its variant's mean.
    assert "| **mean of 1** | layered |  | 0.700 | 0.600 | 0.600 | 0.500 |" in lines
    with pytest.raises(SystemExit, match="does not exist"):
        _load().main([str(tmp_path / "missing")])


def test_pick_on_val_reads_val_only(tmp_path, capsys):
    """The pick is the lowest val relative L2 per variant; its test and OOD figures are reported whatever they are."""
    rows = []
    for run, variant, val, test in (("m0", "memory", 0.50, 0.10), ("m1", "memory", 0.40, 0.90), ("m2", "memory", 0.45, 0.05),
                                    ("l0", "layered", 0.30, 0.70)):
        rows += [(run, variant, "val", 0.5, val), (run, variant, "test", 0.6, test), (run, variant, "ood", 0.7, test + 1)]
    _compare(tmp_path / "c", rows)
    st = _load()
    assert st.main([str(tmp_path / "c"), "--runs-dir", str(tmp_path), "--pick", "variant"]) == 0
    out = capsys.readouterr().out.splitlines()
    # m1 has the best val, though m2 (and m0) have better test figures: test never chooses.
    assert "| memory | m1 | 3 | 0.400 | 0.600 | 0.900 | 0.700 | 1.900 |" in out
    assert "| layered | l0 | 1 | 0.300 | 0.600 | 0.700 | 0.700 | 1.700 |" in out
    assert "| m0 | memory |  | 0.500 | 0.600 | 0.100 | 0.700 | 1.100 |" in out  # val column beside the others
    assert st.main([str(tmp_path / "c"), "--runs-dir", str(tmp_path), "--pick", "all"]) == 0
    assert "| all | l0 | 4 | 0.300 | 0.600 | 0.700 | 0.700 | 1.700 |" in capsys.readouterr().out.splitlines()
    _compare(tmp_path / "noval", [("a", "memory", "test", 0.9, 0.5)])
    with pytest.raises(SystemExit, match="no val figures for memory"):
        st.main([str(tmp_path / "noval"), "--pick", "variant"])


def test_group_by_name_keeps_one_variant_on_two_physics_apart(tmp_path, capsys):
    """A memory closure on the plane and on the column share a variant; --group name averages each over its seeds."""
    rows = []
    for run, test in (("lo-memory-s0", 0.8), ("lo-memory-s1", 0.6), ("lo-column-memory-s0", 0.5),
                      ("lo-column-memory-s1", 0.3)):
        rows += [(run, "memory", "test", 0.9, test), (run, "memory", "ood", 0.9, test)]
    _compare(tmp_path / "c", rows)
    st = _load()
    assert st.main([str(tmp_path / "c"), "--runs-dir", str(tmp_path), "--group", "name"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "| **mean of 2** | lo-memory |  | 0.900 | 0.700 | 0.900 | 0.700 |" in out
    assert "| **mean of 2** | lo-column-memory |  | 0.900 | 0.400 | 0.900 | 0.400 |" in out
    assert st.main([str(tmp_path / "c"), "--runs-dir", str(tmp_path)]) == 0  # by variant: all four together
    assert "| **mean of 4** | memory |  | 0.900 | 0.550 | 0.900 | 0.550 |" in capsys.readouterr().out.splitlines()
