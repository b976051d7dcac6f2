"""Invariants over random call sequences (hypothesis)."""

from __future__ import annotations

import asyncio
import math
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import cachetools
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batche import cache_batch_variable
from batche.stores import RedisStore, SQLiteStore

from .conftest import Stores

ITEMS = st.one_of(st.integers(-3, 12), st.sampled_from(["a", "b", "c", "", "é"]), st.none())
BATCH = st.lists(ITEMS, max_size=12)
MODEL = st.sampled_from(["small", "large"])
CALLS = st.lists(st.tuples(BATCH, MODEL), max_size=25)
STORES = st.sampled_from(["dict", "lru", "lru1", "ttl", "cachetools-lru", "lfu"])


def reference(item: Any, model: str) -> tuple[str, str, str]:
    """The plain function's answer for one item (type included: 1 and True must not mix)."""
    return (type(item).__name__, repr(item), model)


def store_options(kind: str, clock: list[float]) -> dict[str, Any]:
    return {
        "dict": {},
        "lru": {"maxsize": 5},
        "lru1": {"maxsize": 1},
        "ttl": {"cache": cachetools.TTLCache(maxsize=6, ttl=10, timer=lambda: clock[0])},
        "cachetools-lru": {"cache": cachetools.LRUCache(maxsize=4)},
        "lfu": {"cache": cachetools.LFUCache(maxsize=4)},
    }[kind]


def check_sequence(calls: list[tuple[list[Any], str]], kind: str, is_async: bool) -> None:
    clock = [0.0]
    seen: list[tuple[list[Any], str]] = []

    def body(items: list[Any], model: str = "small") -> list[Any]:
        seen.append((list(items), model))
        return [reference(i, model) for i in items]

    if is_async:

        async def abody(items: list[Any], model: str = "small") -> list[Any]:
            return body(items, model)

        f: Any = cache_batch_variable("items", **store_options(kind, clock))(abody)
    else:
        f = cache_batch_variable("items", **store_options(kind, clock))(body)
    stored: set[tuple[Any, str]] = set()
    for n, (batch, model) in enumerate(calls):
        clock[0] = n * 3.0  # entries expire after about three calls with the TTL store
        before = len(seen)
        result = f(batch, model=model)
        if is_async:
            result = asyncio.run(result)
        assert result == [reference(i, model) for i in batch]
        asked = set(batch)
        sent = seen[before:]
        assert len(sent) <= 1
        if sent:
            items, sent_model = sent[0]
            assert sent_model == model
            # distinct, in order of first appearance, only items of this call
            assert items == list(dict.fromkeys(items))
            first_order = [i for i in dict.fromkeys(batch) if i in set(items)]
            assert items == first_order
            assert set(items) <= asked
        if kind == "dict":
            # unbounded: exactly the items never computed before for this model
            expected = [i for i in dict.fromkeys(batch) if (i, model) not in stored]
            assert [s[0] for s in sent] == ([expected] if expected else [])
            stored.update((i, model) for i in asked)
    info = f.cache_info()
    assert info.hits + info.misses == sum(len(b) for b, _ in calls)
    assert info.misses == sum(len(items) for items, _ in seen)


@settings(max_examples=150, deadline=None)
@given(calls=CALLS, kind=STORES)
def test_cached_equals_plain_sync(calls: list[tuple[list[Any], str]], kind: str) -> None:
    check_sequence(calls, kind, is_async=False)


@settings(max_examples=60, deadline=None)
@given(calls=CALLS, kind=STORES)
def test_cached_equals_plain_async(calls: list[tuple[list[Any], str]], kind: str) -> None:
    check_sequence(calls, kind, is_async=True)


@settings(max_examples=100, deadline=None)
@given(calls=st.lists(BATCH, max_size=20), max_batch_size=st.integers(1, 5))
def test_chunks_never_exceed_max_batch_size(calls: list[list[Any]], max_batch_size: int) -> None:
    sizes: list[int] = []

    @cache_batch_variable("items", max_batch_size=max_batch_size)
    def f(items: list[Any]) -> list[Any]:
        sizes.append(len(items))
        return [reference(i, "m") for i in items]

    for batch in calls:
        assert f(batch) == [reference(i, "m") for i in batch]
    assert all(1 <= s <= max_batch_size for s in sizes)


@settings(max_examples=100, deadline=None)
@given(corpus=st.lists(ITEMS, max_size=60), chunk_size=st.integers(1, 9))
def test_map_equals_plain(corpus: list[Any], chunk_size: int) -> None:
    f = cache_batch_variable("items")(lambda items: [reference(i, "m") for i in items])
    assert list(f.map(iter(corpus), chunk_size=chunk_size)) == [reference(i, "m") for i in corpus]


# -- one rule for items that compare equal but differ, in every store ----------------------

# 1, 1.0, True, np.int64(1) compare equal; so do 0, 0.0, -0.0, False; math.nan never equals
# itself but is one object (as is np.nan); tuples nest them.
TRICKY = st.sampled_from(
    [1, 1.0, True, np.int64(1), np.float64(1.0), 0, 0.0, -0.0, False, 2, 2.0, 0.5, "1", b"1",
     None, math.nan, (1,), (1.0,), (True, "a"), (0.0, -0.0)]
)  # fmt: skip
TRICKY_CALLS = st.lists(
    st.tuples(st.lists(TRICKY, max_size=6), st.sampled_from(["m", 1, 1.0, True])), max_size=8
)


def run_on(store: Any, calls: list[tuple[list[Any], Any]], typed: bool) -> list[Any]:
    """The answers of ``calls`` and the batches the function computed, in order."""
    seen: list[Any] = []

    def body(items: list[Any], model: Any = "m") -> list[Any]:
        seen.append([reference(i, repr(model)) for i in items])
        return [reference(i, repr(model)) for i in items]

    body.__qualname__ = f"body_{uuid.uuid4().hex}"  # a namespace of its own per example
    f = cache_batch_variable("items", cache=store, typed=typed)(body)
    answers = [f(batch, model=model) for batch, model in calls]
    return [answers, seen]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(calls=TRICKY_CALLS, typed=st.booleans())
def test_every_store_follows_one_rule_for_equal_items(
    redis_url: str, tmp_path: Path, calls: list[tuple[list[Any], Any]], typed: bool
) -> None:
    """Memory, SQLite and Redis give the same answers and compute the same batches."""
    outcomes = {}
    for kind, store in (
        ("memory", {}),
        ("sqlite", SQLiteStore(tmp_path / "rule.db")),
        ("redis", RedisStore(redis_url)),
    ):
        outcomes[kind] = run_on(store, calls, typed)
        if hasattr(store, "close"):
            store.close()
    assert outcomes["sqlite"] == outcomes["memory"]
    assert outcomes["redis"] == outcomes["memory"]
    if not typed:  # the rule of a dict (and lru_cache): equal items are one entry
        entries: dict[Any, Any] = {}
        for batch, model in calls:
            for item in batch:
                entries.setdefault((item, model), reference(item, repr(model)))
        expected = [[entries[item, model] for item in batch] for batch, model in calls]
        assert outcomes["memory"][0] == expected


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        (False, ["int 1", "int 1", "int 1", "float 0.0", "float 0.0"]),
        (True, ["int 1", "float 1.0", "bool True", "float 0.0", "float -0.0"]),
    ],
)
def test_typed_keeps_equal_items_apart_in_every_store(
    stores: Stores, typed: bool, expected: list[str]
) -> None:
    def describe(items: list[Any]) -> list[str]:
        return [f"{type(i).__name__} {i}" for i in items]

    f = cache_batch_variable("items", cache=stores.new(), typed=typed)(describe)
    assert [f([item])[0] for item in (1, 1.0, True, 0.0, -0.0)] == expected
    assert f.cache_info().misses == len(set(expected))


def test_nan_in_memory_is_found_again_only_as_the_same_object(stores: Stores) -> None:
    """Documented: outside the process every NaN is one item; in memory, as in a dict, a
    NaN is found again only when it is the same object (math.nan, np.nan are)."""
    f = cache_batch_variable("items", cache=stores.new())(lambda items: [str(i) for i in items])
    f.cache_clear()
    assert f([math.nan, math.nan, float("nan"), float("nan")]) == ["nan"] * 4
    assert f([math.nan]) == ["nan"]
    misses = f.cache_info().misses
    assert misses == (3 if stores.kind == "memory" else 1)
    typed = cache_batch_variable("items", cache=stores.new(), typed=True)(
        lambda items: [str(i) for i in items]
    )
    typed.cache_clear()
    assert typed([math.nan, float("nan"), np.float64("nan")]) == ["nan"] * 3
    assert typed.cache_info().misses == 2  # typed: every NaN of a type is one item, everywhere


# -- batche 0.1.1, the real package -------------------------------------------------------


@pytest.fixture(scope="session")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """batche 0.1.1 from PyPI, imported as ``batche_legacy`` beside this package."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from _common import legacy_batche

    module = legacy_batche(tmp_path_factory.mktemp("legacy"))
    assert module is not None, "pip could not install batche==0.1.1"
    return module


HASHABLE = st.one_of(st.integers(0, 9), st.sampled_from(["a", "b", "c", "d"]))


@settings(max_examples=200, deadline=None)
@given(calls=st.lists(st.lists(HASHABLE, min_size=1, max_size=8), max_size=25),
       maxsize=st.one_of(st.none(), st.integers(1, 6)))  # fmt: skip
def test_same_number_of_calls_as_batche_0_1_1(
    legacy: ModuleType, calls: list[list[Any]], maxsize: int | None
) -> None:
    counts = {"old": 0, "new": 0}

    def make(which: str) -> Any:
        def f(batch_items):  # type: ignore[no-untyped-def]  # 0.1.1 cannot read string annotations
            counts[which] += 1
            return [reference(i, "m") for i in batch_items]

        return f

    old = legacy.cache_batch_variable(batch_variable_name="batch_items", maxsize=maxsize)(
        make("old")
    )
    new = cache_batch_variable(batch_variable_name="batch_items", maxsize=maxsize)(make("new"))
    for batch in calls:
        assert new(batch) == old(batch)
        assert counts["new"] == counts["old"]


def test_legacy_import_paths_and_errors(legacy: ModuleType) -> None:
    from batche.batche import BatcheException
    from batche.batche import cache_batch_variable as same

    assert same is cache_batch_variable
    old_exc = legacy.batche.BatcheException
    # Real annotation objects: batche 0.1.1 fails on the strings this module would make.
    namespace: dict[str, Any] = {}
    source = (
        "def wrong(batch_items: list) -> list:\n    return batch_items[:1]\n"
        "def bad_annotation(batch_items: int) -> list:\n    return []\n"
        "def bad_return(batch_items: list) -> int:\n    return 0\n"
    )
    exec(compile(source, "<legacy-functions>", "exec", dont_inherit=True), namespace)
    pairs = ((legacy.cache_batch_variable, old_exc), (cache_batch_variable, BatcheException))
    for decorator, exc_type in pairs:
        # 0.1.1's exact phrases, which code may match on, are in our messages too
        f = decorator(batch_variable_name="batch_items")(namespace["wrong"])
        assert _SAME_LENGTH in raised(exc_type, f, [1, 2])
        assert "batch_items must be a valid argument of the batch function" in raised(exc_type, f)
        nope = decorator(batch_variable_name="nope")
        assert "nope must be a valid argument of the batch function" in raised(
            exc_type, nope, namespace["wrong"]
        )
        named = decorator(batch_variable_name="batch_items")
        assert "batch_items annotation must be a list of hashable objects" in raised(
            exc_type, named, namespace["bad_annotation"]
        )
        assert "return annotation must be a list" in raised(
            exc_type, named, namespace["bad_return"]
        )


_SAME_LENGTH = "batch function must return a list of predictions of the same length as the batch"


def raised(exc_type: type[BaseException], call: Any, *args: Any) -> str:
    """The message of the ``exc_type`` error that ``call(*args)`` raises."""
    with pytest.raises(exc_type) as caught:
        call(*args)
    return str(caught.value)
