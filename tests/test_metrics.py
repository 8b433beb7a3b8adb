"""Metrics against hand-computed values."""

import numpy as np
import pytest

from plumecast import metrics as M


def _grid(ny=12, nx=20, dx=0.5):
    x = (np.arange(nx) + 0.5) * dx
    y = (np.arange(ny) + 0.5) * dx
    fluid = np.ones((ny, nx))
    fluid[4:7, 8:11] = 0
    return x, y, fluid


def _blob(x, y, xc, yc, s=1.0):
    X, Y = np.meshgrid(x, y)
    return np.exp(-((X - xc) ** 2 + (Y - yc) ** 2) / (2 * s**2))


def test_spearman_of_monotone_transform_is_one():
    x, y, fluid = _grid()
    t = _blob(x, y, 3.0, 2.0) * fluid
    assert M.spearman(np.exp(3 * t) - 7, t, fluid) == pytest.approx(1.0)
    assert M.spearman(-t, t, fluid) == pytest.approx(-1.0)
    # Solid cells are ignored: garbage there changes nothing.
    junk = np.where(fluid > 0, t**3, 1e6 * np.random.default_rng(0).random(t.shape))
    assert M.spearman(junk, t, fluid) == pytest.approx(1.0)
    assert np.isnan(M.spearman(np.zeros_like(t), t, fluid))


def test_relative_l2_of_known_error():
    x, y, fluid = _grid()
    t = np.where(fluid > 0, 2.0, 0.0)
    assert M.relative_l2(1.1 * t, t, fluid) == pytest.approx(0.1)
    e = np.zeros_like(t)
    e[0, 0] = 3.0  # one cell off by 3; ||t|| = 2 sqrt(n_fluid)
    n = fluid.sum()
    assert M.relative_l2(t + e, t, fluid) == pytest.approx(3.0 / (2.0 * np.sqrt(n)))
    assert M.relative_l2(t + 5 * (1 - fluid), t, fluid) == 0.0  # solids ignored
    assert np.isnan(M.relative_l2(t, 0 * t, fluid))


def test_ssim_identical_is_one_and_drops_with_error():
    x, y, fluid = _grid()
    t = _blob(x, y, 3.0, 2.0) * fluid
    assert M.ssim(t, t, fluid) == pytest.approx(1.0)
    assert M.ssim(t + 9 * (1 - fluid), t, fluid) == pytest.approx(1.0)  # solids ignored
    noisy = t + 0.3 * np.random.default_rng(1).standard_normal(t.shape)
    assert M.ssim(noisy, t, fluid) < 0.7
    assert M.ssim(0 * t, 0 * t, fluid) == 1.0  # empty room: identical
    # An explicit data range is honoured: a wider range forgives the same error more.
    assert M.ssim(noisy, t, fluid, data_range=100.0) > M.ssim(noisy, t, fluid)


def test_centre_of_mass_of_shifted_blob():
    x, y, fluid = _grid(ny=20, nx=30)
    fluid = np.ones_like(fluid)
    t = _blob(x, y, 7.5, 5.0, s=0.7)  # at the grid centre, far from its edges
    p = _blob(x, y, 7.5 + 3 * 0.5, 5.0 - 2 * 0.5, s=0.7)  # shifted by 3 and -2 cells of 0.5 m
    xc, yc = M.centre_of_mass(t, fluid, x, y)
    assert (xc, yc) == pytest.approx((7.5, 5.0), abs=1e-9)
    assert M.com_error(p, t, fluid, x, y) == pytest.approx(np.hypot(1.5, 1.0), abs=1e-6)
    assert np.isnan(M.com_error(0 * t, t, fluid, x, y))
    # Negative values do not pull the centre.
    q = t.copy()
    q[0, -1] = -50.0
    assert M.centre_of_mass(q, fluid, x, y) == pytest.approx((xc, yc))


def test_exposure_and_its_error():
    times = np.array([0.0, 1.0, 3.0, 6.0])
    c = np.ones((4, 2, 3)) * np.array([0.0, 1.0, 1.0, 1.0])[:, None, None]
    e = M.exposure(c, times)
    np.testing.assert_allclose(e[:, 0, 0], [0.0, 0.5, 2.5, 5.5])
    # A linear ramp c = t is integrated exactly: t^2 / 2.
    ramp = times[:, None, None] * np.ones((1, 2, 3))
    np.testing.assert_allclose(M.exposure(ramp, times)[:, 1, 2], times**2 / 2)
    fluid = np.ones((2, 3))
    err = M.exposure_error(2 * ramp, ramp, times, fluid)
    assert np.isnan(err[0]) and np.allclose(err[1:], 1.0)


def test_negative_mass():
    fluid = np.ones((2, 2))
    assert M.negative_mass(np.array([[1.0, 3.0], [-0.5, 0.0]]), fluid) == pytest.approx(0.125)
    assert M.negative_mass(np.zeros((2, 2)), fluid) == 0.0


def test_scenario_metrics_and_summary():
    x, y, fluid = _grid()
    times = np.arange(5) * 2.0
    true = np.stack([_blob(x, y, 2.0 + k, 3.0) * fluid * (k > 0) for k in range(5)])
    m = M.scenario_metrics(true, true, fluid, times, x, y)
    assert set(m) == set(M.METRICS)
    assert all(v.shape == (5,) for v in m.values())
    np.testing.assert_allclose(m["spearman"][1:], 1.0)
    np.testing.assert_allclose(m["relative_l2"][1:], 0.0)
    np.testing.assert_allclose(m["ssim"], 1.0)
    np.testing.assert_allclose(m["com_error_m"][1:], 0.0, atol=1e-12)
    assert np.isnan(m["spearman"][0]) and np.isnan(m["relative_l2"][0])
    # Median and IQR over scenarios, NaN left out.
    arr = np.array([[np.nan, 1.0, 4.0], [np.nan, 2.0, 1.0], [np.nan, 3.0, 2.0], [np.nan, 4.0, 3.0], [np.nan, 5.0, np.nan]])
    s = M.summarise({"relative_l2": arr})["relative_l2"]
    assert s["final"] == {"median": 2.5, "q25": 1.75, "q75": 3.25, "n": 4}
    assert s["time_mean"]["median"] == pytest.approx(2.5)
    assert s["over_time"]["median"] == [None, 3.0, 2.5]


def test_shape_errors_are_clear():
    fluid = np.ones((3, 4))
    with pytest.raises(ValueError, match="equal shape"):
        M.relative_l2(np.ones((3, 4)), np.ones((4, 3)), fluid)
    with pytest.raises(ValueError, match="fluid mask"):
        M.spearman(np.ones((4, 4)), np.ones((4, 4)), fluid)
