"""The pure split/merge core."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from batche._plan import MISS, plan

from ._counted import Counted


def test_plan_dedups_in_order_of_first_appearance() -> None:
    keys = ["a", "b", "a", "c", "b", "d"]
    values = [MISS, 1, MISS, MISS, 1, MISS]
    p = plan(keys, values)
    assert p.todo == ["a", "c", "d"]
    assert p.firsts() == [0, 3, 5]
    assert not p.whole
    assert p.merge({"a": "A", "c": "C", "d": "D"}) == ["A", 1, "A", "C", 1, "D"]


def test_plan_of_all_hits_is_empty() -> None:
    p = plan(["a"], [None])
    assert p.todo == []
    assert p.merge({}) == [None]


def test_plan_of_a_batch_of_new_items() -> None:
    p = plan(["x", "y"], None)
    assert p.whole
    assert p.todo == ["x", "y"]
    assert p.firsts() == [0, 1]
    assert p.merge({"x": 1, "y": 2}) == [1, 2]


def test_miss_is_told_apart_by_identity_not_equality() -> None:
    class EqualsAnything:
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = object.__hash__

    p = plan(["a", "b"], [EqualsAnything(), MISS])
    assert p.todo == ["b"]


@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.booleans()), max_size=30))
def test_plan_then_merge_fills_every_position(rows: list[tuple[str, bool]]) -> None:
    keys = [k for k, _ in rows]
    hit = {k for k, h in rows if h}
    values: list[Any] = [k.upper() if k in hit else MISS for k in keys]
    p = plan(keys, values)
    missing = [k for k in keys if k not in hit]
    assert p.todo == list(dict.fromkeys(missing))
    assert [keys[i] for i in p.firsts()] == p.todo
    assert all(keys.index(keys[i]) == i for i in p.firsts())
    last_use = {k: i for i, k in enumerate(keys)}
    assert p.write_order(p.todo) == sorted(p.todo, key=last_use.__getitem__)
    assert p.merge({k: k.upper() for k in p.todo}) == [k.upper() for k in keys]


def hashes_per_item(size: int, max_batch_size: int) -> float:
    """Dict operations per item of one call of ``size`` items, each item twice."""
    from batche import cache_batch_variable

    @cache_batch_variable("items", max_batch_size=max_batch_size)
    def f(items: list[Counted]) -> list[int]:
        return [item.value for item in items]

    items = [Counted(i % (size // 2)) for i in range(size)]
    Counted.hashes = 0
    assert f(items) == [i % (size // 2) for i in range(size)]
    return Counted.hashes / size


def test_chunks_of_a_batch_with_repeats_cost_linear_time() -> None:
    # The write order of a chunk used to be found from a rank of every miss of the
    # batch, made again for each chunk: n / max_batch_size chunks times n items.
    small, large = hashes_per_item(2_000, 10), hashes_per_item(8_000, 10)
    assert large < 20
    assert large < small * 1.2  # the same work per item at four times the size


def test_write_order_ranks_the_misses_once() -> None:
    keys = [Counted(i % 50) for i in range(100)]
    p = plan(keys, [MISS] * 100)
    Counted.hashes = 0
    for start in range(0, 50, 5):
        order = p.write_order(p.todo[start : start + 5])
        assert [k.value for k in order] == list(range(start, start + 5))
    assert Counted.hashes <= 100 + 2 * 50  # one rank of the 100 misses, a lookup per key
