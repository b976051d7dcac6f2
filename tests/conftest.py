"""Fixtures shared by the test files: a recorder of batches, a sync/async harness."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from batche import cache_batch_variable


class Recorder:
    """A batch function that keeps every batch it was called with."""

    def __init__(self, per_item: Callable[..., Any] = lambda item: f"<{item}>") -> None:
        self.per_item = per_item
        self.calls: list[list[Any]] = []

    def __call__(self, items: Any, *rest: Any) -> list[Any]:
        self.calls.append(list(items))
        return [self.per_item(item, *rest) for item in items]

    @property
    def items(self) -> list[Any]:
        """Every item the function was asked for, over all calls."""
        return [item for call in self.calls for item in call]


class Harness:
    """Builds a cached function as sync or async and calls it the same way in tests."""

    def __init__(self, kind: str, loop: asyncio.AbstractEventLoop | None) -> None:
        self.kind = kind
        self.loop = loop

    def decorate(self, recorder: Recorder, **options: Any) -> Any:
        """``recorder`` as a one-parameter batch function ``f(items)``, cached."""
        if self.kind == "sync":

            def f(items: list[Any]) -> list[Any]:
                return recorder(items)

        else:

            async def f(items: list[Any]) -> list[Any]:  # type: ignore[misc]
                await asyncio.sleep(0)
                return recorder(items)

        return cache_batch_variable(**options)(f)

    def run(self, result: Any) -> Any:
        """The value of a call: itself when sync, awaited on the harness loop when async."""
        if self.kind == "sync":
            return result
        assert self.loop is not None
        return self.loop.run_until_complete(result)


@pytest.fixture(params=["sync", "async"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    loop = asyncio.new_event_loop() if request.param == "async" else None
    try:
        yield Harness(request.param, loop)
    finally:
        if loop is not None:
            loop.close()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


class _AsyncioErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def no_asyncio_errors() -> Iterator[None]:
    """Fail a test during which asyncio logged an error ("Task exception was never
    retrieved", "Task was destroyed but it is pending"): they are logs, not warnings."""
    handler = _AsyncioErrors()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    messages = [record.getMessage() for record in handler.records]
    assert messages == [], f"asyncio logged errors: {messages}"
