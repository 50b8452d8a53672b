"""Programs compiled ahead of time with their own XLA:CPU options.

Compilation is most of a short run's wall time on CPU. Programs whose speed matters little (init,
evaluation) get no LLVM optimisation at all; the small-network training programs get LLVM's
cheaper pipeline, which compiles about a second faster at a run time within a few per cent.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

TRAIN_OPTIONS = {"xla_backend_optimization_level": 1, "xla_llvm_disable_expensive_passes": True}
ONCE_OPTIONS = {"xla_backend_optimization_level": 0}


class Program:
    """A jitted function compiled ahead of time with its own XLA options (`jax.jit`'s
    compiler_options do not reach every compile path), once per argument signature."""

    def __init__(self, jitted: Any, options: dict[str, Any], static: tuple[int, ...] = ()):
        self.jitted, self.options, self.static = jitted, options, static
        self.compiled: dict[Any, Any] = {}
        self.last: tuple[tuple, Any] | None = None

    def __call__(self, *args: Any) -> Any:
        dynamic = [a for i, a in enumerate(args) if i not in self.static]
        if self.last is not None and self.last[0] == tuple(args[i] for i in self.static):
            try:  # the common case: the arguments of the previous call, checked by XLA
                return self.last[1](*dynamic)
            except (TypeError, ValueError):
                pass
        signature = (
            jax.tree.structure(dynamic),
            tuple((jnp.shape(x), jnp.result_type(x)) for x in jax.tree.leaves(dynamic)),
            tuple(args[i] for i in self.static),
        )
        if signature not in self.compiled:
            self.compiled[signature] = self.jitted.lower(*args).compile(self.options)
        self.last = (signature[2], self.compiled[signature])
        return self.compiled[signature](*dynamic)

    def cache_size(self) -> int:
        return len(self.compiled)
