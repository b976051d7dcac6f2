"""A failure shared by several callers: each raises its own copy, with a traceback of its own.

Raised by N callers, one exception object gathers the frames of all of them in its
``__traceback__``; the copies keep the type, args, attributes and chain of the original.
"""

from __future__ import annotations

import asyncio
import threading
import traceback
from typing import Any

import pytest

from batche import BatchItemsError, cache_batch_variable, dynamically
from batche._errors import for_one_more_caller

from ._batcher_helpers import Blocker, Watch, start


class APIError(Exception):
    """An exception whose ``__init__`` does not take its ``args`` back (as openai's)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class PickyError(Exception):
    """An exception that cannot be made again at all."""

    def __new__(cls, *args: Any, **kwargs: Any) -> PickyError:
        if not kwargs.get("allowed"):
            raise TypeError("PickyError is made once")
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__("picky")


def raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as exc:  # noqa: BLE001 - looked at by the test
        return exc


def depth(error: BaseException) -> int:
    return len(traceback.extract_tb(error.__traceback__))


# -- the copy itself -----------------------------------------------------------------------


def test_a_copy_keeps_type_args_attributes_chain_and_notes() -> None:
    cause = KeyError("k")
    original = raised(ValueError("bad", 3))
    original.__cause__ = cause
    original.__context__ = RuntimeError("during")
    if hasattr(original, "add_note"):  # Python 3.11+
        original.add_note("while embedding")
    original.extra = [1]  # type: ignore[attr-defined]
    twin = for_one_more_caller(original, original.__traceback__)
    assert twin is not original
    assert type(twin) is ValueError
    assert twin.args == ("bad", 3)
    assert twin.extra is original.extra  # type: ignore[attr-defined]
    assert twin.__cause__ is cause
    assert twin.__context__ is original.__context__
    assert twin.__suppress_context__ is original.__suppress_context__
    assert getattr(twin, "__notes__", None) == getattr(original, "__notes__", None)
    assert twin.__traceback__ is original.__traceback__  # where it failed; grows on its own


def test_suppress_context_is_kept_as_it_was() -> None:
    original = ValueError("x")
    original.__context__ = KeyError("k")  # context without a cause: not suppressed
    assert for_one_more_caller(original, None).__suppress_context__ is False
    suppressed = ValueError("y")
    suppressed.__cause__ = None  # what ``raise ... from None`` does
    assert for_one_more_caller(suppressed, None).__suppress_context__ is True


def test_an_exception_with_its_own_init_arrives_with_its_type_args_and_attributes() -> None:
    original = APIError(400, "input[3] is empty")
    twin = for_one_more_caller(original, None)
    assert type(twin) is APIError
    assert twin.args == ("HTTP 400: input[3] is empty",)
    assert (twin.status, twin.body) == (400, "input[3] is empty")  # type: ignore[attr-defined]
    assert str(twin) == str(original)


def test_batch_items_error_arrives_whole() -> None:
    first = ValueError("empty")
    original = BatchItemsError("embed(): 1 of 2 items failed", {1: first}, ["ok", first])
    original.__cause__ = first
    twin = for_one_more_caller(original, None)
    assert type(twin) is BatchItemsError
    assert twin.errors == {1: first}  # type: ignore[attr-defined]
    assert twin.results == ["ok", first]  # type: ignore[attr-defined]
    assert str(twin) == "embed(): 1 of 2 items failed"
    assert twin.__cause__ is first


def test_an_exception_that_cannot_be_made_again_is_raised_itself() -> None:
    original = PickyError(allowed=True)
    assert for_one_more_caller(original, None) is original


# -- N callers share a failure: each traceback stays as long as a lone caller's -------------


class Gate:
    """Blocks the computation of "a" until released, then fails it; records the calls."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.entered = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()  # guards ``others`` (threads call at once)
        self.others: set[str] = set()
        self.all_joined = threading.Event()
        self.waiters = 0

    def __call__(self, items: list[str]) -> list[str]:
        if "a" in items:
            self.entered.set()
            assert self.release.wait(timeout=30)
            raise self.error
        with self.lock:
            self.others.update(items)
            if len(self.others) == self.waiters:
                self.all_joined.set()
        return list(items)


def thread_waiters(count: int, error: BaseException) -> list[BaseException]:
    """``count`` threads call ``f(["a", "zN"])`` while the first caller computes "a"."""
    gate = Gate(error)
    gate.waiters = count
    f = cache_batch_variable("items")(gate)
    owner, owner_box = start(f, ["a"])
    assert gate.entered.wait(timeout=30)
    # each waiter claims "zN" and joins "a": computing "zN" shows it is waiting for "a"
    calls = [start(f, ["a", f"z{n}"]) for n in range(count)]
    assert gate.all_joined.wait(timeout=30)
    gate.release.set()
    for thread, _ in [(owner, owner_box), *calls]:
        thread.join()
    assert f.cache_info().joined == count
    return [owner_box["error"], *(box["error"] for _, box in calls)]


@pytest.mark.parametrize("make", [lambda: ValueError("bad"), lambda: APIError(503, "down")])
def test_threads_sharing_a_failure_each_get_a_traceback_of_their_own(make: Any) -> None:
    lone = depth(thread_waiters(1, make())[1])
    error = make()
    errors = thread_waiters(40, error)
    assert errors[0] is error  # the caller that computed it raises it itself
    assert all(type(e) is type(error) and e.args == error.args for e in errors)
    assert max(depth(e) for e in errors[1:]) <= lone  # not 40 callers' frames
    assert len({id(e) for e in errors}) == len(errors)
    assert depth(error) <= lone


def test_tasks_sharing_a_failure_each_get_a_traceback_of_their_own() -> None:
    async def waiters(count: int) -> list[BaseException]:
        entered, release = asyncio.Event(), asyncio.Event()
        computed: set[str] = set()
        all_joined = asyncio.Event()

        @cache_batch_variable("items")
        async def f(items: list[str]) -> list[str]:
            if "a" in items:
                entered.set()
                await release.wait()
                raise APIError(500, "boom")
            computed.update(items)
            if len(computed) == count:
                all_joined.set()
            return list(items)

        owner = asyncio.ensure_future(f(["a"]))
        await entered.wait()
        calls = [asyncio.ensure_future(f(["a", f"z{n}"])) for n in range(count)]
        await all_joined.wait()
        release.set()
        out = await asyncio.gather(owner, *calls, return_exceptions=True)
        assert f.cache_info().joined == count
        return out  # type: ignore[return-value]

    lone = max(map(depth, asyncio.run(waiters(1))))
    errors = asyncio.run(waiters(40))
    assert all(type(e) is APIError and e.status == 500 for e in errors)  # type: ignore[attr-defined]
    assert max(map(depth, errors)) <= lone  # not 40 callers' frames
    assert len({id(e) for e in errors}) == len(errors)


def test_threads_in_one_failing_batch_each_get_a_traceback_of_their_own() -> None:
    def batch(count: int) -> list[BaseException]:
        body = Blocker(fail_on="bad")
        f = dynamically(batch_size=count, timeout_ms=0)(body)
        watch = Watch(f._driver.queue)
        first, _ = start(f, ["first"])
        assert body.entered.wait(timeout=30)
        calls = [start(f, ["bad"]) for _ in range(count)]
        watch.wait_for(1 + count)  # all queued while the first batch runs: one batch
        body.release.set()
        first.join()
        for thread, _ in calls:
            thread.join()
        f.close()
        assert len(body.batches) == 2
        return [box["error"] for _, box in calls]

    lone = depth(batch(1)[0])
    errors = batch(40)
    assert all(type(e) is ValueError and e.args == ("cannot do 'bad'",) for e in errors)
    assert max(map(depth, errors)) <= lone  # not 40 callers' frames
    assert len({id(e) for e in errors}) == len(errors)


@pytest.mark.parametrize("call", ["list", "one"])
def test_tasks_in_one_failing_batch_each_get_a_traceback_of_their_own(call: str) -> None:
    @dynamically(batch_size=100, timeout_ms=0)
    async def f(items: list[int]) -> list[int]:
        raise APIError(429, f"{len(items)} items")

    async def batch(count: int) -> list[BaseException]:
        # gathered in one turn of the loop: one batch
        asks = [f([n]) if call == "list" else f.one(n) for n in range(count)]
        return await asyncio.gather(*asks, return_exceptions=True)  # type: ignore[return-value]

    lone = depth(asyncio.run(batch(1))[0])
    errors = asyncio.run(batch(40))
    f.close()
    assert all(type(e) is APIError and e.body == "40 items" for e in errors)  # type: ignore[attr-defined]
    assert max(map(depth, errors)) <= lone  # not 40 callers' frames
    assert len({id(e) for e in errors}) == len(errors)
