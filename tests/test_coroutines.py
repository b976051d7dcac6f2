"""Telling async callables and generator functions apart (batche/_coroutines.py)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from batche import BatchDefinitionError, cache_batch_variable, dynamically


def gen(texts: list[str]) -> Iterator[list[int]]:
    yield [len(t) for t in texts]


async def agen(texts: list[str]) -> AsyncIterator[list[int]]:
    yield [len(t) for t in texts]


@pytest.mark.parametrize(
    ("func", "kind"),
    [
        (gen, "a generator function"),
        (agen, "an async generator function"),
        (functools.partial(agen), "an async generator function"),
    ],
)
@pytest.mark.parametrize(
    ("decorator", "name"),
    [(cache_batch_variable("texts"), "cache_batch_variable"), (dynamically(), "dynamically")],
)
def test_a_generator_function_is_refused_at_decoration(
    func: Any, kind: str, decorator: Any, name: str
) -> None:
    # It was accepted, and every call failed with BatchResultError ("returned generator")
    with pytest.raises(BatchDefinitionError) as caught:
        decorator(func)
    assert str(caught.value) == (
        f"{name}() decorates a function that returns a list of results; "
        f"{func_name_of(func)}() is {kind}: return the list instead of yielding"
    )


def func_name_of(func: Any) -> str:
    return str(getattr(func, "func", func).__qualname__)
