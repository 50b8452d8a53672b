"""Tokenizers: a character vocabulary for synthetic tasks, and Hugging Face `tokenizer.json` files
read through the `tokenizers` package."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from duetto.errors import DuettoError


class Tokenizer(Protocol):
    """What duetto.lm needs of a tokenizer."""

    vocab_size: int
    pad_id: int
    eos_id: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


class CharTokenizer:
    """One token per character, after the special tokens <pad>=0, <eos>=1, <bos>=2.

    decode stops at the first <eos>, skips <pad>/<bos> and writes U+FFFD for an id past the
    vocabulary (a model with a larger vocabulary may sample one; no verifier accepts it).
    """

    SPECIALS = ("<pad>", "<eos>", "<bos>")

    def __init__(self, chars: str | Sequence[str]):
        chars = list(chars)
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise DuettoError(f"CharTokenizer needs distinct single characters, got {chars!r}")
        self.chars = chars
        self.pad_id, self.eos_id, self.bos_id = 0, 1, 2
        self.vocab_size = len(self.SPECIALS) + len(chars)
        self._ids = {c: i + len(self.SPECIALS) for i, c in enumerate(chars)}

    def encode(self, text: str) -> list[int]:
        try:
            return [self._ids[c] for c in text]
        except KeyError as e:
            raise DuettoError(
                f"character {e.args[0]!r} is not in the vocabulary {''.join(self.chars)!r}"
            ) from None

    def decode(self, ids: Sequence[int]) -> str:
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            j = i - len(self.SPECIALS)
            if 0 <= j < len(self.chars):
                out.append(self.chars[j])
            elif j >= len(self.chars):  # a larger model's id: no character of this vocabulary
                out.append("\ufffd")
        return "".join(out)


class HFTokenizer:
    """A Hugging Face fast tokenizer (`tokenizer.json`) with its special tokens resolved from
    `tokenizer_config.json` and `config.json` beside it."""

    def __init__(self, directory: str | Path):
        from tokenizers import Tokenizer as _Tokenizer

        directory = Path(directory)
        path = directory / "tokenizer.json"
        if not path.is_file():
            raise DuettoError(f"no tokenizer.json in {directory}")
        self.tokenizer = _Tokenizer.from_file(str(path))
        self.vocab_size = self.tokenizer.get_vocab_size(with_added_tokens=True)
        settings: dict = {}
        for name in ("config.json", "tokenizer_config.json"):
            if (directory / name).is_file():
                settings.update(json.loads((directory / name).read_text()))
        eos = self._special(settings, "eos")
        if eos is None:
            raise DuettoError(f"{directory}: no eos token in tokenizer_config.json or config.json")
        pad = self._special(settings, "pad")
        self.eos_id: int = eos
        self.pad_id: int = eos if pad is None else pad  # Llama checkpoints often have no pad

    def _special(self, settings: dict, name: str) -> int | None:
        token = settings.get(f"{name}_token")
        if isinstance(token, dict):  # older tokenizer_config.json: an AddedToken record
            token = token.get("content")
        if isinstance(token, str):
            i = self.tokenizer.token_to_id(token)
            if i is not None:
                return int(i)
        i = settings.get(f"{name}_token_id")
        if isinstance(i, list):
            i = i[0] if i else None
        return None if i is None else int(i)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int]) -> str:
        """Text up to the first <eos>, special tokens skipped; an id past the tokenizer's
        vocabulary (a model's embedding table is often padded beyond it) becomes U+FFFD, which
        `tokenizers` would drop silently."""
        ids = [int(i) for i in ids]
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        pieces: list[list[int]] = [[]]
        for i in ids:
            if i >= self.vocab_size:
                pieces.append([])
            else:
                pieces[-1].append(i)
        decoded = (self.tokenizer.decode(p, skip_special_tokens=True) for p in pieces)
        return "\ufffd".join(str(d) for d in decoded)
