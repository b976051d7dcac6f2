"""local_maxsize: the in-memory layer never serves what the store behind it has expired."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from batche import cache_batch_variable
from batche._local import ExpiringLayer, local_layer
from batche._plan import MISS
from batche.stores import MemoryStore, SQLiteStore


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def expiring_sqlite(path: Path, clock: Clock, ttl: float = 10.0) -> SQLiteStore:
    store = SQLiteStore(path, ttl=ttl)
    store._clock = clock  # the store stamps and expires its entries on the test's clock
    return store


def counted(store: SQLiteStore, calls: list[list[str]], namespace: str = "n") -> Any:
    """A function cached in ``store`` behind a local layer, recording its calls."""

    @cache_batch_variable("texts", cache=store, namespace=namespace, local_maxsize=100)
    def upper(texts: list[str]) -> list[str]:
        calls.append(list(texts))
        return [t.upper() for t in texts]

    return upper


def test_an_entry_written_here_expires_here_when_it_expires_in_the_store(
    tmp_path: Path,
) -> None:
    clock = Clock()
    store = expiring_sqlite(tmp_path / "c.db", clock)
    calls: list[list[str]] = []
    upper = counted(store, calls)
    assert upper(["a"]) == ["A"]
    clock.now += 9.9
    assert upper(["a"]) == ["A"]
    assert calls == [["a"]]
    clock.now += 0.1  # the store's copy expires now
    assert store.get_many(list(upper._core.keys_of(["a"], ()))) == {}
    assert upper(["a"]) == ["A"]
    assert calls == [["a"], ["a"]]  # computed again, not served from memory
    store.close()


def test_an_entry_read_from_the_store_is_not_served_past_its_expiry(tmp_path: Path) -> None:
    clock = Clock()
    store = expiring_sqlite(tmp_path / "c.db", clock)
    writer_calls: list[list[str]] = []
    reader_calls: list[list[str]] = []
    writer = counted(store, writer_calls)  # another process, say
    reader = counted(store, reader_calls)
    writer(["b"])  # stored at t, expires at t + 10
    clock.now += 6
    assert reader(["b"]) == ["B"]  # read from the store
    assert reader_calls == []
    clock.now += 4  # expired in the store
    assert reader(["b"]) == ["B"]
    assert reader_calls == [["b"]]  # the reader's layer did not keep it for 10 s from its read
    store.close()


def test_without_a_ttl_the_layer_is_an_lru(tmp_path: Path) -> None:
    layer = local_layer(SQLiteStore(tmp_path / "c.db"), 3)
    assert isinstance(layer, MemoryStore)
    assert layer.maxsize == 3


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("write"), st.lists(st.integers(0, 5), max_size=4)),
            st.tuples(st.just("read"), st.lists(st.integers(0, 5), max_size=4)),
            st.tuples(st.just("advance"), st.floats(0, 6)),
            st.tuples(st.just("lookup"), st.lists(st.integers(0, 5), max_size=6)),
        ),
        max_size=40,
    )
)
def test_the_layer_serves_only_what_the_store_still_holds(ops: list[tuple[str, Any]]) -> None:
    # The store, modelled: each key's value and expiry, stamped when its write arrives
    # (a little after the layer's "since"), as SQLiteStore and Redis stamp theirs.
    clock = Clock(0.0)
    ttl, maxsize = 5.0, 4
    layer = ExpiringLayer(maxsize, ttl, clock)
    store: dict[int, tuple[float, int]] = {}
    version = 0
    for op, arg in ops:
        if op == "write":
            version += 1
            since = clock()
            clock.now += 0.01  # the write travels
            for key in arg:
                store[key] = (clock() + ttl, version)
            layer.put(arg, [version] * len(arg), since)
        elif op == "read":  # values read from the store go through put without a time
            held = [k for k in arg if k in store]
            layer.put(held, [store[k][1] for k in held])
        elif op == "advance":
            clock.now += arg
        else:
            values, complete = layer.lookup(arg)
            if values is None:
                assert not complete or not arg
                continue
            assert complete == all(v is not MISS for v in values)
            for key, value in zip(arg, values):
                if value is not MISS:
                    expiry, current = store[key]
                    assert clock() < expiry  # never what the store has expired
                    assert value == current  # and the value the store holds
        assert len(layer) <= maxsize
