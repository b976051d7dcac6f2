"""RateLimit: options, and its drivers with real threads, event loops and processes.

The window arithmetic is checked on a fake clock in test_slidinglog.py. Here every slot
the limiter hands out is recorded through its ``_granted`` hook, on the clock that decided
it; the slots must keep the budget in every window, and each caller checks it was not let
go before its own slot.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import multiprocessing
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from batche import BatchConfigError, RateLimit

from .conftest import RedisServer, in_threads
from .test_slidinglog import assert_within_budget

# -- options ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({}, "requests and cost are both None"),
        ({"requests": 0}, "requests must be None or an int >= 1, got 0"),
        ({"requests": -3}, "requests must be None or an int >= 1, got -3"),
        ({"requests": 2.5}, "requests must be None or an int >= 1, got 2.5"),
        ({"requests": True}, "requests must be None or an int >= 1, got True"),
        ({"cost": 0}, "cost must be None or a number > 0, got 0"),
        ({"cost": -1.5}, "cost must be None or a number > 0, got -1.5"),
        ({"cost": float("nan")}, "cost must be None or a number > 0, got nan"),
        ({"cost": "100"}, "cost must be None or a number > 0, got '100'"),
        ({"requests": 5, "per": 0}, "per must be a number of seconds > 0, got 0"),
        ({"requests": 5, "per": -1}, "per must be a number of seconds > 0, got -1"),
        ({"requests": 5, "per": float("inf")}, "per must be a number of seconds > 0, got inf"),
        ({"requests": 5, "redis": 6379}, "redis must be a Redis URL string, got 6379"),
        ({"requests": 5, "redis": "http://x"}, "redis is not a Redis URL"),
        ({"requests": 5, "redis": "redis://127.0.0.1", "name": ""}, "name must be a non-empty"),
        ({"requests": 5, "redis": "redis://127.0.0.1", "timeout": 0}, "timeout must be a number"),
    ],
)
def test_bad_options_are_named(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(BatchConfigError, match="RateLimit") as caught:
        RateLimit(**kwargs)
    assert words in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "3", None, True])
def test_a_bad_cost_per_acquisition_is_named(bad: Any) -> None:
    limit = RateLimit(requests=5, per=1)
    with pytest.raises(BatchConfigError, match=r"RateLimit\.acquire\(\): cost must be a number"):
        limit.acquire(bad)
    with pytest.raises(BatchConfigError, match=r"RateLimit\.aacquire\(\): cost must be"):
        asyncio.run(limit.aacquire(bad))


# -- the drivers: real threads, real event loops ---------------------------------------


LAST_SLOT: contextvars.ContextVar[int] = contextvars.ContextVar("LAST_SLOT")


class Recorded(RateLimit):
    """A RateLimit that keeps every slot it hands out, and checks its callers waited."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stamps: list[tuple[int, float]] = []
        self._stamps_lock = threading.Lock()  # guards stamps (threads record at once)
        self.on_grant: Callable[[], None] | None = None

    def _granted(self, slot: int, now: int, cost: float) -> None:
        with self._stamps_lock:
            self.stamps.append((slot, cost))
        LAST_SLOT.set(slot)  # the caller's own (its thread's or task's), for local_late()
        if self.on_grant is not None:
            self.on_grant()

    def local_late(self) -> bool:
        """After acquire returned: is the monotonic clock at or past the caller's slot?"""
        return time.monotonic_ns() // 1000 >= LAST_SLOT.get()

    def check(self) -> None:
        assert_within_budget(self.stamps, self.requests, self.cost, round(self.per * 1e6))


def test_threads_share_the_budget_and_each_waits_for_its_slot() -> None:
    limit = Recorded(requests=4, cost=12, per=0.05)
    rng = random.Random(1)
    costs = [[rng.choice([0, 1, 3, 5]) for _ in range(6)] for _ in range(6)]

    def work(n: int) -> None:
        for cost in costs[n]:
            limit.acquire(cost)
            assert limit.local_late()

    in_threads(6, work)
    assert len(limit.stamps) == 36
    limit.check()


def test_event_loops_one_after_another_share_the_budget() -> None:
    limit = Recorded(requests=3, cost=None, per=0.04)

    async def burst() -> None:
        async def one() -> None:
            await limit.aacquire()
            assert limit.local_late()

        await asyncio.gather(*(one() for _ in range(5)))

    for _ in range(3):
        asyncio.run(burst())
    assert len(limit.stamps) == 15
    limit.check()


def test_a_waiting_caller_does_not_block_the_loop() -> None:
    limit = RateLimit(requests=1, per=0.05)
    order: list[str] = []

    async def main() -> None:
        await limit.aacquire()  # the budget is now spent for 50 ms

        async def waiter() -> None:
            await limit.aacquire()
            order.append("acquired")

        async def other() -> None:
            order.append("other task ran")

        await asyncio.gather(waiter(), other())

    asyncio.run(main())
    assert order == ["other task ran", "acquired"]


def test_functions_sharing_one_limit_share_one_budget() -> None:
    """One limit paces two functions: one called from threads, one from an event loop."""
    limit = Recorded(requests=3, cost=10, per=0.05)
    sent: list[str] = []

    def embed(texts: list[str]) -> list[int]:
        limit.acquire(cost=len(texts))
        sent.append("embed")
        return [len(t) for t in texts]

    async def classify(texts: list[str]) -> list[str]:
        await limit.aacquire(cost=len(texts))
        sent.append("classify")
        return ["short" if len(t) < 4 else "long" for t in texts]

    def work(n: int) -> None:
        if n == 0:
            for _ in range(4):
                asyncio.run(classify(["a", "bb", "cccc"]))
        else:
            for _ in range(4):
                assert embed(["hello", "hi"]) == [5, 2]

    in_threads(3, work)
    assert sorted(sent) == ["classify"] * 4 + ["embed"] * 8
    limit.check()


@pytest.mark.parametrize("where", ["local", "redis"])
def test_a_cancelled_waiter_gives_its_slot_back(where: str, request: Any) -> None:
    redis = request.getfixturevalue("redis_url") if where == "redis" else None
    limit = Recorded(requests=1, per=30, redis=redis)

    async def main() -> None:
        await limit.aacquire()  # now the next slot is 30 s away
        loop = asyncio.get_running_loop()
        for _ in range(2):  # the second caller, then the third
            granted = asyncio.Event()
            limit.on_grant = lambda event=granted: loop.call_soon_threadsafe(event.set)
            waiter = asyncio.ensure_future(limit.aacquire())
            await granted.wait()  # it holds a slot: cancel it
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter

    asyncio.run(main())
    first, second, third = (slot for slot, _ in limit.stamps)
    assert second == first + 30_000_000
    assert third == second  # not 30 s later: the slot the second gave back
    limit.close()


# -- Redis: one budget for every process -----------------------------------------------


def acquire_in_process(url: str, name: str, costs: list[float], start: Any, out: Any) -> None:
    """In a spawned process: acquire once per cost, from a budget shared through Redis;
    put back the slots handed out (Redis clock) and whether each call waited for its own."""
    import redis as redis_py

    limit = Recorded(requests=4, cost=10, per=0.1, redis=url, name=name)
    server = redis_py.Redis.from_url(url)
    waited = []
    start.wait()
    for cost in costs:
        limit.acquire(cost)
        seconds, micros = server.time()
        waited.append(seconds * 1_000_000 + micros >= LAST_SLOT.get())
    out.put((limit.stamps, waited))
    server.close()
    limit.close()


@pytest.mark.redis
def test_processes_share_one_budget_through_redis(redis_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(3), context.Queue()
    rng = random.Random(7)
    plans = [[rng.choice([0, 1, 2, 4, 6]) for _ in range(8)] for _ in range(3)]
    workers = [
        context.Process(target=acquire_in_process, args=(redis_url, "shared", p, start, out))
        for p in plans
    ]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    stamps = [stamp for recorded, _ in results for stamp in recorded]
    assert sorted(c for _, c in stamps) == sorted(c for p in plans for c in p)
    assert all(ok for _, waited in results for ok in waited)
    # 24 acquisitions at once, 4 per window: had each process its own budget, the first
    # window would hold 12
    assert_within_budget(stamps, 4, 10, 100_000)


@pytest.mark.redis
def test_the_redis_budget_has_stable_keys_that_expire(redis_url: str) -> None:
    import redis as redis_py

    limit = RateLimit(requests=100, cost=None, per=5, redis=redis_url)
    limit.acquire()
    client = redis_py.Redis.from_url(redis_url)
    keys = sorted(client.keys("*"))
    assert keys == [
        b"batche:ratelimit:{100/None/5.0}:log",
        b"batche:ratelimit:{100/None/5.0}:totals",
    ]
    # the same numbers spelled otherwise name the same budget
    assert RateLimit(100, None, 5.0).name == RateLimit(requests=100, per=5).name
    assert (
        RateLimit(cost=10, per=60).name == RateLimit(cost=10.0, per=60.0).name == "None/10.0/60.0"
    )
    assert all(0 < client.pttl(key) <= 6_000 for key in keys)  # gone a second after the window
    client.close()
    limit.close()


@pytest.mark.redis
def test_async_callers_through_redis_on_many_loops_hold_nothing(redis_url: str) -> None:
    import gc
    import weakref

    limit = Recorded(requests=5, cost=None, per=0.05, redis=redis_url)
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []
    threads_before = threading.active_count()

    async def burst() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        await asyncio.gather(*(limit.aacquire() for _ in range(4)))

    for _ in range(25):
        asyncio.run(burst())
    gc.collect()
    assert [ref() for ref in loops] == [None] * 25  # no loop kept alive
    assert threading.active_count() == threads_before  # no worker thread left behind
    assert len(limit.stamps) == 100
    assert_within_budget(limit.stamps, 5, None, 50_000)
    limit.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()


@pytest.mark.parametrize("fault", ["refused", "silent"])
def test_an_unreachable_redis_paces_locally_and_warns_once(
    fault: str, request: Any, caplog: pytest.LogCaptureFixture
) -> None:
    port = closed_port() if fault == "refused" else request.getfixturevalue("silent_server")
    url = f"redis://:s3cret@127.0.0.1:{port}/0"
    limit = Recorded(requests=2, per=0.05, redis=url, timeout=0.2)

    async def two() -> None:
        await asyncio.gather(limit.aacquire(), limit.aacquire())

    with caplog.at_level(logging.WARNING, logger="batche"):
        for _ in range(3):
            limit.acquire()
        asyncio.run(two())
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "Redis cannot be reached" in warnings[0]
    assert f"127.0.0.1:{port}" in warnings[0]
    assert "s3cret" not in warnings[0]  # a password in the URL is not logged
    assert len(limit.stamps) == 5
    assert_within_budget(limit.stamps, 2, None, 50_000)  # the local budget, kept
    limit.close()


@pytest.mark.redis
def test_a_restarted_redis_is_used_again(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    server = RedisServer(str(tmp_path))
    server.start()
    # retry_after=0: ask Redis again at once after a failure (no waiting here)
    limit = Recorded(requests=3, per=0.05, redis=server.url, timeout=0.5, retry_after=0)
    try:
        with caplog.at_level(logging.WARNING, logger="batche"):
            limit.acquire()
            server.stop()
            limit.acquire()
            limit.acquire()
            server.start()
            limit.acquire()
            limit.acquire()
    finally:
        server.stop()
        limit.close()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "Redis cannot be reached" in messages[0]
    assert "Redis is back; the budget is shared again" in messages[1]


@pytest.mark.parametrize(
    "url",
    [
        "redis://:s3cret@127.0.0.1:{port}/0",
        "redis://app:s3cret@127.0.0.1:{port}/0",
        "redis://127.0.0.1:{port}/0?password=s3cret",
        "redis://app:s3cret@127.0.0.1:{port}/0?password=s3cret",
    ],
)
def test_a_password_is_masked_in_repr_attributes_and_logs(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = url.format(port=closed_port())
    limit = RateLimit(requests=2, per=0.05, redis=url, timeout=0.2)
    with caplog.at_level(logging.WARNING, logger="batche"):
        limit.acquire()
    shown = [repr(limit), str(limit.redis), *(r.getMessage() for r in caplog.records)]
    assert len(shown) == 3  # the repr, the URL, one warning
    for text in shown:
        assert "s3cret" not in text
        assert "***" in text
    limit.close()


def test_a_bad_redis_url_is_refused_without_its_password() -> None:
    with pytest.raises(BatchConfigError, match=r"redis is not a Redis URL") as caught:
        RateLimit(requests=2, redis="http://app:s3cret@127.0.0.1/0")
    assert "s3cret" not in str(caught.value)


def test_a_bad_retry_after_is_refused() -> None:
    with pytest.raises(BatchConfigError, match=r"retry_after must be a number of seconds >= 0"):
        RateLimit(requests=1, redis="redis://127.0.0.1:1/0", retry_after=-1)


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["threads", "asyncio"])
def test_a_frozen_redis_costs_one_deadline_then_nothing_while_the_circuit_is_open(
    own_redis: RedisServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    timeout = 0.5
    # 5 a window of 0.1 s: 64 acquisitions take about 1.3 s of pacing, past the second
    # after which Redis used to be asked again (a deadline paid every other second)
    limit = Recorded(requests=5, per=0.1, redis=own_redis.url, timeout=timeout)
    limit.acquire()  # Redis answers
    durations: list[float] = []
    durations_lock = threading.Lock()  # guards durations (threads record at once)

    def acquire() -> None:
        start = time.monotonic()
        limit.acquire()
        with durations_lock:
            durations.append(time.monotonic() - start)

    async def aacquire() -> None:
        start = time.monotonic()
        await limit.aacquire()
        durations.append(time.monotonic() - start)

    async def tasks() -> None:
        for _ in range(16):
            await asyncio.gather(*(aacquire() for _ in range(4)))

    own_redis.freeze()
    try:
        with caplog.at_level(logging.WARNING, logger="batche"):
            first = time.monotonic()
            limit.acquire()  # waits out one deadline: no retry
            first = time.monotonic() - first
            if kind == "threads":
                in_threads(4, lambda _: [acquire() for _ in range(16)])
            else:
                asyncio.run(tasks())
    finally:
        own_redis.thaw()
    assert timeout <= first < 2 * timeout
    assert len(durations) == 64
    # Redis left alone: each acquisition waits for its local slot (at most a window of
    # 0.1 s behind the others), never for a deadline
    assert max(durations) < timeout
    assert_within_budget(limit.stamps[2:], 5, None, 100_000)  # the local budget, kept
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert "tried again every 5 s" in messages[0]
    limit.close()


@pytest.mark.redis
def test_a_thawed_redis_is_tried_by_one_caller_and_shared_again(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    import redis as redis_py

    limit = Recorded(requests=100, per=60, redis=own_redis.url, timeout=0.5, retry_after=0)
    own_redis.freeze()
    try:
        with caplog.at_level(logging.WARNING, logger="batche"):
            limit.acquire()  # fails: the local budget
    finally:
        own_redis.thaw()
    with caplog.at_level(logging.WARNING, logger="batche"):
        limit.acquire()  # retry_after=0: the next caller tries Redis, which answers
        limit.acquire()
    client = redis_py.Redis.from_url(own_redis.url)
    assert client.zcard("batche:ratelimit:{100/None/60.0}:log") == 2  # shared again
    client.close()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "Redis is back; the budget is shared again" in messages[1]
    limit.close()


@pytest.mark.parametrize("redis", [None, "redis://:secret@127.0.0.1:1/0"])
def test_pickling_says_how_processes_share_a_budget(redis: str | None) -> None:
    # It was pickle's "cannot pickle '_thread.lock' object"
    import pickle

    limit = RateLimit(requests=5, per=1.0, redis=redis)
    with pytest.raises(
        pickle.PicklingError, match=r"RateLimit\(requests=5.*cannot be pickled"
    ) as caught:
        pickle.dumps(limit)
    assert "make a RateLimit in each worker process" in str(caught.value)
    assert "secret" not in str(caught.value)
