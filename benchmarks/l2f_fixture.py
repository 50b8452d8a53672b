"""Write tests/fixtures/l2f/crazyflie.npz: next states computed by the official Learning to Fly
simulator (l2f, the Python bindings of rl-tools' L2F), which tests/test_quadrotor.py checks
duetto's JAX quadrotor (src/duetto/envs/quadrotor.py) against, without l2f.

l2f 2.0.18 has no wheel for this platform: pip builds it from source (about 16 minutes and a
4 GB compiler process), so never in CI and never in duetto's own venv. Once, by hand:

    python3.11 -m venv /tmp/l2f-venv
    /tmp/l2f-venv/bin/pip install l2f==2.0.18 numpy
    /tmp/l2f-venv/bin/python benchmarks/l2f_fixture.py

l2f's default model is not the paper's (its Crazyflie is heavier, with a quadratic thrust
polynomial and asymmetric motor time constants): the paper's numbers
(arplaboratory/learning-to-fly, include/learning_to_fly/simulator/parameters/dynamics/
crazy_flie.h, and dt 0.01 from src/config/parameters.h) are loaded with `parameters_from_json`,
each key checked to exist so that a changed schema fails here. Rotor speeds stay in rpm, as in
the paper (action limits 0 and 21702, thrust 3.16e-10 rpm²).

The fixture (float32; states laid out as position 0:3, quaternion w,x,y,z 3:7, linear velocity
7:10, angular velocity 10:13, rpm 13:17):
- `states`, `actions`, `next_states`: 10,000 one-step transitions from random states, some with
  rotor speeds outside the limits (so that the clamp acts) and actions outside [-1, 1] (so that
  the clip acts);
- `rollout_actions` [500, 4], `rollout_states` [501, 17]: an open-loop flight from hover with
  actions near the hover command, l2f's own states fed back;
- `params_json`: the parameters l2f was given; `l2f_version`.
The disturbance is zero (l2f's state does not expose it); the action noise is off.
"""

from __future__ import annotations

import argparse
import json
from importlib import metadata
from pathlib import Path

import l2f
import numpy as np

MAX_RPM = 21702.0
J = [3.85e-6, 3.85e-6, 5.9675e-6]
PAPER_DYNAMICS = {  # include/learning_to_fly/simulator/parameters/dynamics/crazy_flie.h
    "rotor_positions": [
        [0.028, -0.028, 0],
        [-0.028, -0.028, 0],
        [-0.028, 0.028, 0],
        [0.028, 0.028, 0],
    ],
    "rotor_thrust_directions": [[0, 0, 1]] * 4,
    "rotor_torque_directions": [[0, 0, -1], [0, 0, 1], [0, 0, -1], [0, 0, 1]],
    "rotor_thrust_coefficients": [[0, 0, 3.16e-10]] * 4,
    "rotor_torque_constants": [0.005964552] * 4,
    "mass": 0.027,
    "gravity": [0, 0, -9.81],
    "J": [[J[0], 0, 0], [0, J[1], 0], [0, 0, J[2]]],
    "J_inv": [[1 / J[0], 0, 0], [0, 1 / J[1], 0], [0, 0, 1 / J[2]]],
    "rotor_time_constants_rising": [0.15] * 4,
    "rotor_time_constants_falling": [0.15] * 4,
    "action_limit": {"min": 0.0, "max": MAX_RPM},
}


def paper_parameters(device: object, env: object) -> tuple[object, str]:
    base = l2f.Parameters()
    l2f.initial_parameters(device, env, base)
    params = json.loads(l2f.parameters_to_json(device, env, base))
    dynamics = params["dynamics"]
    missing = sorted(set(PAPER_DYNAMICS) - set(dynamics))
    if missing or "dt" not in params["integration"]:
        raise SystemExit(
            f"l2f's parameter JSON lacks {missing or ['integration.dt']}: schema changed"
        )
    dynamics.update(PAPER_DYNAMICS)
    params["integration"]["dt"] = 0.01
    noise = params.get("mdp", {}).get("action_noise")
    if isinstance(noise, dict):  # off, as in the paper
        for key in noise:
            noise[key] = 0.0
    text = json.dumps(params)
    loaded = l2f.Parameters()
    l2f.parameters_from_json(device, env, text, loaded)
    # The JSON export rounds to 6 decimals (3.16e-10 shows as 0): check by flying instead. Level
    # at the paper's hover speed sqrt(m g / (4 · 3.16e-10)), one step must not accelerate.
    hover = np.sqrt(0.027 * 9.81 / 4 / 3.16e-10)
    state, next_state = l2f.State(), l2f.State()
    l2f.initial_state(device, env, loaded, state)
    state.position, state.orientation = [0.0] * 3, [1.0, 0.0, 0.0, 0.0]
    state.linear_velocity, state.angular_velocity, state.rpm = [0.0] * 3, [0.0] * 3, [hover] * 4
    rng = l2f.Rng()
    l2f.initialize_rng(device, rng, 0)
    l2f.step(device, env, loaded, state, [2 * hover / MAX_RPM - 1] * 4, next_state, rng)
    if np.abs(np.asarray(next_state.linear_velocity)).max() > 1e-4:
        raise SystemExit(f"l2f did not take the paper's parameters: {next_state.linear_velocity}")
    return loaded, text


def random_transitions(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    states = np.concatenate(
        [
            rng.uniform(-1, 1, (n, 3)),
            q,
            rng.uniform(-2, 2, (n, 3)),
            rng.uniform(-10, 10, (n, 3)),
            rng.uniform(-0.05, 1.05, (n, 4)) * MAX_RPM,
        ],
        axis=1,
    )
    actions = rng.uniform(-1.2, 1.2, (n, 4))
    return states.astype(np.float32), actions.astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="tests/fixtures/l2f/crazyflie.npz")
    parser.add_argument("--n", type=int, default=10_000, help="one-step transitions")
    parser.add_argument("--steps", type=int, default=500, help="steps of the open-loop rollout")
    args = parser.parse_args()

    device, rng, env = l2f.Device(), l2f.Rng(), l2f.Environment()
    l2f.initialize_rng(device, rng, 0)
    l2f.initialize_environment(device, env)
    params, text = paper_parameters(device, env)
    state, next_state = l2f.State(), l2f.State()

    def step(x: np.ndarray, action: np.ndarray) -> np.ndarray:
        l2f.initial_state(device, env, params, state)  # zero disturbance, fills hidden fields
        state.position, state.orientation = x[0:3].tolist(), x[3:7].tolist()
        state.linear_velocity, state.angular_velocity = x[7:10].tolist(), x[10:13].tolist()
        state.rpm = x[13:17].tolist()
        l2f.step(device, env, params, state, action.tolist(), next_state, rng)
        fields = (next_state.position, next_state.orientation, next_state.linear_velocity)
        fields += (next_state.angular_velocity, next_state.rpm)
        return np.concatenate([np.asarray(f, np.float32) for f in fields])

    generator = np.random.default_rng(17)
    states, actions = random_transitions(generator, args.n)
    next_states = np.stack([step(x, a) for x, a in zip(states, actions, strict=True)])

    hover = 0.334  # the normalised hover command (reward_functions/default.h action baseline)
    start = np.array([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0] + [(hover + 1) / 2 * MAX_RPM] * 4)
    rollout_actions = np.clip(generator.normal(hover, 0.05, (args.steps, 4)), -1, 1)
    rollout_actions = rollout_actions.astype(np.float32)
    rollout = [start.astype(np.float32)]
    for action in rollout_actions:
        rollout.append(step(rollout[-1], action))

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        states=states,
        actions=actions,
        next_states=next_states,
        rollout_actions=rollout_actions,
        rollout_states=np.stack(rollout),
        params_json=np.array(text),
        l2f_version=np.array(metadata.version("l2f")),
    )
    size = out.stat().st_size / 1e3
    print(f"wrote {out} ({size:.0f} kB): {args.n} transitions, a {args.steps}-step rollout")


if __name__ == "__main__":
    main()
