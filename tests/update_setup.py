"""A small algorithm state and a fixed batch, for tests of one off-policy update."""

import jax
import jax.numpy as jnp

from duetto.config import build_config
from duetto.data.replay import Transition, one_step_batch
from duetto.envs.spec import EnvSpec

# The batch's terminations: its discount is γ·(1 − TERMINATED), as the loops make it.
TERMINATED = jnp.array([0, 0, 1, 0, 0, 0, 1, 0], jnp.float32)


def setup_update(module, **overrides):
    """(config, spec, state, batch): 16x16 networks, obs 3, action 2, a `Batch` of 8 1-step
    transitions with two terminations (TERMINATED); `overrides` are the config's
    hyperparameters."""
    spec = EnvSpec(obs_dim=3, action_dim=2)
    cfg = build_config(module.CONFIG, module.NAME, {}, {"hidden": (16, 16), **overrides})
    state = module.init(jax.random.PRNGKey(0), spec, cfg)
    k = jax.random.split(jax.random.PRNGKey(1), 4)
    transitions = Transition(
        obs=jax.random.normal(k[0], (8, 3)),
        action=jax.random.uniform(k[1], (8, 2), minval=-1, maxval=1),
        reward=jax.random.normal(k[2], (8,)),
        next_obs=jax.random.normal(k[3], (8, 3)),
        terminated=TERMINATED,
        done=TERMINATED,
    )
    return cfg, spec, state, one_step_batch(transitions, state.hparams["gamma"])
