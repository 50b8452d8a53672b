"""The contract (duetto/contract.py), held against every registered algorithm and every loop it
runs on: a new algorithm gets these tests by registering.

- resume across processes is bit-exact (2N steps = N, save, load in a new process, N more);
- each program compiles once;
- `update` returns exactly METRICS (an off-policy one also its per-sample |δ|, TD_ERROR);
- every hyperparameter marked sweepable changes what an update does;
- bad input is refused with one clear error; a module that breaks the contract cannot register.
"""

import dataclasses
import json
import os
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import duetto
from duetto.algorithms import AGENTS, ALGORITHMS, register
from duetto.config import build_config, sweepable
from duetto.contract import TD_ERROR, OffPolicyConfig, OnPolicyConfig, check_module
from duetto.data.replay import Transition, one_step_batch
from duetto.data.rollout import Rollout
from duetto.envs.spec import EnvSpec
from duetto.errors import DuettoError

# Small settings per loop kind, so each case trains in seconds.
TINY = {
    "offpolicy": {"hidden": (16, 16), "batch_size": 16, "learning_starts": 40, "buffer_size": 150},
    "onpolicy": {"hidden": (16, 16), "n_steps": 16, "batch_size": 16, "n_epochs": 2},
}
ENVS = {  # per action space: a Gymnasium env (host loop) and a JAX-native one (fused loop)
    "box": ("Pendulum-v1", "gymnax:Pendulum-v1"),
    "discrete": ("CartPole-v1", "gymnax:CartPole-v1"),
}
CASES = [
    pytest.param(name, env, id=f"{name}-{'fused' if env.startswith('gymnax:') else 'host'}")
    for name, algo in ALGORITHMS.items()
    for env in ENVS[algo.ACTION_SPACES[0]]
]

SCRIPT = """
import json, sys
import jax, numpy as np
import duetto
duetto.configure()  # one device (DUETTO_CPU_DEVICES), the session's compilation cache
name, env, mode, ckpt, out = sys.argv[1:6]
hp = json.loads(sys.argv[6])
hp = {k: tuple(v) if isinstance(v, list) else v for k, v in hp.items()}
cls = duetto.AGENTS[name]
kw = dict(seeds=[3, 4]) if env.startswith("gymnax:") else dict(seed=3)
# The host on-policy runs save mid-rollout (52 vector steps, rollouts of 16); the fused loop
# trains whole iterations (32 steps on-policy), so its N is a multiple of one.
steps = 96 if env.startswith("gymnax:") else 104

def leaves(agent):
    return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(agent.loop.state))]

if mode == "first":
    full = cls(env, run_dir=False, n_envs=2, **kw, **hp)
    full.learn(2 * steps, eval_every=steps, eval_episodes=1)
    half = cls(env, run_dir=False, n_envs=2, **kw, **hp)
    half.learn(steps, eval_every=steps, eval_episodes=1)
    half.save(ckpt)
    np.savez(out, *leaves(full))
    programs = getattr(half.loop, "programs", None)
    if programs is not None:
        sizes = [p.cache_size() for p in programs]
    else:
        sizes = [half.loop.loop._train.cache_size(), half.loop.loop._evaluate.cache_size()]
    half.learn(steps, eval_every=steps, eval_episodes=1)  # a second call compiles nothing new
    sizes2 = sizes and ([p.cache_size() for p in programs] if programs is not None else
                        [half.loop.loop._train.cache_size(), half.loop.loop._evaluate.cache_size()])
    print(json.dumps({"sizes": sizes, "sizes2": sizes2}))
else:
    agent = duetto.load(ckpt)
    agent.learn(steps, eval_every=steps, eval_episodes=1)
    with np.load(out) as f:
        full = [f[f"arr_{i}"] for i in range(len(f.files))]
    got = leaves(agent)
    same = len(got) == len(full) and all(np.array_equal(a, b) for a, b in zip(got, full))
    print(json.dumps({"same": bool(same), "n": len(got)}))
"""


def _script(tmp_path, *args):
    script = tmp_path / "contract_run.py"
    script.write_text(SCRIPT)
    r = subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        capture_output=True,
        text=True,
        env={
            "DUETTO_COMPILATION_CACHE": os.environ.get("DUETTO_COMPILATION_CACHE", "0"),
            "PATH": "/usr/bin:/bin",
            "DUETTO_CPU_DEVICES": "1",
        },
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name,env", CASES)
def test_resume_is_bit_exact_across_processes_and_programs_compile_once(name, env, tmp_path):
    algo = ALGORITHMS[name]
    hp = json.dumps(TINY[algo.LOOP])
    ckpt, out = tmp_path / "half.ckpt", tmp_path / "full.npz"
    first = _script(tmp_path, name, env, "first", ckpt, out, hp)
    assert first["sizes"] and all(s == 1 for s in first["sizes"]), first
    assert first["sizes2"] == first["sizes"], first
    resumed = _script(tmp_path, name, env, "resume", ckpt, out, hp)
    assert resumed["n"] > 5 and resumed["same"], resumed


def _state_and_batch(algo, config, key=0):
    """A state after init and one batch of what `update` takes, on a 3-d obs, 2-d action."""
    discrete = "box" not in algo.ACTION_SPACES
    spec = EnvSpec(obs_dim=3, action_dim=2, discrete=discrete)
    state = algo.init(jax.random.PRNGKey(key), spec, config, 2)
    k = jax.random.split(jax.random.PRNGKey(key + 1), 6)
    if algo.LOOP == "offpolicy":
        batch = Transition(
            obs=jax.random.normal(k[0], (16, 3)),
            action=jax.random.uniform(k[1], (16, 2), minval=-1, maxval=1),
            reward=jax.random.normal(k[2], (16,)),
            next_obs=jax.random.normal(k[3], (16, 3)),
            terminated=(jnp.arange(16) % 5 == 0).astype(jnp.float32),
            done=(jnp.arange(16) % 5 == 0).astype(jnp.float32),
        )
        return state, batch, 1_000
    n_steps = config.n_steps
    obs = jax.random.normal(k[0], (n_steps, 2, 3))
    noise = algo.exploration_noise(state, k[1], (n_steps * 2,))
    action, log_prob = algo.explore(state, obs.reshape(-1, 3), noise)
    shape, _ = algo.action_shape(spec)
    done = (jax.random.uniform(k[3], (n_steps, 2)) < 0.1).astype(jnp.float32)
    rollout = Rollout(
        obs,
        action.reshape(n_steps, 2, *shape),
        log_prob.reshape(n_steps, 2),
        jax.random.normal(k[2], (n_steps, 2)),
        jax.random.normal(k[4], (n_steps, 2, 3)),
        done * 0.5,
        done,
    )
    return state, rollout, n_steps * 2


def _update_input(algo, state, batch):
    """What the loop gives `update`: an off-policy batch as 1-step backups with the state's γ."""
    if algo.LOOP == "offpolicy":
        return one_step_batch(batch, state.hparams["gamma"])
    return batch


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_update_returns_exactly_the_declared_metrics(name):
    algo = ALGORITHMS[name]
    config = build_config(algo.CONFIG, name, {}, TINY[algo.LOOP])
    state, batch, steps = _state_and_batch(algo, config)
    _, metrics = jax.eval_shape(algo.update, state, _update_input(algo, state, batch), steps)
    td_error = metrics.pop(TD_ERROR, None)
    assert set(metrics) == set(algo.METRICS)
    assert all(m.shape == () for m in metrics.values())
    if algo.LOOP == "offpolicy":  # every off-policy algorithm here can use prioritised replay
        assert td_error is not None and td_error.shape == (16,)


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_every_sweepable_hyperparameter_changes_the_update(name):
    algo = ALGORITHMS[name]
    config = build_config(algo.CONFIG, name, {}, TINY[algo.LOOP])
    state, batch, steps = _state_and_batch(algo, config)
    update = jax.jit(algo.update)

    def after(state):
        for _ in range(3):  # a few updates: delayed steps and old-policy terms come in
            state, _ = update(state, _update_input(algo, state, batch), steps)
        return [np.asarray(x) for x in jax.tree.leaves(state)]

    base = after(state)
    names = sweepable(algo.CONFIG)
    assert names, f"{name} has no sweepable hyperparameter"
    for field in names:
        value = float(state.hparams[field])
        other = 0.5 * value if value > 0 else 0.5
        changed = state.replace(hparams={**state.hparams, field: jnp.float32(other)})
        differs = any(not np.array_equal(a, b) for a, b in zip(after(changed), base, strict=True))
        assert differs, f"{name}: sweeping '{field}' ({value} -> {other}) changed nothing"


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_bad_input_is_refused_with_one_clear_error(name):
    cls, algo = AGENTS[name], ALGORITHMS[name]
    env = ENVS[algo.ACTION_SPACES[0]][0]
    with pytest.raises(DuettoError, match="unknown hyperparameter 'learning_rat"):
        cls(env, run_dir=False, learning_rat=1e-3)
    with pytest.raises(DuettoError, match="must be in"):
        cls(env, run_dir=False, gamma=1.5)
    with pytest.raises(DuettoError, match="unknown preset"):
        cls(env, run_dir=False, preset="no-such-preset")
    if "discrete" not in algo.ACTION_SPACES:
        with pytest.raises(DuettoError, match="continuous"):
            cls("CartPole-v1", run_dir=False)
    fields = {f.name for f in dataclasses.fields(algo.CONFIG)}
    fixed = sorted(fields - set(sweepable(algo.CONFIG)))[0]
    with pytest.raises(DuettoError, match="cannot be swept"):
        cls(ENVS[algo.ACTION_SPACES[0]][1], run_dir=False, sweep={fixed: [1, 2]})


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_registered_classes_are_the_facade_and_loop_fields_come_from_the_bases(name):
    cls, algo = AGENTS[name], ALGORITHMS[name]
    assert issubclass(cls, duetto.Agent) and getattr(duetto, cls.__name__) is cls
    base = OffPolicyConfig if algo.LOOP == "offpolicy" else OnPolicyConfig
    assert issubclass(algo.CONFIG, base)
    for field in dataclasses.fields(base):  # declared once: same meaning and range everywhere
        mine = {f.name: f for f in dataclasses.fields(algo.CONFIG)}[field.name]
        assert mine.metadata["low"] == field.metadata["low"]
        assert mine.metadata["choices"] == field.metadata["choices"]


def test_a_module_that_breaks_the_contract_cannot_register():
    broken = types.ModuleType("my_broken_algo")
    broken.NAME = "Broken Algo"
    broken.LOOP = "sideways"
    broken.ACTION_SPACES = ("box", "tokens")
    broken.METRICS = ("loss", "loss")
    broken.CONFIG = dict
    broken.PRESETS = {}
    broken.PRESET_STEPS = {"fast": 10}
    broken.init = lambda key: None
    with pytest.raises(DuettoError) as err:
        register(broken)
    message = str(err.value)
    for part in (
        "LOOP is 'sideways'",
        "function act() missing",
        "function update() missing",
        "init() takes fewer",
        "NAME 'Broken Algo'",
        "ACTION_SPACES",
        "METRICS must be distinct",
        "PRESET_STEPS names presets",
    ):
        assert part in message, (part, message)
    assert "broken algo" not in ALGORITHMS


def test_a_config_that_misstates_its_loop_fields_is_refused():
    from duetto.algorithms import sac

    module = types.ModuleType("my_sac")
    for name in ("NAME", "LOOP", "ACTION_SPACES", "METRICS", "PRESETS", "PRESET_STEPS"):
        setattr(module, name, getattr(sac, name))
    module.NAME = "my-sac"
    module.init, module.act, module.update = sac.init, sac.act, sac.update
    module.CONFIG = OnPolicyConfig  # an on-policy config for an off-policy module
    with pytest.raises(DuettoError, match="must be a dataclass derived from OffPolicyConfig"):
        check_module(module)
    module.CONFIG = sac.SACConfig
    module.PRESETS = {"bad": {"learning_rate": -1.0}}
    with pytest.raises(DuettoError, match="preset 'bad'"):
        check_module(module)
    module.PRESETS = sac.PRESETS

    @dataclasses.dataclass(frozen=True)
    class NoGamma(OffPolicyConfig):  # the loops discount n-step returns with hparams["gamma"]
        pass

    module.CONFIG = NoGamma
    with pytest.raises(DuettoError, match="no sweepable 'gamma'"):
        check_module(module)
    module.CONFIG, module.METRICS = sac.SACConfig, (*sac.METRICS, TD_ERROR)
    with pytest.raises(DuettoError, match="must not name 'td_error'"):
        check_module(module)


def test_one_facade_for_every_loop():
    """The same class, learn, evaluate, predict (stochastic too) and callback context whatever
    the loop: isinstance holds for a JAX-native env's agent."""
    seen = []
    for env in ("Pendulum-v1", "gymnax:Pendulum-v1"):
        agent = duetto.SAC(env, run_dir=False, **TINY["offpolicy"])
        assert isinstance(agent, duetto.SAC) and type(agent) is duetto.SAC
        agent.learn(80, eval_every=40, eval_episodes=1, callbacks=[seen.append])
        assert {"return_mean", "return_std", "length_mean", "returns"} <= set(agent.last_eval)
        a, b = (agent.predict(np.zeros(3), deterministic=False)[0] for _ in range(2))
        assert a.shape == (1,) and not np.array_equal(a, b)  # sampled, a fresh key each call
        np.testing.assert_array_equal(agent.predict(np.zeros(3))[0], agent.predict(np.zeros(3))[0])
        assert agent.evaluate(2, seed=5) == agent.evaluate(2, seed=5)
    assert {type(ctx).__name__ for ctx in seen} == {"TrainingContext"}
    assert all(ctx.env_steps > ctx.start_steps for ctx in seen)
