"""How a test treats a real part (PostgreSQL, Azurite) that is missing:
skip with the reason locally, fail when CI=true."""

from __future__ import annotations

import os

import pytest

CI = os.environ.get("CI") == "true"


def need(reason: str) -> None:
    if CI:
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)
