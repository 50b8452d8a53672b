"""The JAX Crazyflie of "Learning to Fly in Seconds" (duetto:Quadrotor-v0, envs/quadrotor.py).

Its dynamics against the official simulator (l2f 2.0.18 with the paper's parameters; the fixture
is written by benchmarks/l2f_fixture.py), and golden values, computed by hand here, for what l2f
does not reproduce: reward, termination, start states, noise, disturbance, action-history order
and observation layout, each from the files of arplaboratory/learning-to-fly that quadrotor.py
cites.
"""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import duetto
from duetto.envs.jaxenv import DUETTO_ENVS, is_jax_env, make_jax_env
from duetto.envs.quadrotor import (
    Body,
    Quadrotor,
    QuadrotorParams,
    QuadrotorState,
    body_derivative,
    critic_observation,
    step_body,
)

FIXTURE = Path(__file__).parent / "fixtures" / "l2f" / "crazyflie.npz"
MAX_RPM = 21702.0
ENV = Quadrotor()
P = QuadrotorParams()
ZERO3 = jnp.zeros(3)


def as_body(x: np.ndarray) -> Body:
    """A flat state [..., 17] (position, quaternion w x y z, velocity, angular velocity, rpm)."""
    x = jnp.asarray(x, jnp.float32)
    return Body(x[..., 0:3], x[..., 3:7], x[..., 7:10], x[..., 10:13], x[..., 13:17])


def errors(body: Body, expected: np.ndarray) -> dict[str, float]:
    """Max |JAX - l2f| per quantity; rotor speeds as a fraction of the maximum (l2f's unit)."""
    got = np.concatenate([np.asarray(f) for f in body], axis=-1)
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    diff[..., 13:17] /= MAX_RPM
    parts = {"position": (0, 3), "quaternion": (3, 7), "velocity": (7, 10)}
    parts |= {"angular_velocity": (10, 13), "rpm": (13, 17)}
    return {name: float(diff[..., a:b].max()) for name, (a, b) in parts.items()}


def body_at(
    position=(0, 0, 0), orientation=(1, 0, 0, 0), velocity=(0, 0, 0), angular_velocity=(0, 0, 0),
    rpm=(10851.0,) * 4,
) -> Body:  # fmt: skip
    fields = (position, orientation, velocity, angular_velocity, rpm)
    return Body(*(jnp.asarray(f, jnp.float32) for f in fields))


def state_at(body: Body, **fields) -> QuadrotorState:
    """An env state at `body`, without disturbance, its history zeros, unless `fields` say."""
    state = QuadrotorState(body, ZERO3, ZERO3, jnp.zeros((32, 4)), jnp.zeros((), jnp.int32))
    return state.replace(**fields)


STEP = jax.jit(ENV.step_env)


# --- the dynamics against the official simulator --------------------------------------------


def test_one_step_matches_l2f_on_10k_random_states():
    """Position, quaternion, velocity and rpm within 1e-5, angular velocity within 2e-5, in
    float32, from random states (rotor speeds beyond the limits, actions beyond [-1, 1])."""
    data = np.load(FIXTURE)
    step = jax.jit(jax.vmap(lambda x, a: step_body(as_body(x), a, ZERO3, ZERO3, P)))
    err = errors(step(data["states"], data["actions"]), data["next_states"])
    assert len(data["states"]) >= 10_000
    limits = {"position": 1e-5, "quaternion": 1e-5, "velocity": 1e-5, "rpm": 1e-5}
    limits["angular_velocity"] = 2e-5
    assert all(err[k] <= limits[k] for k in limits), err


def test_open_loop_rollout_matches_l2f_for_500_steps():
    data = np.load(FIXTURE)

    def step(body: Body, action: jnp.ndarray) -> tuple[Body, Body]:
        nxt = step_body(body, action, ZERO3, ZERO3, P)
        return nxt, nxt

    states = data["rollout_states"]
    _, bodies = jax.jit(lambda b, a: jax.lax.scan(step, b, a))(
        as_body(states[0]), jnp.asarray(data["rollout_actions"])
    )
    err = errors(bodies, states[1:])
    assert max(err.values()) <= 1e-3, err
    # The flight goes somewhere (so that agreement is not agreement at rest).
    assert np.abs(states[-1, 10:13]).max() > 0.1


# --- golden values of what l2f does not reproduce ----------------------------------------------


def test_reward_is_on_the_pre_step_state_with_the_paper_weights():
    """r = 2 - 0.5 (5 |p|² + 5 (1 - q_w²) + 0.01 |v|² + 0.01 |a - 0.334|²) [squared.h,
    default.h], by hand: costs 0.14, 0.36, 1.25 and 0.834668 (the angular velocity has weight 0)."""
    body = body_at((0.1, -0.2, 0.3), (0.8, 0.6, 0.0, 0.0), (0.5, 0.0, -1.0), (1.0, 2.0, 3.0))
    action = jnp.array([0.5, 0.0, -0.5, 0.334])
    state = state_at(body)
    _, _, r, done, _ = STEP(jax.random.PRNGKey(1), state, action, P)
    by_hand = 2 - 0.5 * (5 * 0.14 + 5 * 0.36 + 0.01 * 1.25 + 0.01 * 0.834668)  # 0.73957666
    assert not bool(done)
    np.testing.assert_allclose(float(r), by_hand, atol=1e-5)
    # The weights are parameters: the curriculum's position weight 40 (cost 5.6 instead of 0.7).
    _, _, r40, _, _ = STEP(jax.random.PRNGKey(1), state, action, P.replace(weight_position=40.0))
    np.testing.assert_allclose(float(r40), by_hand - 0.5 * (40 - 5) * 0.14, atol=1e-5)
    # A step that ends past the limits is paid the termination penalty, 0, instead.
    edge = state_at(
        body._replace(position=jnp.array([0.5999, 0.0, 0.0])), force=ZERO3, torque=ZERO3
    )
    _, _, r_end, done_end, _ = STEP(jax.random.PRNGKey(1), edge, action, P)
    assert bool(done_end) and float(r_end) == 0.0


@pytest.mark.parametrize(
    "field, limit", [("position", 0.6), ("linear_velocity", 1000.0), ("angular_velocity", 1000.0)]
)
def test_termination_when_any_component_passes_its_limit(field, limit):
    """|p_i| > 0.6, |v_i| > 1000, |ω_i| > 1000 [termination/default.h: fast_learning]."""
    for axis in range(3):
        for sign in (1.0, -1.0):
            for value, expected in ((0.98 * limit, False), (1.02 * limit, True)):
                vector = np.zeros(3, np.float32)
                vector[axis] = sign * value
                state = state_at(body_at()._replace(**{field: jnp.asarray(vector)}))
                assert bool(ENV.is_terminated(state, P)) is expected, (field, axis, sign, value)


def test_start_states_follow_the_paper_distribution():
    """10 % at the origin and level, else position U(±0.2) and an attitude uniform within
    90° (angle CDF (θ - sin θ)/(θm - sin θm)); velocities U(±1), angular velocities U(±1) in
    both; rotors mid-range, the action history at their normalised speed 0; disturbance force
    N(0, 0.027·9.81/20), torque N(0, 0.027·9.81/10000); time 0 [init/default.h,
    operations_generic.h: sample_initial_state, src/config/parameters.h]."""
    n = 20_000
    obs, s = jax.jit(jax.vmap(ENV.reset, in_axes=(0, None)))(
        jax.random.split(jax.random.PRNGKey(3), n), P
    )
    b = s.body
    level = np.all(np.asarray(b.orientation) == np.array([1, 0, 0, 0]), axis=1)
    guided = level & np.all(np.asarray(b.position) == 0, axis=1)
    assert abs(guided.mean() - 0.1) < 0.01  # 5 binomial standard deviations
    position = np.asarray(b.position)[~guided]
    assert np.abs(position).max() <= 0.2 and abs(position.std() - 0.2 / np.sqrt(3)) < 0.003
    w = np.asarray(b.orientation)[~guided, 0]
    angle = 2 * np.arccos(np.clip(w, -1, 1))
    theta_max = 90 / 180 * 3.14
    assert w.min() > 0 and angle.max() <= theta_max + 1e-6
    for theta in (0.4, 0.785, 1.2):
        cdf = (theta - np.sin(theta)) / (theta_max - np.sin(theta_max))
        assert abs((angle <= theta).mean() - cdf) < 0.015, (theta, cdf)
    axes = np.asarray(b.orientation)[~guided, 1:] / np.sin(angle / 2)[:, None]
    assert np.abs(axes.mean(axis=0)).max() < 0.03  # isotropic
    for x in (b.linear_velocity, b.angular_velocity):
        x = np.asarray(x)
        assert np.abs(x).max() <= 1.0 and abs(x.std() - 1 / np.sqrt(3)) < 0.01
    assert np.all(np.asarray(b.rpm) == 21702.0 / 2)
    assert np.all(np.asarray(s.action_history) == 0.0) and s.action_history.shape == (n, 32, 4)
    np.testing.assert_allclose(np.asarray(s.force).std(), 0.027 * 9.81 / 20, rtol=0.03)
    np.testing.assert_allclose(np.asarray(s.torque).std(), 0.027 * 9.81 / 10000, rtol=0.03)
    assert np.all(np.asarray(s.time) == 0) and obs.shape == (n, 146)


def test_observation_noise_has_the_paper_scales():
    """std 0.001 on position and each rotation-matrix entry, 0.002 on velocity and angular
    velocity, none on the action history, drawn anew at every observation."""
    state = state_at(body_at((0.1, 0.2, 0.3), (0.8, 0.6, 0.0, 0.0), (1, 2, 3), (4, 5, 6)))
    keys = jax.random.split(jax.random.PRNGKey(4), 20_000)
    obs = np.asarray(jax.jit(jax.vmap(lambda k: ENV.observe(k, state, None, P)))(keys))
    clean = np.asarray(critic_observation(state, P))[:18]
    expected = np.r_[[0.001] * 12, [0.002] * 6]
    np.testing.assert_allclose(obs[:, :18].std(axis=0), expected, rtol=0.03)
    assert np.abs(obs[:, :18].mean(axis=0) - clean).max() < 4 * 0.002 / np.sqrt(20_000) * 1.5
    assert np.all(obs[:, 18:] == np.asarray(state.action_history).reshape(-1))


def test_actor_and_critic_observation_layouts():
    """Actor [146]: position, rotation matrix row by row, velocity, angular velocity, history;
    critic [28]: the same 18 without noise, disturbance force and torque, rotor speeds scaled
    to [-1, 1]. q = (0.8, 0.6, 0, 0) turns about x by 73.7°: R = [[1, 0, 0], [0, 0.28, -0.96],
    [0, 0.96, 0.28]]."""
    quiet = P.replace(noise_position=0.0, noise_orientation=0.0)
    quiet = quiet.replace(noise_linear_velocity=0.0, noise_angular_velocity=0.0)
    body = body_at(
        (0.1, 0.2, 0.3), (0.8, 0.6, 0, 0), (1, 2, 3), (4, 5, 6), (0, 10851, 21702, 16276.5)
    )
    history = jnp.arange(128, dtype=jnp.float32).reshape(32, 4) / 128
    force, torque = jnp.array([0.01, 0.02, 0.03]), jnp.array([1e-5, 2e-5, 3e-5])
    state = state_at(body, force=force, torque=torque, action_history=history)
    matrix = [1, 0, 0, 0, 0.28, -0.96, 0, 0.96, 0.28]
    head = np.r_[0.1, 0.2, 0.3, matrix, 1, 2, 3, 4, 5, 6]
    actor = np.asarray(ENV.observe(jax.random.PRNGKey(0), state, None, quiet))
    assert actor.shape == (146,) and ENV.observation_space(quiet).shape == (146,)
    np.testing.assert_allclose(actor, np.r_[head, np.arange(128) / 128], atol=1e-6)
    critic = np.asarray(critic_observation(state, quiet))
    by_hand = np.r_[head, 0.01, 0.02, 0.03, 1e-5, 2e-5, 3e-5, -1, 0, 1, 0.5]
    np.testing.assert_allclose(critic, by_hand, atol=1e-6)
    # The step gives the critic's view of the stepped state.
    _, nxt, _, _, info = STEP(jax.random.PRNGKey(1), state, jnp.zeros(4), quiet)
    np.testing.assert_allclose(info["critic_obs"], critic_observation(nxt, quiet), atol=1e-6)


def test_action_history_keeps_the_last_32_actions_oldest_first():
    """Each step drops the oldest action and appends the policy's action as given (before the
    clip to [-1, 1]); the observation lists it step by step [operations_generic.h]."""
    start = np.random.default_rng(0).uniform(-1, 1, (32, 4)).astype(np.float32)
    state = state_at(body_at(), action_history=jnp.asarray(start))
    a1, a2 = jnp.array([0.1, 0.2, 0.3, 0.4]), jnp.array([-0.5, 0.6, 1.5, -1.0])
    _, state, _, _, _ = STEP(jax.random.PRNGKey(6), state, a1, P)
    obs, state, _, _, _ = STEP(jax.random.PRNGKey(7), state, a2, P)
    history = np.asarray(state.action_history)
    np.testing.assert_array_equal(history[:30], start[2:])
    np.testing.assert_array_equal(history[30], a1)
    np.testing.assert_array_equal(history[31], a2)
    np.testing.assert_array_equal(np.asarray(obs)[-8:], np.r_[a1, a2])


def test_disturbance_and_hover_thrust_in_the_dynamics_and_params_vmap():
    """Level at the hover speed sqrt(m g / (4 · 3.16e-10)) = 14,476 rpm the body does not
    accelerate; a disturbance force f adds f/m, a torque τ adds J⁻¹τ; the model's numbers
    are pytree leaves (vmapped here over the mass)."""
    hover = float(np.sqrt(0.027 * 9.81 / 4 / 3.16e-10))
    body = body_at(rpm=(hover,) * 4)
    command = jnp.full(4, hover)
    derivative = jax.jit(body_derivative)
    calm = derivative(body, command, ZERO3, ZERO3, P)
    assert np.abs(np.asarray(calm.linear_velocity)).max() < 1e-4
    assert np.abs(np.asarray(calm.angular_velocity)).max() < 1e-2
    f, tau = jnp.array([0.01, -0.02, 0.005]), jnp.array([1e-5, -2e-5, 3e-5])
    pushed = derivative(body, command, f, tau, P)
    np.testing.assert_allclose(
        pushed.linear_velocity - calm.linear_velocity, np.asarray(f) / 0.027, rtol=1e-4
    )
    by_hand = np.array([1e-5 / 3.85e-6, -2e-5 / 3.85e-6, 3e-5 / 5.9675e-6])
    np.testing.assert_allclose(pushed.angular_velocity - calm.angular_velocity, by_hand, rtol=1e-4)
    masses = jnp.array([0.027, 0.054])
    up = jax.vmap(lambda m: derivative(body, command, ZERO3, ZERO3, P.replace(mass=m)))(masses)
    np.testing.assert_allclose(up.linear_velocity[:, 2], [0.0, -9.81 / 2], atol=1e-3)


def test_registered_as_a_jax_native_env_with_500_step_episodes():
    assert "Quadrotor-v0" in DUETTO_ENVS and is_jax_env("duetto:Quadrotor-v0")
    env = make_jax_env("duetto:Quadrotor-v0", "td3", ("box",))
    assert (env.spec.actor_dim, env.spec.action_dim, env.max_steps) == (146, 4, 500)
    assert env.spec.privileged_dim == 28  # the critic observation, appended
    assert not env.own_step  # the fused loop draws its resets ahead, as for gymnax's envs
    for time, truncated in ((499, False), (500, True)):
        state = state_at(body_at(), time=jnp.asarray(time, jnp.int32))
        assert bool(ENV.is_truncated(state, P)) is truncated
    with pytest.raises(duetto.DuettoError, match="Quadrotor-v0"):
        make_jax_env("duetto:Quadrotor-v1", "td3", ("box",))


def test_td3_trains_on_it_in_the_fused_loop(tiny):
    agent = duetto.TD3("duetto:Quadrotor-v0", seed=0, run_dir=False, **tiny)
    agent.learn(600, eval_every=600, eval_episodes=2)
    assert agent.env_steps == 600
    assert np.all(np.isfinite(np.asarray(agent.last_eval["seed_returns"])))
