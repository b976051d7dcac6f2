"""cache_batch_variable and dynamic batchers stacked, in both orders (ours and batched's)."""

from __future__ import annotations

import asyncio
import random
import sys
import threading
from collections import Counter
from typing import Any, ClassVar

import pytest

from batche import cache_batch_variable, dynamically

from .conftest import in_threads

# batched 0.1.5 uses `X | None` at run time: it cannot be imported on Python 3.9
needs_batched = pytest.mark.skipif(
    sys.version_info < (3, 10), reason="batched 0.1.5 needs Python 3.10+"
)
if sys.version_info >= (3, 10):
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


@needs_batched
def test_cache_over_batched_dynamically() -> None:
    body = Counting()
    processor = batched.dynamically(body, batch_size=32, timeout_ms=1.0)
    f = cache_batch_variable("items")(processor)
    asked = run_threads(f)
    assert set(body.seen) == asked
    assert max(body.seen.values()) == 1


@needs_batched
def test_batched_dynamically_over_the_cache() -> None:
    body = Counting()
    cached = cache_batch_variable("items")(body)
    f = batched.dynamically(cached, batch_size=32, timeout_ms=1.0)
    assert f([1, 2, 3]) == [10, 20, 30]
    assert f([3, 4]) == [30, 40]
    assert body.seen == Counter({1: 1, 2: 1, 3: 1, 4: 1})


@needs_batched
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


class Embedder:
    """The README's order on methods: the cache over the batcher, each instance its own."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.batches: list[list[str]] = []

    # batch_size is each instance's whole workload and the timeout a minute: a batch goes
    # only once every caller of that instance has queued, so it is one batch per instance
    @cache_batch_variable("texts")
    @dynamically(batch_size=16, timeout_ms=60_000)
    def embed(self, texts: list[str]) -> list[str]:
        self.batches.append(list(texts))
        return [f"{self.name}:{t}" for t in texts]

    @cache_batch_variable("texts")
    @dynamically(batch_size=16, timeout_ms=60_000)
    async def aembed(self, texts: list[str]) -> list[str]:
        self.batches.append(list(texts))
        await asyncio.sleep(0)
        return [f"{self.name}:{t}" for t in texts]


def texts_of(caller: int) -> list[str]:
    return [f"t{caller}", f"u{caller}"]  # 8 callers per instance, 16 distinct texts


def test_cache_over_our_batcher_on_methods_batches_each_instance_apart() -> None:
    a, b = Embedder("a"), Embedder("b")

    def work(n: int) -> None:
        obj = a if n % 2 else b
        assert obj.embed(texts_of(n)) == [f"{obj.name}:{t}" for t in texts_of(n)]

    in_threads(16, work)
    for obj, callers in ((a, range(1, 16, 2)), (b, range(0, 16, 2))):
        # one batch holding every caller's texts of this instance, and no other's
        assert len(obj.batches) == 1
        assert sorted(obj.batches[0]) == sorted(t for n in callers for t in texts_of(n))
    # hits come from the cache, per instance, without reaching the batcher
    assert a.embed(texts_of(1)) == ["a:t1", "a:u1"]
    assert b.embed(texts_of(2)) == ["b:t2", "b:u2"]
    assert (len(a.batches), len(b.batches)) == (1, 1)


def test_async_cache_over_our_batcher_on_methods_batches_each_instance_apart() -> None:
    a, b = Embedder("a"), Embedder("b")

    async def main() -> None:
        calls = [(a if n % 2 else b, n) for n in range(16)]
        results = await asyncio.gather(*(obj.aembed(texts_of(n)) for obj, n in calls))
        for (obj, n), got in zip(calls, results):
            assert got == [f"{obj.name}:{t}" for t in texts_of(n)]
        for obj, callers in ((a, range(1, 16, 2)), (b, range(0, 16, 2))):
            assert len(obj.batches) == 1
            assert sorted(obj.batches[0]) == sorted(t for n in callers for t in texts_of(n))
        assert await a.aembed(texts_of(3)) == ["a:t3", "a:u3"]  # a hit
        assert len(a.batches) == 1

    asyncio.run(main())


class Family:
    """A classmethod: each class is batched apart."""

    batches: ClassVar[list[tuple[str, list[int]]]] = []

    @classmethod
    @cache_batch_variable("items")
    @dynamically(batch_size=8, timeout_ms=60_000)
    def tag(cls, items: list[int]) -> list[str]:
        Family.batches.append((cls.__name__, list(items)))
        return [f"{cls.__name__}{i}" for i in items]


class Child(Family):
    pass


def test_cache_over_our_batcher_on_a_classmethod() -> None:
    def work(n: int) -> None:
        owner = Child if n % 2 else Family
        assert owner.tag([n, n + 100]) == [f"{owner.__name__}{n}", f"{owner.__name__}{n + 100}"]

    in_threads(8, work)
    by_class = sorted(Family.batches)
    assert [name for name, _ in by_class] == ["Child", "Family"]
    assert sorted(by_class[0][1]) == sorted(i for n in (1, 3, 5, 7) for i in (n, n + 100))
    assert sorted(by_class[1][1]) == sorted(i for n in (0, 2, 4, 6) for i in (n, n + 100))
