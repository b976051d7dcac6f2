"""The sliding-window log: never over budget in any window, and as early as it allows.

A discrete-event simulation on a fake clock drives random arrivals, costs and callers
giving up through the local log and through the Lua script in a real redis-server (which
takes ``now`` from the test instead of its clock), and an oracle written plainly checks
every window.
"""

from __future__ import annotations

import heapq
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batche._slidinglog import SlidingLog

from .conftest import RedisServer

# -- the oracle ------------------------------------------------------------------------


def assert_within_budget(
    stamps: list[tuple[int, float]], requests: int | None, cost: float | None, per_us: int
) -> None:
    """No window of ``per_us`` holds more than ``requests`` stamps or more than ``cost``,
    except that a stamp costing more than ``cost`` alone is the only costed one in its."""
    stamps = sorted(stamps)
    for i, (start, _) in enumerate(stamps):
        inside = [c for t, c in stamps[i:] if t < start + per_us]
        window = (start, inside)
        if requests is not None:
            assert len(inside) <= requests, window
        if cost is not None:
            costed = [c for c in inside if c > 0]
            if any(c > cost for c in costed):
                assert len(costed) == 1, window
            else:
                assert sum(inside) <= cost, window


def fits_plainly(
    at: int, cost: float, before: list[tuple[int, float]], requests: Any, budget: Any, per: int
) -> bool:
    """Whether an acquisition of ``cost`` at ``at`` keeps the budget, ``before`` given."""
    inside = [c for t, c in before if at - per < t <= at]
    if requests is not None and len(inside) + 1 > requests:
        return False
    return budget is None or cost == 0 or sum(inside) + min(cost, budget) <= budget


# -- the arithmetic, on a fake clock ---------------------------------------------------

arrivals = st.lists(
    st.tuples(
        # microseconds after the previous arrival; some a window (of any per below) or
        # a microsecond more or less apart, where an off-by-one would show
        st.one_of(st.integers(0, 400), st.sampled_from([99, 100, 101, 999, 1_000, 1_001])),
        st.sampled_from([0, 1, 2, 3, 5, 8, 13, 30]),  # cost (30: more than some budgets)
        st.one_of(st.none(), st.integers(0, 2_000)),  # gives up after this many µs, or not
    ),
    max_size=40,
)
budgets = st.tuples(
    st.one_of(st.none(), st.integers(1, 6)),  # requests
    st.one_of(st.none(), st.sampled_from([5, 10, 20])),  # cost
    st.sampled_from([100, 1_000]),  # per, µs
).filter(lambda b: b[0] is not None or b[1] is not None)


class LocalBackend:
    def __init__(self, requests: Any, cost: Any, per_us: int) -> None:
        self.log = SlidingLog(requests, cost, per_us)

    def reserve(self, now: int, cost: float) -> tuple[int, Any]:
        return self.log.reserve(now, cost)

    def cancel(self, token: Any, now: int) -> None:
        self.log.cancel(token, now)


class RedisBackend:
    def __init__(self, url: str, requests: Any, cost: Any, per_us: int) -> None:
        from batche._redislog import RedisLog

        self.log = RedisLog(url, uuid.uuid4().hex, requests, cost, per_us)

    def reserve(self, now: int, cost: float) -> tuple[int, Any]:
        slot, server_now, token = self.log.reserve(cost, now=now)
        assert server_now == now
        return slot, token

    def cancel(self, token: Any, now: int) -> None:
        self.log.cancel(token, now=now)


def simulate(backend: Any, per_us: int, plan: list[tuple[int, float, int | None]]) -> Any:
    """Arrivals at the planned times, each reserving a slot; some give up before theirs.
    Returns (arrival, slot, cost, kept) for each, in order of arrival."""
    events: list[tuple[int, int, int]] = []  # (time, 0 arrive | 1 give up, index)
    now = 0
    for index, (gap, _, _) in enumerate(plan):
        now += gap
        heapq.heappush(events, (now, 0, index))
    booked: dict[int, tuple[int, int, Any]] = {}
    gave_up: set[int] = set()
    while events:
        now, kind, index = heapq.heappop(events)
        cost, patience = plan[index][1], plan[index][2]
        if kind == 0:
            slot, token = backend.reserve(now, cost)
            assert slot >= now
            booked[index] = (now, slot, token)
            if patience is not None and now + patience < slot:
                heapq.heappush(events, (now + patience, 1, index))
        else:
            backend.cancel(booked[index][2], now)
            gave_up.add(index)
    return [(booked[i][0], booked[i][1], plan[i][1], i not in gave_up) for i in range(len(plan))]


def check_simulation(
    backend: Any, budget: tuple[Any, Any, int], plan: list[tuple[int, float, int | None]]
) -> None:
    requests, cost, per_us = budget
    result = simulate(backend, per_us, plan)
    # Never over budget, counting the slots kept (one given back may be handed out again).
    assert_within_budget([(s, c) for _, s, c, kept in result if kept], requests, cost, per_us)
    # First come, first served.
    slots = [s for _, s, _, kept in result if kept]
    assert slots == sorted(slots)
    if any(not kept for *_, kept in result):
        return
    # As early as the budget allows: one microsecond earlier would break it.
    for i, (arrival, slot, c, _) in enumerate(result):
        if slot > max(arrival, slots[i - 1] if i else 0):
            before = [(s, cc) for _, s, cc, _ in result[:i]]
            assert not fits_plainly(slot - 1, c, before, requests, cost, per_us)


@settings(max_examples=300, deadline=None)
@given(budget=budgets, plan=arrivals)
def test_local_log_never_over_budget_and_never_late(budget: Any, plan: Any) -> None:
    check_simulation(LocalBackend(*budget), budget, plan)


@pytest.mark.redis
@settings(max_examples=100, deadline=None)
@given(budget=budgets, plan=arrivals)
def test_redis_script_never_over_budget_and_never_late(
    redis_server: RedisServer, budget: Any, plan: Any
) -> None:
    backend = RedisBackend(redis_server.url, *budget)
    try:
        check_simulation(backend, budget, plan)
    finally:
        backend.log.close()


def test_the_log_holds_only_open_windows() -> None:
    log = SlidingLog(requests=10, cost=None, per_us=1_000)
    sizes = []
    for n in range(10_000):
        log.reserve(n * 100, 0)
        sizes.append(len(log))
    assert max(sizes) == 10  # 10 per window of 1,000 µs at one per 100 µs: none waits


def test_an_oversized_request_waits_for_an_empty_window_then_goes_alone() -> None:
    log = SlidingLog(requests=None, cost=10, per_us=1_000)
    assert log.reserve(0, 4)[0] == 0
    assert log.reserve(10, 25)[0] == 1_000  # waits until the 4 has left its window
    assert log.reserve(20, 0)[0] == 1_000  # a free request is not held back by cost
    assert log.reserve(30, 1)[0] == 2_000  # the next costed one waits a full window
