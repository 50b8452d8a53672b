"""D^3S selectors (spec §7.3): the variance-maximising subset against brute force, the token
selector, and the schedule."""

from __future__ import annotations

from itertools import combinations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from duetto.errors import DuettoError
from duetto.lm.d3s import categorical_entropy, max_variance_mask, schedule, top_token_mask


def test_max_variance_subset_matches_brute_force():
    rng = np.random.default_rng(0)
    for g in (2, 7, 12):
        adv = rng.normal(size=(6, g)).astype(np.float32)
        adv[0, : g // 2] = adv[0, 0]  # ties
        for k in sorted({1, g // 2, g - 1}):
            mask = np.asarray(max_variance_mask(jnp.asarray(adv), k))
            assert (mask.sum(1) == k).all()
            for row, keep in zip(adv, mask, strict=True):
                best = max(np.var(row[list(c)]) for c in combinations(range(g), k))
                assert np.var(row[keep]) == pytest.approx(best, rel=1e-4, abs=1e-6)


def test_binary_rewards_keep_both_outcomes():
    """With pass/fail advantages the best subset balances the two outcomes."""
    adv = jnp.array([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0, -1.0]])
    keep = np.asarray(max_variance_mask(adv, 4))[0]
    assert keep[:6].sum() == 2 and keep[6:].all()
    with pytest.raises(DuettoError, match="subset size"):
        max_variance_mask(adv, 9)


def test_top_token_mask_keeps_the_largest_scores():
    adv = jnp.array([1.0, -2.0])
    entropy = jnp.array([[0.1, 0.5, 0.9], [0.1, 0.2, 9.0]])
    mask = jnp.array([[True, True, True], [True, True, False]])
    # scores: [0.1, 0.5, 0.9] and [0.2, 0.4, (padding)]; 5 real tokens, keep ceil(0.4 * 5) = 2
    np.testing.assert_array_equal(
        np.asarray(top_token_mask(adv, entropy, mask, 0.4)), [[0, 1, 1], [0, 0, 0]]
    )
    np.testing.assert_array_equal(np.asarray(top_token_mask(adv, entropy, mask, 1.0)), mask)
    with pytest.raises(DuettoError, match="fraction"):
        top_token_mask(adv, entropy, mask, 0.0)


def test_entropy_and_schedule():
    assert float(categorical_entropy(jnp.zeros(4))) == pytest.approx(np.log(4))
    assert float(categorical_entropy(jnp.array([0.0, -1e9]))) == pytest.approx(0.0, abs=1e-6)
    assert schedule(0.0, 0.3) == pytest.approx(0.3)
    assert schedule(0.3, 0.3, ramp=0.6) == pytest.approx(0.65)
    assert schedule(0.3, 0.5, ramp=0.6, shape="cosine") == pytest.approx(0.75)
    assert schedule(0.8, 0.3) == 1.0 and schedule(1.0, 0.5, shape="cosine") == 1.0
    with pytest.raises(DuettoError, match="shape"):
        schedule(0.5, 0.5, shape="step")  # type: ignore[arg-type]


def test_selectors_compile():
    """Both selectors run inside jit (the update's compiled program)."""
    adv = jnp.array([[0.5, -1.0, 2.0, 0.0]])
    jitted = jax.jit(max_variance_mask, static_argnums=1)
    np.testing.assert_array_equal(np.asarray(jitted(adv, 2)), [[False, True, True, False]])
    keep = jax.jit(top_token_mask, static_argnums=3)(
        adv[0], jnp.ones((4, 2)), jnp.ones((4, 2), bool), 0.5
    )
    assert int(keep.sum()) == 4
