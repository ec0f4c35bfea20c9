"""Under CI every service the suite needs must be there: a missing one fails the run.

CI counts as set for ANY non-empty value of the CI variable (`true`, `1`, `yes`, …), since CI
systems spell it differently; only on a developer's machine does a missing service merely skip
the tests that need it.
"""
from __future__ import annotations

import os
from typing import NoReturn

import pytest


def ci_mode() -> bool:
    return bool(os.environ.get("CI"))


def unavailable(reason: str) -> NoReturn:
    """Stop the current test (or fixture) because something it needs is missing: a failure under
    CI, a skip elsewhere."""
    if ci_mode():
        pytest.fail(f"{reason} [CI is set, so this fails instead of skipping]", pytrace=False)
    pytest.skip(reason)
