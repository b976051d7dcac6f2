"""The pure split/merge core."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from batche._plan import MISS, plan


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
