"""Sequence models: decoder-only transformer policies, a KV-cache sampler, Hugging Face
checkpoints, verifiable token tasks and the losses of RL for language models."""

from duetto.lm.evaluation import evaluate, pass_at_k
from duetto.lm.grpo import GRPO, GRPOConfig, tiny_transformer
from duetto.lm.losses import PolicyLoss, group_advantages
from duetto.lm.model import (
    CompletionScores,
    KVCache,
    Output,
    Transformer,
    TransformerConfig,
    completion_logprobs,
    count_params,
    init_params,
    positions_from_mask,
)
from duetto.lm.pretrained import load_pretrained
from duetto.lm.sampler import Samples, make_sampler, pad_left, top_p_filter
from duetto.lm.supervised import WarmupConfig, warm_up
from duetto.lm.tasks import (
    TASKS,
    DecisionTokens,
    ModularAddition,
    Problem,
    Sorting,
    TokenTask,
    make_task,
)
from duetto.lm.tokenizer import CharTokenizer, HFTokenizer, Tokenizer

__all__ = [
    "GRPO",
    "TASKS",
    "CharTokenizer",
    "CompletionScores",
    "DecisionTokens",
    "GRPOConfig",
    "ModularAddition",
    "PolicyLoss",
    "Problem",
    "Sorting",
    "TokenTask",
    "WarmupConfig",
    "completion_logprobs",
    "evaluate",
    "group_advantages",
    "make_task",
    "pass_at_k",
    "tiny_transformer",
    "warm_up",
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
