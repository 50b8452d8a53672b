"""Load Hugging Face checkpoints of the Llama/Qwen2 family: config.json, model.safetensors (or its
sharded index) and tokenizer.json, into a TransformerConfig, Flax parameters and a tokenizer.

Only what the model computes is accepted: a checkpoint with rope scaling, sliding-window attention,
MLP biases, another activation or tensors duetto would not use raises a DuettoError naming it,
rather than loading into a model that computes something else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from duetto.errors import DuettoError
from duetto.lm.model import TransformerConfig
from duetto.lm.tokenizer import HFTokenizer

FAMILIES = ("llama", "qwen2")


def config_from_hf(hf: dict[str, Any], value_head: bool = False) -> TransformerConfig:
    """TransformerConfig from a Hugging Face config.json dictionary."""
    family = hf.get("model_type")
    if family not in FAMILIES:
        raise DuettoError(f"model_type {family!r} is not supported; duetto loads {FAMILIES}")
    if hf.get("hidden_act", "silu") != "silu":
        raise DuettoError(f"hidden_act {hf['hidden_act']!r}: duetto's MLP is SwiGLU (silu)")
    if hf.get("mlp_bias"):
        raise DuettoError("mlp_bias=true is not supported (Llama and Qwen2 MLPs have no bias)")
    if hf.get("use_sliding_window"):
        raise DuettoError("use_sliding_window=true is not supported: duetto attends to all tokens")
    rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type != "default":
        raise DuettoError(f"rope type {rope_type!r} is not supported, only 'default'")
    theta = rope.get("rope_theta", hf.get("rope_theta", 10000.0))
    heads = int(hf["num_attention_heads"])
    return TransformerConfig(
        vocab_size=int(hf["vocab_size"]),
        hidden_size=int(hf["hidden_size"]),
        num_layers=int(hf["num_hidden_layers"]),
        num_heads=heads,
        num_kv_heads=int(hf.get("num_key_value_heads") or heads),
        head_dim=hf.get("head_dim"),
        intermediate_size=int(hf["intermediate_size"]),
        rope_theta=float(theta),
        rms_norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
        attention_bias=True if family == "qwen2" else bool(hf.get("attention_bias", False)),
        tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
        value_head=value_head,
        max_position=int(hf.get("max_position_embeddings", 4096)),
    )


def _read_tensors(directory: Path) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    single = directory / "model.safetensors"
    index = directory / "model.safetensors.index.json"
    if single.is_file():
        files = [single]
    elif index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        files = [directory / f for f in sorted(set(weight_map.values()))]
    else:
        raise DuettoError(f"no model.safetensors or model.safetensors.index.json in {directory}")
    tensors: dict[str, np.ndarray] = {}
    for f in files:
        # framework "flax" reads bfloat16, which numpy cannot represent.
        with safe_open(str(f), framework="flax") as handle:
            for name in handle.keys():  # noqa: SIM118 (safe_open is not a dict)
                tensors[name] = np.asarray(handle.get_tensor(name).astype(jnp.float32))
    return tensors


def params_from_hf(tensors: dict[str, np.ndarray], config: TransformerConfig) -> dict:
    """Flax parameters from Hugging Face tensor names (torch Linear weights are [out, in])."""
    remaining = {k.removeprefix("model."): v for k, v in tensors.items()}
    remaining = {k: v for k, v in remaining.items() if not k.endswith("rotary_emb.inv_freq")}

    def take(name: str, shape: tuple[int, ...]) -> jnp.ndarray:
        if name not in remaining:
            raise DuettoError(f"checkpoint lacks tensor {name!r}")
        value = remaining.pop(name)
        if value.shape != shape:
            raise DuettoError(
                f"tensor {name!r} has shape {value.shape}, the config implies {shape}"
            )
        return jnp.asarray(value)

    c = config
    h, d = c.hidden_size, c.dim
    params: dict = {"embed_tokens": {"embedding": take("embed_tokens.weight", (c.vocab_size, h))}}
    for i in range(c.num_layers):
        p = f"layers.{i}."
        attn: dict = {}
        for proj, heads in (("q_proj", c.num_heads), ("k_proj", c.num_kv_heads)) + (
            ("v_proj", c.num_kv_heads),
        ):
            attn[proj] = {"kernel": take(f"{p}self_attn.{proj}.weight", (heads * d, h)).T}
            if c.attention_bias:
                attn[proj]["bias"] = take(f"{p}self_attn.{proj}.bias", (heads * d,))
        attn["o_proj"] = {"kernel": take(f"{p}self_attn.o_proj.weight", (h, c.num_heads * d)).T}
        mlp = {
            "gate_proj": {"kernel": take(f"{p}mlp.gate_proj.weight", (c.intermediate_size, h)).T},
            "up_proj": {"kernel": take(f"{p}mlp.up_proj.weight", (c.intermediate_size, h)).T},
            "down_proj": {"kernel": take(f"{p}mlp.down_proj.weight", (h, c.intermediate_size)).T},
        }
        params[f"layers_{i}"] = {
            "input_layernorm": {"weight": take(f"{p}input_layernorm.weight", (h,))},
            "post_attention_layernorm": {
                "weight": take(f"{p}post_attention_layernorm.weight", (h,))
            },
            "self_attn": attn,
            "mlp": mlp,
        }
    params["norm"] = {"weight": take("norm.weight", (h,))}
    if c.tie_word_embeddings:
        remaining.pop("lm_head.weight", None)  # some tied checkpoints store the copy anyway
    else:
        params["lm_head"] = {"kernel": take("lm_head.weight", (c.vocab_size, h)).T}
    if remaining:
        raise DuettoError(
            f"checkpoint has tensors duetto's {c.num_layers}-layer model does not use: "
            f"{sorted(remaining)[:5]}"
        )
    return params


def load_pretrained(
    directory: str | Path, value_head: bool = False
) -> tuple[TransformerConfig, dict, HFTokenizer]:
    """(config, params, tokenizer) from a Hugging Face model directory (save_pretrained output).

    Weights load as float32. With `value_head`, a zero-initialised value head is added (the
    checkpoint has none), so the initial values are 0.
    """
    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise DuettoError(f"no config.json in {directory}: expected a save_pretrained directory")
    config = config_from_hf(json.loads((directory / "config.json").read_text()), value_head)
    params = params_from_hf(_read_tensors(directory), config)
    if value_head:
        params["value_head"] = {
            "kernel": jnp.zeros((config.hidden_size, 1), jnp.float32),
            "bias": jnp.zeros((1,), jnp.float32),
        }
    return config, params, HFTokenizer(directory)
