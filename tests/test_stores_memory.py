"""In-process stores."""

from __future__ import annotations

from typing import Any

import cachetools
import pytest
from hypothesis import given
from hypothesis import strategies as st

from batche._plan import MISS
from batche.stores import LRUStore, MemoryStore

OPS = st.lists(
    st.tuples(
        st.sampled_from(["get", "set", "del", "lookup"]),
        st.lists(st.integers(0, 8), min_size=1, max_size=4),
    ),
    max_size=60,
)


@given(ops=OPS, maxsize=st.integers(0, 5))
def test_lru_store_evicts_like_cachetools(ops: list[tuple[str, list[int]]], maxsize: int) -> None:
    ours = LRUStore(maxsize)
    theirs: cachetools.LRUCache[int, int] = cachetools.LRUCache(maxsize=max(maxsize, 1))
    for op, keys in ops:
        for key in keys if op != "lookup" else []:
            if op == "get":
                assert ours.get(key) == theirs.get(key)
            elif op == "set" and maxsize > 0:
                ours[key] = theirs[key] = key * 10
            elif op == "del":
                ours.pop(key, None)
                theirs.pop(key, None)
        if op == "lookup":
            values, complete = ours._lookup(keys)
            expected = [theirs.get(k, MISS) for k in keys]
            if values is None:  # none was found
                assert expected == [MISS] * len(keys)
            else:
                assert values == expected
            assert complete == (MISS not in expected)
        if maxsize > 0:
            assert set(ours) == set(theirs)
        else:
            assert len(ours) == 0
    # cachetools iterates in insertion order; its eviction order is what popitem shows
    evicted = [ours.popitem() for _ in range(len(ours))]
    if maxsize > 0:
        assert evicted == [theirs.popitem() for _ in range(len(theirs))]


def test_lru_store_rejects_bad_maxsize() -> None:
    with pytest.raises(ValueError, match="maxsize must be an int >= 0"):
        LRUStore(-1)


@pytest.mark.parametrize(
    "mapping", [{}, LRUStore(10), cachetools.TTLCache(10, ttl=60), cachetools.LFUCache(10)]
)
def test_memory_store_contract(mapping: Any) -> None:
    store = MemoryStore(mapping)
    store.set_many({"a": 1, "b": None})
    assert store.get_many(["a", "b", "c"]) == {"a": 1, "b": None}
    values, complete = store.lookup(["b", "x"])
    assert values == [None, MISS]
    assert complete is False
    assert store.lookup(["a"]) == ([1], True)
    assert len(store) == 2
    store.delete_many(["a", "zzz"])
    assert store.get_many(["a", "b"]) == {"b": None}
    store.clear()
    assert len(store) == 0


def test_memory_store_skips_entries_too_large_for_cachetools() -> None:
    store = MemoryStore(cachetools.LRUCache(maxsize=2, getsizeof=len))
    store.set_many({"big": "xyz", "ok": "x"})
    assert store.get_many(["big", "ok"]) == {"ok": "x"}
