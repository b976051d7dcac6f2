"""What fault tests read off a call: how long it took, and what batche logged."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    """The call's value and its duration in seconds."""
    start = time.monotonic()
    value = call()
    return value, time.monotonic() - start


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The messages logged by batche."""
    return [r.getMessage() for r in caplog.records if r.name == "batche"]
