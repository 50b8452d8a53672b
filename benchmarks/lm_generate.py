"""Sampling throughput: duetto's KV-cache sampler against transformers' `generate`, same weights.

The model is the TRL anchor's model B (shared/baselines/trl/README.md: Qwen2 shape, 4 layers,
hidden 256, 8 query / 4 key-value heads, intermediate 1024, vocabulary 32, untied head, random
weights); the batch is theirs too: 32 "a+b=" prompts x 8, 16 new tokens forced (no stop token),
temperature 1, float32, CPU.

Two processes, because transformers needs torch and duetto's venv has neither:

    /tmp/lm-bench/bin/python benchmarks/lm_generate.py transformers --model /tmp/lm-B
    .venv/bin/python benchmarks/lm_generate.py duetto --model /tmp/lm-B

(the first writes the model with save_pretrained if the directory does not exist; the venv is
benchmarks/lm_fixture.py's). Each prints the median tokens/s over --reps timed calls after one
warm-up call (compilation excluded for duetto, reported separately).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

BATCH, NEW_TOKENS = 256, 16


def prompts() -> list[str]:
    rng = random.Random(0)
    texts = [f"{rng.randrange(100)}+{rng.randrange(100)}=" for _ in range(BATCH // 8)]
    return [t for t in texts for _ in range(8)]


def run_transformers(model_dir: Path, reps: int) -> dict:
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    if not model_dir.exists():
        import lm_fixture  # the character tokenizer of the fixtures

        config = Qwen2Config(
            vocab_size=32, hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
            num_attention_heads=8, num_key_value_heads=4, head_dim=32, tie_word_embeddings=False,
            pad_token_id=0, eos_token_id=1, bos_token_id=2, use_sliding_window=False,
        )  # fmt: skip
        torch.manual_seed(0)
        Qwen2ForCausalLM(config).save_pretrained(model_dir)
        lm_fixture.char_tokenizer().save_pretrained(model_dir)
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast.from_pretrained(model_dir)
    model = Qwen2ForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    enc = tok(prompts(), return_tensors="pt", padding=True, padding_side="left")
    gc = GenerationConfig(
        max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=True, temperature=1.0,
        top_p=1.0, top_k=0, pad_token_id=0, eos_token_id=[1], disable_compile=True,
    )  # fmt: skip
    times = []
    for r in range(reps + 1):
        t = time.perf_counter()
        with torch.no_grad():
            model.generate(**enc, generation_config=gc)
        if r:
            times.append(time.perf_counter() - t)
    return {"threads": torch.get_num_threads(), "times_s": times}


def run_duetto(model_dir: Path, reps: int) -> dict:
    import jax

    from duetto.lm import load_pretrained, make_sampler, pad_left

    config, params, tok = load_pretrained(model_dir)
    ids, mask = pad_left([tok.encode(p) for p in prompts()], tok.pad_id)
    sample = make_sampler(config, NEW_TOKENS, temperature=1.0, pad_id=tok.pad_id)
    t = time.perf_counter()
    jax.block_until_ready(sample(params, ids, mask, jax.random.key(0)))
    first = time.perf_counter() - t
    times = []
    for r in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(sample(params, ids, mask, jax.random.key(r + 1)))
        times.append(time.perf_counter() - t)
    return {"first_call_s": first, "times_s": times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["transformers", "duetto"])
    parser.add_argument("--model", type=Path, default=Path("/tmp/lm-B"))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    run = run_transformers if args.which == "transformers" else run_duetto
    result = run(args.model, args.reps)
    median = statistics.median(result["times_s"])
    result.update(median_s=median, tokens_per_s=BATCH * NEW_TOKENS / median, which=args.which)
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
