"""Shared test set-up: small networks so each test trains in seconds."""

import os

os.environ.setdefault("DUETTO_COMPILATION_CACHE", "0")  # every test compiles as a user would

import pytest  # noqa: E402

TINY = {"hidden": (32, 32), "batch_size": 32, "learning_starts": 64, "buffer_size": 2_000}


@pytest.fixture
def tiny() -> dict:
    return dict(TINY)
