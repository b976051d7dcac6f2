"""The thread driver: threads share batches; errors, close and max_queue with worker threads."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from batche import BatcherClosedError, dynamically

from ._batcher_helpers import Blocker, Watch, start


def test_concurrent_thread_calls_share_batches() -> None:
    body = Blocker()
    f = dynamically(batch_size=64, timeout_ms=0)(body)
    watch = Watch(f._driver.queue)
    first, first_box = start(f, [0])
    assert body.entered.wait(timeout=30)
    others = [start(f, [i, i + 100]) for i in range(1, 11)]
    watch.wait_for(1 + 20)
    body.release.set()
    for thread, _ in [(first, first_box), *others]:
        thread.join()
    assert first_box["value"] == ["<0>"]
    for i, (_, box) in enumerate(others, 1):
        assert box["value"] == [f"<{i}>", f"<{i + 100}>"]
    # everything queued while the first batch ran went in one batch, in arrival order
    assert len(body.batches) == 2
    assert sorted(body.batches[1]) == sorted(x for i in range(1, 11) for x in (i, i + 100))
    assert f.stats.batches == 2
    assert f.stats.items == 21
    assert f.stats.batch_sizes == Counter({1: 1, 20: 1})
    f.close()


def test_a_request_failed_in_one_batch_is_answered_once_when_its_last_piece_ends() -> None:
    body = Blocker(fail_on="bad")
    f = dynamically(batch_size=3, timeout_ms=0)(body)
    watch = Watch(f._driver.queue)
    first, _ = start(f, ["first"])
    assert body.entered.wait(timeout=30)
    calls = [start(f, ["bad", 0]), start(f, ["bad", 1])]
    watch.wait_for(5)
    body.release.set()
    first.join()
    for thread, _ in calls:
        thread.join()
    # the second request spans the failing batch and the next one, which succeeds: its
    # caller was woken at the failure and never again (a second release killed the worker)
    assert body.batches == [["first"], ["bad", 0, "bad"], [1]]
    assert all(isinstance(box["error"], ValueError) for _, box in calls)
    assert f(["after"]) == ["<after>"]  # the worker thread is alive
    f.close()


def test_an_error_reaches_only_the_requests_of_its_batch() -> None:
    body = Blocker(fail_on="bad")
    f = dynamically(batch_size=2, timeout_ms=0)(body)
    watch = Watch(f._driver.queue)
    first, _ = start(f, ["a"])
    assert body.entered.wait(timeout=30)
    calls = [start(f, [item]) for item in ("bad", "x")]
    watch.wait_for(3)
    calls += [start(f, [item]) for item in ("y", "z")]
    watch.wait_for(5)
    body.release.set()
    first.join()
    for thread, _ in calls:
        thread.join()
    boxes = [box for _, box in calls]
    assert body.batches == [["a"], ["bad", "x"], ["y", "z"]]
    assert isinstance(boxes[0]["error"], ValueError)
    # the same batch: the same error, a copy of its own for the second caller
    assert type(boxes[1]["error"]) is ValueError
    assert boxes[1]["error"].args == boxes[0]["error"].args
    assert boxes[1]["error"] is not boxes[0]["error"]
    assert boxes[2]["value"] == ["<y>"]
    assert boxes[3]["value"] == ["<z>"]
    f.close()


class Halt(BaseException):
    """Not an Exception: the worker must survive it too."""


def test_the_worker_survives_any_exception() -> None:
    raising = [True]

    @dynamically(batch_size=8, timeout_ms=0)
    def f(xs: list[int]) -> list[int]:
        if raising[0]:
            raise Halt
        return xs

    with pytest.raises(Halt):
        f([1])
    raising[0] = False
    assert f([2]) == [2]
    f.close()


def test_close_finishes_what_is_queued_and_refuses_new_calls() -> None:
    body = Blocker()
    f = dynamically(batch_size=1, timeout_ms=0)(body)
    watch = Watch(f._driver.queue)
    first, first_box = start(f, ["a"])
    assert body.entered.wait(timeout=30)
    second, second_box = start(f, ["b"])
    watch.wait_for(2)
    closer, _ = start(f.close)
    body.release.set()
    closer.join()
    first.join()
    second.join()
    assert first_box["value"] == ["<a>"]
    assert second_box["value"] == ["<b>"]  # queued before close: still answered
    with pytest.raises(BatcherClosedError, match="cannot take this call: it was closed"):
        f(["c"])


def test_max_queue_holds_callers_back() -> None:
    body = Blocker()
    f = dynamically(batch_size=8, timeout_ms=0, max_queue=2)(body)
    watch = Watch(f._driver.queue)
    first, _ = start(f, [1])
    assert body.entered.wait(timeout=30)
    second, second_box = start(f, [2, 3])
    watch.wait_for(3)
    third, third_box = start(f, [4])
    assert watch.refused.wait(timeout=30)  # the queue is full: the third caller waits
    body.release.set()
    for thread in (first, second, third):
        thread.join()
    assert second_box["value"] == ["<2>", "<3>"]
    assert third_box["value"] == ["<4>"]
    assert body.batches == [[1], [2, 3], [4]]
    f.close()


def test_a_caller_whose_event_loop_closed_does_not_stop_the_worker() -> None:
    body = Blocker()
    f = dynamically(batch_size=8, timeout_ms=0)(body)

    async def main() -> None:
        left = asyncio.ensure_future(f.acall([1]))
        await asyncio.get_running_loop().run_in_executor(None, body.entered.wait, 30)
        assert not left.done()  # left running: asyncio.run cancels it

    asyncio.run(main())  # the loop is closed while its caller's batch runs
    body.release.set()  # the worker answers a caller whose loop is gone
    later, box = start(f, [2])
    later.join(timeout=30)  # a bound: a dead worker would leave this call waiting
    assert box == {"value": ["<2>"]}
    f.close()
