"""GRPO for sequence policies on a verifiable token task (DeepSeekMath, arXiv 2402.03300, §4).

One update:
1. draw P prompts (from the seed and the update index, or from a fixed pool that
   no-positive-resampling thins; a resumed run draws the same ones);
2. sample G completions of each with the KV-cache sampler under pi_old = the current policy;
3. score them with the task's verifier: rewards [P, G];
4. group advantages A_i (GRPO's z-score, or RLOO / Dr.GRPO / ScaleRL's batch scale), optionally
   refined per token by TEMPO's prefix tree; zero-variance groups, and the samples and tokens
   D^3S leaves out, masked out of the loss;
5. `epochs` gradient steps (DeepSeekMath's mu) on the PolicyLoss: PPO-clip or CISPO per token,
   k3 KL to the reference policy (the starting policy, frozen), aggregated per sequence, token,
   constant or prompt.

`GRPO(task, model=..., seed=0).learn(updates)` trains and writes a run directory
(duetto.runs: config.json, metrics.jsonl with "train" rows per update and "eval" rows of pass@k,
checkpoints/) from which `GRPO.resume(run_dir).learn(more)` continues exactly.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from duetto.errors import DuettoError
from duetto.lm.d3s import max_variance_mask, schedule, top_token_mask
from duetto.lm.evaluation import pass_at_k
from duetto.lm.losses import (
    Aggregation,
    Baseline,
    Objective,
    PolicyLoss,
    Scale,
    group_advantages,
    zero_variance_groups,
)
from duetto.lm.model import (
    CompletionScores,
    TransformerConfig,
    completion_logprobs,
    init_params,
)
from duetto.lm.sampler import make_sampler
from duetto.lm.supervised import WarmupConfig, warm_up
from duetto.lm.tasks import TokenTask, make_task
from duetto.lm.tempo import tempo_advantages
from duetto.runs.checkpoint import read_checkpoint, restore_state, save_checkpoint
from duetto.runs.logger import RunLogger
from duetto.runs.rundir import (
    check_new_run_dir,
    checkpoint_path,
    create_run_dir,
    default_run_dir,
    latest_checkpoint,
    read_json,
    truncate_metrics,
)


@dataclass(frozen=True)
class GRPOConfig:
    """GRPO's hyperparameters. Defaults: DeepSeekMath (clip 0.2, beta 0.04, per-sequence
    aggregation, mu 1) at the spec's small scale (G 8, lr 1e-4), with TRL's anchor batch of 32
    prompts (shared/baselines/trl/README.md)."""

    prompts_per_update: int = 32
    """P: prompts per update (TRL anchor: 32)."""
    group_size: int = 8
    """G: completions per prompt (spec §7.1 small scale: 8; DeepSeekMath: 64)."""
    learning_rate: float = 1e-4
    """Adam step size (spec §7.1 small scale: 1e-4 to 3e-4; DeepSeekMath: 1e-6 on 7B). Adam's
    first steps move every weight by about the step size: on the T1 policy warmed up for
    addition one update leaves a KL of 0.016 per token at 1e-4, 0.17 at 3e-4 (which lowers the
    reward), and 1e-3 collapses the policy."""
    lr_warmup: int = 0
    """Gradient steps over which the step size rises linearly from 0 (TRL's warmup_steps)."""
    epochs: int = 1
    """Gradient steps per batch of samples, DeepSeekMath's mu (1: pi_old = pi_theta)."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip (TRL's default max_grad_norm)."""
    temperature: float = 1.0
    """Sampling temperature; the loss's log-probs use the same (TRL)."""
    top_p: float = 1.0
    """Nucleus sampling mass (1: off)."""
    baseline: Baseline = "mean"
    """'mean' (GRPO) or 'leave_one_out' (RLOO)."""
    scale: Scale = "group"
    """Advantage scale: 'group' std (GRPO), 'batch' std (ScaleRL), 'none' (Dr.GRPO, RLOO)."""
    tempo: bool = False
    """TEMPO's prefix-tree advantage on top of the group advantage (spec §7.2)."""
    tempo_eta: float = 1.0
    """Weight of TEMPO's branch differences (spec §7.2's reconstruction: 1)."""
    d3s_sample_start: float = 1.0
    """D^3S sample level: the fraction of each group kept (its variance-maximising subset) at
    the start, rising to 1 over d3s_ramp (spec §7.3 example: 0.5; 1: off)."""
    d3s_token_start: float = 1.0
    """D^3S token level: the fraction of the batch's tokens kept (largest |A| x entropy) at the
    start, rising to 1 over d3s_ramp (spec §7.3 example: 0.3; 1: off)."""
    d3s_ramp: int = 100
    """Updates over which the D^3S fractions rise to 1 (spec: the first 50-70 % of training)."""
    prompt_pool: int = 0
    """A fixed training set of this many problems drawn from the seed (0: a fresh draw of
    problems every update, as from an endless task)."""
    npr_threshold: float | None = None
    """No-positive-resampling (ScaleRL): a pool prompt whose group pass rate reaches this is
    never drawn again (ScaleRL: 0.9; None: off). Needs prompt_pool."""
    filter_zero_variance: bool = False
    """Mask groups whose rewards are all equal out of the loss (DAPO, ScaleRL)."""
    objective: Objective = "clip"
    """'clip' (PPO-clip, GRPO) or 'cispo' (ScaleRL)."""
    clip_low: float = 0.2
    """Lower clip range of the ratio (DeepSeekMath 0.2)."""
    clip_high: float = 0.2
    """Upper clip range (DeepSeekMath 0.2; DAPO's clip-higher 0.28)."""
    beta: float = 0.04
    """k3 KL weight to the starting policy (DeepSeekMath 0.04; 0 drops the reference)."""
    aggregation: Aggregation = "sequence"
    """'sequence' (GRPO), 'token' (DAPO), 'constant' (Dr.GRPO), 'prompt' (ScaleRL)."""
    eval_every: int = 10
    """Updates between pass@k evaluations (0: only at the end)."""
    eval_prompts: int = 128
    """Held-out prompts per evaluation (a fixed set, drawn from the seed)."""
    eval_samples: int = 4
    """Completions per evaluation prompt, for pass@1 and pass@{eval_samples}."""
    checkpoint_every: int = 0
    """Updates between checkpoints (0: only at the end of learn)."""

    def __post_init__(self) -> None:
        for name in ("prompts_per_update", "group_size", "epochs", "eval_prompts", "eval_samples"):
            if getattr(self, name) < 1:
                raise DuettoError(f"GRPOConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.group_size < 2:
            raise DuettoError("GRPO needs group_size >= 2: advantages compare a prompt's samples")
        for name in ("d3s_sample_start", "d3s_token_start"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise DuettoError(f"GRPOConfig.{name} must be in (0, 1], got {getattr(self, name)}")
        if self.prompt_pool < 0:
            raise DuettoError(f"GRPOConfig.prompt_pool must be >= 0, got {self.prompt_pool}")
        if self.npr_threshold is not None and not self.prompt_pool:
            raise DuettoError("npr_threshold retires prompts of a pool: give prompt_pool > 0")
        if self.d3s_ramp < 1:
            raise DuettoError(f"GRPOConfig.d3s_ramp must be >= 1, got {self.d3s_ramp}")
        self.policy_loss()  # validates objective, aggregation and ranges

    def policy_loss(self) -> PolicyLoss:
        return PolicyLoss(
            objective=self.objective,
            clip_low=self.clip_low,
            clip_high=self.clip_high,
            beta=self.beta,
            aggregation=self.aggregation,
        )


class GRPOState(NamedTuple):
    """Everything a resumed run needs: the policy, Adam's moments, the frozen reference, the
    update counter (problems and keys are derived from the seed and the counter)."""

    params: Any
    opt_state: Any
    ref_params: Any
    update: Any


def tiny_transformer(vocab_size: int) -> TransformerConfig:
    """Spec T1's policy: 2 layers, width 64, 4 heads (2 key/value heads), ~0.08 M parameters."""
    return TransformerConfig(vocab_size=vocab_size)


def grpo_optimizer(config: GRPOConfig) -> optax.GradientTransformation:
    """Adam after a global-norm clip of the gradient, with an optional linear warm-up."""
    lr: float | optax.Schedule = config.learning_rate
    if config.lr_warmup:
        lr = optax.linear_schedule(0.0, config.learning_rate, config.lr_warmup)
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(lr))


def _program_key(c: GRPOConfig) -> GRPOConfig:
    """The config with the fields the compiled update does not read set to their defaults, so
    that runs differing only in those (evaluation, sampling, advantages) share one program."""
    defaults = GRPOConfig()
    unread = (
        "prompts_per_update", "top_p", "baseline", "scale", "tempo", "tempo_eta",
        "filter_zero_variance", "eval_every", "eval_prompts", "eval_samples", "checkpoint_every",
        "d3s_sample_start", "d3s_ramp", "prompt_pool", "npr_threshold",
    )  # fmt: skip
    kept = dataclasses.replace(c, **{name: getattr(defaults, name) for name in unread})
    # the token fraction is an input of the program; only whether it selects matters
    token_start = 0.5 if c.d3s_token_start < 1.0 else 1.0
    return dataclasses.replace(kept, temperature=c.temperature or 1.0, d3s_token_start=token_start)


@functools.cache
def _train_program(model: TransformerConfig, c: GRPOConfig) -> Callable:
    """The compiled update `train(state, batch) -> (state, metrics)`: reference and behaviour
    log-probs, then `epochs` gradient steps on the PolicyLoss. One per (model, config), so a
    resumed run in the same process reuses it."""
    loss_fn = c.policy_loss()
    optimizer = grpo_optimizer(c)
    temperature = c.temperature  # greedy runs (0) score under the untempered policy: 1

    def scores(params: Any, batch: dict) -> CompletionScores:
        return completion_logprobs(
            model,
            params,
            batch["prompt"],
            batch["prompt_mask"],
            batch["completion"],
            batch["mask"],
            temperature,
        )

    def loss(params: Any, batch: dict) -> tuple[jax.Array, dict]:
        logp = scores(params, batch).logprobs
        old = batch["old_logp"] if "old_logp" in batch else jax.lax.stop_gradient(logp)
        return loss_fn(
            logp, old, batch["advantages"], batch["mask"], batch.get("ref_logp"), c.group_size
        )

    def train(state: GRPOState, batch: dict) -> tuple[GRPOState, dict]:
        if c.beta > 0:
            batch = {**batch, "ref_logp": scores(state.ref_params, batch).logprobs}
        if c.epochs > 1 or c.d3s_token_start < 1.0:
            behaviour = scores(state.params, batch)
            batch = {**batch, "old_logp": behaviour.logprobs}
            if c.d3s_token_start < 1.0:  # D^3S: tokens of largest |A| x H under pi_old
                batch["mask"] = top_token_mask(
                    batch["advantages"], behaviour.entropy, batch["mask"], batch["token_fraction"]
                )
        tokens = jnp.sum(batch["mask"])

        def epoch(carry: tuple, _: None) -> tuple[tuple, dict]:
            params, opt_state = carry
            (value, metrics), grads = jax.value_and_grad(loss, has_aux=True)(params, batch)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            metrics = {
                **metrics,
                "loss": value,
                "grad_norm": optax.tree.norm(grads),
                "tokens": tokens,
            }
            return (optax.apply_updates(params, updates), opt_state), metrics

        (params, opt_state), metrics = jax.lax.scan(
            epoch, (state.params, state.opt_state), None, length=c.epochs
        )
        metrics = jax.tree.map(lambda x: x[-1], metrics)
        return GRPOState(params, opt_state, state.ref_params, state.update + 1), metrics

    return jax.jit(train, donate_argnums=0)


class GRPO:
    """GRPO on a token task: `GRPO("addition", seed=0).learn(100)`.

    task: a TokenTask or a task name. model: None (spec T1's tiny transformer, warmed up on the
    task's noisy demonstrations), a TransformerConfig (random start) or (config, params).
    run_dir: None (runs/grpo-<task>-s<seed>-<time>), a path, or False (no files).
    """

    algo = "grpo"

    def __init__(
        self,
        task: TokenTask | str,
        model: TransformerConfig | tuple[TransformerConfig, Any] | None = None,
        seed: int = 0,
        run_dir: str | Path | Literal[False] | None = None,
        warmup: WarmupConfig | None = None,
        tensorboard: bool = False,
        **hyperparameters: Any,
    ):
        self.task = make_task(task) if isinstance(task, str) else task
        names = {f.name for f in dataclasses.fields(GRPOConfig)}
        unknown = sorted(set(hyperparameters) - names)
        if unknown:
            raise DuettoError(f"unknown GRPO hyperparameters {unknown}; known: {sorted(names)}")
        self.config = GRPOConfig(**hyperparameters)
        self.seed = seed
        path = None
        if run_dir is not False:  # refuse an existing run before minutes of warm-up
            path = Path(run_dir) if run_dir else default_run_dir("grpo", self.task.name, seed)
            check_new_run_dir(path)
        self.warmup = None
        if model is None:
            self.model = tiny_transformer(self.task.tokenizer.vocab_size)
            self.warmup = warmup or WarmupConfig()
            params, _ = warm_up(self.task, self.model, self.warmup, seed=seed)
        elif isinstance(model, TransformerConfig):
            self.model, params = model, init_params(model, jax.random.key(seed))
        else:
            self.model, params = model
        if self.model.vocab_size < self.task.tokenizer.vocab_size:
            raise DuettoError(
                f"the model's vocabulary ({self.model.vocab_size}) is smaller than the task's "
                f"({self.task.tokenizer.vocab_size})"
            )
        self.optimizer = grpo_optimizer(self.config)
        # The state owns its buffers (updates donate them): the caller's params stay valid.
        params = jax.tree.map(jnp.copy, params)
        reference = jax.tree.map(jnp.copy, params)
        self.state = GRPOState(
            params, self.optimizer.init(params), reference, jnp.zeros((), jnp.int32)
        )
        self.run_dir: Path | None = None
        self._tensorboard = tensorboard
        self.history: list[dict[str, Any]] = []
        self._make_pool()
        if path is not None:
            self.run_dir = create_run_dir(path, self._run_config())
        self._build()

    # ---- the compiled pieces -------------------------------------------------------------

    def _build(self) -> None:
        c, task = self.config, self.task
        self._sample = make_sampler(
            self.model,
            task.max_new_tokens,
            temperature=c.temperature,
            top_p=c.top_p,
            stop_tokens=[task.tokenizer.eos_id],
            pad_id=task.tokenizer.pad_id,
        )
        self._eval_sample = make_sampler(
            self.model,
            task.max_new_tokens,
            temperature=1.0,
            stop_tokens=[task.tokenizer.eos_id],
            pad_id=task.tokenizer.pad_id,
        )
        self._train = _train_program(self.model, _program_key(c))

    # ---- one update ----------------------------------------------------------------------

    def _make_pool(self) -> None:
        """The training set (with prompt_pool) and each prompt's last group pass rate (NaN:
        not drawn yet), which no-positive-resampling reads and checkpoints keep."""
        n = self.config.prompt_pool
        rng = np.random.default_rng([self.seed, 2**31 - 2])
        self.pool = self.task.problems(rng, n) if n else []
        self.pass_rate = np.full(n, np.nan, np.float32)

    def _problems(self, update: int) -> tuple[list, np.ndarray]:
        """This update's problems and their pool indices (empty without a pool)."""
        c = self.config
        rng = np.random.default_rng([self.seed, update])
        if not c.prompt_pool:
            return self.task.problems(rng, c.prompts_per_update), np.zeros(0, np.int64)
        retired = self.pass_rate >= (np.inf if c.npr_threshold is None else c.npr_threshold)
        active = np.flatnonzero(~retired)
        if len(active) == 0:
            raise DuettoError(
                f"no-positive-resampling has retired all {c.prompt_pool} prompts of the pool "
                f"(each reached a pass rate of {c.npr_threshold}): the task is learned"
            )
        index = rng.choice(active, c.prompts_per_update, replace=len(active) < c.prompts_per_update)
        return [self.pool[i] for i in index], index

    def step(self) -> dict[str, float]:
        """One GRPO update; returns its metrics."""
        c, task = self.config, self.task
        update = int(self.state.update)
        t0 = time.perf_counter()
        problems, pool_index = self._problems(update)
        prompt, prompt_mask = task.encode_prompts(problems)
        prompt = np.repeat(prompt, c.group_size, 0)
        prompt_mask = np.repeat(prompt_mask, c.group_size, 0)
        key = jax.random.fold_in(jax.random.key(self.seed), update)
        samples = self._sample(self.state.params, prompt, prompt_mask, key)
        completion, mask = np.asarray(samples.tokens), np.asarray(samples.mask)
        repeated = [p for p in problems for _ in range(c.group_size)]
        rewards = task.rewards(repeated, completion).reshape(c.prompts_per_update, c.group_size)
        advantages = np.asarray(
            group_advantages(jnp.asarray(rewards), baseline=c.baseline, scale=c.scale)
        )
        if c.prompt_pool:
            self.pass_rate[pool_index] = rewards.mean(1)
        flat = np.asarray(zero_variance_groups(jnp.asarray(rewards)))
        if c.filter_zero_variance:
            mask = mask & ~np.repeat(flat, c.group_size)[:, None]
        progress = update / c.d3s_ramp
        if c.d3s_sample_start < 1.0:  # D^3S: each group's variance-maximising subset
            fraction = schedule(progress, c.d3s_sample_start, ramp=1.0)
            k = max(1, int(np.ceil(fraction * c.group_size)))
            kept = np.asarray(max_variance_mask(jnp.asarray(advantages), k)).reshape(-1)
            mask = mask & kept[:, None]
        t1 = time.perf_counter()
        if c.tempo:  # token advantages [B, T]
            shape = (c.prompts_per_update, c.group_size, -1)
            # the tree of every sample, whatever the loss keeps of them
            sampled = np.asarray(samples.mask).reshape(shape)
            advantages = tempo_advantages(
                completion.reshape(shape), sampled, advantages, c.tempo_eta
            ).reshape(len(completion), -1)
        else:
            advantages = advantages.reshape(-1)
        batch: dict[str, Any] = {
            "prompt": prompt,
            "prompt_mask": prompt_mask,
            "completion": completion,
            "mask": mask,
            "advantages": advantages.astype(np.float32),
        }
        if c.d3s_token_start < 1.0:
            batch["token_fraction"] = np.float32(schedule(progress, c.d3s_token_start, ramp=1.0))
        self.state, metrics = self._train(self.state, batch)
        out = {k: float(v) for k, v in metrics.items()}
        t2 = time.perf_counter()
        out.update(
            reward=float(rewards.mean()),
            zero_variance=float(flat.mean()),
            completion_tokens=float(np.asarray(samples.mask).sum(1).mean()),
            sample_seconds=t1 - t0,
            train_seconds=t2 - t1,
        )
        if c.npr_threshold is not None:
            out["retired_prompts"] = float(np.sum(self.pass_rate >= c.npr_threshold))
        return out

    # ---- evaluation, learning, checkpoints ------------------------------------------------

    def evaluate(self) -> dict[str, float]:
        """pass@1 and pass@{eval_samples} on the run's fixed held-out prompts, sampling at T=1."""
        c, task = self.config, self.task
        problems = task.problems(np.random.default_rng([self.seed, 2**31 - 1]), c.eval_prompts)
        prompt, prompt_mask = task.encode_prompts(problems)
        prompt = np.repeat(prompt, c.eval_samples, 0)
        prompt_mask = np.repeat(prompt_mask, c.eval_samples, 0)
        key = jax.random.fold_in(jax.random.key(self.seed + 1), int(self.state.update))
        tokens = np.asarray(self._eval_sample(self.state.params, prompt, prompt_mask, key).tokens)
        repeated = [p for p in problems for _ in range(c.eval_samples)]
        correct = (task.rewards(repeated, tokens) > 0).reshape(c.eval_prompts, c.eval_samples)
        counts = correct.sum(1)
        ks = sorted({1, c.eval_samples})
        return {
            f"pass@{k}": float(np.mean([pass_at_k(c.eval_samples, int(n), k) for n in counts]))
            for k in ks
        }

    def learn(self, updates: int) -> GRPO:
        """Run `updates` more GRPO updates, evaluating at the start of a run, every eval_every
        updates and at the end. Every row also goes to `self.history` (and to the run
        directory's metrics.jsonl when there is one)."""
        if updates < 0:
            raise DuettoError(f"updates must be >= 0, got {updates}")
        logger = RunLogger(self.run_dir, self._tensorboard) if self.run_dir else None

        def log(kind: str, step: int, values: dict[str, float]) -> None:
            self.history.append({"kind": kind, "step": step, **values})
            if logger:
                logger.log(kind, step, values)

        try:
            start = int(self.state.update)
            if start == 0:
                log("eval", 0, self.evaluate())
            for _ in range(updates):
                metrics = self.step()
                update = int(self.state.update)
                log("train", update, metrics)
                every = self.config.eval_every
                if update == start + updates or (every and update % every == 0):
                    log("eval", update, self.evaluate())
                every = self.config.checkpoint_every
                if self.run_dir and every and update % every == 0:
                    self.save()
            if self.run_dir and updates:
                self.save()
        finally:
            if logger:
                logger.close()
        return self

    def _run_config(self) -> dict[str, Any]:
        return {
            "algorithm": self.algo,
            "task": self.task.name,
            "seed": self.seed,
            "model": dataclasses.asdict(self.model),
            "warmup": None if self.warmup is None else dataclasses.asdict(self.warmup),
            "hyperparameters": dataclasses.asdict(self.config),
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Write a checkpoint (the run directory's checkpoints/ by default); the task is pickled
        with it, so resume needs nothing else."""
        if path is None:
            if self.run_dir is None:
                raise DuettoError("this GRPO has no run directory; give save() a path")
            path = checkpoint_path(self.run_dir, int(self.state.update))
        meta = {"algorithm": self.algo, **self._run_config(), "update": int(self.state.update)}
        state = {"grpo": self.state, "pass_rate": self.pass_rate}
        save_checkpoint(Path(path), meta, state, [self.task])
        return Path(path)

    @classmethod
    def resume(cls, run_dir: str | Path) -> GRPO:
        """The run in `run_dir` at its latest checkpoint; learn() continues it and appends to its
        metrics (rows after the checkpoint are dropped first: they will be logged again). The
        state, and so every later update, is bit for bit the uninterrupted run's; the metrics
        differ only by the evaluation that ends each learn() call."""
        run_dir = Path(run_dir)
        path = latest_checkpoint(run_dir)
        meta, arrays, objects = read_checkpoint(path)
        if meta.get("algorithm") != cls.algo:
            raise DuettoError(f"'{path}' is a {meta.get('algorithm')!r} checkpoint, not GRPO's")
        config = read_json(run_dir / "config.json")
        model = TransformerConfig(**meta["model"])
        self = cls.__new__(cls)
        self.task = objects[0]
        self.config = GRPOConfig(**config["hyperparameters"])
        self.seed = int(meta["seed"])
        self.model = model
        self.warmup = None if config.get("warmup") is None else WarmupConfig(**config["warmup"])
        self.optimizer = grpo_optimizer(self.config)
        template_params = jax.eval_shape(lambda: init_params(model, jax.random.key(0)))
        template = GRPOState(
            template_params,
            jax.eval_shape(self.optimizer.init, template_params),
            template_params,
            jax.ShapeDtypeStruct((), jnp.int32),
        )
        self.history = []
        self._make_pool()
        pass_rate = jax.ShapeDtypeStruct(self.pass_rate.shape, jnp.float32)
        restored = restore_state(path, arrays, {"grpo": template, "pass_rate": pass_rate})
        self.state, self.pass_rate = restored["grpo"], np.array(restored["pass_rate"])
        self.run_dir = run_dir
        self._tensorboard = False
        truncate_metrics(run_dir, int(meta["update"]))
        self._build()
        return self
