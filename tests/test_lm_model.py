"""duetto.lm's transformer, KV-cache sampler and Hugging Face loader against transformers.

tests/fixtures/lm/tiny-qwen2*/ were written by benchmarks/lm_fixture.py with transformers 5.25.0
(Qwen2ForCausalLM, save_pretrained): the checkpoint, and transformers' logits and greedy
generation on fixed left-padded batches. Logits must match to float32 rounding accumulated over two
layers: |duetto - transformers| <= 2e-5 on logits up to 4.7 in magnitude (measured 7.4e-6, about
15 float32 ulps). Greedy generation must match token for token.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from duetto.errors import DuettoError
from duetto.lm import (
    CharTokenizer,
    KVCache,
    Transformer,
    TransformerConfig,
    init_params,
    load_pretrained,
    make_sampler,
    pad_left,
    positions_from_mask,
    top_p_filter,
)

FIXTURES = Path(__file__).parent / "fixtures" / "lm"
MODELS = ["tiny-qwen2", "tiny-qwen2-tied"]
LOGIT_ATOL = 2e-5


# One small random model for the checks that need no checkpoint: each new shape is a compilation.
SMALL = TransformerConfig(
    vocab_size=8,
    hidden_size=16,
    num_heads=2,
    num_kv_heads=1,
    intermediate_size=32,
    value_head=True,
)


@functools.cache
def forward(config: TransformerConfig):
    """The model's apply, jitted once per config: op-by-op dispatch is slow on CPU."""
    return jax.jit(Transformer(config).apply)


@functools.cache
def small_params(seed: int = 0):
    return init_params(SMALL, jax.random.key(seed))


@pytest.fixture(scope="module", params=MODELS)
def pretrained(request):
    directory = FIXTURES / request.param
    config, params, tokenizer = load_pretrained(directory)
    return config, params, tokenizer, dict(np.load(directory / "reference.npz"))


def test_logits_match_transformers(pretrained):
    config, params, _, ref = pretrained
    mask = ref["attention_mask"].astype(bool)
    apply = forward(config)
    out = apply({"params": params}, ref["input_ids"], mask, ref["position_ids"])
    err = np.abs(np.asarray(out.logits) - ref["logits"])[mask]
    assert err.max() <= LOGIT_ATOL, err.max()
    # The default positions are generate's: count real tokens only.
    default = apply({"params": params}, ref["input_ids"], mask)
    np.testing.assert_array_equal(np.asarray(default.logits), np.asarray(out.logits))


def test_greedy_generation_matches_transformers(pretrained):
    config, params, tokenizer, ref = pretrained
    sample = make_sampler(
        config,
        ref["greedy"].shape[1],
        temperature=0.0,
        stop_tokens=[tokenizer.eos_id],
        pad_id=tokenizer.pad_id,
    )
    out = sample(params, ref["prompt_ids"], ref["prompt_mask"].astype(bool), jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(out.tokens), ref["greedy"])
    # The mask covers tokens up to and including the first <eos>, nothing after.
    is_eos = ref["greedy"] == tokenizer.eos_id
    first = np.where(is_eos.any(1), is_eos.argmax(1), ref["greedy"].shape[1] - 1)
    expected = np.arange(ref["greedy"].shape[1])[None] <= first[:, None]
    np.testing.assert_array_equal(np.asarray(out.mask), expected)


def test_tokenizer_reads_tokenizer_json(pretrained):
    _, _, tokenizer, ref = pretrained
    assert (tokenizer.pad_id, tokenizer.eos_id, tokenizer.vocab_size) == (0, 1, 32)
    ids = tokenizer.encode("12+7=")
    assert ids == [5, 6, 14, 11, 15]
    np.testing.assert_array_equal(ref["prompt_ids"][0, -5:], ids)
    assert tokenizer.decode(ids + [tokenizer.eos_id, 7]) == "12+7="
    assert tokenizer.decode([5, 40, 6]) == "1\ufffd2"  # an id past the vocabulary


def test_kv_cache_steps_equal_the_full_forward():
    """Prefill then one token at a time through the cache gives the logits of one full pass
    (on one checkpoint: the cache does not depend on the head or the head counts)."""
    config, params, _ = load_pretrained(FIXTURES / "tiny-qwen2-tied")
    ref = np.load(FIXTURES / "tiny-qwen2-tied" / "reference.npz")
    ids, mask = ref["input_ids"], ref["attention_mask"].astype(bool)
    apply = forward(config)
    full = apply({"params": params}, ids, mask).logits
    split = 5
    pos = positions_from_mask(mask)
    cache = KVCache.empty(config, ids.shape[0], ids.shape[1], jnp.asarray(mask))
    out = apply({"params": params}, ids[:, :split], mask[:, :split], pos[:, :split], cache, 0)
    pieces, cache = [out.logits], out.cache
    for t in range(split, ids.shape[1]):
        out = apply({"params": params}, ids[:, t : t + 1], None, pos[:, t : t + 1], cache, t)
        pieces.append(out.logits)
        cache = out.cache
    stepped = jnp.concatenate(pieces, axis=1)
    np.testing.assert_allclose(np.asarray(stepped)[mask], np.asarray(full)[mask], atol=2e-5)


def test_left_padding_does_not_change_a_row():
    """A prompt alone and the same prompt left-padded in a batch get the same logits."""
    apply, params = forward(SMALL), small_params()
    alone = apply({"params": params}, jnp.array([[3, 4, 5]]))
    ids, mask = pad_left([[3, 4, 5], [6, 7, 2, 1, 4, 3]], pad_id=0)
    batched = apply({"params": params}, ids, mask)
    np.testing.assert_allclose(batched.logits[0, 3:], alone.logits[0], atol=1e-5)
    np.testing.assert_allclose(batched.values[0, 3:], alone.values[0], atol=1e-5)


def test_sampler_log_probs_and_frequencies():
    """Returned log-probs are log softmax(logits / T) of the sampled tokens under a full forward
    over prompt + completion; first tokens follow softmax(logits / T) in frequency; tokens after a
    stop token are padding with mask 0."""
    params = jax.tree_util.tree_map(lambda x: 8 * x, small_params(1))  # spread the logits
    temperature = 1.5
    sample = make_sampler(SMALL, 6, temperature=temperature, stop_tokens=[1], pad_id=0)
    n = 1000
    prompt, pmask = pad_left([[2, 3], [4, 5, 6, 7]], pad_id=0)
    prompt, pmask = np.repeat(prompt, n, 0), np.repeat(pmask, n, 0)
    out = sample(params, prompt, pmask, jax.random.key(2))
    tokens, cmask = np.asarray(out.tokens), np.asarray(out.mask)
    assert (tokens[~cmask] == 0).all() and (~cmask).any() and cmask[:, 0].all()
    stopped = (tokens == 1) & cmask
    assert (stopped.sum(1) <= 1).all()
    after_stop = np.cumsum(stopped, 1) - stopped > 0
    assert not (cmask & after_stop).any()
    ids = np.concatenate([prompt, tokens], 1)
    mask = np.concatenate([pmask, cmask], 1)
    logits = forward(SMALL)({"params": params}, ids, mask).logits
    logp = np.asarray(jax.nn.log_softmax(logits[:, prompt.shape[1] - 1 : -1] / temperature))
    expected = np.take_along_axis(logp, tokens[..., None], -1)[..., 0]
    np.testing.assert_allclose(np.asarray(out.logprobs)[cmask], expected[cmask], atol=2e-5)
    assert (np.asarray(out.logprobs)[~cmask] == 0).all()
    for rows in (slice(0, n), slice(n, 2 * n)):
        probs = np.exp(logp[rows][0, 0])
        freq = np.bincount(tokens[rows, 0], minlength=SMALL.vocab_size) / n
        assert np.abs(freq - probs).max() < 4 * np.sqrt(probs.max() / n), (freq, probs)


def test_top_p_keeps_the_smallest_nucleus():
    logits = jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05], [0.05, 0.15, 0.3, 0.5]]))
    kept = np.isfinite(np.asarray(top_p_filter(logits, 0.7)))
    np.testing.assert_array_equal(kept, [[1, 1, 0, 0], [0, 0, 1, 1]])
    kept = np.isfinite(np.asarray(top_p_filter(logits, 0.81)))
    np.testing.assert_array_equal(kept, [[1, 1, 1, 0], [0, 1, 1, 1]])
    assert np.isfinite(np.asarray(top_p_filter(logits, 0.01))).sum() == 2  # the top token


def test_loader_adds_a_zero_value_head():
    config, params, _ = load_pretrained(FIXTURES / "tiny-qwen2", value_head=True)
    out = forward(config)({"params": params}, jnp.array([[5, 6, 14]]))
    np.testing.assert_array_equal(np.asarray(out.values), 0.0)


def _copy(tmp_path: Path, edit_config=None, drop: str | None = None) -> Path:
    target = tmp_path / "model"
    shutil.copytree(FIXTURES / "tiny-qwen2", target)
    if edit_config:
        path = target / "config.json"
        cfg = json.loads(path.read_text())
        edit_config(cfg)
        path.write_text(json.dumps(cfg))
    if drop:
        from safetensors.numpy import load_file, save_file

        tensors = load_file(target / "model.safetensors")
        del tensors[drop]
        save_file(tensors, target / "model.safetensors")
    return target


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.update(model_type="gpt2"), "model_type 'gpt2' is not supported"),
        (lambda c: c.update(use_sliding_window=True), "use_sliding_window"),
        (lambda c: c.update(rope_parameters={"rope_type": "yarn"}), "rope type 'yarn'"),
        (lambda c: c.update(num_hidden_layers=3), "lacks tensor 'layers.2."),
        (lambda c: c.update(num_hidden_layers=1), "does not use"),
        (lambda c: c.update(hidden_size=32), "has shape"),
    ],
)
def test_loader_rejects_what_it_cannot_compute(tmp_path, edit, message):
    with pytest.raises(DuettoError, match=message):
        load_pretrained(_copy(tmp_path, edit))


def test_loader_names_a_missing_tensor(tmp_path):
    with pytest.raises(DuettoError, match="lm_head.weight"):
        load_pretrained(_copy(tmp_path, drop="lm_head.weight"))
    with pytest.raises(DuettoError, match="no config.json"):
        load_pretrained(tmp_path)


def test_bad_configs_and_sampler_arguments_raise():
    with pytest.raises(DuettoError, match="multiple of num_kv_heads"):
        TransformerConfig(vocab_size=8, num_heads=4, num_kv_heads=3)
    with pytest.raises(DuettoError, match="top_p"):
        make_sampler(SMALL, 4, top_p=0.0)
    with pytest.raises(DuettoError, match="outside the vocabulary"):
        make_sampler(SMALL, 4, stop_tokens=[8])
    sample = make_sampler(SMALL, 2)
    params = small_params()
    ids, mask = np.array([[2, 3, 0]]), np.array([[1, 1, 0]], bool)
    with pytest.raises(DuettoError, match="left-padded"):
        sample(params, ids, mask, jax.random.key(0))


def test_char_tokenizer_round_trip():
    tok = CharTokenizer("0123456789+=")
    ids = tok.encode("12+7=19")
    assert min(ids) >= 3 and tok.decode(ids + [tok.eos_id] + ids) == "12+7=19"
    assert tok.decode([4, 40, 5]) == "1\ufffd2"  # an id past the vocabulary
    with pytest.raises(DuettoError, match="'x' is not in the vocabulary"):
        tok.encode("1x")


def test_logits_match_transformers_live(tmp_path):
    """The same check run live on a model made here, when transformers and torch are installed."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    hf_config = transformers.Qwen2Config(
        vocab_size=40,
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_key_value_heads=2,
        tie_word_embeddings=False,
        rope_theta=500.0,
        rms_norm_eps=1e-5,
        use_sliding_window=False,
    )
    hf_config.initializer_range = 0.2
    torch.manual_seed(0)
    model = transformers.Qwen2ForCausalLM(hf_config).eval()
    directory = tmp_path / "live"
    model.save_pretrained(directory)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(FIXTURES / "tiny-qwen2" / name, directory / name)
    config, params, _ = load_pretrained(directory)
    ids, mask = pad_left([[5, 6, 7, 8, 9], [10, 11], [12, 13, 14, 39]], pad_id=0)
    pos = np.asarray(positions_from_mask(mask))
    with torch.no_grad():
        expected = model(
            input_ids=torch.tensor(ids, dtype=torch.long),
            attention_mask=torch.tensor(mask, dtype=torch.long),
            position_ids=torch.tensor(pos, dtype=torch.long),
        ).logits.numpy()
    out = forward(config)({"params": params}, ids, mask)
    assert np.abs(np.asarray(out.logits) - expected)[mask].max() <= LOGIT_ATOL
