"""The event-loop driver: tasks share batches; errors, cancellation, the loop ending, and
max_queue with asyncio callers."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from batche import BatcherClosedError, dynamically


def test_concurrent_tasks_share_batches() -> None:
    batches: list[list[int]] = []

    @dynamically(batch_size=64, timeout_ms=5)
    async def f(xs: list[int]) -> list[int]:
        batches.append(list(xs))
        return [x + 1 for x in xs]

    async def main() -> list[int]:
        return list(await asyncio.gather(*(f.one(i) for i in range(100))))

    assert asyncio.run(main()) == [i + 1 for i in range(100)]
    assert [len(b) for b in batches] == [64, 36]
    # a second event loop, after the first one is gone
    assert asyncio.run(main()) == [i + 1 for i in range(100)]
    assert f.stats.batches == 4


def test_async_error_reaches_only_its_batch() -> None:
    @dynamically(batch_size=2, timeout_ms=0)
    async def f(xs: list[str]) -> list[str]:
        if "bad" in xs:
            raise KeyError("bad")
        return [x.upper() for x in xs]

    async def main() -> list[Any]:
        return list(
            await asyncio.gather(f(["bad"]), f(["x"]), f(["y"]), f(["z"]), return_exceptions=True)
        )

    first, second, third, fourth = asyncio.run(main())
    assert isinstance(first, KeyError)
    assert isinstance(second, KeyError)
    assert third == ["Y"]
    assert fourth == ["Z"]


def gated(
    transform: Any, **options: Any
) -> tuple[Any, list[list[Any]], asyncio.Event, asyncio.Event]:
    """An async batcher whose first batch waits for ``release``; it records its batches.
    Call it inside the running loop (the events belong to it)."""
    entered, release = asyncio.Event(), asyncio.Event()
    batches: list[list[Any]] = []

    @dynamically(batch_size=8, timeout_ms=0, **options)
    async def f(xs: list[Any]) -> list[Any]:
        batches.append(list(xs))
        if len(batches) == 1:
            entered.set()
            await release.wait()
        return [transform(x) for x in xs]

    return f, batches, entered, release


def test_a_cancelled_callers_items_are_not_sent() -> None:
    async def main() -> None:
        f, batches, entered, release = gated(lambda x: x)
        first = asyncio.create_task(f(["first"]))
        await entered.wait()
        leaving = asyncio.create_task(f(["gone"]))
        staying = asyncio.create_task(f(["kept"]))
        await asyncio.sleep(0)  # one turn: both are queued (a turn of the loop, not a delay)
        leaving.cancel()
        release.set()
        assert await first == ["first"]
        assert await staying == ["kept"]
        with pytest.raises(asyncio.CancelledError):
            await leaving
        assert batches == [["first"], ["kept"]]
        await f.aclose()

    asyncio.run(main())


def test_cancelling_a_one_future_withdraws_the_item() -> None:
    async def main() -> None:
        f, batches, entered, release = gated(lambda x: x * 2)
        first = f.one("a")
        await entered.wait()
        withdrawn = f.one("b")
        kept = f.one("c")
        withdrawn.cancel()  # type: ignore[attr-defined]
        release.set()
        assert await first == "aa"
        assert await kept == "cc"
        assert batches == [["a"], ["c"]]
        with pytest.raises(TypeError):  # errors come through the future too
            await f.one({})
        await f.aclose()

    asyncio.run(main())


def test_asyncio_run_ending_fails_queued_requests_clearly() -> None:
    @dynamically(batch_size=8, timeout_ms=60_000)
    async def f(xs: list[int]) -> list[int]:
        return xs

    outcome: dict[str, BaseException] = {}

    async def main() -> None:
        task = asyncio.ensure_future(f.one(1))  # waits up to a minute for company

        def record(done: asyncio.Future[Any]) -> None:
            if not done.cancelled() and done.exception() is not None:
                outcome["error"] = done.exception()  # type: ignore[assignment]

        task.add_done_callback(record)
        # returning leaves the request queued; asyncio.run cancels what is pending

    asyncio.run(main())
    # the caller was not left waiting: it was cancelled, or failed with a clear error
    if "error" in outcome:
        assert isinstance(outcome["error"], BatcherClosedError)


def test_max_queue_holds_async_callers_back() -> None:
    async def main() -> None:
        f, batches, entered, release = gated(lambda x: x * 10, max_queue=2)
        first = asyncio.ensure_future(f([1]))
        await entered.wait()
        second = asyncio.ensure_future(f([2, 3]))
        await asyncio.sleep(0)  # a turn of the loop: the second caller fills the queue
        third = asyncio.ensure_future(f.one(4))  # the queue is full: it waits for room
        await asyncio.sleep(0)
        assert f._driver().queue.queued == 2
        release.set()
        assert await first == [10]
        assert await second == [20, 30]
        assert await third == 40
        assert batches == [[1], [2, 3], [4]]
        await f.aclose()

    asyncio.run(main())


class Halt(BaseException):
    """Not an Exception (as KeyboardInterrupt is not), and not a cancellation."""


def test_a_base_exception_reaches_its_callers_and_leaves_no_task_unretrieved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raising = [True]

    @dynamically(batch_size=8, timeout_ms=0)
    async def f(xs: list[int]) -> list[int]:
        if raising[0]:
            raise Halt("stop")
        return xs

    reported: list[dict[str, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _, context: reported.append(context))
        outcomes = await asyncio.gather(f([1]), f.one(2), f([3, 4]), return_exceptions=True)
        assert [type(o) for o in outcomes] == [Halt, Halt, Halt]
        raising[0] = False
        assert await f([5]) == [5]  # the dispatcher goes on

    for _ in range(3):  # several loops: each one's batch tasks are collected with it
        raising[0] = True
        asyncio.run(main())
    gc.collect()  # a task never retrieved is reported when it is collected
    assert reported == []
    assert "never retrieved" not in caplog.text
