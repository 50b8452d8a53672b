"""DSAC-T: the targets, the ω EMA, the clipped sampled target, the gradients of both critic-loss
forms against hand computations, the delayed actor/α/target steps, the loop knobs it brings
(env_steps_per_update, policy warm-up); learning Pendulum, and across reward scales."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from update_setup import setup_update

import duetto
from duetto.algorithms import dsac_t, sac
from duetto.config import build_config
from duetto.contract import TD_ERROR
from duetto.loops.offpolicy import warmup_action
from duetto.nets import sample_squashed
from duetto.nets.targets import polyak


def test_targets_take_the_smaller_mean_per_sample():
    next_q = jnp.array([[1.0, 5.0, -2.0], [2.0, 3.0, -3.0]])
    next_std = jnp.array([[0.5, 1.0, 2.0], [4.0, 0.1, 1.0]])
    noise = jnp.array([[1.0, -1.0, 0.5], [-2.0, 3.0, 1.0]])
    reward = jnp.array([0.5, -1.0, 2.0])
    terminated = jnp.array([0.0, 0.0, 1.0])
    log_prob = jnp.array([0.2, -0.4, 0.0])
    alpha, gamma = 0.5, 0.9
    y_q, y_z = dsac_t.distributional_targets(
        reward, gamma * (1 - terminated), next_q, next_std, noise, log_prob, alpha
    )
    # sample 0: critic 0 (1 < 2): q' = 1, z' = 1 + 0.5·1 = 1.5
    # sample 1: critic 1 (3 < 5): q' = 3, z' = 3 + 0.1·3 = 3.3
    # sample 2: terminated: y = r
    q_sel, z_sel = np.array([1.0, 3.0, 0.0]), np.array([1.5, 3.3, 0.0])
    soft = -alpha * np.array([0.2, -0.4, 0.0])
    np.testing.assert_allclose(y_q, [0.5 + 0.9 * (q_sel[0] + soft[0]), -1 + 0.9 * (3 + 0.2), 2.0])
    np.testing.assert_allclose(y_z, [0.5 + 0.9 * (z_sel[0] + soft[0]), -1 + 0.9 * (3.3 + 0.2), 2.0])


def test_omega_starts_at_the_first_batch_mean_then_follows_an_ema():
    std = jnp.array([[1.0, 3.0], [2.0, 6.0]])  # batch means 2 and 4
    first = dsac_t.omega_ema(jnp.zeros(2), std, 0.1, jnp.array(True))
    np.testing.assert_allclose(first, [2.0, 4.0])
    later = dsac_t.omega_ema(jnp.array([1.0, 1.0]), std, 0.1, jnp.array(False))
    np.testing.assert_allclose(later, [0.9 * 1 + 0.1 * 2, 0.9 * 1 + 0.1 * 4], rtol=1e-6)


def test_sampled_target_is_clipped_to_three_omega_around_q():
    q = jnp.array([[0.0, 1.0, 2.0], [0.0, 0.0, 0.0]])
    y_z = jnp.array([10.0, 1.5, -10.0])
    omega = jnp.array([1.0, 0.1])
    got = dsac_t.clipped_sample_target(q, y_z, omega, 3.0)
    np.testing.assert_allclose(got, [[3.0, 1.5, -1.0], [0.3, 0.3, -0.3]], rtol=1e-6)


def _loss_case():
    """Two critics, four samples: errors inside and beyond δ, ratios clipped at both ends."""
    q = np.array([[0.0, 1.0, -2.0, 100.0], [0.5, 0.5, 0.5, 0.5]])
    std = np.array([[0.5, 2.0, 0.05, 1.0], [1.0, 3.0, 0.2, 20.0]])
    y_q = np.array([1.0, -2.0, 60.0, 0.0])
    y_hat = np.array([[0.2, 3.0, -1.0, 101.0], [0.0, 1.0, 2.0, -5.0]])
    omega = np.array([1.5, 0.3])
    return q, std, y_q, y_hat, omega


def _huber(x, d):
    return np.where(np.abs(x) <= d, 0.5 * x**2, d * (np.abs(x) - 0.5 * d))


def _huber_grad(x, d):
    return np.clip(x, -d, d)


def test_official_loss_gradients_match_hand_computation():
    q, std, y_q, y_hat, omega = _loss_case()
    bias, delta = 0.1, 50.0
    grad_q, grad_std = jax.grad(dsac_t.critic_loss_official, argnums=(0, 1))(
        jnp.asarray(q), jnp.asarray(std), y_q, y_hat, jnp.asarray(omega**2), bias, delta
    )
    n = q.shape[1]
    rho = np.clip(omega[:, None] ** 2 / (std**2 + bias), 0.1, 10.0)
    assert rho.min() == 0.1 and rho.max() == 10.0  # both clips are exercised
    assert np.abs(q - y_q).max() > delta  # and the linear part of the Huber
    np.testing.assert_allclose(grad_q, rho * _huber_grad(q - y_q, delta) / n, rtol=1e-5)
    expected_std = rho * (std**2 - _huber(q - y_hat, delta)) / (std + bias) / n
    np.testing.assert_allclose(grad_std, expected_std, rtol=1e-5)


def test_paper_loss_gradients_are_the_refined_nll_gradients():
    q, std, y_q, y_hat, omega = _loss_case()
    bias = 0.1
    grad_q, grad_std = jax.grad(dsac_t.critic_loss_paper, argnums=(0, 1))(
        jnp.asarray(q), jnp.asarray(std), y_q, y_hat, jnp.asarray(omega**2), bias
    )
    n = q.shape[1]
    scale = (omega**2 + bias)[:, None] / n
    # ∂/∂Q of the NLL with the expected target: (Q − y_q)/σ²; ∂/∂σ with the clipped sampled
    # target: (σ² − (Q − ŷ)²)/σ³; each with ε_b in the denominators, times (ω² + ε_b).
    np.testing.assert_allclose(grad_q, scale * (q - y_q) / (std**2 + bias), rtol=1e-5)
    expected_std = scale * (std**2 - (q - y_hat) ** 2) / (std**3 + bias)
    np.testing.assert_allclose(grad_std, expected_std, rtol=1e-5)


_update = jax.jit(lambda state, batch: dsac_t.update(state, batch, 0))  # one compilation


def _setup(**overrides):
    return setup_update(dsac_t, batch_size=8, **overrides)


def _equal(a, b) -> bool:
    return all(jax.tree.leaves(jax.tree.map(lambda x, y: bool(jnp.all(x == y)), a, b)))


def test_update_follows_the_official_schedule_and_order():
    cfg, spec, s0, batch = _setup(tau=0.1)
    assert float(s0.log_alpha) == 1.0  # the official initialisation
    actor, critic = dsac_t._networks(cfg, spec)

    s1, m1 = _update(s0, batch)
    # ω comes from the first batch's σ under the critics before the step
    _, std0 = critic.apply(s0.critic_params, batch.obs, batch.action)
    np.testing.assert_allclose(s1.omega, np.asarray(std0).mean(axis=1), rtol=1e-6)
    # the first call is a delayed one: the actor's gradient uses the critics before the step
    k_pi = jax.random.split(s0.key, 4)[3]  # as update splits its key

    def actor_objective(params):
        mean, log_std = actor.apply(params, batch.obs)
        a, log_prob = sample_squashed(k_pi, mean, log_std)
        q, _ = critic.apply(s0.critic_params, batch.obs, a)
        return sac.actor_loss(log_prob, q, jnp.exp(s0.log_alpha))

    np.testing.assert_allclose(m1["actor_loss"], actor_objective(s0.actor_params), rtol=1e-5)
    assert not _equal(s0.actor_params, s1.actor_params)
    assert float(s1.log_alpha) != 1.0
    for online, target, old in (
        (s1.critic_params, s1.target_critic_params, s0.target_critic_params),
        (s1.actor_params, s1.target_actor_params, s0.target_actor_params),
    ):
        for a, b in zip(
            jax.tree.leaves(polyak(online, old, 0.1)), jax.tree.leaves(target), strict=True
        ):
            np.testing.assert_allclose(a, b, rtol=1e-6)

    s2, m2 = _update(s1, batch)  # critics only
    assert not _equal(s1.critic_params, s2.critic_params)
    for a, b in (
        (s1.actor_params, s2.actor_params),
        (s1.target_actor_params, s2.target_actor_params),
        (s1.target_critic_params, s2.target_critic_params),
    ):
        assert _equal(a, b)
    assert float(s2.log_alpha) == float(s1.log_alpha)
    assert float(m2["actor_loss"]) == float(m1["actor_loss"])  # reported between delayed steps
    np.testing.assert_allclose(
        s2.omega,
        0.9 * np.asarray(s1.omega)
        + 0.1 * np.asarray(critic.apply(s1.critic_params, batch.obs, batch.action)[1]).mean(1),
        rtol=1e-5,
    )
    s3, _ = _update(s2, batch)  # delayed again
    assert not _equal(s2.actor_params, s3.actor_params)


@pytest.mark.parametrize("form", ["official", "paper"])
def test_both_loss_forms_update_and_report_finite_metrics(form):
    _, _, state, batch = _setup(critic_loss=form)
    for _ in range(3):
        state, metrics = _update(state, batch)
    assert np.all(np.isfinite(metrics.pop(TD_ERROR)))  # per sample, for prioritised replay
    assert set(metrics) == set(dsac_t.METRICS)
    assert all(np.isfinite(float(v)) for v in metrics.values())


def test_reward_scale_multiplies_the_reward_before_learning():
    _, _, state, batch = _setup(reward_scale=10.0)
    _, _, plain, _ = _setup()
    scaled = batch._replace(reward=10.0 * batch.reward)
    a, _ = _update(state, batch)
    b, _ = _update(plain, scaled)
    leaves = zip(jax.tree.leaves(a.critic_params), jax.tree.leaves(b.critic_params), strict=True)
    for x, y in leaves:
        np.testing.assert_allclose(x, y, rtol=1e-6)


def test_warmup_actions_come_from_the_policy_or_uniform():
    cfg, _, state, batch = _setup()
    key = jax.random.PRNGKey(3)
    policy = warmup_action(dsac_t, cfg, state, batch.obs, key, 2)
    np.testing.assert_array_equal(policy, dsac_t.act(state, batch.obs, key, False))
    uniform_cfg = build_config(dsac_t.CONFIG, dsac_t.NAME, {}, {"warmup_actions": "uniform"})
    uniform = warmup_action(dsac_t, uniform_cfg, state, batch.obs, key, 2)
    np.testing.assert_array_equal(uniform, jax.random.uniform(key, (8, 2), minval=-1, maxval=1))


def test_env_steps_per_update_sets_the_update_count():
    """Host and fused loops: the first update call comes on env step `learning_starts` (100),
    then one every 20 env steps up to 500 (every step is the default all other tests run)."""
    every = 20
    kw = dict(
        hidden=(8, 8),
        batch_size=16,
        learning_starts=100,
        env_steps_per_update=every,
        run_dir=False,
    )
    host = duetto.DSACT("Pendulum-v1", seed=0, **kw)
    host.learn(500, eval_every=10_000)
    fused = duetto.DSACT("gymnax:Pendulum-v1", seeds=[0], **kw)
    fused.learn(500, eval_every=10_000)
    assert int(host.state.updates) == 400 // every + 1
    assert int(np.asarray(fused.state.updates)[0]) == 400 // every + 1


def test_dsac_t_learns_pendulum_by_10k_on_4_of_5_seeds():
    """The `fast` preset in the fused loop (five seeds, one program); the issue asks for
    ≥ −250 by 20k (the spec expects SAC-like speed at UTD 1), checked here already at 10k."""
    agent = duetto.DSACT("gymnax:Pendulum-v1", seeds=range(5), preset="fast", run_dir=False)
    agent.learn(10_000, eval_every=10_000)
    final = np.asarray(agent.last_eval["seed_returns"])
    assert (final >= -250).sum() >= 4, final


def test_dsac_t_resumes_exactly(tmp_path):
    """300 steps straight equal 150, save, load, 150 more: ω, the delayed-step metrics and the
    update phase (every 2 env steps, delay 2) included."""
    kw = dict(hidden=(8, 8), batch_size=16, learning_starts=50, env_steps_per_update=2)
    straight = duetto.DSACT("Pendulum-v1", seed=0, run_dir=False, **kw)
    straight.learn(300, eval_every=10_000)
    first = duetto.DSACT("Pendulum-v1", seed=0, run_dir=False, **kw)
    first.learn(150, eval_every=10_000)
    first.save(tmp_path / "half.ckpt")
    resumed = duetto.load(tmp_path / "half.ckpt")
    resumed.learn(150, eval_every=10_000)
    a, b = jax.tree.leaves(straight.loop.state), jax.tree.leaves(resumed.loop.state)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.slow
def test_dsac_t_with_the_official_schedule_matches_the_official_pendulum_run():
    """Spec control.md §2(e): the official code's Pendulum run (3×256 GELU, 20 env steps per
    gradient step) crosses −150 at about 152k samples; ≥ −200 by 200k on 4 of 5 seeds.
    22 minutes here, on 2 cores shared with another run."""
    agent = duetto.DSACT("gymnax:Pendulum-v1", seeds=range(5), preset="paper", run_dir=False)
    agent.learn(200_000, eval_every=50_000)
    final = np.asarray(agent.last_eval["seed_returns"])
    assert (final >= -200).sum() >= 4, final


def test_dsac_t_on_the_cli(tmp_path):
    from duetto.cli import main

    args = ["train", "dsac-t", "--env", "Pendulum-v1", "--steps", "200", "--hidden", "16,16"]
    args += ["--learning-starts", "100", "--eval-episodes", "2", "--critic-loss", "paper"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "curve.png").exists()
    agent = duetto.load(tmp_path / "run")
    assert isinstance(agent, duetto.DSACT) and agent.config.critic_loss == "paper"


def _final_returns_across_reward_scales(**overrides) -> np.ndarray:
    """Median over five seeds of the eval return after 5k steps, for rewards × 0.1, 1, 10
    (one program: the scales are swept); the eval return is the env's own, unscaled."""
    agent = duetto.DSACT(
        "gymnax:Pendulum-v1",
        seeds=range(5),
        sweep={"reward_scale": [0.1, 1.0, 10.0]},
        preset="fast",
        run_dir=False,
        **overrides,
    )
    agent.learn(5_000, eval_every=5_000)
    returns = np.asarray(agent.last_eval["seed_returns"]).reshape(3, 5)  # scale-major
    return np.median(returns, axis=1)


def test_omega_scaling_makes_learning_invariant_to_the_reward_scale():
    """Refinement 3 (the paper form, where it is the whole gradient scaling): DSAC-T's return
    stays within a band of 100 (a tenth of Pendulum's random-to-solved range) across reward
    scales; the same loss without ω varies more than twice as much."""
    with_omega = _final_returns_across_reward_scales(critic_loss="paper")
    without = _final_returns_across_reward_scales(critic_loss="paper", omega_scaling=False)
    spread, spread_without = np.ptp(with_omega), np.ptp(without)
    assert spread <= 100, with_omega
    assert spread_without > 2 * spread, (with_omega, without)
