"""Decorated functions in an importable module: worker processes find them by name."""

from __future__ import annotations

import asyncio

from batche import cache_batch_variable, dynamically


@cache_batch_variable("texts")
def embed(texts: list[str]) -> list[int]:
    return [len(t) for t in texts]


@cache_batch_variable("texts")
async def aembed(texts: list[str]) -> list[int]:
    await asyncio.sleep(0)
    return [len(t) for t in texts]


def run_aembed(texts: list[str]) -> list[int]:
    """``aembed`` in a worker that unpickled it: a function's result, not a coroutine."""
    return asyncio.run(aembed(texts))


@dynamically(batch_size=8, timeout_ms=1)
def batched(texts: list[str]) -> list[int]:
    return [len(t) for t in texts]


@dynamically(batch_size=8, timeout_ms=1)
async def abatched(texts: list[str]) -> list[int]:
    await asyncio.sleep(0)
    return [len(t) for t in texts]


def run_abatched(texts: list[str]) -> list[int]:
    """``abatched`` in a worker: the coroutine run on a loop of the worker's own."""
    return asyncio.run(abatched(texts))


class Model:
    def __init__(self, scale: int) -> None:
        self.scale = scale

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and other.scale == self.scale

    def __hash__(self) -> int:
        return hash(self.scale)

    @cache_batch_variable("texts")
    def embed(self, texts: list[str]) -> list[int]:
        return [self.scale * len(t) for t in texts]

    @cache_batch_variable("texts")
    @staticmethod
    def plain(texts: list[str]) -> list[int]:
        return [-len(t) for t in texts]

    @dynamically(batch_size=8, timeout_ms=1)
    def score(self, texts: list[str]) -> list[int]:
        return [10 * self.scale + len(t) for t in texts]
