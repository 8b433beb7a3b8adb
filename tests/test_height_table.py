"""scripts/height_table.py: height classes against the plane and the per-split, per-class medians."""

import pytest
from conftest import load_script


@pytest.fixture(scope="module")
def height_table():
    return load_script("height_table")


def test_height_classes(height_table):
    assert height_table.height_class(0.3, 1.5, 0.15) == "below"
    assert height_table.height_class(1.4, 1.5, 0.15) == "at"
    assert height_table.height_class(1.66, 1.5, 0.15) == "above"


def test_table_medians_per_split_and_class(height_table):
    rows = [dict(run="r", split="test", height_class=c, relative_l2=l2, spearman=sp)
            for c, l2, sp in (("below", 0.1, 0.9), ("below", 0.3, 0.7), ("above", 0.5, 0.5))]
    text = height_table.table(rows, ["test"])
    header, _, line = text.splitlines()
    assert header == "| run | test all | test below | test above |"  # no 'at' column: no such source
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells == ["r", "0.300 / 0.700 (3)", "0.200 / 0.800 (2)", "0.500 / 0.500 (1)"]
