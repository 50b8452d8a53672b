"""Few buffers for many small arrays: cheaper calls into compiled programs.

Each array passed into or out of a compiled call costs about 1.5 µs of dispatch on the host; an
algorithm's state has dozens (every bias, optimizer moment, key and counter). `Packing` stores
the small leaves of a pytree in one flat buffer per dtype and keeps large leaves whole (copying
those into a flat buffer would cost more than their dispatch). Programs unpack at entry and pack
at exit, so the host moves a handful of buffers per call.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

SMALL = 16_384  # elements; smaller leaves are packed


class Packing:
    """The layout of one pytree structure (shapes and dtypes from `template`)."""

    def __init__(self, template: Any, small: int = SMALL):
        leaves, treedef = jax.tree.flatten(template)
        self.treedef: Any = treedef  # jax's PyTreeDef (its stubs lack flatten_up_to)
        self.shapes = [tuple(x.shape) for x in leaves]
        dtypes = [jnp.dtype(x.dtype) for x in leaves]
        self.whole = [i for i, s in enumerate(self.shapes) if math.prod(s) >= small]
        groups: dict[str, list[int]] = {}
        for i, dtype in enumerate(dtypes):
            if i not in self.whole:
                groups.setdefault(dtype.name, []).append(i)
        self.groups = list(groups.values())

    def pack(self, tree: Any) -> tuple[jnp.ndarray, ...]:
        leaves = self.treedef.flatten_up_to(tree)
        flat = tuple(jnp.concatenate([jnp.ravel(leaves[i]) for i in g]) for g in self.groups)
        return flat + tuple(leaves[i] for i in self.whole)

    def pack_host(self, tree: Any) -> tuple[jax.Array, ...]:
        """`pack` done by NumPy and put on the device: no program to compile."""
        leaves = [np.asarray(x) for x in self.treedef.flatten_up_to(tree)]
        flat = tuple(np.concatenate([leaves[i].ravel() for i in g]) for g in self.groups)
        return jax.device_put(flat + tuple(leaves[i] for i in self.whole))

    def unpack_host(self, packed: tuple[jax.Array, ...]) -> Any:
        """`unpack` done by NumPy on copies of the buffers (a program may later reuse the
        buffers, donated), put back on the device: no program to compile."""
        return jax.device_put(self.unpack(tuple(np.array(b) for b in packed)))

    def unpack(self, packed: tuple[jnp.ndarray | np.ndarray, ...]) -> Any:
        leaves: list[Any] = [None] * len(self.shapes)
        for buffer, group in zip(packed, self.groups, strict=False):
            offset = 0
            for i in group:
                size = math.prod(self.shapes[i])
                leaves[i] = buffer[offset : offset + size].reshape(self.shapes[i])
                offset += size
        for buffer, i in zip(packed[len(self.groups) :], self.whole, strict=True):
            leaves[i] = buffer
        return jax.tree.unflatten(self.treedef, leaves)
