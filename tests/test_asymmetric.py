"""The asymmetric actor-critic (a privileged observation that only the critics read), TD3's
separate actor warm-up and target intervals, and the reward curriculum that relabels the
replay inside the fused loop (issue 17: Learning to Fly)."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from update_setup import setup_update

import duetto
from duetto.algorithms import dsac_t, mdpo_off, ppo, sac, td3
from duetto.config import build_config
from duetto.envs import quadrotor
from duetto.envs.jaxenv import Curriculum, make_jax_env
from duetto.envs.quadrotor import (
    QuadrotorParams,
    critic_observation,
    l2f_curriculum,
    reward,
    reward_from_privileged,
)
from duetto.envs.spec import EnvSpec

SPEC = EnvSpec(obs_dim=7, action_dim=2, privileged_dim=3)  # actor 4, privileged 3


def first_kernel_rows(params) -> int:
    """The input width of a network: the rows of its first dense kernel."""
    kernels = [
        leaf
        for path, leaf in jax.tree_util.tree_leaves_with_path(params)
        if getattr(path[-1], "key", None) == "kernel" and "Dense_0" in jax.tree_util.keystr(path)
    ]
    return int(kernels[0].shape[-2])


@pytest.mark.parametrize("critic_obs, critic_in", [("actor", 4), ("privileged", 3), ("both", 7)])
def test_critic_reads_what_critic_obs_says_and_the_actor_never_the_privileged_part(
    critic_obs, critic_in
):
    cfg = build_config(td3.CONFIG, "td3", {}, {"hidden": (8, 8), "critic_obs": critic_obs})
    state = td3.init(jax.random.PRNGKey(0), SPEC, cfg)
    assert first_kernel_rows(state.actor_params) == 4
    assert first_kernel_rows(state.critic_params) == critic_in + 2  # with the action
    actor, critic = td3._networks(cfg, SPEC)
    obs = jax.random.normal(jax.random.PRNGKey(1), (5, 7))
    other = obs.at[:, 4:].add(1.0)  # the privileged part changed
    action = jnp.zeros((5, 2))
    np.testing.assert_array_equal(
        actor.apply(state.actor_params, obs), actor.apply(state.actor_params, other)
    )
    # The trained actor acts on the env's observation alone, as at deployment.
    np.testing.assert_array_equal(
        actor.apply(state.actor_params, obs), actor.apply(state.actor_params, obs[:, :4])
    )
    q, q_other = (critic.apply(state.critic_params, o, action) for o in (obs, other))
    assert bool(jnp.all(q == q_other)) is (critic_obs == "actor")


@pytest.mark.parametrize("module", [sac, dsac_t, mdpo_off, ppo])
def test_every_actor_critic_takes_the_privileged_critic(module):
    cfg = build_config(module.CONFIG, module.NAME, {}, {"critic_obs": "privileged"})
    state = module.init(jax.random.PRNGKey(0), SPEC, cfg, 1)
    if module is ppo:  # one tree with "actor" and "critic"
        widths = {k: first_kernel_rows(v) for k, v in state.params.items()}
        actor = "actor"
    else:
        nets = {k: v for k, v in vars(state).items() if k.endswith("_params") and "old" not in k}
        widths = {k: first_kernel_rows(v) for k, v in nets.items() if "target" not in k}
        actor = "actor_params"
    assert widths.pop(actor) == 4
    # The critics (Q with the action, V without) read the privileged part alone.
    assert widths and all(w in (3, 3 + 2) for w in widths.values()), widths


def test_critic_obs_needs_an_env_that_gives_a_privileged_observation():
    with pytest.raises(duetto.DuettoError, match="privileged observation.*PrivilegedObservation"):
        duetto.TD3("Pendulum-v1", seed=0, critic_obs="privileged", run_dir=False)


class StateInfo(gym.Wrapper):
    """Pendulum reporting its true state (θ, θ') in info["state"]."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "state": np.asarray(self.env.unwrapped.state, np.float32)}

    def step(self, action):
        obs, r, terminated, truncated, info = self.env.step(action)
        state = np.asarray(self.env.unwrapped.state, np.float32)
        return obs, r, terminated, truncated, {**info, "state": state}


def test_a_gymnasium_env_gives_its_privileged_observation_through_the_wrapper():
    env = duetto.PrivilegedObservation(StateInfo(gym.make("Pendulum-v1")), key="state", dim=2)
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs[3:], env.unwrapped.state, rtol=1e-6)
    agent = duetto.SAC(
        env, seed=0, preset="fast", critic_obs="privileged", learning_starts=100, run_dir=False
    )
    assert (agent.loop.spec.obs_dim, agent.loop.spec.privileged_dim) == (5, 2)
    agent.learn(300)
    assert first_kernel_rows(agent.loop.algo_state.critic_params) == 2 + 1
    result = agent.evaluate(episodes=2)
    assert result["full_length_share"] == 1.0 and result["length_mean"] == 200  # Pendulum's

    with pytest.raises(duetto.DuettoError, match="info has no 'nope' at reset"):
        duetto.PrivilegedObservation(StateInfo(gym.make("Pendulum-v1")), "nope", 2).reset()
    with pytest.raises(duetto.DuettoError, match="has 2 values.*dim=3"):
        duetto.PrivilegedObservation(StateInfo(gym.make("Pendulum-v1")), "state", 3).reset()
    with pytest.raises(duetto.DuettoError, match="needs dim"):
        duetto.PrivilegedObservation(gym.make("Pendulum-v1"), "state")


def test_the_quadrotor_appends_its_critic_observation_at_reset_and_step():
    env = make_jax_env("duetto:Quadrotor-v0", "td3", ("box",))
    obs, state = env.reset(jax.random.PRNGKey(0), 3)
    expected = jax.vmap(critic_observation, in_axes=(0, None))(state, env.params)
    np.testing.assert_array_equal(obs[:, 146:], expected)
    action = jnp.full((3, 4), 0.3)
    _, stepped, _, _, _, final = env.step(jax.random.PRNGKey(1), state, action)
    # No episode ended in one step from these states: the state is the stepped one.
    expected = jax.vmap(critic_observation, in_axes=(0, None))(stepped, env.params)
    np.testing.assert_array_equal(final[:, 146:], expected)


def test_rewards_recomputed_from_critic_observations_equal_the_env_reward():
    p = QuadrotorParams(weight_angular_velocity=0.3, weight_linear_acceleration=1e-4)
    env = make_jax_env("duetto:Quadrotor-v0", "td3", ("box",))
    _, state = env.reset(jax.random.PRNGKey(2), 64)
    action = jax.random.uniform(jax.random.PRNGKey(3), (64, 4), minval=-1, maxval=1)
    step = jax.vmap(env.env.step_env, in_axes=(0, 0, 0, None))
    _, stepped, r, terminated, _ = step(
        jax.random.split(jax.random.PRNGKey(4), 64), state, action, p
    )
    priv = jax.vmap(critic_observation, in_axes=(0, None))
    relabelled = jax.vmap(reward_from_privileged, in_axes=(0, 0, 0, 0, None))(
        priv(state, p), action, priv(stepped, p), terminated.astype(jnp.float32), p
    )
    by_reward = jax.vmap(reward, in_axes=(0, 0, 0, None))(state.body, action, stepped.body, p)
    np.testing.assert_allclose(relabelled, r, atol=2e-5)
    np.testing.assert_allclose(by_reward, r, atol=0)


def test_the_l2f_curriculum_grows_the_weights_to_their_caps():
    p = QuadrotorParams()
    weights = []
    for _ in range(16):
        p = l2f_curriculum(p)
        weights.append((p.weight_action, p.weight_position, p.weight_linear_velocity))
    w = np.asarray(weights, np.float64)
    # [src/steps/curriculum.h]: ×1.4 capped at 1, ×1.2 capped at 40, ×1.4 capped at 1
    np.testing.assert_allclose(w[0], [0.014, 6.0, 0.014], rtol=1e-6)
    np.testing.assert_allclose(w[1], [0.0196, 7.2, 0.0196], rtol=1e-6)
    np.testing.assert_allclose(w[12], [0.01 * 1.4**13, 40.0, 0.01 * 1.4**13], rtol=1e-5)
    np.testing.assert_allclose(w[-1], [1.0, 40.0, 1.0])  # 0.01·1.4^14 > 1


def test_td3_actor_warm_up_target_interval_and_weight_decay():
    _, _, s0, batch = setup_update(
        td3, policy_delay=1, actor_learning_starts=100, critic_target_delay=1, tau=0.5
    )
    s1, _ = td3.update(s0, batch, 99)  # before the actor's warm-up ends
    assert all(jax.tree.leaves(jax.tree.map(jnp.array_equal, s0.actor_params, s1.actor_params)))
    moved = jax.tree.map(jnp.array_equal, s0.target_critic_params, s1.target_critic_params)
    assert not any(jax.tree.leaves(moved))  # the critic targets step with each critic step
    s2, _ = td3.update(s1, batch, 100)
    assert not any(jax.tree.leaves(jax.tree.map(jnp.array_equal, s1.actor_params, s2.actor_params)))

    cfg = build_config(td3.CONFIG, "td3", {}, {"hidden": (8, 8), "weight_decay": 0.01})
    params = td3.init(jax.random.PRNGKey(0), EnvSpec(obs_dim=3, action_dim=2), cfg).actor_params
    tx = td3._optimizer(cfg, 1e-3)
    zero = jax.tree.map(jnp.zeros_like, params)
    step, _ = tx.update(zero, tx.init(params), params)  # no gradient: only the decay
    new = jax.tree.map(lambda p, s: p + s, params, step)
    for (path, before), after in zip(
        jax.tree_util.tree_leaves_with_path(params), jax.tree.leaves(new), strict=True
    ):
        hidden = path[-1].key == "kernel" and "Dense_1" in jax.tree_util.keystr(path)
        factor = 0.99 if hidden else 1.0  # rl_tools decays the hidden-to-hidden layers only
        np.testing.assert_allclose(after, before * factor, rtol=1e-6)


@pytest.fixture
def fast_curriculum(monkeypatch):
    """The paper's curriculum every 400 env steps instead of 100,000."""
    monkeypatch.setattr(quadrotor.Quadrotor, "curricula", {"l2f": Curriculum(400, l2f_curriculum)})


def test_the_curriculum_relabels_the_replay_in_the_fused_loop_and_resumes_exactly(
    fast_curriculum, tmp_path
):
    options = dict(
        preset="l2f",
        hidden=(16, 16),
        batch_size=32,
        buffer_size=2_000,
        learning_starts=200,
        actor_learning_starts=300,
    )
    agent = duetto.TD3("duetto:Quadrotor-v0", seed=0, run_dir=False, **options)
    agent.learn(1000)
    state = jax.tree.map(lambda x: np.asarray(x[0]), agent.loop.state)
    assert int(state.curriculum_level) == 2  # at 400 and 800 env steps
    np.testing.assert_allclose(state.env_params.weight_position, 5 * 1.2**2, rtol=1e-6)
    # Every stored reward is what the env gives under the current weights: those stored
    # before a curriculum step were recomputed, those after were given by the env.
    d, n = state.replay.data, int(state.replay.size)
    env = agent.loop.jax_env
    relabelled = env.relabel(
        d.obs[:n], d.action[:n], d.next_obs[:n], d.terminated[:n], state.env_params
    )
    np.testing.assert_allclose(relabelled, d.reward[:n], atol=2e-5)
    assert np.all(d.reward[n:] == 0)

    first = duetto.TD3("duetto:Quadrotor-v0", seed=0, run_dir=tmp_path / "a", **options)
    first.learn(700)
    first.save(tmp_path / "half.ckpt")
    resumed = duetto.load(tmp_path / "half.ckpt")
    resumed.learn(300)
    for a, b in zip(
        jax.tree.leaves(agent.loop.state), jax.tree.leaves(resumed.loop.state), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_curriculum_needs_a_jax_env_that_has_it():
    with pytest.raises(duetto.DuettoError, match="fused loop"):
        duetto.TD3("Pendulum-v1", seed=0, curriculum="l2f", run_dir=False).learn(10)
    with pytest.raises(duetto.DuettoError, match="curriculum 'l3f'.*l2f"):
        duetto.TD3("duetto:Quadrotor-v0", seed=0, curriculum="l3f", run_dir=False)
