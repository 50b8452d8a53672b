"""ScaleRL's sigmoid compute curve: recovery of known parameters, agreement with scipy's
least squares, bootstrap intervals, and extrapolation from the first half of a curve."""

from __future__ import annotations

import numpy as np
import pytest

from duetto.errors import DuettoError
from duetto.lm.scaling import fit_sigmoid, sigmoid_curve

TRUE = dict(r0=0.3, asymptote=0.85, exponent=1.5, c_mid=40.0)


def curve(n=60, noise=0.01, seed=0, c_max=200.0):
    rng = np.random.default_rng(seed)
    c = np.linspace(c_max / n, c_max, n)
    return c, sigmoid_curve(c, **TRUE) + noise * rng.normal(size=n)


def test_recovers_known_parameters():
    c, r = curve(noise=0.0)
    fit = fit_sigmoid(c, r, r0=TRUE["r0"])
    assert fit.asymptote == pytest.approx(TRUE["asymptote"], rel=1e-4)
    assert fit.exponent == pytest.approx(TRUE["exponent"], rel=1e-4)
    assert fit.c_mid == pytest.approx(TRUE["c_mid"], rel=1e-4)
    assert fit.rmse < 1e-6


def test_agrees_with_scipy_least_squares():
    scipy_optimize = pytest.importorskip("scipy.optimize")
    c, r = curve(noise=0.02, seed=1)
    fit = fit_sigmoid(c, r, r0=0.3)
    params, _ = scipy_optimize.curve_fit(
        lambda x, a, b, m: sigmoid_curve(x, 0.3, a, b, m), c, r, p0=[0.8, 1.0, 50.0]
    )
    np.testing.assert_allclose([fit.asymptote, fit.exponent, fit.c_mid], params, rtol=1e-3)


def test_bootstrap_intervals_cover_the_truth():
    c, r = curve(noise=0.02, seed=2)
    fit = fit_sigmoid(c, r, r0=0.3, bootstrap=100, seed=0)
    for name, ci in (("asymptote", fit.asymptote_ci), ("exponent", fit.exponent_ci)):
        assert ci is not None and ci[0] < TRUE[name] < ci[1], (name, ci)
        assert ci[0] <= getattr(fit, name) <= ci[1]


def test_first_half_predicts_the_second_half():
    """Spec §7.4's check, on a synthetic run: fit on the first half (after dropping the first
    10 %), predict the second half within 0.05 pass rate."""
    c, r = curve(n=100, noise=0.01, seed=3, c_max=400.0)
    first = slice(10, 50)
    fit = fit_sigmoid(c[first], r[first], r0=TRUE["r0"])
    assert np.abs(fit.predict(c[50:]) - r[50:]).mean() < 0.05


def test_bad_points_raise():
    with pytest.raises(DuettoError, match=">= 4 matching points"):
        fit_sigmoid(np.array([1.0, 2.0]), np.array([0.1, 0.2]))
    with pytest.raises(DuettoError, match="positive"):
        fit_sigmoid(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.1, 0.2, 0.3, 0.4]))
