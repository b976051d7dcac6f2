"""cost= and max_batch_cost=: chunks sized by cost, and what cache_info says was paid and saved."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batche import BatchArgumentError, BatchDefinitionError, CacheInfo, cache_batch_variable
from batche._chunking import cost_bounds

from .conftest import Harness, Recorder

# -- the chunker -------------------------------------------------------------------------


def test_chunks_close_when_the_next_item_would_not_fit() -> None:
    keys = ["a", "b", "c", "d", "e"]
    costs = {"a": 3, "b": 4, "c": 2, "d": 1, "e": 5}
    assert cost_bounds(keys, costs, None, 7) == [(0, 2), (2, 4), (4, 5)]
    assert cost_bounds(keys, costs, 2, 100) == [(0, 2), (2, 4), (4, 5)]
    assert cost_bounds(keys, costs, 1, 100) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    assert cost_bounds([], {}, None, 7) == []


def test_an_item_over_the_budget_goes_alone() -> None:
    keys = ["a", "big", "b", "c"]
    costs = {"a": 1, "big": 50, "b": 1, "c": 1}
    assert cost_bounds(keys, costs, None, 10) == [(0, 1), (1, 2), (2, 4)]
    assert cost_bounds(["big"], costs, None, 10) == [(0, 1)]


@settings(max_examples=300, deadline=None)
@given(
    costs=st.lists(st.integers(0, 20) | st.floats(0, 20), max_size=40),
    max_size=st.none() | st.integers(1, 8),
    max_cost=st.integers(1, 30) | st.floats(0.5, 30),
)
def test_chunks_are_greedy_and_within_both_budgets(
    costs: list[float], max_size: int | None, max_cost: float
) -> None:
    keys = list(range(len(costs)))
    table = dict(zip(keys, costs))
    bounds = cost_bounds(keys, table, max_size, max_cost)
    # in order, every key once
    assert [k for start, stop in bounds for k in keys[start:stop]] == keys
    for n, (start, stop) in enumerate(bounds):
        chunk = costs[start:stop]
        assert chunk
        if max_size is not None:
            assert len(chunk) <= max_size
        if len(chunk) > 1:
            assert sum(chunk) <= max_cost
        if n + 1 < len(bounds):  # it closed because the next key did not fit
            full = max_size is not None and len(chunk) == max_size
            assert full or sum(chunk) + costs[stop] > max_cost


# -- through the decorator ---------------------------------------------------------------


def words(text: str) -> int:
    return len(text.split())


def test_misses_go_in_chunks_within_both_budgets(harness: Harness) -> None:
    rec = Recorder()
    f = harness.decorate(rec, cost=words, max_batch_size=3, max_batch_cost=5)
    texts = ["a b", "c", "d e f", "g", "h", "i", "j k l m n o p", "q"]
    assert harness.run(f(texts)) == [f"<{t}>" for t in texts]
    assert rec.calls == [["a b", "c"], ["d e f", "g", "h"], ["i"], ["j k l m n o p"], ["q"]]


def test_chunks_follow_the_first_appearance_of_the_misses(harness: Harness) -> None:
    rec = Recorder()
    f = harness.decorate(rec, cost=words, max_batch_cost=4)
    harness.run(f(["b b", "x"]))
    rec.calls.clear()
    assert harness.run(f(["c c", "b b", "d d", "c c", "x", "e"])) == [
        "<c c>", "<b b>", "<d d>", "<c c>", "<x>", "<e>",
    ]  # fmt: skip
    assert rec.calls == [["c c", "d d"], ["e"]]


def test_cost_is_called_once_per_distinct_item_and_counted(harness: Harness) -> None:
    asked: list[str] = []

    def cost(text: str) -> int:
        asked.append(text)
        return words(text)

    rec = Recorder()
    f = harness.decorate(rec, cost=cost)
    harness.run(f(["a b", "c", "a b"]))  # "a b" twice: computed once, the second a hit
    assert sorted(asked) == ["a b", "c"]
    assert f.cache_info() == CacheInfo(1, 2, None, 2, 0, cost_paid=3, cost_saved=2)
    asked.clear()
    harness.run(f(["c", "c", "a b"]))  # all hits
    assert sorted(asked) == ["a b", "c"]
    assert f.cache_info()[-2:] == (3, 2 + 1 + 1 + 2)
    harness.run(f(["d e f", "c"]))  # a mixed call
    assert f.cache_info()[-2:] == (6, 7)
    f.cache_clear()
    assert f.cache_info()[-2:] == (0, 0)


def test_without_cost_both_counts_stay_zero(harness: Harness) -> None:
    f = harness.decorate(Recorder(), max_batch_size=2)
    harness.run(f(["a", "b", "c", "a"]))
    info = f.cache_info()
    assert (info.cost_paid, info.cost_saved) == (0, 0)


def test_joined_items_count_as_saved() -> None:
    entered, release, called_with_z = threading.Event(), threading.Event(), threading.Event()

    @cache_batch_variable("texts", cost=words)
    def f(texts: list[str]) -> list[int]:
        if "z" in texts:
            called_with_z.set()
        if "a b c" in texts:
            entered.set()
            assert release.wait(timeout=30)
        return [len(t) for t in texts]

    first = threading.Thread(target=f, args=(["a b c"],))
    first.start()
    assert entered.wait(timeout=30)
    second = threading.Thread(target=f, args=(["a b c", "z"],))
    second.start()
    assert called_with_z.wait(timeout=30)
    release.set()
    first.join()
    second.join()
    info = f.cache_info()
    assert (info.joined, info.cost_paid, info.cost_saved) == (1, 4, 3)


def test_several_batch_parameters_cost_their_tuples() -> None:
    seen: list[Any] = []

    def cost(item: tuple[int, str]) -> int:
        seen.append(item)
        return item[0]

    @cache_batch_variable(("ids", "texts"), cost=cost, max_batch_cost=3)
    def f(ids: list[int], texts: list[str]) -> list[str]:
        return [f"{i}{t}" for i, t in zip(ids, texts)]

    assert f([1, 2, 3], ["a", "b", "c"]) == ["1a", "2b", "3c"]
    assert seen == [(1, "a"), (2, "b"), (3, "c")]
    assert f.cache_info().cost_paid == 6


@pytest.mark.parametrize(
    ("bad", "fault"),
    [
        (-1, "a negative number"),
        ("3", "a str"),
        (None, "None"),
        (float("nan"), "NaN"),
        (float("inf"), "an infinite number"),
        (True, "a bool"),  # it would sum as 1: a bug of the cost function, not a cost
        (np.False_, "a bool"),
    ],
)
def test_a_bad_cost_is_a_call_error_naming_the_item_and_the_value(
    harness: Harness, bad: Any, fault: str
) -> None:
    f = harness.decorate(Recorder(), cost=lambda item: bad if item == "x" else 1)
    with pytest.raises(BatchArgumentError) as caught:
        harness.run(f(["a", "x"]))
    assert isinstance(caught.value, TypeError)
    assert not isinstance(caught.value, BatchDefinitionError)  # the decoration was fine
    assert str(caught.value).endswith(
        f"f(): cost= returned {bad!r} for item 1 of 'items' ('x'); it must return a finite "
        f"number >= 0, not {fault}"
    )
    assert f.cache_info().currsize == 0
