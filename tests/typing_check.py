"""Checked by ``mypy --strict`` in CI, never run: what type checkers see of the public API."""

from __future__ import annotations

from typing import assert_type

from batche import (
    AsyncCachedBatchFunction,
    CachedBatchFunction,
    CacheInfo,
    cache_batch_variable,
)


@cache_batch_variable(batch_variable_name="texts", maxsize=10)
def embed(texts: list[str], model: str = "small") -> list[list[float]]:
    return [[float(len(t))] for t in texts]


@cache_batch_variable
async def aembed(texts: list[str]) -> list[float]:
    return [float(len(t)) for t in texts]


embed_as_sync: CachedBatchFunction[..., list[list[float]]] = embed
assert_type(embed(["a"]), list[list[float]])
assert_type(embed(["a"], model="large"), list[list[float]])
assert_type(embed.cache_info(), CacheInfo)
aembed_as_async: AsyncCachedBatchFunction[..., list[float]] = aembed


async def use() -> None:
    assert_type(await aembed(["a"]), list[float])


# what the decorated function rejects, as the plain one would
embed(["a"], model=3)  # type: ignore[arg-type]
embed(["a"], "small", "extra")  # type: ignore[call-arg]
embed(texts=["a"], colour="red")  # type: ignore[call-arg]


# dynamically keeps the signature too
from batche import AsyncBatcher, SyncBatcher, dynamically  # noqa: E402


@dynamically(batch_size=8)
def lengths(texts: list[str]) -> list[int]:
    return [len(t) for t in texts]


@dynamically
async def alengths(texts: list[str]) -> list[int]:
    return [len(t) for t in texts]


assert_type(lengths(["a"]), list[int])
lengths_as_sync: SyncBatcher[..., list[int]] = lengths
alengths_as_async: AsyncBatcher[..., list[int]] = alengths


async def use_batcher() -> None:
    assert_type(await alengths(["a"]), list[int])


lengths(3)  # type: ignore[arg-type]


# the options for real APIs keep the types, on both decorators
from batche import BatchItemsError, RateLimit  # noqa: E402

limit = RateLimit(requests=3_000, cost=1_000_000, per=60.0)


@cache_batch_variable(
    "texts", isolate=(ValueError, KeyError), return_exceptions=True, cost=len,
    max_batch_size=2048, max_batch_cost=300_000, rate_limit=limit,
)  # fmt: skip
@dynamically(isolate=lambda exc: True, cost=len, max_batch_cost=300_000, rate_limit=limit)
async def guarded(texts: list[str]) -> list[int]:
    return [len(t) for t in texts]


async def use_guarded() -> None:
    assert_type(await guarded(["a"]), list[int])
    try:
        await guarded(["a"])
    except BatchItemsError as error:
        assert_type(error.errors, dict[int, BaseException])
        assert_type(error.results, list[object])


cache_batch_variable("texts", cost=3)  # type: ignore[call-overload]
