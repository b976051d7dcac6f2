"""dynamically: concurrent calls share batches; results and errors reach the right caller."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import pytest

from batche import BatchArgumentError, BatchDefinitionError, BatcherClosedError, dynamically
from batche._queue import Queue


class Watch:
    """Observes a batcher's queue: counts the items added and wakes whoever waits for them."""

    def __init__(self, queue: Queue) -> None:
        self.added = 0
        self.refused = threading.Event()
        self._cond = threading.Condition()
        add, has_room = queue.add, queue.has_room

        def counting_add(request: Any, now: float) -> None:
            add(request, now)
            with self._cond:
                self.added += len(request.items)
                self._cond.notify_all()

        def watching_room(count: int) -> bool:
            room = has_room(count)
            if not room:
                self.refused.set()
            return room

        queue.add = counting_add  # type: ignore[method-assign]
        queue.has_room = watching_room  # type: ignore[method-assign]

    def wait_for(self, items: int) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self.added >= items, timeout=30)


class Blocker:
    """A batch function whose first batch blocks until released; records every batch."""

    def __init__(self, fail_on: object = None) -> None:
        self.batches: list[list[Any]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on

    def __call__(self, items: list[Any]) -> list[Any]:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(timeout=30)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"cannot do {self.fail_on!r}")
        return [f"<{i}>" for i in items]


def start(target: Any, *args: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = target(*args)
        except BaseException as exc:  # noqa: BLE001 - looked at by the test
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


# -- threads ---------------------------------------------------------------------------------


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


def test_a_request_spans_several_batches_in_order() -> None:
    seen: list[list[int]] = []

    @dynamically(batch_size=4, timeout_ms=0)
    def double(xs: list[int]) -> list[int]:
        seen.append(list(xs))
        return [x * 2 for x in xs]

    assert double(list(range(10))) == [x * 2 for x in range(10)]
    assert seen == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert double.one(21) == 42
    assert double([]) == []
    double.close()


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
    assert boxes[1]["error"] is boxes[0]["error"]  # the same batch: the same error
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


def test_a_wrong_number_of_results_is_an_error_for_that_batch() -> None:
    @dynamically(batch_size=8, timeout_ms=0)
    def f(xs: list[int]) -> list[int]:
        return xs[:-1]

    with pytest.raises(ValueError, match=r"returned 1 results for a batch of 2 items"):
        f([1, 2])
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


def test_context_manager_closes() -> None:
    with dynamically(batch_size=4)(lambda xs: [x + 1 for x in xs]) as f:
        assert f([1, 2]) == [2, 3]
    with pytest.raises(BatcherClosedError):
        f([3])


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


def test_small_requests_go_first() -> None:
    body = Blocker()
    f = dynamically(batch_size=3, timeout_ms=0, small_batch_threshold=1)(body)
    watch = Watch(f._driver.queue)
    first, _ = start(f, ["first"])
    assert body.entered.wait(timeout=30)
    big, _ = start(f, ["b1", "b2", "b3"])
    watch.wait_for(4)
    small = [start(f, [f"s{i}"]) for i in range(2)]
    watch.wait_for(6)
    body.release.set()
    for thread, _ in [(first, {}), (big, {}), *small]:
        thread.join()
    assert body.batches[1] == ["s0", "s1", "b1"]
    assert body.batches[2] == ["b2", "b3"]
    f.close()


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


def test_requests_of_parallel_lists_and_keywords() -> None:
    seen: list[tuple[list[str], list[str]]] = []

    @dynamically(batch_size=8, timeout_ms=0)
    def translate(texts: list[str], lang: list[str]) -> list[str]:
        seen.append((list(texts), list(lang)))
        return [f"{t}@{g}" for t, g in zip(texts, lang)]

    assert translate(texts=["a", "b"], lang=["en", "fr"]) == ["a@en", "b@fr"]
    assert translate.one(texts="c", lang="de") == "c@de"
    with pytest.raises(BatchArgumentError, match="'texts' has 2, 'lang' has 1"):
        translate(texts=["a", "b"], lang=["en"])
    translate.close()


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
    assert a.score is a.score
    assert a.score is not b.score
    assert asyncio.run(a.prefix.one("z")) == "a.prefix(z)"
    assert a.score.stats.batches == 1


def test_other_arguments_are_refused_not_mixed_across_callers() -> None:
    @dynamically(batch_size=4, timeout_ms=0)
    def embed(texts: list[str], model: str = "small") -> list[str]:
        return [f"{model}:{t}" for t in texts]

    assert embed(["a"]) == ["small:a"]
    with pytest.raises(BatchArgumentError, match=r"other arguments \('model'\) would be shared"):
        embed(["a"], model="large")
    embed.close()


def test_bad_input_and_options() -> None:
    f = dynamically(lambda xs: xs)
    with pytest.raises(BatchArgumentError, match=r"must be a list of items, got str; use .one"):
        f("abc")
    with pytest.raises(BatchDefinitionError, match="batch_size must be an int >= 1, got 0"):
        dynamically(batch_size=0)
    with pytest.raises(BatchDefinitionError, match="timeout_ms must be a number >= 0"):
        dynamically(timeout_ms=-1)
    with pytest.raises(BatchDefinitionError, match="pad_token must be a dict"):
        dynamically(pad_token=[0])
    f.close()


# -- asyncio -----------------------------------------------------------------------------------


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


def test_padded_features_keep_their_dtype() -> None:
    np = pytest.importorskip("numpy")
    seen: list[dict[str, Any]] = []

    @dynamically(batch_size=8, timeout_ms=0, pad_token={"input_ids": 0, "weights": 0.5})
    def model(features: dict[str, Any]) -> Any:
        seen.append(features)
        return features["input_ids"].sum(axis=1) + features["weights"].sum(axis=1)

    out = model(
        {
            "input_ids": [np.array([1, 2, 3]), np.array([4])],
            "weights": [
                np.array([0.25, 0.25, 0.25], dtype=np.float32),
                np.array([1.0], dtype=np.float32),
            ],
        }
    )
    batch = seen[0]
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 0, 0]]
    assert batch["weights"].dtype == np.float32
    assert batch["weights"].tolist() == [[0.25, 0.25, 0.25], [1.0, 0.5, 0.5]]
    np.testing.assert_allclose(out, [6.75, 6.0])
    single = model.one({"input_ids": np.array([7, 7]), "weights": np.array([0.0, 0.0])})
    assert single == pytest.approx(14.0)
    model.close()


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


EXIT_SCRIPT = """
import sys, threading
sys.path.insert(0, {root!r})
from batche import dynamically

@dynamically(batch_size=8, timeout_ms=600_000)   # would wait ten minutes for company
def f(xs):
    return [x * 2 for x in xs]

queued = threading.Event()
add = f._driver.queue.add
def watched_add(request, now):
    add(request, now)
    queued.set()
f._driver.queue.add = watched_add

def caller():
    print("result", f([21]), flush=True)

threading.Thread(target=caller).start()   # not a daemon: the exit waits for it
queued.wait(30)
print("main exits", flush=True)
"""


def test_interpreter_exit_runs_queued_calls() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    done = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT.format(root=root)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # the queued call ran at exit instead of holding the exit up for ten minutes
    assert done.stdout.splitlines() == ["main exits", "result [42]"]


def test_padded_torch_features_stay_tensors() -> None:
    torch = pytest.importorskip("torch")  # optional: not among the test extras (it is large)
    seen: list[dict[str, Any]] = []

    @dynamically(batch_size=8, timeout_ms=0, pad_token={"input_ids": 0, "weights": 0.5})
    def model(features: dict[str, Any]) -> Any:
        seen.append(features)
        return features["input_ids"].sum(dim=1) + features["weights"].sum(dim=1)

    out = model(
        {
            "input_ids": [torch.tensor([1, 2, 3]), torch.tensor([4])],
            "weights": [torch.tensor([0.25, 0.25, 0.25]), torch.tensor([1.0])],
        }
    )
    batch = seen[0]
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 0, 0]]
    assert batch["weights"].dtype == torch.float32
    assert batch["weights"].tolist() == [[0.25, 0.25, 0.25], [1.0, 0.5, 0.5]]
    assert isinstance(out, torch.Tensor)
    assert out.tolist() == pytest.approx([6.75, 6.0])
    model.close()


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
