"""The Crazyflie hover task of "Learning to Fly in Seconds" (Eschmann, Albani, Loianno, RA-L 2024)
as a JAX-native (gymnax) environment, "duetto:Quadrotor-v0": pure, jittable and vmappable, its
numbers in a parameter pytree (`QuadrotorParams`) that can be changed or randomised per env.

Every default is the paper's, read in arplaboratory/learning-to-fly at d07592d; `SIM` below is
include/learning_to_fly/simulator/:
- the model: SIM/parameters/dynamics/crazy_flie.h;
- the dynamics: SIM/operations_generic.h (`multirotor_dynamics`, `step`, `post_integration`)
  with rl-tools' RK4 (utils/generic/integrators.h), the quaternion helpers in
  SIM/quaternion_helper.h;
- noise, disturbances, action history, observations, integration step: src/config/parameters.h;
- start states: SIM/parameters/init/default.h (`orientation_biggest_angle`), sampled as
  `sample_initial_state` in SIM/operations_generic.h;
- termination: SIM/parameters/termination/default.h (`fast_learning`);
- reward: SIM/parameters/reward_functions/squared.h with the weights of
  `reward_squared_position_only_torque` in .../reward_functions/default.h;
- episodes of 500 steps: src/config/config.h (ENVIRONMENT_STEP_LIMIT).

Units: metres, seconds, radians, kilograms; rotor speeds in revolutions per minute (rpm). The
world frame has z up (gravity -9.81 along z); the quaternion (w, x, y, z) turns body vectors into
world vectors; the angular velocity is in the body frame. The dynamics are checked against the
official simulator's Python bindings (l2f 2.0.18) by tests/test_quadrotor.py with the fixture
that benchmarks/l2f_fixture.py writes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from duetto.envs.jaxenv import Curriculum, light_import

_environment, spaces = light_import("gymnax.environments.environment", "gymnax.environments.spaces")
Environment: Any = _environment.Environment  # gymnax's base class (reset, step with autoreset)

ACTION_DIM = 4
HISTORY = 32  # steps of past actions in the actor's observation [src/config/parameters.h]
BODY_OBS = 18  # position 3, rotation matrix 9, linear velocity 3, angular velocity 3
CRITIC_OBS = BODY_OBS + 6 + ACTION_DIM  # noise-free body, force and torque, rotor speeds

_ROTORS = ((0.028, -0.028, 0.0), (-0.028, -0.028, 0.0), (-0.028, 0.028, 0.0), (0.028, 0.028, 0.0))
_INERTIA = ((3.85e-6, 0.0, 0.0), (0.0, 3.85e-6, 0.0), (0.0, 0.0, 5.9675e-6))


class QuadrotorParams(struct.PyTreeNode):
    """The numbers of the task, all pytree leaves (a curriculum may change the reward weights
    inside a compiled program; a domain randomisation may draw the model per env)."""

    # The Crazyflie [SIM/parameters/dynamics/crazy_flie.h]. Rotor i pushes along body +z with
    # thrust c0 + c1 rpm + c2 rpm² (N) and makes a yaw torque sign_i * torque_constant * thrust.
    rotor_positions: tuple = _ROTORS  # [4][3] m, body frame
    rotor_yaw_signs: tuple = (-1.0, 1.0, -1.0, 1.0)  # the z of the rotor torque directions
    thrust_constants: tuple = (0.0, 0.0, 3.16e-10)  # (c0, c1, c2): N, N/rpm, N/rpm²
    torque_constant: float = 0.005964552  # m: yaw torque per newton of thrust
    mass: float = 0.027  # kg
    gravity: float = 9.81  # m/s², along world -z
    inertia: tuple = _INERTIA  # [3][3] kg m², J
    motor_time_constant: float = 0.15  # s: rpm' = (command - rpm) / T
    min_rpm: float = 0.0  # the action limits: action -1 -> min_rpm, +1 -> max_rpm
    max_rpm: float = 21702.0
    dt: float = 0.01  # s, one RK4 step [src/config/parameters.h: integration]
    # Noise [src/config/parameters.h]: std of the Gaussian added to each actor observation
    # (every one of the 9 rotation-matrix entries gets orientation noise), and to the action
    # (normalised units, before the clip; 0 in the paper).
    noise_position: float = 0.001  # m
    noise_orientation: float = 0.001
    noise_linear_velocity: float = 0.002  # m/s
    noise_angular_velocity: float = 0.002  # rad/s
    noise_action: float = 0.0
    # A constant disturbance drawn once per episode, N(0, std) per axis [src/config/parameters.h].
    disturbance_force: float = 0.027 * 9.81 / 20  # N, world frame
    disturbance_torque: float = 0.027 * 9.81 / 10000  # N m, body frame
    # Start states [SIM/parameters/init/default.h: orientation_biggest_angle]: with probability
    # `init_guidance` at the origin and level; else position U(±init_position) per axis and an
    # attitude drawn uniformly among those within init_max_angle of level. Velocities are drawn
    # in both cases; rotor speeds U(init_min_rpm, init_max_rpm) in normalised units (-1: min_rpm,
    # +1: max_rpm), so mid-range for the paper's 0 and 0.
    init_guidance: float = 0.1
    init_position: float = 0.2  # m
    init_max_angle: float = 90.0 / 180.0 * 3.14  # rad, as written there (3.14, not pi)
    init_linear_velocity: float = 1.0  # m/s
    init_angular_velocity: float = 1.0  # rad/s
    init_min_rpm: float = 0.0
    init_max_rpm: float = 0.0
    # Termination [SIM/parameters/termination/default.h: fast_learning]: any |component| above.
    max_position: float = 0.6  # m
    max_linear_velocity: float = 1000.0  # m/s
    max_angular_velocity: float = 1000.0  # rad/s
    # Reward [SIM/parameters/reward_functions/squared.h, default.h:
    # reward_squared_position_only_torque], on the pre-step state and the action:
    # r = constant - scale * (w_p |p|² + w_q (1 - q_w²) + w_v |v|² + w_w |ω|²
    #                         + w_dv |Δv/dt|² + w_dω |Δω/dt|² + w_a |a - action_baseline|²),
    # and r = termination_penalty on a step that terminates.
    reward_scale: float = 0.5
    reward_constant: float = 2.0
    termination_penalty: float = 0.0
    weight_position: float = 5.0
    weight_orientation: float = 5.0
    weight_linear_velocity: float = 0.01
    weight_angular_velocity: float = 0.0
    weight_linear_acceleration: float = 0.0
    weight_angular_acceleration: float = 0.0
    weight_action: float = 0.01
    action_baseline: float = 0.334  # normalised action near hover
    max_steps_in_episode: int = 500  # [src/config/config.h: ENVIRONMENT_STEP_LIMIT]


class Body(NamedTuple):
    """The integrated state of the rigid body and its rotors (each field [..., n])."""

    position: jnp.ndarray  # [3] m, world
    orientation: jnp.ndarray  # [4] quaternion (w, x, y, z), body -> world
    linear_velocity: jnp.ndarray  # [3] m/s, world
    angular_velocity: jnp.ndarray  # [3] rad/s, body
    rpm: jnp.ndarray  # [4] rotor speeds, rpm


class QuadrotorState(struct.PyTreeNode):
    body: Body
    force: jnp.ndarray  # [3] N, this episode's disturbance (world frame)
    torque: jnp.ndarray  # [3] N m, this episode's disturbance (body frame)
    action_history: jnp.ndarray  # [HISTORY, 4] past actions, oldest first
    time: jnp.ndarray  # steps taken in this episode


def rotate(q: jnp.ndarray, v: jnp.ndarray) -> jnp.ndarray:
    """q (w, x, y, z) applied to v [3]: v + w t + q_v × t with t = 2 q_v × v
    [SIM/quaternion_helper.h: rotate_vector_by_quaternion]."""
    t = 2.0 * jnp.cross(q[1:], v)
    return v + q[0] * t + jnp.cross(q[1:], t)


def rotation_matrix(q: jnp.ndarray) -> jnp.ndarray:
    """R(q) [3, 3] [SIM/quaternion_helper.h: quaternion_to_rotation_matrix]."""
    w, x, y, z = q[0], q[1], q[2], q[3]
    return jnp.stack(
        [
            jnp.stack([1 - 2 * y * y - 2 * z * z, 2 * x * y - 2 * w * z, 2 * x * z + 2 * w * y]),
            jnp.stack([2 * x * y + 2 * w * z, 1 - 2 * x * x - 2 * z * z, 2 * y * z - 2 * w * x]),
            jnp.stack([2 * x * z - 2 * w * y, 2 * y * z + 2 * w * x, 1 - 2 * x * x - 2 * y * y]),
        ]
    )


def inverse3(m: jnp.ndarray) -> jnp.ndarray:
    """The inverse of a 3x3 matrix, adjugate over determinant (elementwise: no LAPACK call in
    the step)."""
    cofactors = jnp.stack([jnp.cross(m[1], m[2]), jnp.cross(m[2], m[0]), jnp.cross(m[0], m[1])])
    return cofactors.T / jnp.dot(m[0], cofactors[0])


def body_derivative(
    body: Body, command: jnp.ndarray, force: jnp.ndarray, torque: jnp.ndarray, p: QuadrotorParams
) -> Body:
    """d(body)/dt under rotor-speed commands [4] (rpm) and the disturbance
    [SIM/operations_generic.h: multirotor_dynamics]: p' = v; q' = ½ q ⊗ (0, ω);
    v' = R(q) F/m + g + f/m; ω' = J⁻¹(τ - ω × Jω) + J⁻¹τ_d; rpm' = (command - rpm)/T."""
    c0, c1, c2 = p.thrust_constants
    rpm = body.rpm
    thrust = c0 + c1 * rpm + c2 * rpm * rpm  # [4] N, along body +z
    rotors = jnp.asarray(p.rotor_positions)
    arm_torque = jnp.stack([rotors[:, 1] * thrust, -rotors[:, 0] * thrust], axis=-1).sum(0)
    yaw_torque = (jnp.asarray(p.rotor_yaw_signs) * thrust).sum() * p.torque_constant
    rotor_torque = jnp.concatenate([arm_torque, yaw_torque[None]])
    total_thrust = jnp.zeros(3).at[2].set(thrust.sum())

    q, w = body.orientation, body.angular_velocity
    # ½ q ⊗ (0, ω) = ½ (-q_v · ω, q_w ω + q_v × ω) [SIM/quaternion_helper.h: quaternion_derivative]
    q_dot = 0.5 * jnp.concatenate([-jnp.dot(q[1:], w)[None], q[0] * w + jnp.cross(q[1:], w)])
    gravity = jnp.zeros(3).at[2].set(-p.gravity)
    v_dot = rotate(q, total_thrust) / p.mass + gravity + force / p.mass
    inertia = jnp.asarray(p.inertia)
    inertia_inv = inverse3(inertia)
    w_dot = inertia_inv @ (rotor_torque - jnp.cross(w, inertia @ w)) + inertia_inv @ torque
    rpm_dot = (command - rpm) / p.motor_time_constant
    return Body(body.linear_velocity, q_dot, v_dot, w_dot, rpm_dot)


def action_to_rpm(action: jnp.ndarray, p: QuadrotorParams) -> jnp.ndarray:
    """Normalised actions [4], clipped to [-1, 1] -> rpm commands
    [SIM/operations_generic.h: step]."""
    half_range = (p.max_rpm - p.min_rpm) / 2
    return jnp.clip(action, -1.0, 1.0) * half_range + p.min_rpm + half_range


def integrate(
    body: Body, command: jnp.ndarray, force: jnp.ndarray, torque: jnp.ndarray, p: QuadrotorParams
) -> Body:
    """One RK4 step of dt with the command held, then the quaternion normalised and the rotor
    speeds clamped to [min_rpm, max_rpm] [SIM/operations_generic.h: post_integration]."""

    def f(x: Body) -> Body:
        return body_derivative(x, command, force, torque, p)

    def shifted(scale: float, k: Body) -> Body:
        return jax.tree.map(lambda x, dx: x + scale * p.dt * dx, body, k)

    k1 = f(body)
    k2 = f(shifted(0.5, k1))
    k3 = f(shifted(0.5, k2))
    k4 = f(shifted(1.0, k3))
    # Summed in rl-tools' order (x + dt/6 k1 + dt/3 k2 + dt/3 k3 + dt/6 k4), for float32 fidelity.
    out = jax.tree.map(
        lambda x, a, b, c, d: x + p.dt / 6 * a + p.dt / 3 * b + p.dt / 3 * c + p.dt / 6 * d,
        body, k1, k2, k3, k4,
    )  # fmt: skip
    orientation = out.orientation / jnp.linalg.norm(out.orientation)
    return out._replace(orientation=orientation, rpm=jnp.clip(out.rpm, p.min_rpm, p.max_rpm))


def step_body(
    body: Body, action: jnp.ndarray, force: jnp.ndarray, torque: jnp.ndarray, p: QuadrotorParams
) -> Body:
    """The physics of one env step for a normalised action [4] (no action noise)."""
    return integrate(body, action_to_rpm(action, p), force, torque, p)


def terminated(body: Body, p: QuadrotorParams) -> jnp.ndarray:
    """Whether any component of position, velocity or angular velocity is past its limit."""
    return (
        (jnp.abs(body.position) > p.max_position).any()
        | (jnp.abs(body.linear_velocity) > p.max_linear_velocity).any()
        | (jnp.abs(body.angular_velocity) > p.max_angular_velocity).any()
    )


def reward(body: Body, action: jnp.ndarray, next_body: Body, p: QuadrotorParams) -> jnp.ndarray:
    """The squared-cost reward of one step, on the pre-step body and the policy's action
    [SIM/parameters/reward_functions/squared.h: reward_components]; the termination penalty
    where the next body is past the limits."""
    acceleration = (next_body.linear_velocity - body.linear_velocity) / p.dt
    angular_acceleration = (next_body.angular_velocity - body.angular_velocity) / p.dt
    cost = (
        p.weight_position * jnp.sum(body.position**2)
        + p.weight_orientation * (1 - body.orientation[0] ** 2)
        + p.weight_linear_velocity * jnp.sum(body.linear_velocity**2)
        + p.weight_angular_velocity * jnp.sum(body.angular_velocity**2)
        + p.weight_linear_acceleration * jnp.sum(acceleration**2)
        + p.weight_angular_acceleration * jnp.sum(angular_acceleration**2)
        + p.weight_action * jnp.sum((action - p.action_baseline) ** 2)
    )
    r = p.reward_constant - p.reward_scale * cost
    return jnp.where(terminated(next_body, p), p.termination_penalty, r)


def normalised_rpm(rpm: jnp.ndarray, p: QuadrotorParams) -> jnp.ndarray:
    """Rotor speeds in the actions' units: min_rpm -> -1, max_rpm -> +1."""
    return (rpm - p.min_rpm) / (p.max_rpm - p.min_rpm) * 2 - 1


def body_observation(body: Body) -> jnp.ndarray:
    """[18]: position, rotation matrix (row-major), linear velocity, angular velocity."""
    return jnp.concatenate(
        [
            body.position,
            rotation_matrix(body.orientation).reshape(9),
            body.linear_velocity,
            body.angular_velocity,
        ]
    )


def actor_observation(key: jax.Array, state: QuadrotorState, p: QuadrotorParams) -> jnp.ndarray:
    """[18 + 4 * HISTORY]: the body observation with Gaussian noise, then the action history
    (oldest first, 4 actions per step, no noise) [src/config/parameters.h: OBSERVATION_TYPE]."""
    std = jnp.concatenate(
        [
            jnp.full(3, p.noise_position),
            jnp.full(9, p.noise_orientation),
            jnp.full(3, p.noise_linear_velocity),
            jnp.full(3, p.noise_angular_velocity),
        ]
    )
    noisy = body_observation(state.body) + std * jax.random.normal(key, (BODY_OBS,))
    return jnp.concatenate([noisy, state.action_history.reshape(-1)])


def critic_observation(state: QuadrotorState, p: QuadrotorParams) -> jnp.ndarray:
    """[28], the privileged observation of the asymmetric critic, without noise: the body
    observation, the disturbance force and torque, and the rotor speeds normalised to [-1, 1]
    [src/config/parameters.h: OBSERVATION_TYPE_PRIVILEGED, PRIVILEGED_OBSERVATION_NOISE false]."""
    return jnp.concatenate(
        [body_observation(state.body), state.force, state.torque, normalised_rpm(state.body.rpm, p)]
    )


def reward_from_privileged(
    privileged: jnp.ndarray,
    action: jnp.ndarray,
    next_privileged: jnp.ndarray,
    terminated: jnp.ndarray,
    p: QuadrotorParams,
) -> jnp.ndarray:
    """`reward` recomputed from stored critic observations [28] (`critic_observation`) of the
    pre- and post-step states, for relabelling a replay when the weights change: the same
    terms, with 1 - q_w² read from the rotation matrix (trace R = 4 q_w² - 1) and termination
    from the stored flag."""
    position, rotation = privileged[0:3], privileged[3:12]
    velocity, angular = privileged[12:15], privileged[15:18]
    next_velocity, next_angular = next_privileged[12:15], next_privileged[15:18]
    trace = rotation[0] + rotation[4] + rotation[8]
    cost = (
        p.weight_position * jnp.sum(position**2)
        + p.weight_orientation * (3 - trace) / 4
        + p.weight_linear_velocity * jnp.sum(velocity**2)
        + p.weight_angular_velocity * jnp.sum(angular**2)
        + p.weight_linear_acceleration * jnp.sum(((next_velocity - velocity) / p.dt) ** 2)
        + p.weight_angular_acceleration * jnp.sum(((next_angular - angular) / p.dt) ** 2)
        + p.weight_action * jnp.sum((action - p.action_baseline) ** 2)
    )
    r = p.reward_constant - p.reward_scale * cost
    return jnp.where(terminated > 0, p.termination_penalty, r)


def l2f_curriculum(p: QuadrotorParams) -> QuadrotorParams:
    """One step of the paper's reward curriculum [src/steps/curriculum.h]: the action weight
    ×1.4 (at most 1), the position weight ×1.2 (at most 40), the linear-velocity weight ×1.4
    (at most 1)."""
    return p.replace(
        weight_action=jnp.minimum(p.weight_action * 1.4, 1.0),
        weight_position=jnp.minimum(p.weight_position * 1.2, 40.0),
        weight_linear_velocity=jnp.minimum(p.weight_linear_velocity * 1.4, 1.0),
    )


def sample_attitude(key: jax.Array, max_angle: jnp.ndarray) -> jnp.ndarray:
    """A quaternion (w >= 0) uniform among the rotations of angle at most max_angle (level for
    max_angle <= 0, all rotations from pi up).

    The official sampler redraws a uniform quaternion until 2 acos(w) <= max_angle
    [SIM/operations_generic.h: sample_initial_state]: about 11 draws for 90°. The same
    distribution without a loop: the angle θ of a uniform rotation has density
    (1 - cos θ)/π, so below θm its CDF is (θ - sin θ)/(θm - sin θm), inverted here by Newton's
    method (from below θ - sin θ <= θ³/6 gives the start; the function is convex, so every
    later iterate is above the root and falls to it); the axis is uniform on the sphere."""
    k_angle, k_axis = jax.random.split(key)
    theta_max = jnp.clip(max_angle, 0.0, jnp.pi)
    target = jax.random.uniform(k_angle) * (theta_max - jnp.sin(theta_max))
    theta = jnp.cbrt(6 * target)
    for _ in range(8):
        slope = 1 - jnp.cos(theta)
        step = jnp.where(slope > 0, (theta - jnp.sin(theta) - target) / slope, 0.0)
        theta = jnp.clip(theta - step, 0.0, theta_max)
    axis = jax.random.normal(k_axis, (3,))
    axis = axis / jnp.linalg.norm(axis)
    return jnp.concatenate([jnp.cos(theta / 2)[None], jnp.sin(theta / 2) * axis])


class Quadrotor(Environment):
    """Hover a Crazyflie at the origin from a random start. Actions: 4 normalised rotor-speed
    commands in [-1, 1]; observations [18 + 4 * history] (`actor_observation`); the step's
    info holds "critic_obs" [28] of the stepped state (`critic_observation`), which duetto's
    loops append to the observation as its privileged part (`privileged_observation`) for an
    asymmetric critic. `curricula` names the reward curriculum of the paper ("l2f"): every
    100,000 env steps the reward weights grow (`l2f_curriculum`) and the replay's rewards are
    recomputed (`relabel_reward`) [src/steps/curriculum.h]."""

    privileged_dim = CRITIC_OBS
    curricula = {"l2f": Curriculum(every=100_000, update=l2f_curriculum)}

    def __init__(self, history: int = HISTORY):
        super().__init__()
        self.history = history  # a shape, so not a parameter

    @property
    def name(self) -> str:
        return "Quadrotor-v0"

    @property
    def default_params(self) -> QuadrotorParams:
        return QuadrotorParams()

    def reset_env(
        self, key: jax.Array, params: QuadrotorParams
    ) -> tuple[jnp.ndarray, QuadrotorState]:
        p = params
        k_uniform, k_normal, k_attitude, k_obs = jax.random.split(key, 4)
        u = jax.random.uniform(k_uniform, (14,))  # guidance 1, position 3, velocities 6, rpm 4
        disturbance = jax.random.normal(k_normal, (6,))
        guidance = u[0] < p.init_guidance
        span = p.max_rpm - p.min_rpm
        low_rpm = (p.init_min_rpm + 1) / 2 * span + p.min_rpm
        high_rpm = (p.init_max_rpm + 1) / 2 * span + p.min_rpm
        rpm = low_rpm + (high_rpm - low_rpm) * u[10:14]
        v, w = p.init_linear_velocity, p.init_angular_velocity
        body = Body(
            position=jnp.where(guidance, 0.0, p.init_position * (2 * u[1:4] - 1)),
            orientation=jnp.where(
                guidance,
                jnp.array([1.0, 0.0, 0.0, 0.0]),
                sample_attitude(k_attitude, jnp.asarray(p.init_max_angle)),
            ),
            linear_velocity=v * (2 * u[4:7] - 1),
            angular_velocity=w * (2 * u[7:10] - 1),
            rpm=rpm,
        )
        state = QuadrotorState(
            body=body,
            force=p.disturbance_force * disturbance[:3],
            torque=p.disturbance_torque * disturbance[3:],
            # The history starts at the rotor speeds, as actions [SIM/operations_generic.h].
            action_history=jnp.broadcast_to(normalised_rpm(rpm, p), (self.history, ACTION_DIM)),
            time=jnp.zeros((), jnp.int32),
        )
        return actor_observation(k_obs, state, p), state

    def step_env(
        self, key: jax.Array, state: QuadrotorState, action: jnp.ndarray, params: QuadrotorParams
    ) -> tuple[jnp.ndarray, QuadrotorState, jnp.ndarray, jnp.ndarray, dict[str, Any]]:
        p = params
        k_action, k_obs = jax.random.split(key)
        noisy = action + p.noise_action * jax.random.normal(k_action, action.shape)
        body = integrate(state.body, action_to_rpm(noisy, p), state.force, state.torque, p)
        # The history and the reward take the policy's action as given, before noise and clip.
        history = state.action_history  # none kept when self.history is 0
        if self.history:
            history = jnp.concatenate([state.action_history[1:], action[None]], axis=0)
        next_state = state.replace(body=body, action_history=history, time=state.time + 1)
        obs = actor_observation(k_obs, next_state, p)
        info = {"critic_obs": critic_observation(next_state, p)}
        return obs, next_state, reward(state.body, action, body, p), terminated(body, p), info

    def privileged_observation(self, state: QuadrotorState, params: QuadrotorParams) -> jnp.ndarray:
        return critic_observation(state, params)

    def relabel_reward(
        self,
        privileged: jnp.ndarray,
        action: jnp.ndarray,
        next_privileged: jnp.ndarray,
        terminated: jnp.ndarray,
        params: QuadrotorParams,
    ) -> jnp.ndarray:
        return reward_from_privileged(privileged, action, next_privileged, terminated, params)

    def observe(
        self, key: jax.Array, state: QuadrotorState, action: Any, params: QuadrotorParams
    ) -> jnp.ndarray:
        return actor_observation(key, state, params)

    def is_terminated(self, state: QuadrotorState, params: QuadrotorParams) -> jnp.ndarray:
        return terminated(state.body, params)

    def action_space(self, params: QuadrotorParams | None = None) -> Any:
        return spaces.Box(-1.0, 1.0, (ACTION_DIM,), jnp.float32)

    def observation_space(self, params: QuadrotorParams | None = None) -> Any:
        return spaces.Box(-jnp.inf, jnp.inf, (BODY_OBS + ACTION_DIM * self.history,), jnp.float32)


class QuadrotorNoHistory(Quadrotor):
    """The task without the action history in the actor's observation [18]: the paper's
    ablation "no action history" (duetto:QuadrotorNoHistory-v0)."""

    def __init__(self) -> None:
        super().__init__(history=0)

    @property
    def name(self) -> str:
        return "QuadrotorNoHistory-v0"
