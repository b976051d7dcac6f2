"""The pure split/merge core."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from batche._plan import MISS, merge, plan


def test_plan_dedups_in_order_of_first_appearance() -> None:
    keys = ["a", "b", "a", "c", "b", "d"]
    values = [MISS, 1, MISS, MISS, 1, MISS]
    p = plan(keys, values)
    assert p.positions == [0, 2, 3, 5]
    assert p.todo == ["a", "c", "d"]
    assert p.firsts == [0, 3, 5]


def test_plan_of_all_hits_is_empty() -> None:
    p = plan(["a"], [None])
    assert (p.positions, p.todo, p.firsts) == ([], [], [])


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
    values: list[Any] = [k.upper() if hit else MISS for k, hit in rows]
    p = plan(keys, values)
    assert p.todo == list(dict.fromkeys(keys[i] for i in p.positions))
    assert [keys[i] for i in p.firsts] == p.todo
    last_use = {k: i for i, k in enumerate(keys) if i in p.positions}
    assert p.write_order(p.todo) == sorted(p.todo, key=last_use.__getitem__)
    assert all(keys.index(keys[i]) <= i for i in p.firsts)
    merged = merge(values, keys, p.positions, {k: k.upper() for k in p.todo})
    assert merged == [k.upper() for k in keys]
