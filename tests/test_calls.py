"""Planning a call: what ``map`` streams, and values that cannot be part of a key."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from batche import BatchArgumentError, cache_batch_variable

from .conftest import Stores


@pytest.mark.parametrize("iterable", [None, 3, object()])
def test_map_of_what_is_not_iterable_names_the_function_and_the_parameter(iterable: Any) -> None:
    @cache_batch_variable("texts")
    def embed(texts: list[str]) -> list[int]:
        return [len(t) for t in texts]

    @cache_batch_variable("texts")
    async def aembed(texts: list[str]) -> list[int]:
        return embed.__wrapped__(texts)  # type: ignore[no-any-return]

    async def collect() -> list[int]:
        return [result async for result in aembed.map(iterable)]

    words = (
        ".map(): 'texts' must be an iterable of items (map's first argument), "
        f"got {type(iterable).__name__}"
    )
    with pytest.raises(BatchArgumentError) as caught:
        list(embed.map(iterable))
    assert str(caught.value).endswith(f"<locals>.embed{words}")
    with pytest.raises(BatchArgumentError) as caught:
        asyncio.run(collect())
    assert str(caught.value).endswith(f"<locals>.aembed{words}")


@pytest.mark.parametrize("iterable", ["abc", b"abc", {"a": 1}, {"a", "b"}])
def test_map_refuses_what_a_call_refuses(iterable: Any) -> None:
    calls: list[list[Any]] = []

    @cache_batch_variable("texts")
    def embed(texts: list[str]) -> list[int]:
        calls.append(list(texts))
        return [len(t) for t in texts]

    @cache_batch_variable("texts")
    async def aembed(texts: list[str]) -> list[int]:
        return embed.__wrapped__(texts)  # type: ignore[no-any-return]

    async def collect() -> list[int]:
        return [result async for result in aembed.map(iterable)]

    words = f".map(): 'texts' must be an iterable of items, got {type(iterable).__name__} ("
    with pytest.raises(BatchArgumentError) as caught:
        list(embed.map(iterable))
    assert f"<locals>.embed{words}" in str(caught.value)
    with pytest.raises(BatchArgumentError) as caught:
        asyncio.run(collect())
    assert f"<locals>.aembed{words}" in str(caught.value)
    assert calls == []
    assert list(embed.map(iter(["ab", "c"]))) == [2, 1]  # an iterator of strings is fine


def test_every_store_refuses_the_same_values_in_the_same_words(stores: Stores) -> None:
    @cache_batch_variable("texts", cache=stores.new())
    def embed(texts: list[Any], options: Any = None) -> list[str]:
        return [str(t) for t in texts]

    for call, words in (
        (lambda: embed(["a", ["b"]]), "item 1 of 'texts' is unhashable (list); pass key="),
        (lambda: embed([("a", {"b": 1})]), "item 0 of 'texts' is unhashable (tuple); pass key="),
        (lambda: embed(["a"], options={"x": 1}), "argument 'options' is part of the cache key"),
    ):
        with pytest.raises(BatchArgumentError) as caught:
            call()
        assert str(caught.value).startswith(
            "test_every_store_refuses_the_same_values_in_the_same_words.<locals>.embed(): " + words
        )
    assert embed.cache_info().misses == 0
