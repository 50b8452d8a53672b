"""Observation spaces as the loops hold them: one flat float32 vector per observation.

Whatever the env's observation space (a Box, an image, Discrete, MultiDiscrete, MultiBinary,
or a Dict of those), the loops, the replay and the rollout keep observations as flat float32
vectors [n, obs_dim], so that their programs are the same for every space. `ObsEdge` makes that
vector on the host from what the env returns, and the layout (a tuple of `Segment`s, static
and hashable, in `EnvSpec.obs_layout`) says which columns are what, so that each network's
encoder (nets/encoder.py) can undo it: one-hot the indices, scale the pixels, run the CNN.

In the vector, a Box part is its values; an image its pixel values 0..255 (scaled to [0, 1]
by the encoder); Discrete and MultiDiscrete parts their indices counted from 0 (the space's
`start` subtracted); a MultiBinary part its bits. A Dict's parts follow the space's own key
order, as SB3's CombinedExtractor reads them. Which Box is an image is SB3's rule
(`is_image_space`): three dimensions, uint8, bounds 0 and 255. A three-dimensional part has its
channels first when its first dimension is strictly the smallest (SB3's
`is_image_space_channels_first` takes the first smallest, which would read a cube such as
MinAtar Seaquest's 10×10×10 as channels first), else last.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from duetto.errors import DuettoError

KINDS = ("box", "image", "discrete", "multi_discrete", "binary")


class Segment(NamedTuple):
    """One part of the flat observation: `key` its Dict key (None for a plain space), `kind`
    one of KINDS, `shape` its shape as the env gives it, `nvec` the choices per index
    (Discrete: (n,); MultiDiscrete: its nvec, flattened), `channels_first` for a
    three-dimensional part whose first dimension is its channels."""

    key: str | None
    kind: str
    shape: tuple[int, ...]
    nvec: tuple[int, ...] = ()
    channels_first: bool = False

    @property
    def size(self) -> int:
        """Its width in the flat vector."""
        return int(np.prod(self.shape, dtype=np.int64))


Layout = tuple[Segment, ...]


def layout_size(layout: Layout) -> int:
    return sum(seg.size for seg in layout)


def is_image(space: gym.spaces.Box) -> bool:
    """SB3's `is_image_space`: three dimensions, uint8, bounds exactly 0 and 255."""
    return (
        len(space.shape) == 3
        and space.dtype == np.uint8
        and bool(np.all(space.low == 0))
        and bool(np.all(space.high == 255))
    )


def _segment(key: str | None, space: gym.spaces.Space, algo: str) -> Segment:
    where = f"the observation '{key}'" if key is not None else "the observation"
    if isinstance(space, gym.spaces.Box):
        shape = tuple(int(d) for d in space.shape)
        first = len(shape) == 3 and shape[0] < min(shape[1], shape[2])
        return Segment(key, "image" if is_image(space) else "box", shape, (), first)
    if isinstance(space, gym.spaces.Discrete):
        return Segment(key, "discrete", (), (int(space.n),))
    if isinstance(space, gym.spaces.MultiDiscrete):
        nvec = tuple(int(n) for n in np.asarray(space.nvec).ravel())
        return Segment(key, "multi_discrete", tuple(space.shape), nvec)
    if isinstance(space, gym.spaces.MultiBinary):
        return Segment(key, "binary", tuple(int(d) for d in np.atleast_1d(space.shape)))
    if isinstance(space, gym.spaces.Dict):
        raise DuettoError(
            f"{algo}: {where} is a Dict inside a Dict, which duetto (like SB3) does not take; "
            "flatten the inner Dict's keys into the outer one."
        )
    if isinstance(space, gym.spaces.Tuple):
        raise DuettoError(
            f"{algo}: {where} is a Tuple space, which duetto (like SB3) does not take; give its "
            "parts names in a gymnasium.spaces.Dict."
        )
    raise DuettoError(
        f"{algo} cannot read {where}, a {type(space).__name__} space; duetto takes Box (vectors "
        "and uint8 images), Discrete, MultiDiscrete, MultiBinary, and a Dict of those."
    )


def observation_layout(space: gym.spaces.Space, algo: str = "duetto") -> Layout:
    """The segments of the flat observation for `space` (one DuettoError for a space duetto
    cannot read)."""
    if isinstance(space, gym.spaces.Dict):
        if not space.spaces:
            raise DuettoError(f"{algo}: the observation space is an empty Dict.")
        return tuple(_segment(str(k), sub, algo) for k, sub in space.spaces.items())
    return (_segment(None, space, algo),)


def box_columns(layout: Layout) -> np.ndarray | None:
    """A bool mask [obs_dim] of the columns that are Box values (those that observation
    normalisation may rescale: not indices, bits or pixels), or None when every column is."""
    mask = np.concatenate([np.full(seg.size, seg.kind == "box") for seg in layout])
    return None if mask.all() else mask


class ObsEdge:
    """Env observations -> flat float32 vectors [n, obs_dim] (see the module docstring)."""

    def __init__(self, space: gym.spaces.Space):
        self.space = space
        self.layout = observation_layout(space)
        self.obs_dim = layout_size(self.layout)
        self.plain = isinstance(space, gym.spaces.Box)
        subspaces = space.spaces if isinstance(space, gym.spaces.Dict) else {None: space}
        # What to subtract from each part: the start of Discrete and MultiDiscrete spaces.
        self._starts = [
            np.asarray(getattr(sub, "start", 0)).ravel()
            if isinstance(sub, gym.spaces.Discrete | gym.spaces.MultiDiscrete)
            else None
            for sub in subspaces.values()
        ]

    def __call__(self, obs: Any, n: int) -> np.ndarray:
        """n observations as a vector env returns them (arrays, or a dict of arrays, with a
        leading [n] axis) -> [n, obs_dim]. A Box's are read as they are (a view where they
        already are float32)."""
        if self.plain:
            return np.asarray(obs, np.float32).reshape(n, -1)
        parts = []
        for seg, start in zip(self.layout, self._starts, strict=True):
            x = np.asarray(obs if seg.key is None else obs[seg.key]).reshape(n, -1)
            parts.append((x if start is None else x - start).astype(np.float32))
        return np.concatenate(parts, axis=1)

    def one(self, obs: Any) -> np.ndarray:
        """One observation as the env returns it -> [obs_dim]."""
        return self(obs, 1)[0]

    def flatten(self, obs: Any) -> tuple[np.ndarray, bool]:
        """One observation or a batch [n, ...] as a user gives it (predict) -> ([n, obs_dim],
        whether it was one), or one DuettoError that says what was expected."""
        key = self.layout[0].key  # the first part tells one observation from a batch
        space, lead = self.space, obs
        if isinstance(space, gym.spaces.Dict):
            if not isinstance(obs, Mapping) or set(obs) != set(space.spaces):
                got = sorted(obs) if isinstance(obs, Mapping) else type(obs).__name__
                raise DuettoError(
                    f"predict: an observation is a dict with the keys {list(space.spaces)} "
                    f"(each one observation or a batch [n, ...]); got {got}."
                )
            space, lead = space.spaces[str(key)], obs[key]
        lead = np.asarray(lead)
        shape = tuple(space.shape or ())
        single = lead.ndim == len(shape)
        tail = lead.shape[lead.ndim - len(shape) :]
        if lead.ndim not in (len(shape), len(shape) + 1) or tail != shape:
            raise DuettoError(
                f"predict: an observation{'' if key is None else f' of {key!r}'} "
                f"has shape {shape} (a batch [n, *{shape}]); got an array of shape {lead.shape}."
            )
        n = 1 if single else lead.shape[0]
        try:
            x = self(obs, n)
        except (KeyError, ValueError) as e:
            raise DuettoError(
                f"predict: the observation does not match the env's space {self.space} ({e})."
            ) from None
        if x.shape[1] != self.obs_dim:
            raise DuettoError(
                f"predict: the observation does not match the env's space {self.space}."
            )
        return x, single
