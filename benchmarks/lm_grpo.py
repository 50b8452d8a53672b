"""GRPO on a token task from the supervised warm-up: pass@1 against updates and wall-clock.

    python benchmarks/lm_grpo.py --task addition --updates 200 --seeds 0,1,2 [--beta 0.04]
        [--lr 1e-4] [--out benchmarks/results/lm_grpo_addition.json]

Each seed warms up spec T1's tiny transformer (duetto.lm.tiny_transformer) on the task's noisy
demonstrations, then runs GRPO with the given options, evaluating pass@1 and pass@4 on 128
held-out prompts every --eval-every updates. Prints one line per evaluation and, with --out,
writes the curves as JSON (seconds: time in updates, compilation of the first included; the
warm-up and evaluations excluded).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from duetto.lm import GRPO


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="addition")
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--beta", type=float, default=0.04)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--lr-warmup", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    curves = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        agent = GRPO(
            args.task,
            seed=seed,
            run_dir=False,
            beta=args.beta,
            learning_rate=args.lr,
            lr_warmup=args.lr_warmup,
            eval_every=args.eval_every,
        )
        curve = [{"update": 0, "seconds": 0.0, **agent.evaluate()}]
        print(f"seed {seed}", curve[-1], flush=True)
        seconds = 0.0
        for update in range(1, args.updates + 1):
            t = time.perf_counter()
            agent.step()
            seconds += time.perf_counter() - t
            if update % args.eval_every == 0 or update == args.updates:
                row = {"update": update, "seconds": seconds}
                row.update(agent.evaluate())
                curve.append(row)
                print(f"seed {seed}", {k: round(v, 3) for k, v in row.items()}, flush=True)
        curves[seed] = curve
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps({"args": vars(args) | {"out": str(args.out)}, "curves": curves}, indent=1)
        )


if __name__ == "__main__":
    main()
