"""In-process stores: LRUStore behaves as cachetools.LRUCache, and can be looked over."""

from __future__ import annotations

import copy
import pickle
import threading
from typing import Any

import cachetools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from batche import BatchConfigError, cache_batch_variable
from batche._plan import MISS
from batche.stores import LRUStore, MemoryStore

KEYS = st.integers(0, 7)
VALUES = st.text(alphabet="ab", max_size=4)  # sized stores measure them with len


def peek(cache: cachetools.LRUCache[Any, Any]) -> dict[Any, Any]:
    """cachetools' entries, read without touching them (Cache.__getitem__ does not)."""
    return {key: cachetools.Cache.__getitem__(cache, key) for key in cache}


def eviction_order(cache: Any) -> list[Any]:
    """The order in which the store would evict its entries, from a copy of it."""
    twin = copy.copy(cache)
    return [twin.popitem()[0] for _ in range(len(twin))]


def same_outcome(ours: Any, theirs: Any) -> Any:
    """Call both; they must return the same value or raise the same kind of error."""
    results = []
    for call in (ours, theirs):
        try:
            results.append(("value", call()))
        except (KeyError, ValueError) as exc:
            results.append(("error", type(exc)))
    assert results[0] == results[1]
    return results[0]


class SideBySide(RuleBasedStateMachine):
    """Every operation on an LRUStore and a cachetools.LRUCache with the same options."""

    ours: LRUStore
    theirs: cachetools.LRUCache[int, str]

    @initialize(maxsize=st.integers(0, 6), sized=st.booleans())
    def make(self, maxsize: int, sized: bool) -> None:
        getsizeof = len if sized else None
        self.ours = LRUStore(maxsize, getsizeof=getsizeof)
        self.theirs = cachetools.LRUCache(maxsize, getsizeof=getsizeof)

    @rule(key=KEYS, value=VALUES)
    def set(self, key: int, value: str) -> None:
        def write(store: Any) -> Any:
            return lambda: store.__setitem__(key, value)

        same_outcome(write(self.ours), write(self.theirs))

    @rule(key=KEYS)
    def get_item(self, key: int) -> None:
        same_outcome(lambda: self.ours[key], lambda: self.theirs[key])

    @rule(key=KEYS, default=VALUES)
    def get(self, key: int, default: str) -> None:
        assert self.ours.get(key, default) == self.theirs.get(key, default)

    @rule(key=KEYS)
    def delete(self, key: int) -> None:
        same_outcome(lambda: self.ours.__delitem__(key), lambda: self.theirs.__delitem__(key))

    @rule(key=KEYS, default=VALUES)
    def pop(self, key: int, default: str) -> None:
        assert self.ours.pop(key, default) == self.theirs.pop(key, default)

    @rule(key=KEYS, default=VALUES)
    def setdefault(self, key: int, default: str) -> None:
        same_outcome(
            lambda: self.ours.setdefault(key, default), lambda: self.theirs.setdefault(key, default)
        )

    @rule()
    def popitem(self) -> None:
        same_outcome(self.ours.popitem, self.theirs.popitem)

    @rule(entries=st.dictionaries(KEYS, VALUES, max_size=3))
    def update(self, entries: dict[int, str]) -> None:
        same_outcome(lambda: self.ours.update(entries), lambda: self.theirs.update(entries))

    @rule()
    def clear(self) -> None:
        self.ours.clear()
        self.theirs.clear()

    @rule(key=KEYS)
    def contains(self, key: int) -> None:
        assert (key in self.ours) == (key in self.theirs)

    @rule(look=st.sampled_from(["iter", "keys", "values", "items", "dict", "eq", "copy", "pickle"]))
    def look_over(self, look: str) -> None:
        """Looking over our store shows cachetools' entries and reorders nothing."""
        before = eviction_order(self.ours)
        expected = peek(self.theirs)
        if look == "iter":
            assert sorted(self.ours) == sorted(expected)
        elif look == "keys":
            assert self.ours.keys() == expected.keys()
        elif look == "values":
            assert sorted(self.ours.values()) == sorted(expected.values())
        elif look == "items":
            assert self.ours.items() == expected.items()
            assert all(item in self.ours.items() for item in expected.items())
        elif look == "dict":
            assert dict(self.ours) == expected
        elif look == "eq":
            assert self.ours == expected
            assert self.ours == copy.copy(self.theirs)  # theirs reorders what it reads
        elif look == "copy":
            twin = copy.copy(self.ours)
            assert twin == self.ours
            twin.clear()  # the copy is its own store
            assert dict(self.ours) == expected
        else:
            again = pickle.loads(pickle.dumps(self.ours))
            assert again == self.ours
            assert eviction_order(again) == before
        assert eviction_order(self.ours) == before

    @invariant()
    def agree(self) -> None:
        if not hasattr(self, "ours"):
            return
        assert len(self.ours) == len(self.theirs)
        assert self.ours.currsize == self.theirs.currsize
        assert self.ours.maxsize == self.theirs.maxsize
        assert self.ours.getsizeof("abc") == self.theirs.getsizeof("abc")
        assert eviction_order(self.ours) == eviction_order(self.theirs)
        assert dict(self.ours.items()) == peek(self.theirs)


TestLRUStoreSideBySideWithCachetools = SideBySide.TestCase
TestLRUStoreSideBySideWithCachetools.settings = settings(max_examples=150, deadline=None)

OPS = st.lists(
    st.tuples(
        st.sampled_from(["get", "set", "lookup", "put"]),
        st.lists(st.integers(0, 8), min_size=1, max_size=4),
    ),
    max_size=60,
)


@given(ops=OPS, maxsize=st.integers(1, 5))
def test_batch_reads_and_writes_end_as_item_by_item(
    ops: list[tuple[str, list[int]]], maxsize: int
) -> None:
    """What batche does in one C pass (a lookup, a put) is what cachetools does per item."""
    ours = LRUStore(maxsize)
    theirs: cachetools.LRUCache[int, int] = cachetools.LRUCache(maxsize=maxsize)
    for op, keys in ops:
        if op == "get":
            assert [ours.get(k) for k in keys] == [theirs.get(k) for k in keys]
        elif op == "set":
            for key in keys:
                ours[key] = theirs[key] = key * 10
        elif op == "put":
            ours._put(keys, [k * 10 for k in keys])
            for key in keys:
                theirs[key] = key * 10
        else:
            values, complete = ours._lookup(keys)
            expected = [theirs.get(k, MISS) for k in keys]
            assert (values or [MISS] * len(keys)) == expected
            assert complete == (MISS not in expected)
        assert eviction_order(ours) == eviction_order(theirs)


def test_embed_cache_is_looked_over_without_reordering_it() -> None:
    @cache_batch_variable("texts", maxsize=3)
    def embed(texts: list[str]) -> list[int]:
        return [len(t) for t in texts]

    embed(["a", "bb", "ccc"])
    embed(["a"])  # now the most recent
    assert list(embed.cache.items()) == [("bb", 2), ("ccc", 3), ("a", 1)]
    assert list(embed.cache.values()) == [2, 3, 1]
    assert dict(embed.cache) == {"bb": 2, "ccc": 3, "a": 1}
    assert pickle.loads(pickle.dumps(embed.cache)) == embed.cache
    embed(["dddd"])  # evicts the least recent, still "bb": looking over touched nothing
    assert list(embed.cache) == ["ccc", "a", "dddd"]


def test_looking_over_while_other_threads_write() -> None:
    store = LRUStore(50)
    done = threading.Event()

    def write() -> None:
        n = 0
        while not done.is_set():
            store[n % 200] = n
            n += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(2_000):
            items = list(store.items())  # never "OrderedDict mutated during iteration"
            assert len(items) <= 50
            assert len(list(store.values())) <= 50
    finally:
        done.set()
        writer.join()


def test_lru_store_rejects_bad_options() -> None:
    # BatchConfigError, as every store's bad option (a ValueError, as before)
    with pytest.raises(BatchConfigError, match=r"LRUStore: maxsize must be an int >= 0, got -1"):
        LRUStore(-1)
    with pytest.raises(BatchConfigError, match="LRUStore: getsizeof must be callable"):
        LRUStore(3, getsizeof=3)  # type: ignore[arg-type]


@pytest.mark.parametrize("mapping", [5, None, [("a", 1)], "abc", frozenset()])
def test_memory_store_refuses_what_is_not_a_mapping(mapping: Any) -> None:
    # It was accepted, and the first call of a function using it failed on .get
    with pytest.raises(BatchConfigError, match=r"MemoryStore\(\): mapping must be a Mutable"):
        MemoryStore(mapping)


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


@pytest.mark.parametrize("mapping", [cachetools.LRUCache(2, getsizeof=len), LRUStore(2, len)])
def test_memory_store_skips_entries_too_large(mapping: Any) -> None:
    store = MemoryStore(mapping)
    store.set_many({"big": "xyz", "ok": "x"})
    assert store.get_many(["big", "ok"]) == {"ok": "x"}
