"""MDPO (control.md §4): the closed-form Gaussian KL, both losses and the step-size schedule
against hand computations; one on-policy update against a hand-built Adam step; off-policy
MDPO with the KL weight at 0 equal to SAC-v1 on the same batch; the old-policy copies."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from update_setup import TERMINATED, setup_update

import duetto
from duetto.algorithms import mdpo, mdpo_off
from duetto.config import build_config
from duetto.data.rollout import Rollout
from duetto.envs.spec import EnvSpec
from duetto.losses import gaussian_kl

LOG_2PI = np.log(2 * np.pi)


def test_gaussian_kl_matches_the_closed_form_by_hand():
    # KL(N(0, 1) ‖ N(1, 2²)) = log 2 + (1 + 1)/8 − ½; KL(N(2, 0.5²) ‖ N(2, 0.5²)) = 0
    kl = gaussian_kl(
        jnp.array([0.0, 2.0]),
        jnp.log(jnp.array([1.0, 0.5])),
        jnp.array([1.0, 2.0]),
        jnp.log(jnp.array([2.0, 0.5])),
    )
    np.testing.assert_allclose(kl, np.log(2) + 2 / 8 - 0.5, rtol=1e-6)
    # and agrees with a Monte-Carlo estimate E_p[log p − log q] in 3 dimensions
    rng = np.random.default_rng(0)
    m, s, m2, s2 = (rng.normal(size=3) for _ in range(4))
    x = m + np.exp(s) * rng.normal(size=(400_000, 3))

    def log_n(x, mu, log_sd):
        return (-0.5 * ((x - mu) / np.exp(log_sd)) ** 2 - log_sd - 0.5 * LOG_2PI).sum(-1)

    estimate = np.mean(log_n(x, m, s) - log_n(x, m2, s2))
    np.testing.assert_allclose(gaussian_kl(m, s, m2, s2), estimate, rtol=2e-2)


def test_on_policy_loss_and_step_size_by_hand():
    log_prob = jnp.array([-1.0, -0.5, -2.0])
    old = jnp.array([-1.2, -0.5, -1.0])
    adv = jnp.array([1.0, -2.0, 0.5])
    kl = jnp.array([0.1, 0.0, 0.3])
    expected = -np.mean(np.exp([0.2, 0.0, -1.0]) * [1.0, -2.0, 0.5]) + 4.0 * np.mean([0.1, 0, 0.3])
    np.testing.assert_allclose(mdpo.policy_loss(log_prob, old, adv, kl, 4.0), expected, rtol=1e-6)
    # t_k = 1 − k/K with K = 10 iterations of 100 steps; k = 0 at the first rollout's update
    t = [float(mdpo.step_size(jnp.int32(100 * (k + 1)), 100, 1000)) for k in (0, 1, 5, 9, 10, 50)]
    np.testing.assert_allclose(t, [1.0, 0.9, 0.5, 0.1, 0.1, 0.1], rtol=1e-6)


def _rollout(state, spec, n_steps=16, n_envs=2, key=1):
    k = jax.random.split(jax.random.PRNGKey(key), 4)
    obs = jax.random.normal(k[0], (n_steps, n_envs, spec.obs_dim))
    noise = mdpo.exploration_noise(state, k[1], (n_steps * n_envs,))
    action, log_prob = mdpo.explore(state, obs.reshape(-1, spec.obs_dim), noise)
    zeros = jnp.zeros((n_steps, n_envs))
    return Rollout(
        obs,
        action.reshape(n_steps, n_envs, -1),
        log_prob.reshape(n_steps, n_envs),
        jax.random.normal(k[2], (n_steps, n_envs)),
        jax.random.normal(k[3], (n_steps, n_envs, spec.obs_dim)),
        zeros,
        zeros,
    )


def test_on_policy_first_step_is_adam_on_the_hand_built_surrogate():
    """With one policy step, the actor moves by Adam's first step, −lr·sign(g) (up to ε), where
    g is the gradient of −E[ρ·Â] at θ = θk (the KL and its gradient vanish there), with Â GAE
    standardised and log π computed by hand; the value network is left to its own steps."""
    spec = EnvSpec(obs_dim=3, action_dim=2)
    cfg = build_config(
        mdpo.MDPOConfig,
        "mdpo",
        {},
        {
            "n_steps": 16,
            "batch_size": 16,
            "policy_steps": 1,
            "normalize_obs": False,
            "normalize_reward": False,
            "hidden": (8, 8),
            "learning_rate": 1e-2,
        },
    )
    state = mdpo.init(jax.random.PRNGKey(0), spec, cfg, n_envs=2)
    rollout = _rollout(state, spec)
    new, metrics = mdpo.update(state, rollout, 32)
    assert float(metrics["kl_weight"]) == pytest.approx(1.0)

    from duetto.actor_critic import prepare

    prepared = prepare(state, rollout)
    adv = np.asarray(prepared.advantage).reshape(-1)
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    obs = rollout.obs.reshape(-1, 3)
    action = rollout.action.reshape(-1, 2)
    actor, _ = mdpo.networks(cfg, spec)

    def log_prob(params):
        mean, log_std = actor.apply(params, obs)
        z = (action - mean) / jnp.exp(log_std)
        return jnp.sum(-0.5 * z**2 - log_std - 0.5 * LOG_2PI, -1)

    old = log_prob(state.params["actor"])

    def surrogate(params):
        return -jnp.mean(jnp.exp(log_prob(params) - old) * adv)

    grads = jax.grad(surrogate)(state.params["actor"])
    norm = np.sqrt(sum(float(jnp.sum(g**2)) for g in jax.tree.leaves(grads)))
    clip = min(1.0, 0.5 / norm)  # clip_by_global_norm(0.5): a common factor, sign unchanged
    for p0, g, p1 in zip(
        jax.tree.leaves(state.params["actor"]),
        jax.tree.leaves(grads),
        jax.tree.leaves(new.params["actor"]),
        strict=True,
    ):
        g = clip * np.asarray(g)
        np.testing.assert_allclose(p1, p0 - 1e-2 * g / (np.abs(g) + 1e-5), atol=2e-5)


def test_on_policy_kl_term_holds_the_policy_back():
    """Over m = 10 steps, a larger KL weight keeps the new policy closer to θk."""
    spec = EnvSpec(obs_dim=3, action_dim=2)
    kls = []
    for scale in (0.0, 50.0):
        cfg = build_config(
            mdpo.MDPOConfig, "mdpo", {}, {"n_steps": 16, "batch_size": 16, "kl_scale": scale}
        )
        state = mdpo.init(jax.random.PRNGKey(0), spec, cfg, n_envs=2)
        _, metrics = mdpo.update(state, _rollout(state, spec), 32)
        kls.append(float(metrics["kl"]))
    assert kls[1] < kls[0]


def _hand_sac_v1(cfg, spec, state, batch, lam):
    """SAC-v1's gradients at the state's parameters, written out by hand: Q on r + γ(1−d)V̄(s'),
    V on min Q(s, ã) − λ log π(ã|s), the actor on λ log π(ã|s) − Q_1(s, ã) + 10⁻³ reg."""
    actor, q_net, v_net = mdpo_off._networks(cfg, spec)
    _, k_pi = jax.random.split(state.key)
    gamma = cfg.gamma
    y = (
        batch.reward
        + gamma * (1 - TERMINATED) * v_net.apply(state.v_target_params, batch.next_obs)[:, 0]
    )

    def q_loss(p):
        q = q_net.apply(p, batch.obs, batch.action)
        return sum(0.5 * jnp.mean((q[i] - y) ** 2) for i in range(q.shape[0]))

    def sample(p):
        mean, log_std = actor.apply(p, batch.obs)
        u = mean + jnp.exp(log_std) * jax.random.normal(k_pi, mean.shape)
        a = jnp.tanh(u)
        gauss = -0.5 * ((u - mean) / jnp.exp(log_std)) ** 2 - log_std - 0.5 * LOG_2PI
        correction = 2 * (np.log(2) - u - jax.nn.softplus(-2 * u))
        return a, jnp.sum(gauss - correction, -1), mean, log_std

    a, lp, _, _ = sample(state.actor_params)
    v_target = q_net.apply(state.q_params, batch.obs, a).min(0) - lam * lp

    def v_loss(p):
        return 0.5 * jnp.mean((v_net.apply(p, batch.obs)[:, 0] - v_target) ** 2)

    def pi_loss(p):
        a, lp, mean, log_std = sample(p)
        q1 = q_net.apply(state.q_params, batch.obs, a)[0]
        reg = 1e-3 * (jnp.mean(mean**2) + jnp.mean(log_std**2))
        return jnp.mean(lam * lp - q1) + reg

    return (
        jax.grad(q_loss)(state.q_params),
        jax.grad(v_loss)(state.v_params),
        jax.grad(pi_loss)(state.actor_params),
    )


def test_off_policy_with_kl_weight_zero_is_sac_v1_on_the_same_batch():
    cfg, spec, state, batch = setup_update(mdpo_off, kl_weight=0.0, learning_rate=1e-2)
    # an old policy far from the actor: with w = 0 it must not matter
    state = state.replace(
        old_actor_params=jax.tree.map(lambda x: x + 0.5, state.old_actor_params),
        copied_at=jnp.int32(0),
    )
    new, metrics = mdpo_off.update(state, batch, jnp.int32(10))  # no copy: 10 < m
    grads = _hand_sac_v1(cfg, spec, state, batch, lam=0.2)
    before = (state.q_params, state.v_params, state.actor_params)
    after = (new.q_params, new.v_params, new.actor_params)
    for p0, g, p1 in zip(
        jax.tree.leaves(before), jax.tree.leaves(grads), jax.tree.leaves(after), strict=True
    ):
        g = np.asarray(g)
        np.testing.assert_allclose(p1, p0 - 1e-2 * g / (np.abs(g) + 1e-8), atol=3e-5)
    # V̄ moves by τ towards the new V
    for t, t0, v in zip(
        jax.tree.leaves(new.v_target_params),
        jax.tree.leaves(state.v_target_params),
        jax.tree.leaves(new.v_params),
        strict=True,
    ):
        np.testing.assert_allclose(t, 0.995 * t0 + 0.005 * v, atol=1e-6)
    # a positive weight changes the actor's step (the old policy differs), nothing else
    kl_state = state.replace(hparams={**state.hparams, "kl_weight": jnp.float32(0.8)})
    with_kl, _ = mdpo_off.update(kl_state, batch, jnp.int32(10))
    for a, b in zip(jax.tree.leaves(with_kl.q_params), jax.tree.leaves(new.q_params), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(
            jax.tree.leaves(with_kl.actor_params), jax.tree.leaves(new.actor_params), strict=True
        )
    )


def test_off_policy_losses_by_hand():
    lp, old, q1 = jnp.array([-1.0, 0.5]), jnp.array([-2.0, 0.0]), jnp.array([3.0, -1.0])
    expected = np.mean([0.2 * -1.0 + 0.8 * 1.0 - 3.0, 0.2 * 0.5 + 0.8 * 0.5 + 1.0])
    np.testing.assert_allclose(mdpo_off.actor_loss(lp, old, q1, 0.2, 0.8), expected, rtol=1e-6)
    q = jnp.array([[1.0, 5.0], [2.0, 4.0]])
    np.testing.assert_allclose(mdpo_off.value_target(q, lp, 0.2), [1.2, 3.9], rtol=1e-6)


def test_old_policy_is_the_actor_copied_every_m_env_steps():
    _, _, state, batch = setup_update(mdpo_off, old_policy_every=100, learning_starts=0)
    update = jax.jit(mdpo_off.update)
    copies = []
    for steps in (50, 99, 100, 150, 199, 200, 201):
        actor_before = state.actor_params
        state, _ = update(state, batch, jnp.int32(steps))
        same = all(
            np.array_equal(a, b)
            for a, b in zip(
                jax.tree.leaves(state.old_actor_params), jax.tree.leaves(actor_before), strict=True
            )
        )
        copies.append((steps, int(state.copied_at), same))
    # the old policy starts as the initial actor (so equal to it before the first update),
    # then is the actor as it was at env steps 100 and 200
    assert [c for c in copies if c[2]] == [(50, 0, True), (100, 100, True), (200, 200, True)]


def test_mdpo_runs_in_every_loop_through_the_facade():
    """Registered by its module alone: the facade classes, the host and fused loops."""
    on = duetto.MDPO("gymnax:CartPole-v1", seeds=[0, 1], run_dir=False, preset="cartpole")
    on.learn(2_048, eval_every=1_024, eval_episodes=2)
    assert len(on.last_eval["seed_returns"]) == 2 and isinstance(on, duetto.MDPO)
    off = duetto.MDPOOff("Pendulum-v1", run_dir=False, hidden=(16, 16), learning_starts=50)
    off.learn(120, eval_episodes=1)
    assert np.isfinite(off.last_eval["return_mean"])
    assert np.asarray(off.predict(np.zeros(3), deterministic=False)[0]).shape == (1,)


@pytest.mark.slow
def test_off_policy_mdpo_reaches_minus_250_on_pendulum_by_20k_on_4_of_5_seeds():
    """control.md §4 (e)(ii): SAC's level; five seeds in one program (benchmarks/mdpo_returns.py
    records the run)."""
    agent = duetto.MDPOOff("gymnax:Pendulum-v1", seeds=range(5), preset="zoo", run_dir=False)
    agent.learn(20_000, eval_every=20_000, eval_episodes=20)
    assert (np.asarray(agent.last_eval["seed_returns"]) >= -250).sum() >= 4, agent.last_eval


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_on_policy_mdpo_balances_inverted_pendulum_within_300k(seed):
    """control.md §4 (e)(i): InvertedPendulum's 1,000 within 300k steps (official setting)."""
    agent = duetto.MDPO("InvertedPendulum-v5", seed=seed, preset="mujoco", run_dir=False)
    best = []
    agent.learn(
        300_000,
        eval_every=10_240,
        stop_at_return=1000,
        callbacks=[lambda ctx: best.append((ctx.last_eval or {}).get("return_mean", 0.0))],
    )
    assert max(best) >= 1000, max(best)
