"""cache_batch_variable and dynamic batchers stacked, in both orders (ours and batched's)."""

from __future__ import annotations

import asyncio
import random
import sys
import threading
from collections import Counter
from typing import Any

import pytest

from batche import cache_batch_variable, dynamically

from .conftest import in_threads

# batched 0.1.5 uses `X | None` at run time: it cannot be imported on Python 3.9
if sys.version_info < (3, 10):
    pytest.skip("batched 0.1.5 needs Python 3.10+", allow_module_level=True)
import batched


def overlapping_batches(seed: int, count: int, size: int, universe: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [rng.sample(range(universe), size) for _ in range(count)]


def run_threads(f: Any, workers: int = 8) -> set[int]:
    """Call ``f`` from several threads at once; check every answer; return the items asked."""
    plans = [overlapping_batches(n, 40, 12, 400) for n in range(workers)]

    def work(n: int) -> None:
        for batch in plans[n]:
            assert f(batch) == [i * 10 for i in batch]

    in_threads(workers, work)
    return {i for plan in plans for batch in plan for i in batch}


class Counting:
    """A batch function counting how often each item is computed."""

    def __init__(self) -> None:
        self.seen: Counter[int] = Counter()
        self.lock = threading.Lock()
        self.batches = 0

    def __call__(self, items: list[int]) -> list[int]:
        with self.lock:
            self.seen.update(items)
            self.batches += 1
        return [i * 10 for i in items]


def test_cache_over_our_batcher_computes_each_item_once() -> None:
    body = Counting()
    batcher = dynamically(batch_size=32, timeout_ms=1)(body)
    f = cache_batch_variable("items")(batcher)
    asked = run_threads(f)
    assert set(body.seen) == asked
    assert max(body.seen.values()) == 1
    assert batcher.stats.items == len(asked)
    # a call whose every item is cached never reaches the batcher
    before = batcher.stats.batches
    assert f(sorted(asked)[:50]) == [i * 10 for i in sorted(asked)[:50]]
    assert batcher.stats.batches == before
    batcher.close()


def test_our_batcher_over_the_cache() -> None:
    body = Counting()
    cached = cache_batch_variable("items")(body)
    f = dynamically(batch_size=32, timeout_ms=1)(cached)
    asked = run_threads(f)
    assert set(body.seen) == asked
    # batches of different callers meet in the cache: an item can be computed more than
    # once only if two batches holding it run at the same time (concurrency=1: never)
    assert max(body.seen.values()) == 1
    f.close()


def test_async_cache_over_our_batcher() -> None:
    body = Counting()

    @cache_batch_variable("items")
    @dynamically(batch_size=16, timeout_ms=1)
    async def f(items: list[int]) -> list[int]:
        await asyncio.sleep(0)
        return body(items)

    async def main() -> None:
        plans = overlapping_batches(7, 60, 10, 200)
        results = await asyncio.gather(*(f(batch) for batch in plans))
        assert results == [[i * 10 for i in batch] for batch in plans]
        assert set(body.seen) == {i for batch in plans for i in batch}
        assert max(body.seen.values()) == 1

    asyncio.run(main())


def test_cache_over_batched_dynamically() -> None:
    body = Counting()
    processor = batched.dynamically(body, batch_size=32, timeout_ms=1.0)
    f = cache_batch_variable("items")(processor)
    asked = run_threads(f)
    assert set(body.seen) == asked
    assert max(body.seen.values()) == 1


def test_batched_dynamically_over_the_cache() -> None:
    body = Counting()
    cached = cache_batch_variable("items")(body)
    f = batched.dynamically(cached, batch_size=32, timeout_ms=1.0)
    assert f([1, 2, 3]) == [10, 20, 30]
    assert f([3, 4]) == [30, 40]
    assert body.seen == Counter({1: 1, 2: 1, 3: 1, 4: 1})


@pytest.mark.parametrize("order", ["cache over batched.aio", "batched.aio over cache"])
def test_with_batched_aio(order: str) -> None:
    body = Counting()

    async def compute(items: list[int]) -> list[int]:
        await asyncio.sleep(0)
        return body(items)

    async def main() -> None:
        if order == "cache over batched.aio":
            f: Any = cache_batch_variable("items")(
                batched.aio.dynamically(compute, batch_size=16, timeout_ms=1.0)
            )
        else:
            f = batched.aio.dynamically(
                cache_batch_variable("items")(compute), batch_size=16, timeout_ms=1.0
            )
        plans = overlapping_batches(3, 30, 8, 100)
        results = await asyncio.gather(*(f(batch) for batch in plans))
        assert results == [[i * 10 for i in batch] for batch in plans]
        assert set(body.seen) == {i for batch in plans for i in batch}
        if order == "cache over batched.aio":
            assert max(body.seen.values()) == 1

    asyncio.run(main())
