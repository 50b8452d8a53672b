"""ScaleRL's compute curve (Khatri et al., arXiv 2510.13786; spec §7.4): pass rate against
training compute as a saturating sigmoid, fitted by least squares, with bootstrap intervals.

    R(C) = R_0 + (A - R_0) / (1 + (C_mid / C)^B)

A is the asymptotic pass rate, B the scaling exponent (efficiency), C_mid the compute at half of
the total gain and R_0 the initial pass rate (given, not fitted). The paper fits after
discarding the earliest, noisy part of a run (spec: the first ~10 % of updates at our scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from duetto.errors import DuettoError


def sigmoid_curve(
    compute: np.ndarray, r0: float, asymptote: float, exponent: float, c_mid: float
) -> np.ndarray:
    """R(C) for compute C > 0."""
    c = np.asarray(compute, np.float64)
    return r0 + (asymptote - r0) / (1.0 + (c_mid / c) ** exponent)


@dataclass(frozen=True)
class SigmoidFit:
    """A fitted curve; the intervals are bootstrap percentile intervals (None without one)."""

    r0: float
    asymptote: float
    exponent: float
    c_mid: float
    rmse: float
    asymptote_ci: tuple[float, float] | None = None
    exponent_ci: tuple[float, float] | None = None
    c_mid_ci: tuple[float, float] | None = None

    def predict(self, compute: np.ndarray) -> np.ndarray:
        return sigmoid_curve(compute, self.r0, self.asymptote, self.exponent, self.c_mid)


def _unpack(theta: np.ndarray, r0: float) -> tuple[float, float, float]:
    # A in (r0, 1): a logistic of theta[0]; B and C_mid positive: exponentials.
    asymptote = r0 + (1.0 - r0) * 0.5 * (1.0 + np.tanh(0.5 * theta[0]))
    return float(asymptote), float(np.exp(theta[1])), float(np.exp(theta[2]))


def _least_squares(c: np.ndarray, r: np.ndarray, r0: float, theta: np.ndarray) -> np.ndarray:
    """Levenberg-Marquardt on the unconstrained parameters, with a finite-difference Jacobian."""

    def residual(t: np.ndarray) -> np.ndarray:
        return sigmoid_curve(c, r0, *_unpack(t, r0)) - r

    damping = 1e-3
    res = residual(theta)
    cost = float(res @ res)
    for _ in range(200):
        jac = np.empty((len(c), 3))
        for i in range(3):
            step = np.zeros(3)
            step[i] = 1e-6
            jac[:, i] = (residual(theta + step) - res) / 1e-6
        grad = jac.T @ res
        hess = jac.T @ jac
        while True:
            delta = -np.linalg.solve(hess + damping * np.diag(np.diag(hess) + 1e-12), grad)
            candidate = theta + delta
            new_res = residual(candidate)
            new_cost = float(new_res @ new_res)
            if new_cost < cost or damping > 1e8:
                break
            damping *= 10.0
        if new_cost >= cost:
            break
        improvement = cost - new_cost
        theta, res, cost = candidate, new_res, new_cost
        damping = max(damping / 10.0, 1e-9)
        if improvement < 1e-14 * max(cost, 1e-30):
            break
    return theta


def _fit(c: np.ndarray, r: np.ndarray, r0: float) -> np.ndarray:
    best, best_cost = None, np.inf
    top = max(float(r.max()), r0 + 1e-3)
    # Starting points over a grid of asymptotes, exponents and midpoints spanning the data.
    for a in np.clip([top, (top + 1) / 2], r0 + 1e-3, 1 - 1e-3):
        for b in (0.5, 1.0, 2.0):
            for c_mid in np.quantile(c, [0.25, 0.5, 0.9]):
                start = np.array([np.log((a - r0) / (1 - a)), np.log(b), np.log(c_mid)])
                theta = _least_squares(c, r, r0, start)
                res = sigmoid_curve(c, r0, *_unpack(theta, r0)) - r
                cost = float(res @ res)
                if cost < best_cost:
                    best, best_cost = theta, cost
    assert best is not None
    return best


def fit_sigmoid(
    compute: np.ndarray,
    pass_rate: np.ndarray,
    r0: float | None = None,
    bootstrap: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
) -> SigmoidFit:
    """Fit R(C) to points (compute [n] > 0, pass_rate [n] in [0, 1]).

    r0: the initial pass rate (None: the pass rate at the smallest compute). bootstrap: number of
    resamples of the points (with replacement) for percentile intervals of A, B and C_mid.
    """
    c = np.asarray(compute, np.float64)
    r = np.asarray(pass_rate, np.float64)
    if c.ndim != 1 or c.shape != r.shape or len(c) < 4:
        raise DuettoError(f"fit_sigmoid needs >= 4 matching points, got {c.shape} and {r.shape}")
    if (c <= 0).any() or not np.isfinite(c).all() or not np.isfinite(r).all():
        raise DuettoError("compute must be positive and pass rates finite")
    if r0 is None:
        r0 = float(r[np.argmin(c)])
    if not 0.0 <= r0 < 1.0:
        raise DuettoError(f"r0 must be in [0, 1), got {r0}")
    theta = _fit(c, r, r0)
    asymptote, exponent, c_mid = _unpack(theta, r0)
    res = sigmoid_curve(c, r0, asymptote, exponent, c_mid) - r
    fit = SigmoidFit(r0, asymptote, exponent, c_mid, float(np.sqrt(np.mean(res**2))))
    if bootstrap <= 0:
        return fit
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(bootstrap):
        idx = rng.integers(len(c), size=len(c))
        samples.append(_unpack(_least_squares(c[idx], r[idx], r0, theta), r0))
    lo, hi = 50 * (1 - confidence), 50 * (1 + confidence)
    draws = np.array(samples)
    ci = [(float(np.percentile(d, lo)), float(np.percentile(d, hi))) for d in draws.T]
    return SigmoidFit(r0, asymptote, exponent, c_mid, fit.rmse, ci[0], ci[1], ci[2])
