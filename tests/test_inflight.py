"""In-flight dedup: concurrent callers compute each missing item once between them."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from typing import Any

import pytest

from batche import cache_batch_variable

from ._counted import Counted
from .conftest import in_threads

# -- threads ------------------------------------------------------------------------------


def test_sixteen_threads_compute_each_distinct_item_once() -> None:
    seen: Counter[int] = Counter()
    guard = threading.Lock()

    @cache_batch_variable("items")
    def f(items: list[int]) -> list[int]:
        with guard:
            seen.update(items)
        return [i * 2 for i in items]

    plans = [[random.Random(n).sample(range(5_000), 40) for _ in range(60)] for n in range(16)]
    asked = {i for plan in plans for batch in plan for i in batch}

    def worker(n: int) -> None:
        for batch in plans[n]:
            assert f(batch) == [i * 2 for i in batch]

    in_threads(16, worker)
    assert set(seen) == asked
    assert max(seen.values()) == 1  # every distinct item computed exactly once
    info = f.cache_info()
    assert info.misses == len(asked)
    assert info.hits + info.misses == 16 * 60 * 40


class Gate:
    """A batch function that blocks on chosen items until released, recording its calls."""

    def __init__(self, block_on: str) -> None:
        self.block_on = block_on
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.called: dict[str, threading.Event] = {}
        self.fail: BaseException | None = None

    def __call__(self, items: list[str]) -> list[str]:
        self.calls.append(list(items))
        for item in items:
            self.called.setdefault(item, threading.Event()).set()
        if self.block_on in items:
            self.entered.set()
            assert self.release.wait(timeout=30)
            if self.fail is not None:
                raise self.fail
        return [item.upper() for item in items]

    def was_called_with(self, item: str) -> threading.Event:
        return self.called.setdefault(item, threading.Event())


def test_a_thread_joins_a_computation_in_flight() -> None:
    gate = Gate(block_on="a")
    f = cache_batch_variable("items")(gate)
    results: dict[str, Any] = {}
    first = threading.Thread(target=lambda: results.update(first=f(["a", "b"])))
    first.start()
    assert gate.entered.wait(timeout=30)
    second = threading.Thread(target=lambda: results.update(second=f(["b", "c"])))
    second.start()
    # the second caller joined "b" (in flight) and computes "c" alone
    assert gate.was_called_with("c").wait(timeout=30)
    gate.release.set()
    first.join()
    second.join()
    assert results == {"first": ["A", "B"], "second": ["B", "C"]}
    assert gate.calls == [["a", "b"], ["c"]]
    assert f.cache_info().joined == 1


def test_a_failing_computation_reaches_every_waiter_and_caches_nothing() -> None:
    gate = Gate(block_on="a")
    gate.fail = RuntimeError("upstream down")
    f = cache_batch_variable("items")(gate)
    errors: dict[str, BaseException] = {}

    def call(name: str, items: list[str]) -> None:
        try:
            f(items)
        except RuntimeError as exc:
            errors[name] = exc

    first = threading.Thread(target=call, args=("first", ["a"]))
    first.start()
    assert gate.entered.wait(timeout=30)
    second = threading.Thread(target=call, args=("second", ["a", "z"]))
    second.start()
    assert gate.was_called_with("z").wait(timeout=30)
    gate.release.set()
    first.join()
    second.join()
    assert errors["first"] is gate.fail
    # the waiter raises a copy of its own: same type and args, a traceback of its own
    assert type(errors["second"]) is RuntimeError
    assert errors["second"].args == ("upstream down",)
    assert f.cache_info().currsize == 1  # "z" only; nothing of the failed call
    gate.fail = None
    assert f(["a"]) == ["A"]  # the next call retries
    assert gate.calls[-1] == ["a"]


def test_a_function_calling_itself_does_not_deadlock() -> None:
    depth = threading.local()

    @cache_batch_variable("items")
    def f(items: list[int]) -> list[int]:
        level = getattr(depth, "level", 0)
        depth.level = level + 1
        try:
            out = []
            for i in items:
                below = f([i - 1])[0] if i > 0 else -1  # other items: computed or joined
                if level == 0:
                    assert f([i]) == [below + 1]  # the item this call is computing
                out.append(below + 1)
            return out
        finally:
            depth.level = level

    assert f([3]) == [3]
    assert f([2, 3, 5]) == [2, 3, 5]


# -- asyncio -----------------------------------------------------------------------------


class AsyncGate:
    def __init__(self, block_on: str) -> None:
        self.block_on = block_on
        self.calls: list[list[str]] = []
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.called: dict[str, asyncio.Event] = {}
        self.fail: BaseException | None = None

    async def __call__(self, items: list[str]) -> list[str]:
        self.calls.append(list(items))
        for item in items:
            self.called.setdefault(item, asyncio.Event()).set()
        if self.block_on in items:
            self.entered.set()
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
            if self.fail is not None:
                raise self.fail
        return [item.upper() for item in items]

    def was_called_with(self, item: str) -> asyncio.Event:
        return self.called.setdefault(item, asyncio.Event())


def test_tasks_join_a_computation_in_flight() -> None:
    async def main() -> None:
        gate = AsyncGate(block_on="a")
        f = cache_batch_variable("items")(gate)
        first = asyncio.create_task(f(["a", "b"]))
        await gate.entered.wait()
        second = asyncio.create_task(f(["b", "c"]))
        await gate.was_called_with("c").wait()
        gate.release.set()
        assert await first == ["A", "B"]
        assert await second == ["B", "C"]
        assert gate.calls == [["a", "b"], ["c"]]
        assert f.cache_info().joined == 1

    asyncio.run(main())


def test_many_tasks_compute_each_item_once() -> None:
    async def main() -> None:
        seen: Counter[int] = Counter()

        @cache_batch_variable("items")
        async def f(items: list[int]) -> list[int]:
            seen.update(items)
            await asyncio.sleep(0)
            return [i + 1 for i in items]

        rng = random.Random(3)
        batches = [rng.sample(range(300), 25) for _ in range(200)]
        results = await asyncio.gather(*(f(b) for b in batches))
        assert results == [[i + 1 for i in b] for b in batches]
        assert max(seen.values()) == 1
        assert set(seen) == {i for b in batches for i in b}

    asyncio.run(main())


def test_a_cancelled_caller_does_not_strand_the_others() -> None:
    async def main() -> None:
        gate = AsyncGate(block_on="a")
        f = cache_batch_variable("items")(gate)
        owner = asyncio.create_task(f(["a"]))
        await gate.entered.wait()
        joiner = asyncio.create_task(f(["a", "z"]))
        await gate.was_called_with("z").wait()
        owner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await owner
        assert not gate.cancelled.is_set()  # the joiner still waits: the work goes on
        gate.release.set()
        assert await joiner == ["A", "Z"]
        assert f.cache_info().currsize == 2

    asyncio.run(main())


def test_the_computation_is_cancelled_when_the_last_waiter_leaves() -> None:
    async def main() -> None:
        gate = AsyncGate(block_on="a")
        f = cache_batch_variable("items")(gate)
        owner = asyncio.create_task(f(["a"]))
        await gate.entered.wait()
        joiner = asyncio.create_task(f(["a"]))
        await asyncio.sleep(0)  # let the joiner reach its wait (a turn of the loop, not a delay)
        owner.cancel()
        joiner.cancel()
        for task in (owner, joiner):
            with pytest.raises(asyncio.CancelledError):
                await task
        await gate.cancelled.wait()  # the function saw the cancellation
        assert f.cache_info().currsize == 0
        gate.release.set()
        assert await f(["a"]) == ["A"]  # nothing was cached, the next call computes

    asyncio.run(main())


def test_a_failing_async_computation_reaches_every_waiter() -> None:
    async def main() -> None:
        gate = AsyncGate(block_on="a")
        gate.fail = ValueError("bad batch")
        f = cache_batch_variable("items")(gate)
        first = asyncio.create_task(f(["a"]))
        await gate.entered.wait()
        second = asyncio.create_task(f(["a", "z"]))
        await gate.was_called_with("z").wait()
        gate.release.set()
        for task in (first, second):
            with pytest.raises(ValueError, match="bad batch"):
                await task
        assert f.cache_info().currsize == 1

    asyncio.run(main())


def test_async_function_calling_itself_does_not_deadlock() -> None:
    nested: set[int] = set()

    @cache_batch_variable("items")
    async def f(items: list[int]) -> list[int]:
        out = []
        for i in items:
            below = (await f([i - 1]))[0] if i > 0 else -1
            if i == 2 and i not in nested:
                nested.add(i)
                assert await f([i]) == [below + 1]  # the item this computation computes
            out.append(below + 1)
        return out

    assert asyncio.run(f([3, 2])) == [3, 2]


def test_two_event_loops_one_after_another() -> None:
    @cache_batch_variable("items")
    async def f(items: list[int]) -> list[int]:
        return [i * 10 for i in items]

    assert asyncio.run(f([1, 2])) == [10, 20]
    assert asyncio.run(f([2, 3])) == [20, 30]
    assert f.cache_info().misses == 3


# -- the registry's own cost ----------------------------------------------------------------


@pytest.mark.parametrize("size", [1_000, 4_000])
def test_joining_flights_costs_linear_time_in_the_keys(size: int) -> None:
    from batche._inflight import Flights

    flights = Flights.for_threads([0])
    keys = [Counted(i) for i in range(size)]
    # a first caller has the keys in flight, in chunks of 10
    run, mine, joined, _ = flights.claim(keys, 10, 0)
    assert run is not None
    assert len(mine) == size // 10
    assert joined == []
    # a second caller wants them all, and one more
    Counted.hashes = 0
    wanted = [*reversed(keys), Counted(-1)]
    run, mine, joined, _ = flights.claim(wanted, 10, 0)
    assert [list(flight.keys) for flight in mine] == [[Counted(-1)]]
    assert sum(len(keys) for _, keys in joined) == size
    # a dict of the keys left, a lookup and a removal per key: not a scan per flight
    assert Counted.hashes <= 5 * size
    for flight in list(flights._active):
        flights.finish(flight)
    assert len(flights) == 0


def test_a_flight_finished_twice_is_finished_once() -> None:
    from batche._inflight import Flights

    finished = [0]
    flights = Flights.for_threads(finished)
    _, (flight,), _, _ = flights.claim(["a"], 10, 0)
    flights.finish(flight)
    flights.finish_open([flight], RuntimeError("late"))
    assert finished == [1]
    assert flight.error is None
    assert len(flights) == 0


def test_a_computation_cancelled_before_it_starts_never_strands_its_waiters() -> None:
    # A task cancelled before its first step never runs a line of its coroutine: its
    # engine never finished its flights, and every caller for those keys waited forever.
    async def main() -> None:
        calls: list[list[str]] = []

        @cache_batch_variable("items")
        async def f(items: list[str]) -> list[str]:
            calls.append(list(items))
            return [i.upper() for i in items]

        caller = asyncio.create_task(f(["x"]))
        await asyncio.sleep(0)  # one turn: the caller spawned its computation and waits
        (computation,) = asyncio.all_tasks() - {caller, asyncio.current_task()}
        computation.cancel()  # before its first step
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert len(f._core.loop_flights()) == 0
        assert await asyncio.wait_for(f(["x"]), timeout=30) == ["X"]  # not joined to a ghost
        assert calls == [["x"]]

    asyncio.run(main())
