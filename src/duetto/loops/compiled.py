"""Programs compiled ahead of time with their own XLA:CPU options.

Compilation is most of a short run's wall time on CPU. Programs whose speed matters little (init,
evaluation) get no LLVM optimisation at all; the small-network training programs get LLVM's
cheaper pipeline, which compiles about a second faster at a run time within a few per cent.
The options are XLA:CPU's: on another backend a program compiles with that backend's defaults.

(An earlier cache of traced and lowered programs on disk, `jax.export` artifacts, saved about
0.4 s on a warm run and cost about 0.5 s on a cold one, BENCHMARKS.md §3; it is gone. JAX's own
persistent compilation cache, which `duetto.configure` turns on, still skips XLA's compilation.)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import jax
import jax.numpy as jnp

TRAIN_OPTIONS = {"xla_backend_optimization_level": 1, "xla_llvm_disable_expensive_passes": True}
# Programs that run once or rarely (init, evaluate, start) also take XLA:CPU's older loop
# emitters: a fused init compiles in 0.6 s instead of 1.5 s, with the same bits here. The
# newer ones stay for the train programs, which run 14 % slower with the older (PPO, fused).
ONCE_OPTIONS = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}


class Program:
    """`fn` jitted and compiled ahead of time with its own XLA options (`jax.jit`'s
    compiler_options do not reach every compile path), once per argument signature.

    `static` and `donate` are `jax.jit`'s static_argnums and donate_argnums."""

    def __init__(
        self,
        fn: Callable,
        options: dict[str, Any],
        static: tuple[int, ...] = (),
        donate: tuple[int, ...] = (),
    ):
        self.fn, self.options, self.static, self.donate = fn, options, static, donate
        self.jitted = jax.jit(fn, static_argnums=static, donate_argnums=donate)
        self.compiled: dict[Any, Any] = {}
        self.last: tuple[tuple, Any] | None = None

    def __call__(self, *args: Any) -> Any:
        dynamic = [a for i, a in enumerate(args) if i not in self.static]
        if self.last is not None and self.last[0] == tuple(args[i] for i in self.static):
            try:  # the common case: the arguments of the previous call, checked by XLA
                return self.last[1](*dynamic)
            except (TypeError, ValueError):
                pass
        signature = self._signature(args)
        compiled = self.compiled.get(signature)
        if compiled is None:
            compiled = self._compile(args, signature)
        elif isinstance(compiled, Future):  # compiled in the background (`prepare`)
            try:
                compiled = compiled.result()
            except BaseException:
                del self.compiled[signature]  # the next call tries again, in the foreground
                raise
        self.compiled[signature] = compiled
        self.last = (signature[2], compiled)
        return compiled(*dynamic)

    def prepare(self, *args: Any) -> None:
        """Start compiling for arguments like these (`jax.ShapeDtypeStruct` leaves will do) in
        a background thread: XLA compiles without holding Python's lock, so programs that a
        run needs one after another compile side by side. The first call with such arguments
        waits for the result. The worker thread traces with the process's JAX settings, not
        with a context manager's of the calling thread (`with jax.enable_x64(...)`)."""
        signature = self._signature(args)
        if signature not in self.compiled:
            self.compiled[signature] = _background().submit(self._compile, args, signature)

    def _signature(self, args: tuple) -> tuple:
        dynamic = [a for i, a in enumerate(args) if i not in self.static]
        return (
            jax.tree.structure(dynamic),
            tuple((jnp.shape(x), jnp.result_type(x), _split(x)) for x in jax.tree.leaves(dynamic)),
            tuple(args[i] for i in self.static),
        )

    def cache_size(self) -> int:
        return len(self.compiled)

    def _compile(self, args: tuple, signature: tuple) -> Callable:
        options = self.options if jax.default_backend() == "cpu" else {}
        return self.jitted.lower(*args).compile(options)


@functools.cache
def _background() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="duetto-compile")


def _split(x: Any) -> jax.sharding.Sharding | None:
    """The sharding of an argument split over several devices (part of a program's signature:
    the program is partitioned for it), or None for one on a single device or on the host."""
    sharding = getattr(x, "sharding", None)
    return sharding if sharding is not None and len(sharding.device_set) > 1 else None
