"""Keys that leave the process: canonical, type-tagged, the same for the same values."""

from __future__ import annotations

import enum
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from batche._keys import Encoder, UnstableKeyError, canonical

ATOMS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary())
KEYS = st.recursive(
    ATOMS, lambda inner: st.tuples(inner, inner) | st.frozensets(ATOMS, max_size=4), max_leaves=8
)


@given(KEYS)
def test_equal_values_give_equal_encodings(value: Any) -> None:
    assert canonical(value) == canonical(value)


def test_types_are_told_apart() -> None:
    encodings = [canonical(v) for v in (1, 1.0, True, "1", b"1", (1,), [1], None, 0, False)]
    assert len(set(encodings)) == len(encodings)


def test_order_of_dicts_and_sets_does_not_matter() -> None:
    assert canonical({"a": 1, "b": 2}) == canonical({"b": 2, "a": 1})
    assert canonical(frozenset({3, 1, 2})) == canonical(frozenset({2, 3, 1}))


def test_numpy_scalars_and_int_subclasses() -> None:
    class Color(enum.IntEnum):
        RED = 1

    assert canonical(np.int64(5)) == canonical(5)
    assert canonical(np.float32(0.5)) == canonical(0.5)
    assert canonical(Color.RED) != canonical(1)  # the type is part of the key
    assert canonical(Color.RED) == canonical(Color(1))
    assert canonical(float("nan")) == canonical(float("nan"))


def test_unstable_values_are_named() -> None:
    with pytest.raises(UnstableKeyError, match="argument 'client' is a object"):
        canonical(object(), "argument 'client'")


@given(st.lists(st.one_of(st.text(), st.integers()), max_size=10))
def test_encoder_keys_depend_on_every_part(items: list[Any]) -> None:
    base = Encoder("ns", "1").keys(items, ("m",), None, "'x'", ("model",))
    assert all(key.startswith("ns:1:") for key in base)
    assert len(set(base)) == len({canonical(i) for i in items})  # distinct items, distinct keys
    assert base == Encoder("ns", "1").keys(items, ("m",), None, "'x'", ("model",))
    if items:
        assert base != Encoder("ns", "2").keys(items, ("m",), None, "'x'", ("model",))
        assert base != Encoder("ns", "1").keys(items, ("n",), None, "'x'", ("model",))
        assert base != Encoder("other", "1").keys(items, ("m",), None, "'x'", ("model",))
