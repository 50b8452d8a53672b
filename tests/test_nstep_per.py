"""n-step returns and prioritised replay as options of the off-policy algorithms (contract.py's
OffPolicyConfig: n_step, prioritised): the loop's batches and the algorithms' targets against
hand computations on a tiny hand-built replay, importance weights in the critic losses,
priorities set from the update's |δ|, exact resume of the fused loop with both on, and SAC
learning Pendulum with both on.

The replay is written as the loops write it, one row per env per vector step (2 envs), with a
termination and a time-limit truncation inside the windows."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_checkpoint_size import resumes_exactly

import duetto
from duetto.algorithms import dsac_t, mdpo_off, sac, td3
from duetto.config import build_config
from duetto.contract import TD_ERROR
from duetto.data.replay import Transition
from duetto.envs.spec import EnvSpec
from duetto.errors import DuettoError
from duetto.improvement import squashed_samples
from duetto.loops.offpolicy import empty_replay, gradient_steps, sample, store

N_ENVS = 2
GAMMA = 0.9
REWARDS = [[1, 10], [2, 20], [3, 30], [4, 40], [5, 50]]  # [vector step][env]
TERMINATED = [[0, 0], [1, 0], [0, 0], [0, 0], [0, 0]]  # env 0's episode ends at step 1
TRUNCATED = [[0, 0], [0, 0], [0, 1], [0, 0], [0, 0]]  # env 1's is cut by a time limit at step 2
SPEC = EnvSpec(obs_dim=3, action_dim=2)


def _obs(env: int, step: int) -> list[float]:
    return [float(env), 0.25 * step, -0.5 * step]


def _next_obs(env: int, step: int) -> list[float]:
    return [v + 0.5 for v in _obs(env, step)]


def _config(module, **overrides):
    values = {"hidden": (16, 16), "batch_size": 64, "buffer_size": 32, "gamma": GAMMA}
    return build_config(module.CONFIG, module.NAME, {}, {**values, **overrides})


def _replay(config):
    """The 5 vector steps above written by the loop's `store`: rows 0..9, env e's step k in
    row 2k + e; the action of a row is the first two entries of its obs."""
    replay = empty_replay(config, SPEC)
    for k, (r, term, trunc) in enumerate(zip(REWARDS, TERMINATED, TRUNCATED, strict=True)):
        obs = jnp.asarray([_obs(e, k) for e in range(N_ENVS)])
        step = Transition(
            obs,
            obs[:, :2],
            jnp.asarray(r, jnp.float32),
            jnp.asarray([_next_obs(e, k) for e in range(N_ENVS)]),
            jnp.asarray(term, jnp.float32),
            jnp.maximum(jnp.asarray(term), jnp.asarray(trunc)).astype(jnp.float32),
        )
        replay = store(replay, step)
    return replay


def _hand_backup(row: int, n: int) -> tuple[float, float, list[float]]:
    """(Σ_{k<m} γ^k r_{t+k}, γ^m·(1 − terminated), s_{t+m}) of `row`, walking its env's steps."""
    env, step = row % N_ENVS, row // N_ENVS
    ret, m = 0.0, 0
    for j in range(n):
        if step + j >= len(REWARDS):  # not written yet
            break
        ret += GAMMA**j * REWARDS[step + j][env]
        m = j + 1
        if TERMINATED[step + j][env] or TRUNCATED[step + j][env]:
            break
    last = step + m - 1
    return ret, GAMMA**m * (1 - TERMINATED[last][env]), _next_obs(env, last)


def _sampled(config, gamma=GAMMA):
    """(rows, batch) of one draw of 64 rows by the loop, and the hand-computed (obs, action,
    reward, discount, next_obs) of those rows."""
    draw = jax.jit(partial(sample, config), static_argnums=4)
    rows, batch = draw(_replay(config), jax.random.PRNGKey(5), gamma, 10, N_ENVS)
    rows = np.asarray(rows)
    assert set(rows.tolist()) == set(range(10))  # every row, so every kind of window, is drawn
    hand = [_hand_backup(int(r), config.n_step) for r in rows]
    obs = np.asarray([_obs(int(r) % N_ENVS, int(r) // N_ENVS) for r in rows], np.float32)
    reward, discount, next_obs = (np.asarray(x, np.float32) for x in zip(*hand, strict=True))
    return rows, batch, (obs, obs[:, :2], reward, discount, next_obs)


def _state(module, config):
    return module.init(jax.random.PRNGKey(0), SPEC, config, N_ENVS)


def test_nstep_batch_of_the_loop_is_the_hand_computed_backup():
    rows, batch, (obs, action, reward, discount, next_obs) = _sampled(_config(sac, n_step=3))
    np.testing.assert_allclose(batch.obs, obs)
    np.testing.assert_allclose(batch.action, action)
    np.testing.assert_allclose(batch.reward, reward, rtol=1e-6)
    np.testing.assert_allclose(batch.discount, discount, rtol=1e-6)
    np.testing.assert_allclose(batch.next_obs, next_obs)
    assert batch.weight is None  # uniform draws
    # the window kinds: cut by the termination (row 0: 2 steps, no bootstrap), by the
    # truncation (row 1: 3 steps; row 3: 2 steps, bootstrapping from the final observation),
    # by the write pointer (row 8: 1 step) and whole (row 4)
    at = {int(r): i for i, r in enumerate(rows)}
    np.testing.assert_allclose(reward[at[0]], 1 + GAMMA * 2)
    assert discount[at[0]] == 0.0
    np.testing.assert_allclose(reward[at[3]], 20 + GAMMA * 30)
    np.testing.assert_allclose(discount[at[3]], GAMMA**2)
    np.testing.assert_allclose(reward[at[8]], 5)
    np.testing.assert_allclose(reward[at[4]], 3 + GAMMA * 4 + GAMMA**2 * 5)
    np.testing.assert_allclose(discount[at[4]], GAMMA**3, rtol=1e-6)


def _critic_loss(q, y, weight=None):
    """Σ_i ½·mean_b w_b·(q_ib − y_b)², written out."""
    w = np.ones_like(y) if weight is None else np.asarray(weight)
    q, y = np.asarray(q, np.float64), np.asarray(y, np.float64)
    return sum(0.5 * np.mean(w * (q[i] - y) ** 2) for i in range(q.shape[0]))


def test_td3_nstep_target_and_importance_weights_match_hand_computation():
    config = _config(td3, n_step=3, target_noise=0.0)
    state = _state(td3, config)
    _, batch, (obs, action, reward, discount, next_obs) = _sampled(config)
    weight = np.linspace(0.1, 1.0, 64).astype(np.float32)
    actor, critic = td3._networks(config, SPEC)
    next_action = actor.apply(state.target_actor_params, next_obs)
    next_q = np.asarray(critic.apply(state.target_critic_params, next_obs, next_action))
    y = reward + discount * next_q.min(axis=0)
    q = np.asarray(critic.apply(state.critic_params, obs, action))
    _, metrics = jax.jit(td3.update)(state, batch._replace(weight=jnp.asarray(weight)), 10)
    want = _critic_loss(q, y, weight)
    assert abs(want - _critic_loss(q, y)) > 0.05 * want  # the weights matter on this batch
    np.testing.assert_allclose(metrics["critic_loss"], want, rtol=1e-5)
    np.testing.assert_allclose(metrics[TD_ERROR], np.abs(q - y).max(axis=0), rtol=1e-5, atol=1e-6)


def test_sac_nstep_target_and_importance_weights_match_hand_computation():
    config = _config(sac, n_step=3)
    state = _state(sac, config)
    _, batch, (obs, action, reward, discount, next_obs) = _sampled(config)
    actor, critic = sac._networks(config, SPEC)
    _, k_next, _ = jax.random.split(state.key, 3)  # the key update draws a' with
    nxt = squashed_samples(actor, state.actor_params, next_obs, k_next, SPEC.action_log_scale)
    next_q = np.asarray(critic.apply(state.target_params, next_obs, nxt.action))
    alpha = float(np.exp(state.log_alpha))
    y = reward + discount * (next_q.min(axis=0) - alpha * np.asarray(nxt.log_prob))
    q = np.asarray(critic.apply(state.critic_params, obs, action))
    weight = np.linspace(1.0, 0.1, 64).astype(np.float32)
    _, metrics = jax.jit(sac.update)(state, batch._replace(weight=jnp.asarray(weight)), 10)
    np.testing.assert_allclose(metrics["critic_loss"], _critic_loss(q, y, weight), rtol=1e-5)
    np.testing.assert_allclose(metrics[TD_ERROR], np.abs(q - y).max(axis=0), rtol=1e-5, atol=1e-5)


_CRITICS = {"dsac-t": "critic_params", "mdpo-off": "q_params"}


@pytest.mark.parametrize("module", [dsac_t, mdpo_off], ids=lambda m: m.NAME)
def test_importance_weights_reach_the_critic_loss(module):
    """Weights of zero leave no critic loss and no critic step (Adam moves nothing on a zero
    gradient). SAC's and TD3's (DDPG's) updates: the hand computations above."""
    config = _config(module, n_step=2)
    state = _state(module, config)
    _, batch, _ = _sampled(config, state.hparams["gamma"])
    after, metrics = jax.jit(module.update)(state, batch._replace(weight=jnp.zeros(64)), 10)
    assert float(metrics["critic_loss"]) == 0.0
    critics = [jax.tree.leaves(getattr(s, _CRITICS[module.NAME])) for s in (state, after)]
    assert all(map(np.array_equal, *critics))
    assert metrics[TD_ERROR].shape == (64,) and float(metrics[TD_ERROR].max()) > 0


def test_dsac_t_critic_losses_are_weighted_per_sample():
    """Both loss forms are Σ_i mean_b w_b·ℓ_ib: a weighted loss is the weighted sum of the
    one-sample losses."""
    k = jax.random.split(jax.random.PRNGKey(3), 4)
    q, std = jax.random.normal(k[0], (2, 6)), 0.5 + jax.random.uniform(k[1], (2, 6))
    y_q, y_hat = jax.random.normal(k[2], (6,)), jax.random.normal(k[3], (2, 6))
    omega_sq, weight = jnp.asarray([0.4, 2.0]), jnp.asarray([0.1, 0.5, 1.0, 0.3, 0.9, 0.7])
    for loss in (
        partial(dsac_t.critic_loss_official, bias=0.1, delta=50.0),
        partial(dsac_t.critic_loss_paper, bias=0.1),
    ):
        single = [
            float(loss(q, std, y_q, y_hat, omega_sq, weight=6.0 * jnp.eye(6)[b])) for b in range(6)
        ]
        weighted = float(loss(q, std, y_q, y_hat, omega_sq, weight=weight))
        np.testing.assert_allclose(weighted, np.dot(weight, single) / 6, rtol=1e-5)
        np.testing.assert_allclose(
            float(loss(q, std, y_q, y_hat, omega_sq)), sum(single) / 6, rtol=1e-5
        )


def test_priorities_are_set_from_the_updates_td_errors():
    config = _config(sac, n_step=3, prioritised=True, gradient_steps=1)
    state = _state(sac, config)
    replay = _replay(config)
    priorities = replay.priorities
    leaves = priorities.leaves
    np.testing.assert_array_equal(priorities.sums[leaves : leaves + 10], 1.0)  # new rows: max
    assert float(priorities.sums[1]) == 10.0

    key, gamma = jax.random.PRNGKey(7), state.hparams["gamma"]
    steps = jax.jit(partial(gradient_steps, sac, config), static_argnums=4)
    _, after, _ = steps(state, replay, key, 10, N_ENVS)
    # the loop's one gradient step, by hand: its draw, its update's |δ|
    draw = jax.jit(partial(sample, config), static_argnums=4)
    rows, batch = draw(replay, jax.random.split(key, 1)[0], gamma, 10, N_ENVS)
    np.testing.assert_allclose(batch.weight, 1.0)  # equal priorities: every weight 1
    _, metrics = jax.jit(sac.update)(state, batch, 10)
    priority = (np.abs(np.asarray(metrics[TD_ERROR])) + config.per_eps) ** config.per_alpha
    want = np.ones(10)  # rows never drawn keep theirs
    want[np.unique(rows)] = 0.0
    np.maximum.at(want, np.asarray(rows), priority)  # a row drawn twice: the larger
    got = np.asarray(after.sums[leaves : leaves + 10])
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert not np.allclose(got, 1.0)
    np.testing.assert_allclose(after.sums[1], want.sum(), rtol=1e-5)
    np.testing.assert_allclose(after.mins[1], want.min(), rtol=1e-5)
    np.testing.assert_allclose(after.max_priority, max(1.0, priority.max()), rtol=1e-6)


def test_an_algorithm_without_td_errors_refuses_prioritised_replay():
    config = _config(sac, prioritised=True)
    state = _state(sac, config)

    def update(state, batch, env_steps):
        state, metrics = sac.update(state, batch, env_steps)
        return state, {k: v for k, v in metrics.items() if k != TD_ERROR}

    module = type("NoTD", (), {"update": staticmethod(update), "NAME": "no-td"})
    with pytest.raises(DuettoError, match="no-td cannot use prioritised replay"):
        gradient_steps(module, config, state, _replay(config), jax.random.PRNGKey(0), 10, N_ENVS)


def test_fused_loop_with_nstep_and_prioritised_replay_resumes_exactly(tmp_path):
    """N steps, save, load, M more equals the run saved going on (tests/test_checkpoint_size.py's
    run; tests/test_contract.py checks that N + M at once is the same, across processes)."""
    hp = {"n_step": 3, "prioritised": True, "per_beta_steps": 200}
    state, _ = resumes_exactly("fused", 150, tmp_path, **hp)
    priorities = state.replay.priorities
    assert priorities is not None  # the options are on, and the priorities moved
    assert priorities.max_priority.shape == (2,) and np.all(priorities.max_priority > 1.0)


@pytest.mark.slow
def test_sac_with_nstep_and_prioritised_replay_learns_pendulum():
    """tests/test_learning.py's check (the fast preset's 10k steps, ≥ −250 on 4 of 5 seeds)
    with n_step 3 and prioritised replay, β annealed to 1 over the run."""
    from test_learning import THRESHOLD

    returns = []
    for seed in range(5):
        agent = duetto.SAC(
            "Pendulum-v1",
            seed=seed,
            preset="fast",
            run_dir=False,
            n_step=3,
            prioritised=True,
            per_beta_steps=10_000,
        )
        agent.learn(10_000, eval_every=10_000, eval_episodes=10)
        returns.append(agent.last_eval["return_mean"])
    assert sum(r >= THRESHOLD for r in returns) >= 4, returns
