"""TD3 and DDPG: target-policy smoothing, the clipped double-Q target, the delayed actor and
targets, DDPG as TD3's functions with one critic; learning Pendulum."""

import jax
import jax.numpy as jnp
import numpy as np
from update_setup import TERMINATED, setup_update

import duetto
from duetto.algorithms import ddpg, td3
from duetto.nets.targets import polyak


def test_smoothed_target_action_clips_noise_then_action():
    a = jnp.array([0.0, 0.9, -0.2])
    noise = jnp.array([0.7, 0.3, -0.1])
    # noise clipped to ±0.5: 0.5, 0.3, -0.1 -> 0.5, 1.2 -> 1.0, -0.3
    np.testing.assert_allclose(
        td3.smoothed_target_action(a, noise, 0.5), [0.5, 1.0, -0.3], rtol=1e-6
    )


def test_critic_loss_matches_hand_computation_without_smoothing():
    cfg, spec, state, batch = setup_update(td3, target_noise=0.0, gamma=0.9)
    actor, critic = td3._networks(cfg, spec)
    next_a = actor.apply(state.target_actor_params, batch.next_obs)
    next_q = np.asarray(critic.apply(state.target_critic_params, batch.next_obs, next_a))
    y = np.asarray(batch.reward) + 0.9 * (1 - np.asarray(TERMINATED)) * next_q.min(0)
    q = np.asarray(critic.apply(state.critic_params, batch.obs, batch.action))
    expected = sum(0.5 * np.mean((q[i] - y) ** 2) for i in range(2))
    _, metrics = td3.update(state, batch, 0)
    np.testing.assert_allclose(metrics["critic_loss"], expected, rtol=1e-5)


def test_actor_and_targets_move_every_policy_delay_steps():
    cfg, _, s0, batch = setup_update(td3, policy_delay=2, tau=0.1)
    s1, _ = td3.update(s0, batch, 0)
    same = jax.tree.map(lambda a, b: bool(jnp.all(a == b)), s0.actor_params, s1.actor_params)
    assert all(jax.tree.leaves(same))
    assert all(
        jax.tree.leaves(
            jax.tree.map(
                lambda a, b: bool(jnp.all(a == b)), s0.target_critic_params, s1.target_critic_params
            )
        )
    )
    s2, metrics = td3.update(s1, batch, 0)
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), s1.actor_params, s2.actor_params)
    assert all(jax.tree.leaves(moved))
    expected = polyak(s2.critic_params, s1.target_critic_params, 0.1)
    for a, b in zip(
        jax.tree.leaves(expected), jax.tree.leaves(s2.target_critic_params), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert float(metrics["actor_loss"]) != 0.0 and int(s2.updates) == 2


def test_ddpg_is_td3_with_one_critic_and_no_smoothing():
    cfg, _, state, batch = setup_update(ddpg)
    assert (cfg.n_critics, cfg.target_noise) == (1, 0.0)
    assert ddpg.update is td3.update and ddpg.init is td3.init
    leaves = jax.tree.leaves(state.critic_params)
    assert all(x.shape[0] == 1 for x in leaves)  # an ensemble of one
    new, metrics = ddpg.update(state, batch, 0)
    assert np.isfinite(float(metrics["critic_loss"]))


def test_exploration_noise_and_bounds():
    cfg, _, state, batch = setup_update(td3, exploration_noise=0.1)
    mean = td3.act(state, batch.obs, None, True)
    noisy = td3.act(state, batch.obs, jax.random.PRNGKey(5), False)
    assert np.all(np.abs(np.asarray(noisy)) <= 1.0)
    assert 0.0 < float(jnp.abs(noisy - mean).mean()) < 0.3


def test_td3_learns_pendulum_by_20k_on_4_of_5_seeds():
    """The `fast` preset in the fused loop (five seeds, one program); RL-Zoo TD3: −152 ± 90."""
    agent = duetto.TD3("gymnax:Pendulum-v1", seeds=range(5), preset="fast", run_dir=False)
    agent.learn(20_000, eval_every=10_000)
    final = np.asarray(agent.last_eval["seed_returns"])
    assert (final >= -250).sum() >= 4, final


def test_td3_and_ddpg_on_the_host_loop_and_cli(tmp_path):
    from duetto.cli import main

    agent = duetto.TD3(
        "Pendulum-v1", seed=0, run_dir=False, hidden=(16, 16), learning_starts=100, batch_size=32
    )
    agent.learn(300, eval_every=300, eval_episodes=2)
    assert agent.predict(np.zeros(3))[0].shape == (1,)
    assert (
        main(
            [
                "train",
                "ddpg",
                "--env",
                "Pendulum-v1",
                "--steps",
                "200",
                "--hidden",
                "16,16",
                "--learning-starts",
                "100",
                "--eval-episodes",
                "2",
                "--out",
                str(tmp_path / "ddpg"),
            ]
        )
        == 0
    )
    assert (tmp_path / "ddpg" / "curve.png").exists()
