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

import duetto  # noqa: E402

# As the CLI sets up a process, with one CPU device: runs split over several are the business
# of tests/test_devices.py, in processes of their own (and the format-1 fused checkpoint of
# tests/fixtures/v1 was trained on one).
duetto.configure(cpu_devices=1)


@pytest.fixture(scope="session", autouse=True)
def _session_cache():
    yield
    if _CACHE is not None:
        shutil.rmtree(_CACHE, ignore_errors=True)


TINY = {"hidden": (32, 32), "batch_size": 32, "learning_starts": 64, "buffer_size": 2_000}


@pytest.fixture
def tiny() -> dict:
    return dict(TINY)
