"""Binding a call: the batch parameter (also of a partial), what the other arguments key,
and errors that name the function, the parameter and the fault."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from batche import BatchArgumentError, BatchDefinitionError, cache_batch_variable

from .conftest import Harness, Recorder, Stores


def embed(model: str, texts: list[str], dims: int = 2) -> list[str]:
    return [f"{model}:{t}:{dims}" for t in texts]


def test_a_partial_finds_its_batch_among_the_parameters_it_leaves() -> None:
    small = cache_batch_variable(functools.partial(embed, "small"))  # texts, dims are left
    assert small(["a", "b"]) == ["small:a:2", "small:b:2"]
    assert small(["a"], dims=3) == ["small:a:3"]
    assert small.cache_info().misses == 3
    named = cache_batch_variable(functools.partial(embed, dims=4))  # model, texts, *, dims
    assert named("m", ["a"]) == ["m:a:4"]


def test_errors_about_a_partial_name_its_function() -> None:
    small = cache_batch_variable(functools.partial(embed, "small"))
    for call, fault in (
        (lambda: small("abc"), "embed(): 'texts' must be a list of items, got str"),
        (lambda: small(["a"], dims=[3]), "embed(): argument 'dims' is part of the cache key"),
        (lambda: small(dims=3), "embed(): texts must be a valid argument of the batch function"),
    ):
        with pytest.raises(BatchArgumentError) as caught:
            call()
        assert str(caught.value).startswith(fault)
        assert "partial" not in str(caught.value)
    with pytest.raises(BatchDefinitionError) as caught:
        cache_batch_variable("text")(functools.partial(embed, "small"))
    assert str(caught.value).startswith("embed(): text must be a valid argument")
    assert "its parameters are: texts, dims" in str(caught.value)
    assert repr(small) == "<cached batch function embed>"


def test_an_unhashable_value_in_kwargs_is_named_by_its_key(stores: Stores) -> None:
    @cache_batch_variable("texts", cache=stores.new())
    def complete(texts: list[str], **options: Any) -> list[str]:
        return [f"{t}{sorted(options)}" for t in texts]

    with pytest.raises(BatchArgumentError) as caught:
        complete(["a"], temperature=0, stop=["\n"])
    assert str(caught.value) == (
        "test_an_unhashable_value_in_kwargs_is_named_by_its_key.<locals>.complete(): argument "
        "'stop' (in **options) is part of the cache key but its value is unhashable (list); "
        "pass ignore=('stop',) if it does not change the results, or a hashable value"
    )

    @cache_batch_variable("texts", cache=stores.new(), ignore=("stop",))
    def lenient(texts: list[str], **options: Any) -> list[str]:
        return [f"{t}{sorted(options)}" for t in texts]

    assert lenient(["a"], stop=["\n"]) == ["a['stop']"]
    assert lenient(["a"], stop=["?"]) == ["a['stop']"]  # left out of the key, as asked
    assert lenient.cache_info().misses == 1


def test_an_unhashable_value_in_args_is_named_by_its_position() -> None:
    @cache_batch_variable("texts")
    def join(texts: list[str], *parts: Any) -> list[str]:
        return [t + str(parts) for t in texts]

    with pytest.raises(BatchArgumentError, match=r"argument 1 of \*parts is part of the cache key"):
        join(["a"], "x", ["y"])


@pytest.mark.parametrize("batch", [{"a", "b"}, frozenset({"a"}), {"a": 1}, "ab", b"ab"])
def test_sets_mappings_and_strings_are_not_batches(harness: Harness, batch: Any) -> None:
    rec = Recorder()
    f = harness.decorate(rec)
    with pytest.raises(BatchArgumentError) as caught:
        harness.run(f(batch))
    message = str(caught.value)
    assert f"f(): 'items' must be a list of items, got {type(batch).__name__} (" in message
    if isinstance(batch, (set, frozenset)):
        assert "a set has no order to answer in" in message
    assert rec.calls == []


def test_a_dicts_keys_are_a_batch(harness: Harness) -> None:
    f = harness.decorate(Recorder())
    assert harness.run(f({"a": 1, "b": 2}.keys())) == ["<a>", "<b>"]


def test_batche_0_1_1_phrases_with_the_bare_name() -> None:
    def f(batch_items: list[str]) -> list[str]:
        return batch_items

    with pytest.raises(BatchDefinitionError) as caught:
        cache_batch_variable(batch_variable_name="nope")(f)
    assert "nope must be a valid argument of the batch function" in str(caught.value)

    def g(batch_items: int) -> list[str]:
        return []

    with pytest.raises(BatchDefinitionError) as caught:
        cache_batch_variable(batch_variable_name="batch_items")(g)
    assert "batch_items annotation must be a list of hashable objects" in str(caught.value)
    cached = cache_batch_variable(batch_variable_name="batch_items")(f)
    for call in (lambda: cached(), lambda: cached(other=1)):
        with pytest.raises(BatchArgumentError) as caught:
            call()
        assert "batch_items must be a valid argument of the batch function" in str(caught.value)
