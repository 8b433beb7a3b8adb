"""A case's own point sources, read from its fvOptions, and the importer recording them where they emit.

Cases written by ``_openfoam_case`` (no OpenFOAM needed, foamlib only) with fvOptions written here; the
same reading on cases OpenFOAM ran is tested in tests/test_openfoam_engine.py.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("foamlib", reason="needs foamlib: pip install 'plumecast[openfoam]'")

from plumecast.io.fvoptions import read_case_point_source  # noqa: E402
from plumecast.io.openfoam import CaseSpec, OpenFOAMImportError, import_openfoam, import_openfoam_cases, read_mesh  # noqa: E402
from plumecast.scenario import Source  # noqa: E402

from _openfoam_case import write_case  # noqa: E402

HEAD = "FoamFile\n{\n    version 2.0;\n    format ascii;\n    class dictionary;\n    object %s;\n}\n"


def _control(case, delta_t=0.5, extra=""):
    (case / "system" / "controlDict").write_text(HEAD % "controlDict" + f"application scalarTransportFoam;\nstartTime 0;\n"
                                                 f"endTime 4;\ndeltaT {delta_t};\n{extra}")


def _source(name, point, su, sp=0.0, start=None, duration=None, field="T", mode="points", volume="absolute"):
    window = "" if start is None else f"timeStart {start};\nduration {duration};\n"
    where = f"points (({' '.join(map(str, point))}));" if mode == "points" else "cellZone z;"
    return (f"{name}\n{{\ntype scalarSemiImplicitSource;\n{window}selectionMode {mode};\n{where}\n"
            f"volumeMode {volume};\ninjectionRateSuSp {{ {field} ({su} {sp}); }}\n}}\n")


def _case(tmp_path, *entries, delta_t=0.5, where="system/fvOptions", times=(0.0, 2.0, 4.0)):
    case = write_case(tmp_path / "room", times=times)
    _control(case, delta_t)
    (case / where).write_text(HEAD % "fvOptions" + "".join(entries))
    return case


def test_windows_become_the_steps_they_emit_over(tmp_path):
    # Window [0.25, 2.25] on steps of 0.5 s acts in the steps to t = 0.5 ... 2.0: it emits over [0, 2).
    case = _case(tmp_path, _source("a", (0.3, 0.3, 0.3), 1.5, start=0.25, duration=2),
                 _source("b", (1.3, 0.6, 0.6), 4.0, start=2.25, duration=2),
                 _source("c", (1.3, 0.6, 0.6), 9.0, start=2.3, duration=0.1))  # between two steps: never applied
    src, notes = read_case_point_source(case, "T", read_mesh(case / "constant" / "polyMesh"))
    np.testing.assert_allclose(src.starts_s, [0.0, 2.0])
    np.testing.assert_allclose(src.ends_s, [2.0, 4.0])
    np.testing.assert_allclose(src.rate_at([0.0, 1.99, 2.0, 3.5, 4.0]), [1.5, 1.5, 4.0, 4.0, 0.0])
    np.testing.assert_allclose(src.position_at([-1.0, 0.0, 2.0, 9.0]),
                               [[0.3, 0.3, 0.3], [0.3, 0.3, 0.3], [1.3, 0.6, 0.6], [1.3, 0.6, 0.6]])
    assert src.moving and "2 fvOptions entries" in notes[-1]
    assert read_case_point_source(case, "s", read_mesh(case / "constant" / "polyMesh"))[0] is None  # another field


def test_without_fixed_steps_or_window_the_entry_is_taken_as_written(tmp_path):
    case = _case(tmp_path, _source("a", (0.3, 0.3, 0.3), 2.0, start=0.25, duration=2), _source("b", (0.3, 0.3, 0.3), 1.0))
    _control(case, extra="adjustTimeStep yes;\n")
    src, _ = read_case_point_source(case, "T", read_mesh(case / "constant" / "polyMesh"))
    np.testing.assert_allclose(src.rate_at([0.0, 0.25, 2.24, 2.25, 100.0]), [1.0, 3.0, 3.0, 1.0, 1.0])  # they add up
    assert not src.moving


def test_specific_rates_are_per_cubic_metre_of_the_emitting_cell(tmp_path):
    case = _case(tmp_path, _source("a", (0.3, 0.3, 0.3), 64.0, volume="specific"))
    src, _ = read_case_point_source(case, "T", read_mesh(case / "constant" / "polyMesh"))
    np.testing.assert_allclose(src.rates, [64.0 * 0.25 ** 3])


def test_sources_that_are_no_point_are_noted_not_read(tmp_path):
    case = _case(tmp_path, _source("zone", (0, 0, 0), 1.0, mode="cellZone"))
    src, notes = read_case_point_source(case, "T", read_mesh(case / "constant" / "polyMesh"))
    assert src is None and "zone" in notes[0] and "cellZone" in notes[0]
    (case / "system" / "controlDict").write_text("FoamFile { broken")  # unreadable: noted, not fatal
    src, notes = read_case_point_source(case, "T", read_mesh(case / "constant" / "polyMesh"))
    assert src is None and any("system/controlDict not read" in n for n in notes)


@pytest.mark.parametrize("entries, message", [
    ((_source("a", (0.3, 0.3, 0.3), 1.0, sp=-0.1),), "implicit part Sp = -0.1"),
    ((_source("a", (0.3, 0.3, 0.3), -1.0),), "negative"),
    ((_source("a", (0.3, 0.3, 0.3), 1.0, volume="perCell"),), "volumeMode must be absolute or specific"),
    ((_source("a", (0.3, 0.3, 0.3), 1.0, start=0, duration=2), _source("b", (1.3, 0.3, 0.3), 1.0, start=1, duration=2)),
     "emit at once"),
])
def test_bad_fvoptions_sources_are_refused_by_name(tmp_path, entries, message):
    case = _case(tmp_path, *entries)
    with pytest.raises(OpenFOAMImportError, match=message) as err:
        read_case_point_source(case, "T", read_mesh(case / "constant" / "polyMesh"))
    assert "system/fvOptions a" in str(err.value)


def test_the_importer_records_the_cases_source_where_it_emits(tmp_path):
    # A point on a cell corner: OpenFOAM emits into the lowest-numbered cell touching it.
    case = _case(tmp_path, _source("a", (0.5, 0.5, 0.5), 2.0, start=0.25, duration=1.5),
                 _source("b", (1.0, 0.5, 0.5), 2.0, start=1.75, duration=10), where="constant/fvOptions")
    ds = import_openfoam(case, height_m=0.45, cell_m=0.5)
    np.testing.assert_allclose(np.stack([ds[f"source_{v}"].values[0] for v in "xyz"], -1),
                               [[0.375, 0.375, 0.375], [0.875, 0.375, 0.375], [0.875, 0.375, 0.375]])
    np.testing.assert_allclose(ds["source_rate"].values[0], [2.0, 2.0, 2.0])  # the last snapshot: the last step's
    alone = _case(tmp_path / "one", _source("a", (0.5, 0.5, 0.5), 2.0, start=0.25, duration=1.5), times=(0.0,))
    np.testing.assert_allclose(import_openfoam(alone, height_m=0.45, cell_m=0.5)["source_rate"].values[0], [2.0])
    assert "fvOptions point source emits" in ds.attrs["history"]
    # A declared source that agrees keeps its rate; one elsewhere, or in other units, is refused.
    agree = Source(rate=((0.0, 2.0),), path=((0.0, 0.5, 0.5, 0.5), (1.5, 0.5, 0.5, 0.5), (2.0, 1.0, 0.5, 0.5)))
    ds = import_openfoam(case, height_m=0.45, cell_m=0.5, source=agree)
    np.testing.assert_allclose(ds["source_x"].values[0], [0.375, 0.875, 0.875])
    with pytest.raises(OpenFOAMImportError, match="1 m from the point source the case's fvOptions declare"):
        import_openfoam(case, height_m=0.45, cell_m=0.5, source=Source(rate=((0.0, 2.0),), position_m=(1.5, 0.5, 0.5)))
    with pytest.raises(OpenFOAMImportError, match="units or rates differ"):
        import_openfoam(case, height_m=0.45, cell_m=0.5, source=Source(rate=((0.0, 2000.0),), path=agree.path))


def test_many_cases_read_their_sources_in_the_pool_as_in_one_process(tmp_path):
    # Each case's fvOptions is parsed in the importer's pool; the sources and the refusals match one process's.
    cases = [_case(tmp_path / "a", _source("a", (0.5, 0.5, 0.5), 2.0, start=0.25, duration=1.5),
                   _source("b", (1.0, 0.5, 0.5), 2.0, start=1.75, duration=10)),
             _case(tmp_path / "b", _source("c", (1.0, 1.0, 0.5), 3.0))]
    specs = [CaseSpec(c, name=c.parent.name) for c in cases]
    one, pool = (import_openfoam_cases(specs, height_m=0.45, cell_m=0.5, jobs=j) for j in (1, 2))
    for v in ("source_x", "source_y", "source_z", "source_rate"):
        np.testing.assert_array_equal(pool[v].values, one[v].values)
    np.testing.assert_allclose(pool["source_x"].values[:, 0], [0.375, 0.875])
    np.testing.assert_allclose(pool["source_rate"].values[:, -1], [2.0, 3.0])
    assert pool.attrs["history"] == one.attrs["history"]
    wrong = [specs[0], CaseSpec(cases[1], name="b", source=Source(rate=((0.0, 3.0),), position_m=(0.25, 0.25, 0.5)))]
    decay = _case(tmp_path / "c", _source("d", (1.0, 1.0, 0.5), 3.0, sp=-0.1))
    for jobs in (1, 2):
        with pytest.raises(OpenFOAMImportError, match=r"case 'b' .*1\.06 m from the point source"):
            import_openfoam_cases(wrong, height_m=0.45, cell_m=0.5, jobs=jobs)
        with pytest.raises(OpenFOAMImportError, match=r"case 'c' .*system/fvOptions d: the implicit part Sp"):
            import_openfoam_cases([specs[0], CaseSpec(decay, name="c")], height_m=0.45, cell_m=0.5, jobs=jobs)
