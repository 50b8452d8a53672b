"""Observation encoders: the flat observation (envs/spaces.py) made ready for a network's MLP.

Each part of the flat vector is read as SB3 reads it (`preprocess_obs`, and `CombinedExtractor`
for a Dict): a Box's values as they are, Discrete indices one-hot, MultiDiscrete ones as the
concatenated one-hots of their sub-spaces, MultiBinary bits as floats, and images scaled to
[0, 1] and passed through a CNN; the parts are concatenated in the layout's order.

The CNN (the `encoder` hyperparameter):
- "nature": the Nature-CNN of Mnih et al. (2015), as SB3's NatureCNN: convolutions of 32 8×8
  filters, stride 4; 64 4×4, stride 2; 64 3×3, stride 1 (ReLU, no padding), flattened, then a
  dense layer of 512 and ReLU (256 for an image in a Dict, as SB3's CombinedExtractor has it:
  512 ReLU features beside a few one-hot ones saturate the tanh MLP of PPO, which then does not
  learn from the small ones). Images must be at least 36×36.
- "minatar": MinAtar's network (Young & Tian 2019, MinAtar's examples/dqn.py): one convolution
  of 16 3×3 filters, stride 1, then a dense layer of 128 and ReLU, for small images (≥ 3×3).
  It also reads every three-dimensional Box as an image, unscaled (as SB3 does with
  `normalize_images=False`): gymnax's MinAtar grids are float 0/1 Boxes of 10×10×C.
- "flatten": no CNN; the scaled pixels go to the MLP as a vector.

A network with an encoder is `Encoded(encoder, net)`: each network (actor, critic, value) has
its own, as SB3's off-policy algorithms have by default. Where no part needs reading (a Box
observation, or a Dict of vectors and bits) a network gets none, so that its parameters are
exactly those of the plain network.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from duetto.envs.spaces import Layout, Segment
from duetto.envs.spec import EnvSpec
from duetto.errors import DuettoError
from duetto.nets.mlp import layer_init

ENCODERS = ("nature", "minatar", "flatten")
# (filters, kernel, stride) per convolution, and the width of the dense layer after them.
CNNS: dict[str, tuple[tuple[tuple[int, int, int], ...], int]] = {
    "nature": (((32, 8, 4), (64, 4, 2), (64, 3, 1)), 512),
    "minatar": (((16, 3, 1),), 128),
}
DICT_NATURE_FEATURES = 256  # SB3's CombinedExtractor: cnn_output_dim per image key


def conv_output(size: int, convs: tuple[tuple[int, int, int], ...]) -> int:
    """The spatial size left of `size` pixels after unpadded convolutions."""
    for _, kernel, stride in convs:
        size = (size - kernel) // stride + 1 if size >= kernel else 0
    return size


def cnn_input(seg: Segment, encoder: str) -> bool:
    """Whether `encoder` passes the part `seg` through its CNN."""
    if encoder == "flatten":
        return False
    grid = encoder == "minatar" and seg.kind == "box" and len(seg.shape) == 3
    return seg.kind == "image" or grid


def needs_encoder(layout: Layout, encoder: str) -> bool:
    """Whether any part of `layout` must be read by an encoder (else the networks take the
    flat vector as it is)."""
    read = ("image", "discrete", "multi_discrete")
    return any(seg.kind in read or cnn_input(seg, encoder) for seg in layout)


def _hw(seg: Segment) -> tuple[int, int]:
    return (seg.shape[1], seg.shape[2]) if seg.channels_first else (seg.shape[0], seg.shape[1])


def check_images(layout: Layout, encoder: str) -> None:
    """One DuettoError when an image is too small for the CNN `encoder` chose."""
    if encoder not in CNNS:
        return
    convs = CNNS[encoder][0]
    for seg in layout:
        if not cnn_input(seg, encoder):
            continue
        h, w = _hw(seg)
        if conv_output(h, convs) < 1 or conv_output(w, convs) < 1:
            name = "the image observation" if seg.key is None else f"the image '{seg.key}'"
            if encoder == "nature":
                raise DuettoError(
                    f"{name} is {h}×{w}, too small for the Nature CNN (its convolutions need at "
                    "least 36×36): use encoder='minatar' (one 3×3 convolution, for images of at "
                    "least 3×3) or encoder='flatten' (the scaled pixels into the MLP), or resize "
                    "the images (gymnasium.wrappers.ResizeObservation)."
                )
            raise DuettoError(
                f"{name} is {h}×{w}, too small for MinAtar's 3×3 convolution: use "
                "encoder='flatten' (the pixels into the MLP)."
            )


class CNN(nn.Module):
    """images [B, H, W, C] -> features [B, features]: unpadded ReLU convolutions, flattened,
    then a ReLU dense layer (CNNS names the two of duetto)."""

    convs: tuple[tuple[int, int, int], ...]
    features: int
    weight_init: str = "lecun"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        gain = np.sqrt(2.0)  # SB3's and CleanRL's gain for the feature extractor's layers
        for filters, kernel, stride in self.convs:
            init = layer_init(self.weight_init, gain, kernel * kernel * x.shape[-1])
            conv = nn.Conv(
                filters, (kernel, kernel), (stride, stride), "VALID", dtype=self.dtype, **init
            )
            x = nn.relu(conv(x))
        x = x.reshape(x.shape[0], -1)
        init = layer_init(self.weight_init, gain, x.shape[-1])
        return nn.relu(nn.Dense(self.features, dtype=self.dtype, **init)(x)).astype(jnp.float32)


class ObsEncoder(nn.Module):
    """obs [..., obs_dim] flat -> [..., features]: each part of `layout` read as the module
    docstring says, concatenated. `cnn_features` 0 takes the CNN's own width (the Nature CNN's
    in a Dict: SB3's 256)."""

    layout: Layout
    encoder: str = "nature"
    cnn_features: int = 0
    weight_init: str = "lecun"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        check_images(self.layout, self.encoder)
        batch = obs.shape[:-1]
        x = obs.reshape(-1, obs.shape[-1])
        parts, start = [], 0
        for seg in self.layout:
            parts.append(self._read(seg, x[:, start : start + seg.size]))
            start += seg.size
        out = jnp.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
        return out.reshape(*batch, out.shape[-1])

    def _read(self, seg: Segment, x: jnp.ndarray) -> jnp.ndarray:
        """One part [B, size] -> [B, width]."""
        if seg.kind in ("discrete", "multi_discrete"):
            index = x.astype(jnp.int32)
            return jnp.concatenate(
                [jax.nn.one_hot(index[:, i], n) for i, n in enumerate(seg.nvec)], axis=-1
            )
        if seg.kind == "image":
            x = x / 255.0
        if not cnn_input(seg, self.encoder):
            return x
        image = x.reshape(x.shape[0], *seg.shape)
        if seg.channels_first:
            image = image.transpose(0, 2, 3, 1)
        convs, width = CNNS[self.encoder]
        if seg.key is not None and self.encoder == "nature":
            width = DICT_NATURE_FEATURES
        name = "cnn" if seg.key is None else f"cnn_{seg.key}"
        cnn = CNN(convs, self.cnn_features or width, self.weight_init, self.dtype, name=name)
        return cnn(image)


class Encoded(nn.Module):
    """net(encoder(obs), *rest): a network that reads its observation through its own
    encoder (its parameters: {"encoder": ..., "net": ...})."""

    encoder: nn.Module
    net: nn.Module

    def __call__(self, obs: jnp.ndarray, *rest: Any) -> Any:
        return self.net(self.encoder(obs), *rest)


class Viewed(nn.Module):
    """net(view(obs), *rest) for an observation with a privileged part (EnvSpec.privileged_dim):
    `part` "actor" reads the first `actor_dim` columns (through `encoder` where it needs one),
    "privileged" the rest, "both" the two concatenated (its parameters: {"encoder": ...,
    "net": ...}). An actor's view of an observation without the privileged part is the same, so
    that a trained actor acts on what the env gives at deployment."""

    net: nn.Module
    actor_dim: int
    part: str
    encoder: nn.Module | None = None

    def __call__(self, obs: jnp.ndarray, *rest: Any) -> Any:
        actor, privileged = obs[..., : self.actor_dim], obs[..., self.actor_dim :]
        if self.part != "privileged" and self.encoder is not None:
            actor = self.encoder(actor)
        x = {
            "actor": actor,
            "privileged": privileged,
            "both": jnp.concatenate([actor, privileged], axis=-1),
        }[self.part]
        return self.net(x, *rest)


def encoded(
    net: nn.Module,
    spec: EnvSpec,
    config: Any,
    weight_init: str,
    dtype: Any = jnp.float32,
    role: str = "actor",
) -> nn.Module:
    """`net` reading the observations of `spec` through an encoder chosen by the config's
    `encoder` and `cnn_features` (initialised as `weight_init`), or `net` itself when the
    observation needs no reading. A critic (`role` "critic") reads what the config's
    `critic_obs` says (contract.Config); an actor never reads a privileged part."""
    layout = spec.obs_layout
    part = getattr(config, "critic_obs", "actor") if role == "critic" else "actor"
    if part != "actor" and spec.privileged_dim == 0:
        raise DuettoError(
            f"critic_obs='{part}' needs an env that gives a privileged observation for the "
            "critic; this one gives none. Wrap a Gymnasium env in "
            "duetto.PrivilegedObservation(env, key=...) to take it from the env's info, use a "
            "JAX env that gives one (duetto:Quadrotor-v0), or set critic_obs='actor'."
        )
    encoder = None
    if needs_encoder(layout, config.encoder) and part != "privileged":
        encoder = ObsEncoder(layout, config.encoder, config.cnn_features, weight_init, dtype)
    if spec.privileged_dim:
        return Viewed(net, spec.actor_dim, part, encoder)
    return net if encoder is None else Encoded(encoder, net)
