"""User-facing errors: each says what was wrong and what would be right."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class DuettoError(Exception):
    """Bad input or an unusable resource. The CLI prints the message alone and exits non-zero.

    `exit_code` is 2 for bad input (a usage error) and 1 for a failure found while running
    (for example NaN from an environment).
    """

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """' Did you mean 'x'?' for the closest option, or '' when none is close."""
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""
