"""The safe serializer: every value it takes comes back exactly (type included)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from batche._serialize import PickleSerializer, SafeSerializer, SerializationError

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
    st.text(), st.binary(),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.text(max_size=5), st.integers()), inner, max_size=4),
        st.lists(st.floats(allow_nan=False), min_size=1, max_size=40),  # the packed path
    ),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1 is not 1.0, a list not a tuple)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and a == 0.0:
        return math.copysign(1, a) == math.copysign(1, b)  # -0.0 stays -0.0
    return bool(a == b)


@given(VALUES)
def test_values_round_trip_exactly(value: Any) -> None:
    codec = SafeSerializer()
    assert same(codec.loads(codec.dumps(value)), value)


@given(hnp.arrays(dtype=hnp.scalar_dtypes(), shape=hnp.array_shapes(min_dims=0, max_dims=3)))
def test_numpy_arrays_round_trip_with_dtype_and_shape(array: np.ndarray) -> None:
    codec = SafeSerializer()
    back = codec.loads(codec.dumps(array))
    assert back.dtype == array.dtype
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_nan_survives() -> None:
    codec = SafeSerializer()
    assert math.isnan(codec.loads(codec.dumps(float("nan"))))


def test_refuses_what_it_cannot_store_safely() -> None:
    with pytest.raises(SerializationError, match="serializer='pickle'"):
        SafeSerializer().dumps(object())
    with pytest.raises(SerializationError, match="array of Python objects"):
        SafeSerializer().dumps(np.array([object()]))
    with pytest.raises(SerializationError, match="structured dtype"):
        SafeSerializer().dumps(np.zeros(2, dtype=[("x", "i4"), ("y", "f4")]))


@pytest.mark.parametrize(
    "data", [b"", b"junk", b"\xb7B1", b"\xb7B1s\x00\x00\x00\x09ab", b"\xb7B1Nx"]
)
def test_bad_data_is_an_error_not_a_value(data: bytes) -> None:
    with pytest.raises((ValueError, IndexError, TypeError)):
        SafeSerializer().loads(data)


def test_pickle_is_marked_and_checked() -> None:
    codec = PickleSerializer()
    assert codec.loads(codec.dumps({1, 2})) == {1, 2}
    with pytest.raises(ValueError, match="not a batche pickle"):
        codec.loads(SafeSerializer().dumps(1))


def test_a_result_the_store_cannot_write_names_the_function(tmp_path: Path) -> None:
    from batche import cache_batch_variable
    from batche.stores import SQLiteStore

    class Vector:
        pass

    store = SQLiteStore(tmp_path / "c.db")

    @cache_batch_variable("texts", cache=store)
    def embed(texts: list[str]) -> list[Vector]:
        return [Vector() for _ in texts]

    with pytest.raises(SerializationError) as caught:
        embed(["a"])
    assert isinstance(caught.value, TypeError)
    assert "<locals>.embed(): a " in str(caught.value)
    assert "Vector result cannot be stored by the safe serializer" in str(caught.value)
    store.close()
