"""Sequence models: decoder-only transformer policies, a KV-cache sampler, Hugging Face
checkpoints, verifiable token tasks and the losses of RL for language models."""

from duetto.lm.model import (
    KVCache,
    Output,
    Transformer,
    TransformerConfig,
    count_params,
    init_params,
    positions_from_mask,
)
from duetto.lm.pretrained import load_pretrained
from duetto.lm.sampler import Samples, make_sampler, pad_left, top_p_filter
from duetto.lm.tokenizer import CharTokenizer, HFTokenizer, Tokenizer

__all__ = [
    "CharTokenizer",
    "HFTokenizer",
    "KVCache",
    "Output",
    "Samples",
    "Tokenizer",
    "Transformer",
    "TransformerConfig",
    "count_params",
    "init_params",
    "load_pretrained",
    "make_sampler",
    "pad_left",
    "positions_from_mask",
    "top_p_filter",
]
