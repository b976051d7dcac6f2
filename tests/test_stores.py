"""The store contract, run on every store: memory, SQLite, Redis (a real server, and a real
3-primary cluster)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batche import BatchArgumentError, cache_batch_variable
from batche.stores import SQLiteStore, Store

from ._cluster import cluster_client
from .conftest import Stores


@pytest.fixture
def make_store(stores: Stores) -> Stores:
    """A factory of stores of one kind (several calls: the same storage, new objects)."""
    return stores


VALUES = [None, True, 0, -7, 2**80, 1.5, "text", "é", b"\x00bytes", [1.0, -2.5], [1, "a", None],
          (1, (2, "x")), {"k": [1, 2], "n": None}, []]  # fmt: skip


def test_round_trips_every_kind_of_value(make_store: Any) -> None:
    store = make_store()
    entries = {f"k{i}": value for i, value in enumerate(VALUES)}
    store.set_many(entries)
    assert store.get_many([*list(entries), "absent"]) == entries
    assert isinstance(store, Store)


def test_numpy_arrays_keep_dtype_and_shape(make_store: Any) -> None:
    store = make_store()
    vector = np.arange(384, dtype=np.float32) / 7
    store.set_many({"v": vector, "s": np.float32(0.25)})
    got = store.get_many(["v", "s"])
    assert got["v"].dtype == np.float32
    assert got["v"].shape == (384,)
    np.testing.assert_array_equal(got["v"], vector)
    assert got["s"] == np.float32(0.25)


def test_delete_clear_and_len(make_store: Any) -> None:
    store = make_store()
    store.set_many({"ns:1:a": 1, "ns:1:b": 2, "other:1:c": 3})
    assert len(store) == 3
    store.delete_many(["ns:1:a", "missing"])
    assert store.get_many(["ns:1:a", "ns:1:b"]) == {"ns:1:b": 2}
    store.clear("ns:1:")
    assert store.get_many(["ns:1:b", "other:1:c"]) == {"other:1:c": 3}
    store.clear()
    assert len(store) == 0


def test_async_twins(make_store: Any) -> None:
    store = make_store()

    async def main() -> None:
        await store.aset_many({"a": [1.0], "b": None})
        assert await store.aget_many(["a", "b", "c"]) == {"a": [1.0], "b": None}
        await store.adelete_many(["a"])
        assert await store.aget_many(["a", "b"]) == {"b": None}
        await store.aclear()
        assert await store.aget_many(["b"]) == {}
        if hasattr(store, "aclose"):
            await store.aclose()

    asyncio.run(main())


def test_a_second_object_sees_the_same_entries(make_store: Any) -> None:
    make_store().set_many({"shared": "yes"})
    assert make_store().get_many(["shared"]) == {"shared": "yes"}


# -- the decorator on every store ----------------------------------------------------------


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(calls=st.lists(st.lists(st.sampled_from(["a", "b", "c", "d", ""]), max_size=6), max_size=8))
def test_cached_equals_plain_on_every_store(make_store: Any, calls: list[list[str]]) -> None:
    store = make_store()
    store.clear()
    seen: list[list[str]] = []

    @cache_batch_variable("texts", cache=store)
    def embed(texts: list[str], model: str = "m") -> list[list[float]]:
        seen.append(list(texts))
        return [[float(len(t)), float(ord(t[0])) if t else 0.0] for t in texts]

    computed: set[str] = set()
    for batch in calls:
        assert embed(batch) == [[float(len(t)), float(ord(t[0])) if t else 0.0] for t in batch]
    for batch in seen:
        assert len(batch) == len(set(batch))
        assert not computed & set(batch)  # nothing computed twice
        computed.update(batch)


def test_namespace_and_version_keep_entries_apart(make_store: Any) -> None:
    if make_store.kind == "memory":
        pytest.skip("namespace and version belong to stores outside the process")
    store = make_store()
    calls: list[str] = []

    def model(tag: str) -> Any:
        def embed(texts: list[str]) -> list[str]:
            calls.append(tag)
            return [f"{tag}:{t}" for t in texts]

        return embed

    v1 = cache_batch_variable("texts", cache=store, namespace="embed", version=1)(model("v1"))
    again = cache_batch_variable("texts", cache=store, namespace="embed", version=1)(model("x"))
    v2 = cache_batch_variable("texts", cache=store, namespace="embed", version=2)(model("v2"))
    other = cache_batch_variable("texts", cache=store, namespace="other")(model("o"))
    assert v1(["a"]) == ["v1:a"]
    assert again(["a"]) == ["v1:a"]  # same namespace and version: shared
    assert v2(["a"]) == ["v2:a"]  # a new version does not see the old entries
    assert other(["a"]) == ["o:a"]
    assert calls == ["v1", "v2", "o"]
    v1.cache_clear()  # only this namespace and version
    assert v2(["a"]) == ["v2:a"]
    assert calls == ["v1", "v2", "o"]


def test_async_functions_on_every_store(make_store: Any) -> None:
    store = make_store()

    @cache_batch_variable("texts", cache=store)
    async def embed(texts: list[str]) -> list[int]:
        return [len(t) for t in texts]

    async def main() -> None:
        assert await embed(["ab", "c"]) == [2, 1]
        assert await embed(["c", "def"]) == [1, 3]
        assert embed.cache_info().misses == 3
        await embed.ainvalidate(["c"])
        assert await embed(["c", "ab"]) == [1, 2]  # "c" computed again, "ab" still cached
        assert embed.cache_info().misses == 4
        if hasattr(store, "aclose"):
            await store.aclose()

    asyncio.run(main())


def test_an_undecodable_entry_is_a_miss_recomputed_and_logged_once(
    make_store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    if make_store.kind == "memory":
        pytest.skip("in-memory entries are not serialised")
    store = make_store()
    calls: list[list[str]] = []

    @cache_batch_variable("texts", cache=store, namespace="n")
    def embed(texts: list[str]) -> list[str]:
        calls.append(list(texts))
        return [t.upper() for t in texts]

    embed(["a", "b"])
    keys = embed._core.keys_of(["a", "b"], ())
    _corrupt(store, keys)
    with caplog.at_level(logging.WARNING, logger="batche"):
        assert embed(["a", "b"]) == ["A", "B"]
    assert calls == [["a", "b"], ["a", "b"]]
    assert sum("could not be decoded" in r.getMessage() for r in caplog.records) == 1
    assert embed(["a", "b"]) == ["A", "B"]  # overwritten: a hit again
    assert len(calls) == 2


def _corrupt(store: Any, keys: list[str]) -> None:
    if isinstance(store, SQLiteStore):
        with store._pool.connection() as connection:
            connection.executemany(
                "UPDATE batche_entries SET value = ? WHERE key = ?", [(b"junk", k) for k in keys]
            )
    else:  # one server, or a cluster (the store's Redis keys carry their hash tags)
        client = cluster_client(store.url) if store._cluster else store.client
        for redis_key in store._full(keys):
            client.set(redis_key, b"\xb7B1?junk")
        if client is not store.client:
            client.close()


def test_an_argument_without_a_stable_encoding_is_named(tmp_path: Path) -> None:
    @cache_batch_variable("texts", cache=SQLiteStore(tmp_path / "c.db"))
    def embed(texts: list[str], client: object = None) -> list[str]:
        return list(texts)

    with pytest.raises(BatchArgumentError, match="argument 'client' is a object, which has no"):
        embed(["a"], client=object())


KEYS_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from batche import cache_batch_variable
from batche.stores import SQLiteStore
calls = []

@cache_batch_variable("texts", cache=SQLiteStore({path!r}), namespace="shared")
def embed(texts, model="m"):
    calls.append(list(texts))
    return [t.upper() for t in texts]

print(embed(["alpha", "beta"], model=("x", 1)), calls)
"""


def test_processes_with_different_hash_seeds_share_entries(tmp_path: Path) -> None:
    root = str(Path(__file__).resolve().parent.parent)
    script = KEYS_SCRIPT.format(root=root, path=str(tmp_path / "shared.db"))
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True,
            timeout=60, check=True,
        )  # fmt: skip
        outputs.append(done.stdout.strip())
    assert outputs[0] == "['ALPHA', 'BETA'] [['alpha', 'beta']]"
    assert outputs[1] == "['ALPHA', 'BETA'] []"  # the second process computed nothing


def test_pickling_a_store_says_what_to_do_instead(tmp_path: Path) -> None:
    # It was pickle's "cannot pickle '_thread.lock' object"
    import pickle

    from batche.stores import RedisStore

    sqlite = SQLiteStore(tmp_path / "c.db")
    for store in (sqlite, RedisStore("redis://:secret@127.0.0.1:1/0")):
        with pytest.raises(
            pickle.PicklingError, match=r"Store\('.*'\) cannot be pickled"
        ) as caught:
            pickle.dumps(store)
        assert "make the store in each worker process" in str(caught.value)
        assert "secret" not in str(caught.value)
    sqlite.close()
