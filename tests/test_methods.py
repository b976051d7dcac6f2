"""Batched methods: a batcher per instance, which never outlives its instance; the soak.

``soak()`` is also the measure the README quotes:
``python -c "from tests.test_methods import soak; print(soak())"``.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

import pytest

from batche import BatchArgumentError, BatchDefinitionError, BatcherClosedError, dynamically

from .conftest import in_threads


class Soak:
    def __init__(self, n: int) -> None:
        self.n = n

    @dynamically(batch_size=8, timeout_ms=0)
    def embed(self, xs: list[int]) -> list[int]:
        return [self.n + x for x in xs]

    @dynamically(batch_size=8, timeout_ms=0)
    async def aembed(self, xs: list[int]) -> list[int]:
        return [self.n * x for x in xs]


@dynamically(batch_size=8, timeout_ms=0)
async def shared(xs: list[int]) -> list[int]:
    return [x + 1 for x in xs]


def live(refs: list[weakref.ReferenceType[Any]]) -> int:
    gc.collect()
    return sum(ref() is not None for ref in refs)


def event_loops() -> int:
    """Event loops alive in the process."""
    gc.collect()
    return sum(isinstance(o, asyncio.AbstractEventLoop) for o in gc.get_objects())


def join_workers(name: str, seconds: float) -> None:
    """Wait, at most ``seconds`` in all, for the worker threads of ``name`` to end."""
    deadline = time.monotonic() + seconds
    for thread in threading.enumerate():
        if thread.name == f"batche-{name}":
            thread.join(max(0.0, deadline - time.monotonic()))


def soak(instances: int = 1000, runs: int = 200) -> dict[str, tuple[int, int]]:
    """Create and drop ``instances`` instances using a sync batched method, then run
    ``asyncio.run`` ``runs`` times, each with a new instance using an async batched
    method and a module-level async batched function. Returns (before, after) counts."""
    gc.collect()
    threads, loops = threading.active_count(), event_loops()
    refs: list[weakref.ReferenceType[Any]] = []
    for n in range(instances):
        obj = Soak(n)
        assert obj.embed([1, 2]) == [n + 1, n + 2]
        assert obj.embed.one(3) == n + 3
        refs.append(weakref.ref(obj))
        del obj
    loop_refs: list[weakref.ReferenceType[Any]] = []

    async def main(n: int) -> None:
        obj = Soak(n)
        refs.append(weakref.ref(obj))
        loop_refs.append(weakref.ref(asyncio.get_running_loop()))
        got = await asyncio.gather(obj.aembed([1, 2]), obj.aembed.one(3), shared([n]))
        assert got == [[n, 2 * n], 3 * n, [n + 1]]

    for n in range(runs):
        asyncio.run(main(n))
    # a worker ends once its instance is freed: wait for them (a bound, not a delay)
    join_workers("Soak.embed()", 30)
    return {
        "threads": (threads, threading.active_count()),
        "instances alive": (0, live(refs)),
        "event loops alive": (loops, event_loops()),
        "loops of the runs alive": (0, live(loop_refs)),
    }


def test_soak_instances_threads_and_event_loops_stay_bounded() -> None:
    figures = soak()
    threads, instances, loops, run_loops = figures.values()
    assert instances == (0, 0)
    assert run_loops == (0, 0)
    assert loops[1] <= loops[0]
    # one thread may have started for good: the reaper, which closes freed instances' batchers
    assert threads[1] <= threads[0] + 1


def test_an_instance_is_freed_as_soon_as_its_last_call_returns() -> None:
    # no garbage collection, no waiting: the batcher let go of it before answering
    obj = Soak(1)
    assert obj.embed([1, 2]) == [2, 3]
    freed = weakref.ref(obj)
    del obj
    assert freed() is None

    async def main() -> None:
        obj = Soak(2)
        assert await asyncio.gather(obj.aembed([1]), obj.aembed.one(2)) == [[2], 4]
        freed = weakref.ref(obj)
        del obj
        assert freed() is None

    asyncio.run(main())


def test_an_instance_dropped_while_its_loop_runs_ends_its_dispatcher() -> None:
    async def main() -> None:
        objs = [Soak(n) for n in range(50)]
        got = await asyncio.gather(*(obj.aembed([2]) for obj in objs))
        assert got == [[2 * n] for n in range(50)]
        dispatchers = [
            task
            for task in asyncio.all_tasks()
            if getattr(task.get_coro(), "__qualname__", "") == "LoopDriver._dispatch"
        ]
        assert len(dispatchers) == 50  # one per instance
        refs = [weakref.ref(obj) for obj in objs]
        del objs, got
        assert live(refs) == 0
        # each dispatcher returns once its instance is gone (the wait is a bound)
        _, pending = await asyncio.wait(dispatchers, timeout=30)
        assert not pending

    asyncio.run(main())


def test_one_async_batcher_serves_asyncio_run_after_asyncio_run() -> None:
    loop_refs: list[weakref.ReferenceType[Any]] = []

    async def main(n: int) -> list[Any]:
        loop_refs.append(weakref.ref(asyncio.get_running_loop()))
        return list(await asyncio.gather(shared([n, n + 1]), shared.one(n)))

    before = event_loops()
    for n in range(100):
        assert asyncio.run(main(n)) == [[n + 1, n + 2], n + 1]
    # no finished loop is kept by the batcher (its driver goes when its dispatcher ends)
    assert live(loop_refs) == 0
    assert event_loops() <= before


def test_each_instance_is_batched_apart() -> None:
    a, b = Soak(100), Soak(200)
    results: dict[tuple[str, int], list[int]] = {}

    def work(n: int) -> None:
        obj = a if n % 2 else b
        results[("ab"[n % 2], n)] = obj.embed([n])

    in_threads(16, work)
    for (name, n), got in results.items():
        assert got == [(100 if name == "b" else 200) + n]
    assert a.embed.stats.items == 8
    assert b.embed.stats.items == 8


@dataclass
class Record:
    """Equal records are unhashable: a dict keyed by instance could not hold them."""

    name: str

    @dynamically(batch_size=4, timeout_ms=0)
    def label(self, xs: list[str]) -> list[str]:
        return [f"{self.name}:{x}" for x in xs]


def test_equal_or_unhashable_instances_get_batchers_of_their_own() -> None:
    first, second = Record("r"), Record("r")
    assert first == second
    assert first.label(["x"]) == ["r:x"]
    assert second.label.one("y") == "r:y"
    assert first.label.stats is not second.label.stats


def test_a_method_called_on_the_class_takes_the_instance_first() -> None:
    obj = Soak(5)
    assert list(inspect.signature(obj.embed).parameters) == ["xs"]  # as a bound method's
    assert list(inspect.signature(Soak.embed).parameters) == ["self", "xs"]
    assert Soak.embed(obj, [1]) == [6]
    assert Soak.embed.one(obj, 2) == 7
    assert asyncio.run(Soak.aembed(obj, [3])) == [15]
    assert Soak.embed.stats.batches == 0  # the instance's own batcher ran them
    assert obj.embed.stats.batches == 2
    with pytest.raises(BatchArgumentError, match=r"Soak.embed\(\): a batched method is called"):
        Soak.embed()
    with pytest.raises(BatchDefinitionError, match="list does not"):
        Soak.embed([1])


class Slotted:
    __slots__ = ("n",)

    @dynamically(batch_size=4, timeout_ms=0)
    def f(self, xs: list[int]) -> list[int]:
        return xs


def test_an_instance_without_weak_references_is_a_clear_error() -> None:
    with pytest.raises(BatchDefinitionError, match=r"Slotted.f\(\).*add '__weakref__'"):
        Slotted().f([1])


def test_methods_after_close_are_refused_clearly() -> None:
    class Model:
        @dynamically(batch_size=4, timeout_ms=0)
        def score(self, xs: list[int]) -> list[int]:
            return xs

        @dynamically(batch_size=4, timeout_ms=0)
        async def ascore(self, xs: list[int]) -> list[int]:
            return xs

    one, two = Model(), Model()
    assert one.score([1]) == [1]
    one.score.close()  # this instance's batcher only
    with pytest.raises(BatcherClosedError, match=r"Model.score\(\): .* it was closed"):
        one.score([2])
    assert two.score([3]) == [3]
    Model.score.close()  # the method, for every instance, now and later
    for obj in (two, Model()):
        with pytest.raises(BatcherClosedError, match="it was closed"):
            obj.score.one(4)

    async def main() -> None:
        assert await one.ascore([5]) == [5]
        await Model.ascore.aclose()
        with pytest.raises(BatcherClosedError, match=r"Model.ascore\(\): .* it was closed"):
            await one.ascore([6])
        with pytest.raises(BatcherClosedError, match="it was closed"):
            await Model().ascore.one(7)

    asyncio.run(main())
