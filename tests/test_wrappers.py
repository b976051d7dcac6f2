"""The decorated functions' surface: metadata, coroutine functions, invalidate, map."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from batche import BatchArgumentError, cache_batch_variable

from .conftest import Recorder


def test_signature_and_metadata_are_kept() -> None:
    def embed(texts: list[str], model: str = "small") -> list[str]:
        """Embed texts."""
        return list(texts)

    cached = cache_batch_variable("texts")(embed)
    assert cached.__wrapped__ is embed
    assert cached.__name__ == "embed"
    assert cached.__doc__ == "Embed texts."
    assert inspect.signature(cached) == inspect.signature(embed)


def test_async_wrapper_is_a_coroutine_function() -> None:
    async def embed(texts: list[str]) -> list[str]:
        return texts

    cached = cache_batch_variable(embed)
    assert asyncio.iscoroutine(coro := cached(["a"]))
    assert asyncio.run(coro) == ["a"]
    from batche._coroutines import is_async_callable

    assert is_async_callable(cached)


def test_invalidate_drops_items_for_those_arguments() -> None:
    rec = Recorder(lambda item, model: f"{item}@{model}")

    @cache_batch_variable("texts")
    def embed(texts: list[str], model: str = "small") -> list[str]:
        return rec(texts, model)

    embed(["a", "b"])
    embed(["a"], model="large")
    embed.invalidate(["a", "zz"])
    embed(["a", "b"])
    embed(["a"], model="large")
    assert rec.calls == [["a", "b"], ["a"], ["a"]]
    embed.invalidate(["a"], model="large")
    embed(["a"], "large")
    assert rec.calls[-1] == ["a"]


def test_map_streams_lazily_in_order_with_caching() -> None:
    rec = Recorder()
    f = cache_batch_variable("items")(lambda items: rec(items))
    pulled: list[int] = []

    def corpus() -> Any:
        for i in range(10**9):  # unbounded on purpose: map must not exhaust it
            pulled.append(i)
            yield i % 7

    stream = f.map(corpus(), chunk_size=4)
    first = [next(stream) for _ in range(10)]
    assert first == [f"<{i % 7}>" for i in range(10)]
    assert len(pulled) == 12  # three chunks of four, nothing more
    assert rec.calls == [[0, 1, 2, 3], [4, 5, 6]]
    with pytest.raises(BatchArgumentError, match="chunk_size must be an int >= 1"):
        next(f.map([1], chunk_size=0))


def test_async_map_over_sync_and_async_iterables() -> None:
    rec = Recorder()

    async def body(items: list[int], offset: int = 0) -> list[int]:
        rec.calls.append(list(items))
        return [i + offset for i in items]

    f = cache_batch_variable(body)

    async def agen() -> Any:
        for i in range(5):
            yield i

    async def collect() -> tuple[list[int], list[int]]:
        a = [x async for x in f.map(range(5), 10, chunk_size=2)]
        b = [x async for x in f.map(agen(), offset=10, chunk_size=2)]
        return a, b

    a, b = asyncio.run(collect())
    assert a == b == [10, 11, 12, 13, 14]
    assert rec.calls == [[0, 1], [2, 3], [4]]


# -- pickling: by reference, as functools.lru_cache functions -----------------------------


def test_module_level_functions_pickle_and_copy_as_themselves() -> None:
    import copy
    import pickle

    from . import _pickled

    for f in (_pickled.embed, _pickled.aembed, _pickled.Model.embed, _pickled.Model.plain):
        assert pickle.loads(pickle.dumps(f)) is f
        assert copy.copy(f) is f
        assert copy.deepcopy(f) is f
    assert copy.deepcopy([_pickled.embed])[0] is _pickled.embed  # inside a structure too


def test_a_bound_method_pickles_with_its_instance() -> None:
    import pickle

    from ._pickled import Model

    bound = pickle.loads(pickle.dumps(Model(3).embed))
    assert bound.__self__ == Model(3)
    assert bound(["ab", "c"]) == [6, 3]


def test_a_bound_method_copies_as_a_bound_method_does() -> None:
    # deepcopy of a bound method binds the function to a copy of its instance; it used to
    # hand back the unbound function, whose calls then lacked their batch argument.
    import copy

    from ._pickled import Model

    model = Model(3)
    for method in (model.embed, model.score):
        shallow, deep = copy.copy(method), copy.deepcopy(method)
        assert shallow.__self__ is model
        assert deep.__self__ == model
        assert deep.__self__ is not model
        assert shallow(["ab", "c"]) == deep(["ab", "c"]) == method(["ab", "c"])
    assert copy.deepcopy(Model.embed) is Model.embed  # unbound: the function itself


def test_a_local_function_cannot_be_pickled_and_says_so() -> None:
    import pickle

    @cache_batch_variable("texts")
    def local(texts: list[str]) -> list[str]:
        return texts

    with pytest.raises((pickle.PicklingError, AttributeError), match="local"):
        pickle.dumps(local)
    unnamed = cache_batch_variable("items")(Recorder())
    with pytest.raises(pickle.PicklingError, match="Recorder, which has no name"):
        pickle.dumps(unnamed)


def test_spawned_process_pool_workers_call_the_function() -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from ._pickled import embed, run_aembed

    batches = [["a", "bb"], ["ccc"], ["a", "dddd"]]
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=spawn) as pool:
        assert list(pool.map(embed, batches)) == [[1, 2], [3], [1, 4]]
        assert list(pool.map(run_aembed, batches)) == [[1, 2], [3], [1, 4]]
        assert pool.submit(embed, ["x", "yy"]).result() == [1, 2]


def test_multiprocessing_pool_map_with_spawn() -> None:
    import multiprocessing

    from ._pickled import Model, embed

    with multiprocessing.get_context("spawn").Pool(2) as pool:
        assert pool.map(embed, [["a"], ["bb", "a"]]) == [[1], [2, 1]]
        assert pool.map(Model(2).embed, [["a"], ["bb"]]) == [[2], [4]]
