"""isolate=: a bad item among good ones fails alone; every other item gets its result."""

from __future__ import annotations

import asyncio
import math
import pickle
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batche import (
    BatcheError,
    BatchItemsError,
    BatchResultError,
    cache_batch_variable,
)

from .conftest import Harness, Recorder


class ItemError(Exception):
    """What the function raises for a batch holding a bad item (like an API's 400)."""

    def __eq__(self, other: object) -> bool:
        return type(other) is ItemError and other.args == self.args

    def __hash__(self) -> int:
        return hash(self.args)


class DownError(Exception):
    """An error isolate does not match (like a 500)."""


def failing_on(bad: set[Any]) -> Recorder:
    """A recorder that fails a whole batch when it holds a bad item, naming the first."""

    def per_item(item: Any) -> str:
        if item in bad:
            raise ItemError(item)
        return f"<{item}>"

    return Recorder(per_item)


def most_calls(n: int, k: int) -> int:
    """The most calls halving makes for k bad items among n: the first call, then both
    halves of every failing set of more than one item (at most min(2**d, k) at depth d)."""
    if n <= 1:
        return 1
    depth = math.ceil(math.log2(n))
    return 1 + 2 * sum(min(2**d, k) for d in range(depth))


# -- the outcome of a call -------------------------------------------------------------


def test_one_bad_item_fails_alone_and_the_others_get_results(harness: Harness) -> None:
    rec = failing_on({"x"})
    f = harness.decorate(rec, isolate=ItemError)
    batch = ["a", "b", "x", "c", "x", "d"]
    with pytest.raises(BatchItemsError) as caught:
        harness.run(f(batch))
    error = caught.value
    # every position of the repeated item
    assert error.errors == {2: ItemError("x"), 4: ItemError("x")}
    assert error.results == ["<a>", "<b>", ItemError("x"), "<c>", ItemError("x"), "<d>"]
    assert error.results[2] is error.errors[2]
    assert error.__cause__ is error.errors[2]
    assert isinstance(error, BatcheError)
    assert "2 of 6 items of 'items' failed on their own" in str(error)
    assert "position 2: ItemError: x" in str(error)
    assert rec.calls[0] == ["a", "b", "x", "c", "d"]
    assert len(rec.calls) <= 2 * math.ceil(math.log2(5)) + 1
    # the good ones are stored, the bad one is not: the next call sends only "x" again
    rec.calls.clear()
    assert harness.run(f(["a", "b", "c", "d"])) == ["<a>", "<b>", "<c>", "<d>"]
    assert rec.calls == []
    with pytest.raises(BatchItemsError):
        harness.run(f(["x", "a"]))
    assert rec.calls == [["x"]]


def test_when_every_item_fails_the_message_says_so(harness: Harness) -> None:
    # It said "the others have their results in .results" when there were no others
    f = harness.decorate(failing_on({"x", "y"}), isolate=ItemError)
    with pytest.raises(BatchItemsError) as caught:
        harness.run(f(["x", "y", "x"]))
    assert str(caught.value).endswith(
        "failed on their own (position 0: ItemError: x; "
        "position 1: ItemError: y; position 2: ItemError: x); "
        "none has a result"
    )


def test_return_exceptions_returns_the_list(harness: Harness) -> None:
    rec = failing_on({2, 5})
    f = harness.decorate(rec, isolate=ItemError, return_exceptions=True)
    out = harness.run(f([1, 2, 3, 4, 5, 6]))
    assert out == ["<1>", ItemError(2), "<3>", "<4>", ItemError(5), "<6>"]
    assert harness.run(f([1, 3])) == ["<1>", "<3>"]  # no failure: the plain answer
    info = f.cache_info()
    assert (info.hits, info.misses, info.currsize) == (2, 6, 4)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 100, 2048])
def test_one_bad_item_costs_at_most_two_log_n_plus_one_calls(n: int) -> None:
    for bad in {0, n // 3, n - 1}:
        rec = failing_on({bad})
        f = cache_batch_variable("items", isolate=ItemError, return_exceptions=True)(rec)
        out = f(list(range(n)))
        assert out[bad] == ItemError(bad)
        assert len(rec.calls) <= (2 * math.ceil(math.log2(n)) + 1 if n > 1 else 1)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), data=st.data())
def test_k_bad_items_cost_at_most_the_readme_bound(n: int, data: st.DataObject) -> None:
    bad = data.draw(st.sets(st.integers(0, n - 1), max_size=min(n, 12)))
    rec = failing_on(bad)
    f = cache_batch_variable("items", isolate=ItemError, return_exceptions=True)(rec)
    out = f(list(range(n)))
    assert [i for i, v in enumerate(out) if isinstance(v, ItemError)] == sorted(bad)
    assert len(rec.calls) <= most_calls(n, max(len(bad), 1))
    assert len(rec.calls) <= (2 * len(bad) * math.ceil(math.log2(n)) + 1 if n > 1 else 1)


def test_the_readme_bound_for_all_bad_is_two_n_minus_one() -> None:
    assert most_calls(2048, 2048) == 2 * 2048 - 1
    assert most_calls(2048, 1) == 2 * 11 + 1
    assert most_calls(2048, 8) == 143


def test_an_error_isolate_does_not_match_propagates_unchanged(harness: Harness) -> None:
    down = DownError("upstream 500")

    def per_item(item: Any) -> str:
        if item == "boom":
            raise down
        if item == "x":
            raise ItemError(item)
        return f"<{item}>"

    rec = Recorder(per_item)
    f = harness.decorate(rec, isolate=ItemError, max_batch_size=2)
    with pytest.raises(DownError) as caught:
        harness.run(f(["a", "b", "c", "boom"]))
    assert caught.value is down
    assert rec.calls == [["a", "b"], ["c", "boom"]]  # not split: DownError is not isolated
    assert f.cache_info().currsize == 2  # the chunk before it stays cached
    # a DownError raised in a half, after an isolated failure, propagates too
    rec.calls.clear()
    with pytest.raises(DownError):
        harness.run(f(["x", "boom"]))
    assert rec.calls == [["x", "boom"], ["x"], ["boom"]]


def test_a_tuple_of_types_and_a_predicate(harness: Harness) -> None:
    rec = failing_on({"x"})
    f = harness.decorate(rec, isolate=(KeyError, ItemError), return_exceptions=True)
    assert harness.run(f(["a", "x"])) == ["<a>", ItemError("x")]

    rec = failing_on({"x", "y"})
    g = harness.decorate(rec, isolate=lambda exc: exc.args != ("y",), return_exceptions=True)
    assert harness.run(g(["a", "x"])) == ["<a>", ItemError("x")]
    with pytest.raises(ItemError) as caught:  # the predicate says no: the call fails as before
        harness.run(g(["b", "y"]))
    assert caught.value == ItemError("y")


def test_a_wrong_number_of_results_is_not_isolated() -> None:
    calls: list[list[int]] = []

    @cache_batch_variable("items", isolate=Exception)
    def f(items: list[int]) -> list[int]:
        calls.append(items)
        return [i for i in items if i != 3]  # drops an item: batche's own error

    with pytest.raises(BatchResultError, match="returned 2 results for 3 items"):
        f([1, 2, 3])
    assert calls == [[1, 2, 3]]


def test_a_base_exception_is_never_isolated() -> None:
    class Stop(BaseException):
        pass

    @cache_batch_variable("items", isolate=lambda exc: True)
    def f(items: list[int]) -> list[int]:
        raise Stop

    with pytest.raises(Stop):
        f([1, 2, 3, 4])


def test_numpy_results_come_back_as_a_list_when_an_item_failed() -> None:
    np = pytest.importorskip("numpy")

    @cache_batch_variable("items", isolate=ItemError, return_exceptions=True)
    def f(items: list[int]) -> Any:
        if 0 in items:
            raise ItemError(0)
        return np.array([[i, i] for i in items], dtype=np.float32)

    out = f([1, 0, 2])
    assert isinstance(out, list)
    assert out[1] == ItemError(0)
    assert out[0].tolist() == [1.0, 1.0]
    assert out[2].tolist() == [2.0, 2.0]
    assert f([1, 2]).shape == (2, 2)  # all hits, no failure: an array as usual


def test_the_error_pickles() -> None:
    f = cache_batch_variable("items", isolate=ItemError)(failing_on({"x"}))
    with pytest.raises(BatchItemsError) as caught:
        f(["a", "x"])
    again = pickle.loads(pickle.dumps(caught.value))
    assert str(again) == str(caught.value)
    assert again.errors == {1: ItemError("x")}
    assert again.results == ["<a>", ItemError("x")]


def test_several_batch_parameters_and_a_key_function() -> None:
    @cache_batch_variable(("ids", "texts"), isolate=ItemError, return_exceptions=True)
    def f(ids: list[int], texts: list[str]) -> list[str]:
        if "bad" in texts:
            raise ItemError("bad")
        return [f"{i}:{t}" for i, t in zip(ids, texts)]

    assert f([1, 2, 3], ["a", "bad", "c"]) == ["1:a", ItemError("bad"), "3:c"]

    @cache_batch_variable("docs", key=lambda d: d["id"], isolate=ItemError, return_exceptions=True)
    def g(docs: list[dict[str, Any]]) -> list[str]:
        if any(d["text"] == "bad" for d in docs):
            raise ItemError("bad")
        return [d["text"].upper() for d in docs]

    docs = [{"id": 1, "text": "a"}, {"id": 2, "text": "bad"}, {"id": 1, "text": "a"}]
    assert g(docs) == ["A", ItemError("bad"), "A"]


# -- callers who join a computation in flight -------------------------------------------


def test_a_thread_that_joined_gets_the_same_per_item_outcome() -> None:
    entered, release = threading.Event(), threading.Event()
    called_with_z = threading.Event()
    calls: list[list[str]] = []

    @cache_batch_variable("items", isolate=ItemError)
    def f(items: list[str]) -> list[str]:
        calls.append(list(items))
        if "z" in items:
            called_with_z.set()
        if items == ["a", "x", "b"]:
            entered.set()
            assert release.wait(timeout=30)
        if "x" in items:
            raise ItemError("x")
        return [i.upper() for i in items]

    outcomes: dict[str, BatchItemsError] = {}

    def call(name: str, items: list[str]) -> None:
        try:
            f(items)
        except BatchItemsError as exc:
            outcomes[name] = exc

    owner = threading.Thread(target=call, args=("owner", ["a", "x", "b"]))
    owner.start()
    assert entered.wait(timeout=30)
    joiner = threading.Thread(target=call, args=("joiner", ["z", "x", "b", "x"]))
    joiner.start()
    assert called_with_z.wait(timeout=30)  # it has joined "x" and "b", and computes "z"
    release.set()
    owner.join()
    joiner.join()
    assert outcomes["owner"].results == ["A", ItemError("x"), "B"]
    assert outcomes["joiner"].results == ["Z", ItemError("x"), "B", ItemError("x")]
    assert outcomes["joiner"].errors[1] is outcomes["owner"].errors[1]
    assert ["z"] in calls
    assert sum(call.count("x") for call in calls) == 3  # x only in the owner's halving
    assert f.cache_info().joined == 2  # "x" and "b", each distinct key once


def test_an_asyncio_caller_that_joined_gets_the_same_per_item_outcome() -> None:
    async def main() -> tuple[Any, Any, list[list[str]]]:
        entered, release, called_with_z = asyncio.Event(), asyncio.Event(), asyncio.Event()
        calls: list[list[str]] = []

        @cache_batch_variable("items", isolate=ItemError, return_exceptions=True)
        async def f(items: list[str]) -> list[str]:
            calls.append(list(items))
            if "z" in items:
                called_with_z.set()
            if items[0] == "a":
                entered.set()
                await release.wait()
            if "x" in items:
                raise ItemError("x")
            return [i.upper() for i in items]

        owner = asyncio.ensure_future(f(["a", "x"]))
        await entered.wait()
        joiner = asyncio.ensure_future(f(["x", "z", "a", "x"]))
        await called_with_z.wait()  # it has joined "a" and "x", and computes "z"
        release.set()
        return await owner, await joiner, calls

    owner, joiner, calls = asyncio.run(main())
    assert owner == ["A", ItemError("x")]
    assert joiner == [ItemError("x"), "Z", "A", ItemError("x")]
    assert calls[:2] == [["a", "x"], ["z"]]
    assert sum(call.count("x") for call in calls) == 2  # only in the owner's halving


# -- the property --------------------------------------------------------------------


ITEMS = st.integers(0, 15)


def plain_alone(item: int, bad: frozenset[int]) -> Any:
    """What the plain function returns for the item alone: its result or its exception."""
    return ItemError(item) if item in bad else ("r", item)


def check_isolation(
    calls: list[list[int]],
    bad: frozenset[int],
    max_batch_size: int | None,
    max_batch_cost: int | None,
    is_async: bool,
) -> None:
    seen: list[list[int]] = []
    cost_calls: list[int] = []

    def body(items: list[int]) -> list[Any]:
        seen.append(list(items))
        for item in items:
            if item in bad:
                raise ItemError(item)
        return [("r", item) for item in items]

    def cost(item: int) -> int:
        cost_calls.append(item)
        return item % 5

    options: dict[str, Any] = {
        "isolate": ItemError, "return_exceptions": True, "max_batch_size": max_batch_size,
    }  # fmt: skip
    if max_batch_cost is not None:
        options.update(cost=cost, max_batch_cost=max_batch_cost)
    loop = asyncio.new_event_loop() if is_async else None
    try:
        if loop is not None:

            async def abody(items: list[int]) -> list[Any]:
                await asyncio.sleep(0)
                return body(items)

            f: Any = cache_batch_variable("items", **options)(abody)
        else:
            f = cache_batch_variable("items", **options)(body)
        for batch in calls:
            before = len(cost_calls)
            result = f(batch)
            if loop is not None:
                result = loop.run_until_complete(result)
            assert result == [plain_alone(i, bad) for i in batch]
            if max_batch_cost is not None:  # cost is called once per distinct item
                assert sorted(cost_calls[before:]) == sorted(set(batch))
    finally:
        if loop is not None:
            loop.close()
    for sent in seen:
        assert len(sent) == len(set(sent))
        if max_batch_size is not None:
            assert len(sent) <= max_batch_size
        if max_batch_cost is not None and len(sent) > 1:
            assert sum(i % 5 for i in sent) <= max_batch_cost
    info = f.cache_info()
    assert info.currsize == len({i for batch in calls for i in batch} - bad)
    assert info.hits + info.misses == sum(map(len, calls))
    if max_batch_cost is not None:
        assert info.cost_paid + info.cost_saved == sum(i % 5 for b in calls for i in b)


PROPERTY = {
    "calls": st.lists(st.lists(ITEMS, max_size=14), max_size=8),
    "bad": st.frozensets(ITEMS, max_size=6),
    "max_batch_size": st.none() | st.integers(1, 6),
    "max_batch_cost": st.none() | st.integers(1, 12),
}


@settings(max_examples=150, deadline=None)
@given(**PROPERTY)
def test_cached_with_isolate_equals_the_plain_function_item_by_item_sync(
    calls: list[list[int]],
    bad: frozenset[int],
    max_batch_size: int | None,
    max_batch_cost: int | None,
) -> None:
    check_isolation(calls, bad, max_batch_size, max_batch_cost, is_async=False)


@settings(max_examples=60, deadline=None)
@given(**PROPERTY)
def test_cached_with_isolate_equals_the_plain_function_item_by_item_async(
    calls: list[list[int]],
    bad: frozenset[int],
    max_batch_size: int | None,
    max_batch_cost: int | None,
) -> None:
    check_isolation(calls, bad, max_batch_size, max_batch_cost, is_async=True)
