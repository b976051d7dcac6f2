"""SQLiteStore: what it promises beyond the store contract."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from batche import cache_batch_variable
from batche.stores import SQLiteStore

ROOT = str(Path(__file__).resolve().parent.parent)

WRITER = """
import sys
sys.path.insert(0, {root!r})
from batche.stores import SQLiteStore
store = SQLiteStore({path!r})
batch = 0
while True:
    store.set_many({{f"b{{batch}}:{{i}}": [float(i)] * 64 for i in range(200)}})
    print(batch, flush=True)
    batch += 1
"""


def test_a_writer_killed_mid_batch_loses_nothing_committed(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(root=ROOT, path=str(path))],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert writer.stdout is not None
    committed = -1
    for line in writer.stdout:  # each line is printed after its batch committed
        committed = int(line)
        if committed >= 20:
            break
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    keys = {row[0] for row in connection.execute("SELECT key FROM batche_entries")}
    connection.close()
    batches: dict[str, int] = {}
    for key in keys:
        batch = key.split(":")[0]
        batches[batch] = batches.get(batch, 0) + 1
    assert all(f"b{n}" in batches for n in range(committed + 1))
    assert set(batches.values()) == {200}  # every batch whole, none half-written
    store = SQLiteStore(path)
    assert store.get_many(["b0:7"]) == {"b0:7": [7.0] * 64}


READER_WRITER = """
import sys
sys.path.insert(0, {root!r})
from batche import cache_batch_variable
from batche.stores import SQLiteStore
calls = []

@cache_batch_variable("items", cache=SQLiteStore({path!r}), namespace="shared")
def square(items):
    calls.append(len(items))
    return [i * i for i in items]

seed = int(sys.argv[1])
for round_ in range(30):
    batch = [(seed * 31 + round_ * 7 + j) % 150 for j in range(20)]
    assert square(batch) == [i * i for i in batch]
print(sum(calls))
"""


def test_four_processes_share_one_file(tmp_path: Path) -> None:
    script = READER_WRITER.format(root=ROOT, path=str(tmp_path / "shared.db"))
    workers = [
        subprocess.Popen([sys.executable, "-c", script, str(n)], stdout=subprocess.PIPE, text=True)
        for n in range(4)
    ]
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0, 0]
    computed = sum(int(out) for out in outputs)
    assert 150 <= computed < 4 * 150  # shared: far fewer than each computing its own
    assert len(SQLiteStore(tmp_path / "shared.db")) == 150


def test_maxsize_evicts_the_least_recently_used(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "lru.db", maxsize=3)
    store.set_many({"a": 1, "b": 2, "c": 3})
    _later(store, ["a"])  # "a" was read after the others were written
    store.set_many({"d": 4})
    assert store.get_many(["a", "b", "c", "d"]) == {"a": 1, "c": 3, "d": 4}
    assert len(store) == 3


def _later(store: SQLiteStore, keys: list[str]) -> None:
    """Read ``keys`` with a recency strictly after every write so far."""
    connection = store._connect()
    (latest,) = connection.execute("SELECT MAX(used) FROM batche_entries").fetchone()
    while time.time() <= latest:  # the clock must move past the last write
        pass
    store.get_many(keys)


def test_expired_entries_are_misses(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ttl.db", ttl=3600)
    store.set_many({"fresh": 1, "stale": 2})
    store._connect().execute("UPDATE batche_entries SET expires = 1 WHERE key = 'stale'")
    assert store.get_many(["fresh", "stale"]) == {"fresh": 1}


def test_bad_options_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="maxsize must be None or an int >= 1"):
        SQLiteStore(tmp_path / "x.db", maxsize=0)
    with pytest.raises(ValueError, match="on_store_error must be 'compute' or 'raise'"):
        SQLiteStore(tmp_path / "x.db", on_store_error="ignore")
    with pytest.raises(ValueError, match="serializer must be 'safe', 'pickle'"):
        SQLiteStore(tmp_path / "x.db", serializer="json")


def test_a_local_layer_saves_reads(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "layer.db")
    reads: list[int] = []
    get_many = store.get_many

    def counting(keys: Any) -> Any:
        reads.append(len(keys))
        return get_many(keys)

    store.get_many = counting  # type: ignore[method-assign]

    @cache_batch_variable("t", cache=store, local_maxsize=100)
    def f(t: list[str]) -> list[str]:
        return [x.upper() for x in t]

    assert f(["a", "b"]) == ["A", "B"]
    assert reads == [2]
    assert f(["b", "a"]) == ["B", "A"]  # both in the local layer: no read
    assert reads == [2]
    fresh = cache_batch_variable("t", cache=store, local_maxsize=100)(f.__wrapped__)
    assert fresh(["a"]) == ["A"]  # another process would read it from the file
    assert reads == [2, 1]
