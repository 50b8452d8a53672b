"""duetto.lm.losses against TRL's GRPOTrainer._compute_loss and against hand computation.

tests/fixtures/lm/trl/loss_fixture.{npz,json} are copied from shared/baselines/trl (written by
its scripts/loss_fixture.py with TRL 1.16.0): a batch of 2 prompts x 8 completions of variable
length, policy/old/reference per-token log-probs, advantages, and the loss TRL returned for each
loss type at beta 0 and 0.04 (epsilon 0.2; CISPO with epsilon_high 5.0). duetto, fed the same
log-probs, must return TRL's numbers to float32 rounding: |duetto - TRL| <= 1e-6 on losses of
magnitude up to ~1 (a few float32 ulps after summing 100 tokens).
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from duetto.errors import DuettoError
from duetto.lm.losses import (
    TRL_LOSS_TYPES,
    PolicyLoss,
    aggregate,
    cispo_objective,
    clip_objective,
    group_advantages,
    k3_kl,
    zero_variance_groups,
)

FIXTURE = Path(__file__).parent / "fixtures" / "lm" / "trl"
LOSS_ATOL = 1e-6


@pytest.fixture(scope="module")
def trl():
    batch = dict(np.load(FIXTURE / "loss_fixture.npz"))
    results = json.loads((FIXTURE / "loss_fixture.json").read_text())
    return batch, results


def test_group_advantages_are_trls(trl):
    batch, _ = trl
    adv = group_advantages(jnp.asarray(batch["rewards"]).reshape(2, 8))
    np.testing.assert_allclose(np.asarray(adv).ravel(), batch["advantages"], atol=1e-6)


@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize("loss_type", sorted(TRL_LOSS_TYPES))
def test_losses_return_trls_numbers(trl, loss_type, beta):
    batch, results = trl
    expected = results["results"][f"{loss_type}_beta{beta}"]["trl_loss"]
    loss_fn = PolicyLoss(
        **TRL_LOSS_TYPES[loss_type],  # type: ignore[arg-type]
        clip_low=results["epsilon"],
        clip_high=results["epsilon"],
        beta=beta,
        kl_ratio_weighted=True,
        max_tokens=results["max_completion_length"],
    )
    loss, _ = loss_fn(
        jnp.asarray(batch["per_token_logps"]),
        jnp.asarray(batch["old_per_token_logps"]),
        jnp.asarray(batch["advantages"]),
        jnp.asarray(batch["completion_mask"]).astype(bool),
        ref_logp=jnp.asarray(batch["ref_per_token_logps"]),
        group_size=8,
    )
    assert abs(float(loss) - expected) <= LOSS_ATOL, (float(loss), expected)


def test_policy_log_probs_of_the_fixture_come_from_its_logits(trl):
    """The fixture's per-token log-probs are log-softmax of its logits at the completion ids,
    so a duetto model producing those logits produces those log-probs."""
    batch, _ = trl
    logp = jax.nn.log_softmax(jnp.asarray(batch["completion_logits"]), axis=-1)
    taken = np.take_along_axis(np.asarray(logp), batch["completion_ids"][..., None], -1)[..., 0]
    mask = batch["completion_mask"].astype(bool)
    np.testing.assert_allclose(taken[mask], batch["per_token_logps"][mask], atol=2e-6)


def test_advantage_variants_by_hand():
    r = jnp.array([[1.0, 0.0, 0.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    # GRPO: z-score within the group, Bessel std of [1, 0, 0, 1] = sqrt(1/3).
    grpo = group_advantages(r, eps=0.0)
    np.testing.assert_allclose(
        grpo[0], np.array([0.5, -0.5, -0.5, 0.5]) / np.sqrt(1 / 3), rtol=1e-6
    )
    np.testing.assert_array_equal(group_advantages(r)[1], 0.0)
    # RLOO: r_i minus the mean of the other three.
    rloo = group_advantages(r, baseline="leave_one_out", scale="none")
    np.testing.assert_allclose(rloo[0], [1 - 1 / 3, 0 - 2 / 3, 0 - 2 / 3, 1 - 1 / 3], rtol=1e-6)
    # Dr.GRPO: centred, unscaled.
    np.testing.assert_allclose(group_advantages(r, scale="none")[0], [0.5, -0.5, -0.5, 0.5])
    # ScaleRL: centred per group, scaled by the std of the whole batch.
    batch_std = np.std(np.asarray(r), ddof=1)
    np.testing.assert_allclose(
        group_advantages(r, scale="batch", eps=0.0)[0],
        np.array([0.5, -0.5, -0.5, 0.5]) / batch_std,
        rtol=1e-6,
    )
    np.testing.assert_array_equal(zero_variance_groups(r), [False, True])
    with pytest.raises(DuettoError, match="prompts, group"):
        group_advantages(r.ravel())


def test_clip_objective_by_hand():
    logp = jnp.log(jnp.array([[1.5, 0.5, 1.1]]))  # ratios against old log-prob 0
    old = jnp.zeros((1, 3))
    pos = clip_objective(logp, old, jnp.array([2.0]), clip_low=0.2, clip_high=0.28)
    # A > 0: min(rho A, clip(rho) A) -> clipped above at 1.28, unclipped below.
    np.testing.assert_allclose(pos[0], [-1.28 * 2, -0.5 * 2, -1.1 * 2], rtol=1e-6)
    neg = clip_objective(logp, old, jnp.array([-1.0]), clip_low=0.2, clip_high=0.28)
    # A < 0: min picks the larger ratio magnitude -> clipped below at 0.8, unclipped above.
    np.testing.assert_allclose(neg[0], [1.5, 0.8, 1.1], rtol=1e-6)
    # Gradient vanishes where clipping binds (rho = 1.5, A > 0) and flows elsewhere.
    grad = jax.grad(lambda lp: clip_objective(lp, old, jnp.array([2.0]), 0.2, 0.28).sum())(logp)
    np.testing.assert_allclose(grad[0], [0.0, -0.5 * 2, -1.1 * 2], rtol=1e-6)


def test_cispo_keeps_a_gradient_where_clip_would_not():
    logp = jnp.log(jnp.array([[1.5, 9.0]]))
    old = jnp.zeros((1, 2))
    adv = jnp.array([2.0])
    loss = cispo_objective(logp, old, adv, max_weight=5.0)
    np.testing.assert_allclose(loss[0], [-1.5 * 2 * np.log(1.5), -5.0 * 2 * np.log(9.0)], rtol=1e-6)
    grad = jax.grad(lambda lp: cispo_objective(lp, old, adv, 5.0).sum())(logp)
    np.testing.assert_allclose(grad[0], [-1.5 * 2, -5.0 * 2], rtol=1e-6)  # sg(weight) * A


def test_k3_is_a_nonnegative_unbiased_kl_estimate():
    assert float(k3_kl(jnp.array(-1.0), jnp.array(-1.0))) == 0.0
    d = jnp.linspace(-3, 3, 13)
    assert (np.asarray(k3_kl(jnp.zeros(13), d)) >= 0).all()
    # E_{x ~ p}[k3] = KL(p || q) exactly, summing over a small categorical.
    p = jnp.array([0.7, 0.2, 0.1])
    q = jnp.array([0.3, 0.3, 0.4])
    expected = float(jnp.sum(p * jnp.log(p / q)))
    assert abs(float(jnp.sum(p * k3_kl(jnp.log(p), jnp.log(q)))) - expected) < 1e-6


def test_aggregations_by_hand():
    per_token = jnp.array([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0], [1.0, 1.0, 0.0], [2.0, 0.0, 0.0]])
    mask = jnp.array([[1, 1, 1], [1, 0, 0], [1, 1, 0], [1, 0, 0]], bool)
    assert float(aggregate(per_token, mask, "sequence")) == pytest.approx((2 + 4 + 1 + 2) / 4)
    assert float(aggregate(per_token, mask, "token")) == pytest.approx(14 / 7)
    assert float(aggregate(per_token, mask, "constant")) == pytest.approx(14 / 12)
    assert float(aggregate(per_token, mask, "constant", max_tokens=8)) == pytest.approx(14 / 32)
    # Prompt: groups of 2 rows -> (10 / 4 + 4 / 3) / 2.
    assert float(aggregate(per_token, mask, "prompt", group_size=2)) == pytest.approx(
        (10 / 4 + 4 / 3) / 2
    )
    # Masked tokens never count, whatever they hold.
    poisoned = jnp.where(mask, per_token, 1e9)
    for mode in ("sequence", "token", "constant"):
        assert float(aggregate(poisoned, mask, mode)) == float(aggregate(per_token, mask, mode))
    # A row (or group) with no token left, as after a zero-variance filter, drops out of the mean.
    dropped = mask.at[1].set(False)
    assert float(aggregate(per_token, dropped, "sequence")) == pytest.approx((2 + 1 + 2) / 3)
    dropped = mask.at[2:].set(False)
    assert float(aggregate(per_token, dropped, "prompt", group_size=2)) == pytest.approx(10 / 4)
    with pytest.raises(DuettoError, match="group_size"):
        aggregate(per_token, mask, "prompt", group_size=3)


def test_sequence_aggregation_weights_short_answers_more():
    """GRPO's per-sequence mean gives each token of a short completion more weight than a token of
    a long one; token aggregation weighs all tokens alike (DAPO's argument)."""
    mask = jnp.array([[1, 0, 0, 0], [1, 1, 1, 1]], bool)
    grads = {}
    for mode in ("sequence", "token"):
        grads[mode] = jax.grad(lambda x, mode=mode: aggregate(x, mask, mode))(jnp.ones((2, 4)))
    assert grads["sequence"][0, 0] == 4 * grads["sequence"][1, 0]
    assert grads["token"][0, 0] == grads["token"][1, 0]


def test_policy_loss_needs_a_reference_when_beta_is_positive():
    x = jnp.zeros((2, 3))
    with pytest.raises(DuettoError, match="ref_logp"):
        PolicyLoss(beta=0.04)(x, x, jnp.ones(2), jnp.ones((2, 3), bool))
    with pytest.raises(DuettoError, match="objective"):
        PolicyLoss(objective="ppo")  # type: ignore[arg-type]
    loss, metrics = PolicyLoss(beta=0.0)(x, x, jnp.ones(2), jnp.ones((2, 3), bool))
    assert float(loss) == -1.0 and float(metrics["ratio"]) == 1.0


def test_every_advantage_variant_is_centred_within_a_group():
    """Every variant sums to zero within a group (no reward signal leaks between prompts), for
    each of the 16 binary reward patterns of a group of 4 (one group per row)."""
    patterns = jnp.array([[(i >> j) & 1 for j in range(4)] for i in range(16)], jnp.float32)
    for baseline in ("mean", "leave_one_out"):
        for scale in ("group", "batch", "none"):
            adv = group_advantages(patterns, baseline=baseline, scale=scale)  # type: ignore[arg-type]
            np.testing.assert_allclose(adv.sum(axis=1), 0.0, atol=1e-5)
