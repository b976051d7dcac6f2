"""Keys: one rule for when two items are one entry, the same in memory and outside it."""

from __future__ import annotations

import enum
import math
from collections import namedtuple
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from batche._keys import Encoder, UnstableKeyError, canonical, typed_key


class Color(enum.IntEnum):
    RED = 1


Pair = namedtuple("Pair", "a b")

# Values that compare equal across types: 1 == 1.0 == True == np.int64(1) == Color.RED ...
NUMBERS = st.sampled_from(
    [0, 1, 2, -1, 2**64, True, False, 0.0, -0.0, 1.0, 2.0, 0.5, -0.5, 1e300, math.inf,
     -math.inf, complex(1, 0), complex(0, -0.0), complex(1, 2), np.int64(1), np.float64(1.0),
     np.float32(0.5), np.float64(-0.0), np.bool_(True), Color.RED]
)  # fmt: skip
ATOMS = st.one_of(NUMBERS, st.sampled_from(["1", "a", "", b"1", b"", None]))
VALUES = st.recursive(
    ATOMS,
    lambda inner: st.tuples(inner, inner) | st.builds(Pair, inner, inner),
    max_leaves=6,
)


def same_typed(a: Any, b: Any) -> bool:
    """The typed rule, spelled out: same type, same value, same sign; NaN is one value."""
    if type(a) is not type(b):
        return False
    if isinstance(a, tuple):
        return len(a) == len(b) and all(map(same_typed, a, b))
    if isinstance(a, complex):
        return same_typed(a.real, b.real) and same_typed(a.imag, b.imag)
    if isinstance(a, (float, np.floating)):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return bool(a == b) and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


@given(VALUES, VALUES)
def test_untyped_one_entry_exactly_when_a_dict_makes_one_key(a: Any, b: Any) -> None:
    # what a dict does in memory (equal and equal hashes) is what the encoding does
    assert (canonical(a) == canonical(b)) == (len({a: None, b: None}) == 1)


@given(VALUES, VALUES)
def test_typed_one_entry_exactly_for_same_type_and_value(a: Any, b: Any) -> None:
    assert (canonical(a, typed=True) == canonical(b, typed=True)) == same_typed(a, b)
    # the in-memory typed key follows the same rule
    assert (typed_key(a) == typed_key(b)) == same_typed(a, b)
    if typed_key(a) == typed_key(b):
        assert hash(typed_key(a)) == hash(typed_key(b))


def test_the_rules_on_the_usual_suspects() -> None:
    assert len({canonical(v) for v in (1, 1.0, True, np.int64(1), Color.RED, 1 + 0j)}) == 1
    assert canonical(0.0) == canonical(-0.0) == canonical(0) == canonical(False)
    assert canonical(Pair(1, "a")) == canonical((1.0, "a"))
    typed = [canonical(v, typed=True) for v in (1, 1.0, True, np.int64(1), Color.RED, 1 + 0j)]
    assert len(set(typed)) == 6
    assert canonical(0.0, typed=True) != canonical(-0.0, typed=True)
    assert typed_key(0.0) != typed_key(-0.0)
    # "1", b"1" and 1 never compare equal: never one entry
    assert len({canonical(v) for v in ("1", b"1", 1, (1,), None)}) == 5


def test_every_nan_is_one_value_outside_memory() -> None:
    nan, other = float("nan"), float("nan")
    assert canonical(nan) == canonical(other) == canonical(np.float64("nan"))
    assert typed_key(nan) == typed_key(other)  # typed: one value in memory too


def test_order_of_frozensets_does_not_matter() -> None:
    assert canonical(frozenset({3, 1, 2})) == canonical(frozenset({2, 3, 1}))
    assert canonical(frozenset({1})) == canonical(frozenset({1.0}))
    assert canonical(frozenset({1}), typed=True) != canonical(frozenset({1.0}), typed=True)


@pytest.mark.parametrize("value", [[1], {"a": 1}, {1}, bytearray(b"x"), object()])
def test_values_without_a_stable_encoding_are_named(value: Any) -> None:
    with pytest.raises(UnstableKeyError, match=f"argument 'client' is a {type(value).__name__}"):
        canonical(value, "argument 'client'")


def test_a_numpy_scalar_without_an_exact_python_value_is_refused() -> None:
    with pytest.raises(UnstableKeyError, match="item 0 of 'x' is a numpy longdouble"):
        canonical(np.longdouble(1) / 3, "item 0 of 'x'")


@given(st.lists(st.one_of(st.text(), st.integers()), max_size=10))
def test_encoder_keys_depend_on_every_part(items: list[Any]) -> None:
    base = Encoder("ns", "1").keys(items, ("m",), None)
    assert all(key.startswith("ns:1:") for key in base)
    assert len(set(base)) == len({canonical(i) for i in items})  # distinct items, distinct keys
    assert base == Encoder("ns", "1").keys(items, ("m",), None)
    if items:
        assert base != Encoder("ns", "2").keys(items, ("m",), None)
        assert base != Encoder("ns", "1").keys(items, ("n",), None)
        assert base != Encoder("other", "1").keys(items, ("m",), None)


def test_typed_encoder_keeps_types_apart() -> None:
    untyped = Encoder("ns", "1").keys([1, 1.0, True, "1"], (), None)
    typed = Encoder("ns", "1", typed=True).keys([1, 1.0, True, "1"], (), None)
    assert len(set(untyped)) == 2
    assert len(set(typed)) == 4
    assert (typed[0], typed[3]) == (untyped[0], untyped[3])  # ints and strings: the same keys
