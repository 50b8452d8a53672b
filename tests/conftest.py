"""Shared test set-up: small networks so each test trains in seconds."""

import os
import shutil
import tempfile

# The caches on, as users have them (compiled and exported programs, loops/compiled.py), in a
# directory of this session's own: the first test of a program traces and compiles it as a new
# user would, later ones (subprocesses included) load it as a returning user would.
_CACHE = None
if "DUETTO_COMPILATION_CACHE" not in os.environ:
    _CACHE = os.environ["DUETTO_COMPILATION_CACHE"] = tempfile.mkdtemp(prefix="duetto-test-cache-")

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _session_cache():
    yield
    if _CACHE is not None:
        shutil.rmtree(_CACHE, ignore_errors=True)


TINY = {"hidden": (32, 32), "batch_size": 32, "learning_starts": 64, "buffer_size": 2_000}


@pytest.fixture
def tiny() -> dict:
    return dict(TINY)
