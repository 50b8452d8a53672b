"""Write tests/fixtures/lm/tiny-qwen2/: a tiny random Qwen2ForCausalLM saved by `transformers`
(config.json, model.safetensors, tokenizer.json) and `reference.npz`, transformers' own logits on a
fixed left-padded batch and its greedy `generate` output, which tests/test_lm_model.py checks
duetto's loader, transformer and KV-cache sampler against without transformers.

transformers and torch are benchmark extras, never duetto's runtime dependencies; torch must be the
CPU wheel. Once, by hand, in a venv of their own:

    python3.11 -m venv /tmp/lm-bench
    /tmp/lm-bench/bin/pip install torch==2.13.0
    /tmp/lm-bench/bin/pip install transformers==5.25.0 torch==2.13.0 safetensors==0.8.0 \
        tokenizers==0.23.3 numpy
    /tmp/lm-bench/bin/python benchmarks/lm_fixture.py

The model is the TRL anchor's model A (shared/baselines/trl/README.md: character tokenizer over
<pad>=0, <eos>=1, <bos>=2, <unk>=3, digits, '+', '=' and 16 unused ids; head_dim 32) made smaller:
hidden 64, 2 layers, 4 query heads over 2 key/value heads (grouped-query attention), SwiGLU
intermediate 128, untied head. Weights are drawn with a larger standard deviation (0.2, not
Qwen2's 0.02) so that logits spread over several nats and a wrong rotary or attention detail
moves them visibly, and q/k/v biases and RMSNorm weights are drawn too (Qwen2 starts them at 0 and
1). `tiny-qwen2-tied/` covers the other branches: a tied head, rope theta 100, hidden 32 and 4 query
heads sharing one key/value head.

Fixture contents (`reference.npz`):
- `input_ids`, `attention_mask`, `position_ids` [4, 12]: left-padded prompts of different lengths
  (positions count valid tokens, as `generate` makes them: cumsum(mask) - 1, 1 on padding);
- `logits` [4, 12, 32] float32: `model(input_ids, attention_mask, position_ids).logits`;
- `prompt_ids`, `prompt_mask` [4, 6] and `greedy` [4, 10]: `generate(do_sample=False,
  max_new_tokens=10)` with <eos> as the stop token, padded with <pad> after it;
- `versions`: the transformers and torch versions that wrote it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import tokenizers
import torch
import transformers
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

ROOT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "lm"
SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]
CHARS = list("0123456789+=")
VOCAB = 32


def char_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {tok: i for i, tok in enumerate(SPECIALS + CHARS)}
    for i in range(len(vocab), VOCAB):
        vocab[f"<unused{i}>"] = i
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()  # characters join without spaces
    tok.add_special_tokens(SPECIALS)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        unk_token="<unk>",
    )


def make_model(tied: bool) -> Qwen2ForCausalLM:
    config = Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=32 if tied else 64,
        intermediate_size=64 if tied else 128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1 if tied else 2,
        head_dim=8 if tied else 16,
        max_position_embeddings=64,
        rms_norm_eps=1e-6,
        rope_theta=100.0 if tied else 10000.0,
        tie_word_embeddings=tied,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
        use_sliding_window=False,
        dtype="float32",
    )
    config.initializer_range = 0.2
    torch.manual_seed(1 if tied else 0)
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):  # Qwen2 initialises q/k/v biases to zero; make them matter
                p.normal_(0.0, 0.2)
            if "norm" in name:  # and RMSNorm weights to one
                p.uniform_(0.5, 1.5)
    return model


def batch(tok: PreTrainedTokenizerFast, texts: list[str]) -> dict[str, torch.Tensor]:
    enc = tok(texts, return_tensors="pt", padding=True, padding_side="left")
    mask = enc["attention_mask"]
    pos = mask.long().cumsum(-1) - 1
    pos.masked_fill_(mask == 0, 1)
    return {"input_ids": enc["input_ids"], "attention_mask": mask, "position_ids": pos}


def write(name: str, tied: bool) -> None:
    out = ROOT / name
    if out.exists():
        shutil.rmtree(out)
    tok = char_tokenizer()
    model = make_model(tied)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    full = batch(tok, ["12+7=19", "3+45=48+1=2", "7=", "99+99=198"])
    with torch.no_grad():
        logits = model(**full).logits.numpy().astype(np.float32)
    prompts = batch(tok, ["12+7=", "3+45=", "7", "99+99="])
    with torch.no_grad():
        gen = model.generate(
            input_ids=prompts["input_ids"],
            attention_mask=prompts["attention_mask"],
            do_sample=False,
            max_new_tokens=10,
            min_new_tokens=0,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    greedy = gen[:, prompts["input_ids"].shape[1] :].numpy()
    if greedy.shape[1] < 10:  # generate stops early when every row has hit <eos>
        greedy = np.pad(greedy, ((0, 0), (0, 10 - greedy.shape[1])), constant_values=0)
    np.savez(
        out / "reference.npz",
        input_ids=full["input_ids"].numpy(),
        attention_mask=full["attention_mask"].numpy(),
        position_ids=full["position_ids"].numpy(),
        logits=logits,
        prompt_ids=prompts["input_ids"].numpy(),
        prompt_mask=prompts["attention_mask"].numpy(),
        greedy=greedy,
        versions=np.array(
            json.dumps(
                {
                    "transformers": transformers.__version__,
                    "torch": torch.__version__,
                    "tokenizers": tokenizers.__version__,
                }
            )
        ),
    )
    n = sum(p.numel() for p in model.parameters())
    print(f"{name}: {n} parameters, logits std {logits.std():.2f}, greedy\n{greedy}")


def main() -> None:
    write("tiny-qwen2", tied=False)
    write("tiny-qwen2-tied", tied=True)


if __name__ == "__main__":
    main()
