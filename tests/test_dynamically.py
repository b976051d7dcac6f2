"""The decorator: its option checks at decoration time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from batche import BatchArgumentError, BatchDefinitionError, dynamically


def test_bad_input_and_options() -> None:
    f = dynamically(lambda xs: xs)
    with pytest.raises(BatchArgumentError, match=r"must be a list of items, got str; use .one"):
        f("abc")
    with pytest.raises(BatchDefinitionError, match="batch_size must be an int >= 1, got 0"):
        dynamically(batch_size=0)
    with pytest.raises(BatchDefinitionError, match="timeout_ms must be a number >= 0"):
        dynamically(timeout_ms=-1)
    with pytest.raises(BatchDefinitionError, match="pad_token must be a dict"):
        dynamically(pad_token=[0])
    f.close()


@pytest.mark.parametrize("batch", [{"b", "a"}, frozenset({"a", "b"})])
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_set_is_not_a_batch(batch: Any, kind: str) -> None:
    calls: list[list[str]] = []

    def body(texts: list[str]) -> list[str]:
        calls.append(texts)
        return [t.upper() for t in texts]

    async def abody(texts: list[str]) -> list[str]:
        return body(texts)

    f = dynamically(batch_size=4, timeout_ms=0)(body if kind == "sync" else abody)

    def call(batch: Any) -> Any:
        return f(batch) if kind == "sync" else asyncio.run(f(batch))

    expected = (
        rf"body\(\): 'texts' must be a list of items, got {type(batch).__name__} "
        r"\(a set has no order to answer in: pass a list, e.g. sorted\(...\)\)"
    )
    with pytest.raises(BatchArgumentError, match=expected):
        call(batch)
    assert calls == []
    assert call(sorted(batch)) == ["A", "B"]
    assert call({"a": 1, "b": 2}.keys()) == ["A", "B"]  # a dict's keys are ordered: a batch
    f.close()


def test_a_set_is_not_one_of_parallel_lists() -> None:
    @dynamically(batch_size=4, timeout_ms=0)
    def pair(texts: list[str], langs: list[str]) -> list[str]:
        return [t + lang for t, lang in zip(texts, langs)]

    with pytest.raises(BatchArgumentError, match=r"pair\(\): 'langs' must be a list .* got set"):
        pair(texts=["a", "b"], langs={"fr", "de"})
    assert pair(texts=["a"], langs=["fr"]) == ["afr"]
    pair.close()
