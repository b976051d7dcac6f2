"""The public batchers: context managers, ``acall`` on a sync function, a queue per instance."""

from __future__ import annotations

import asyncio

import pytest

from batche import BatcherClosedError, dynamically

from ._batcher_helpers import Blocker


def test_context_manager_closes() -> None:
    with dynamically(batch_size=4)(lambda xs: [x + 1 for x in xs]) as f:
        assert f([1, 2]) == [2, 3]
    with pytest.raises(BatcherClosedError):
        f([3])


def test_acall_on_a_sync_function_does_not_block_the_loop() -> None:
    body = Blocker()
    f = dynamically(batch_size=4, timeout_ms=0)(body)

    async def main() -> None:
        call = asyncio.ensure_future(f.acall([1]))
        # the loop keeps running while the function blocks on a worker thread
        await asyncio.get_running_loop().run_in_executor(None, body.entered.wait, 30)
        body.release.set()
        assert await call == ["<1>"]
        assert await f.acall([2]) == ["<2>"]

    asyncio.run(main())
    f.close()


class Potential:
    """Several batched methods of one object, each instance with its own queues."""

    def __init__(self, name: str) -> None:
        self.name = name

    @dynamically(batch_size=8, timeout_ms=0)
    def score(self, contexts: list[str]) -> list[str]:
        return [f"{self.name}.score({c})" for c in contexts]

    @dynamically(batch_size=8, timeout_ms=0)
    async def prefix(self, contexts: list[str]) -> list[str]:
        return [f"{self.name}.prefix({c})" for c in contexts]


def test_methods_get_a_queue_per_instance() -> None:
    a, b = Potential("a"), Potential("b")
    assert a.score(["x"]) == ["a.score(x)"]
    assert b.score.one("y") == "b.score(y)"
    # like bound methods: a new one each time, equal, and sharing the instance's batcher
    assert a.score == a.score
    assert a.score != b.score
    assert a.score.stats is a.score.stats
    assert a.score.stats is not b.score.stats
    assert asyncio.run(a.prefix.one("z")) == "a.prefix(z)"
    assert a.score.stats.batches == 1


def test_async_close_and_context_manager() -> None:
    async def main() -> None:
        @dynamically(batch_size=4)
        async def f(xs: list[int]) -> list[int]:
            return [x * 3 for x in xs]

        async with f:
            assert await f([1, 2]) == [3, 6]
        with pytest.raises(BatcherClosedError):
            await f([3])

    asyncio.run(main())
