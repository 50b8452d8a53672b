"""Seconds per GRPO update at the TRL anchor's settings (shared/baselines/trl/README.md).

    python benchmarks/lm_grpo_speed.py [--model A|B] [--beta 0.04] [--updates 20]

Models A (2 layers, hidden 128, 4/2 heads, intermediate 512) and B (4 layers, hidden 256, 8/4
heads, intermediate 1024): Qwen2 shape, head_dim 32, vocabulary 32, untied head, random weights.
32 "a+b=" prompts x 8 completions per update (duetto's addition task: completions of up to 9
tokens with <eos>, TRL's of up to 8), temperature 1, float32, one gradient step per batch. Prints
the median over --updates timed updates after two untimed ones (compilation), split into sampling
(with rewards and advantages) and the compiled update.
"""

from __future__ import annotations

import argparse
import json
import statistics

from duetto.lm import GRPO, TransformerConfig, make_task

MODELS = {
    "A": dict(hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=512),
    "B": dict(hidden_size=256, num_layers=4, num_heads=8, num_kv_heads=4, intermediate_size=1024),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="A")
    parser.add_argument("--beta", type=float, default=0.0)
    parser.add_argument("--updates", type=int, default=20)
    args = parser.parse_args()
    config = TransformerConfig(vocab_size=32, head_dim=32, **MODELS[args.model])
    agent = GRPO(make_task("addition"), model=config, run_dir=False, beta=args.beta)
    for _ in range(2):
        agent.step()
    rows = [agent.step() for _ in range(args.updates)]
    total = [r["sample_seconds"] + r["train_seconds"] for r in rows]
    print(
        json.dumps(
            {
                "model": args.model,
                "beta": args.beta,
                "median_s": statistics.median(total),
                "sample_s": statistics.median(r["sample_seconds"] for r in rows),
                "train_s": statistics.median(r["train_seconds"] for r in rows),
                "min_s": min(total),
            }
        )
    )


if __name__ == "__main__":
    main()
