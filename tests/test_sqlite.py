"""SQLiteStore: what it promises beyond the store contract."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batche import BatchConfigError, cache_batch_variable
from batche.stores import SQLiteStore, StoreError
from batche.stores._sqlite import _PURGE_AFTER

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


class Clock:
    """A clock a test moves by hand (``store._clock``): no sleeping, no busy waiting."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def clocked(path: Path, **options: Any) -> tuple[SQLiteStore, Clock]:
    store = SQLiteStore(path, **options)
    clock = store._clock = Clock()
    return store, clock


def test_maxsize_evicts_the_least_recently_used(tmp_path: Path) -> None:
    store, clock = clocked(tmp_path / "lru.db", maxsize=3)
    store.set_many({"a": 1, "b": 2, "c": 3})
    clock.now += 1
    store.get_many(["a"])  # "a" was read after the others were written
    clock.now += 1
    store.set_many({"d": 4})
    assert store.get_many(["a", "b", "c", "d"]) == {"a": 1, "c": 3, "d": 4}
    assert len(store) == 3


def test_expired_entries_are_misses(tmp_path: Path) -> None:
    store, clock = clocked(tmp_path / "ttl.db", ttl=3600)
    store.set_many({"stale": 2})
    clock.now += 3000
    store.set_many({"fresh": 1})
    clock.now += 600  # "stale" is 3,600 s old: expired; "fresh" 600 s
    assert store.get_many(["fresh", "stale"]) == {"fresh": 1}


def rows(store: SQLiteStore, where: str = "1", *args: Any) -> int:
    """Rows in the file, expired ones included (``len`` would count them too)."""
    with store._pool.connection() as connection:
        (count,) = connection.execute(
            f"SELECT COUNT(*) FROM batche_entries WHERE {where}",
            args,
        ).fetchone()
    return int(count)


def test_a_ttl_store_deletes_expired_entries_as_it_writes(tmp_path: Path) -> None:
    store, clock = clocked(tmp_path / "ttl.db", ttl=10)
    counts = []
    pages = []
    for batch in range(300):
        clock.now += 5  # each batch outlives the next one and expires with the one after
        store.set_many({f"b{batch}:{i}": [float(i)] * 16 for i in range(100)})
        counts.append(rows(store))
        with store._pool.connection() as connection:
            pages.append(connection.execute("PRAGMA page_count").fetchone()[0])
    # 200 live entries, and the expired ones written since the last purge (purges come
    # every _PURGE_AFTER entries written): 30,000 rows if nothing were deleted
    assert max(counts) <= 200 + _PURGE_AFTER + 100
    assert pages[-1] <= pages[100]  # freed pages are reused: the file stopped growing
    last_two = [f"b{batch}:{i}" for batch in (298, 299) for i in range(100)]
    assert len(store.get_many(last_two)) == 200  # nothing live was deleted


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 200), st.sampled_from([0, 1, 4, 9, 10, 25])), max_size=20))
def test_writes_delete_expired_entries_only_two_for_each_entry_written(
    steps: list[tuple[int, int]],
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        store, clock = clocked(Path(scratch) / "ttl.db", ttl=10)
        written: dict[str, float] = {}  # key -> when it was written
        unpurged = 0  # entries written since the last purge
        for n, (size, advance) in enumerate(steps):
            clock.now += advance
            expired = rows(store, "expires <= ?", clock.now)
            batch = {f"{n}:{i}": i for i in range(size)}
            store.set_many(batch)
            written.update(dict.fromkeys(batch, clock.now))
            unpurged += size
            if unpurged >= _PURGE_AFTER:  # this write purged, the others did not
                expired, unpurged = max(0, expired - 2 * unpurged), 0
            assert rows(store, "expires <= ?", clock.now) == expired
            live = [key for key, when in written.items() if when + 10 > clock.now]
            assert set(store.get_many(live)) == set(live)
        store.close()


LOW_LIMIT = """
import asyncio, json, logging, os, resource, sys, threading
import concurrent.futures.thread  # imported now: an import opens a file, limit or not
sys.path.insert(0, {root!r})
from batche import cache_batch_variable
from batche.stores import SQLiteStore

store = SQLiteStore({path!r}, retry_after=0)  # tried again at every call once it failed
computed = []

@cache_batch_variable("items", cache=store, namespace="threads")
def double(items):
    computed.extend(items)
    return [2 * i for i in items]

@cache_batch_variable("items", cache=store, namespace="loops")
async def triple(items):
    computed.extend(items)
    return [3 * i for i in items]

def wave(start):
    barrier = threading.Barrier(4)
    def call(n):
        barrier.wait()
        assert double([n]) == [2 * n]
    threads = [threading.Thread(target=call, args=(n,)) for n in range(start, start + 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
spare = {spare}
if spare == 0:
    store.close()  # no connection left open, and no file descriptor free to open one
# the listing counts the descriptor it reads the directory with, closed by then: - 1
resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) - 1 + spare, hard))
for n in range(50 if spare else 0):  # an event loop holds 3 descriptors while it runs
    assert asyncio.run(triple([n])) == [3 * n]
for start in range(0, 200, 4):
    wave(start)
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
first = len(computed)
for start in range(0, 200, 4):
    wave(start)
print(json.dumps({{"computed": first, "again": len(computed) - first, "stored": len(store)}}))
"""


def run_low_limit(path: Path, spare: int) -> tuple[dict[str, int], str]:
    script = LOW_LIMIT.format(root=ROOT, path=str(path), spare=spare)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def test_a_low_file_limit_still_caches(tmp_path: Path) -> None:
    # Three descriptors spare: an event loop's, or one more connection of the pool.
    figures, stderr = run_low_limit(tmp_path / "low.db", spare=3)
    assert figures == {"computed": 250, "again": 0, "stored": 250}, stderr
    assert "could not read" not in stderr
    assert "could not write" not in stderr


def test_no_file_descriptor_at_all_is_said_loudly(tmp_path: Path) -> None:
    figures, stderr = run_low_limit(tmp_path / "none.db", spare=0)
    assert figures["computed"] == 200  # still correct answers, computed
    assert "SQLiteStore(" in stderr
    assert "could not read (unable to open database file: Too many open files)" in stderr
    assert "the store is back; caching again" in stderr  # once the limit was raised


ONE_SPARE = """
import os, resource, sys
sys.path.insert(0, {root!r})
from batche import cache_batch_variable
from batche.stores import SQLiteStore

store = SQLiteStore({path!r})
double = cache_batch_variable("items", cache=store)(lambda items: [2 * i for i in items])
store.close()  # its connections closed: the next call opens one
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
# one descriptor free (the listing counts the one it reads the directory with: - 1)
resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) - 1 + 1, hard))
assert double([1]) == [2]
"""


def test_one_descriptor_free_is_said_loudly_with_its_reason(tmp_path: Path) -> None:
    # SQLite opens the file with the one descriptor free, fails on its -wal and closes
    # the file again: the reason must not be looked for with one descriptor only
    script = ONE_SPARE.format(root=ROOT, path=str(tmp_path / "one.db"))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "could not read (unable to open database file: Too many open files)" in done.stderr


FORK = """
import os, sys
sys.path.insert(0, {root!r})
from batche.stores import SQLiteStore

store = SQLiteStore({path!r})
store.set_many({{"parent": 1}})
with store._pool.connection() as parents:
    pass
pid = os.fork()
if pid == 0:
    with store._pool.connection() as mine:
        fresh = mine is not parents
    ok = fresh and store.get_many(["parent"]) == {{"parent": 1}}
    store.set_many({{"child": 2}})
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, "the child used the parent's connection"
assert store.get_many(["parent", "child"]) == {{"parent": 1, "child": 2}}
store.set_many({{"after": 3}})
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_opens_connections_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "fork.db"
    done = subprocess.run(
        [sys.executable, "-c", FORK.format(root=ROOT, path=str(path))],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert connection.execute("SELECT COUNT(*) FROM batche_entries").fetchone() == (3,)
    connection.close()


def test_bad_options_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="maxsize must be None or an int >= 1"):
        SQLiteStore(tmp_path / "x.db", maxsize=0)
    with pytest.raises(ValueError, match="on_store_error must be 'compute' or 'raise'"):
        SQLiteStore(tmp_path / "x.db", on_store_error="ignore")
    with pytest.raises(ValueError, match="serializer must be 'safe', 'pickle'"):
        SQLiteStore(tmp_path / "x.db", serializer="json")


@pytest.mark.parametrize("path", [None, 3, b"cache.db", ["cache.db"]])
def test_a_path_that_is_not_a_file_name_is_named(path: Any) -> None:
    # os.fspath's own TypeError named neither the store nor the parameter
    with pytest.raises(BatchConfigError, match=r"SQLiteStore\(\): path must be a file name"):
        SQLiteStore(path)


@pytest.mark.parametrize("path", [":memory:", ""])
def test_a_database_of_each_connection_is_refused(path: str) -> None:
    # Accepted before: each pooled connection had a database of its own, so 8 threads
    # asking for 50 items computed them up to 300 times, and len() saw one connection's.
    with pytest.raises(BatchConfigError, match=r"path must name a file; .* of its own"):
        SQLiteStore(path)


def test_a_file_that_cannot_be_opened_is_a_store_error_naming_it(tmp_path: Path) -> None:
    # It was sqlite3's bare "unable to open database file", naming neither store nor path
    missing = tmp_path / "no" / "such" / "dir" / "c.db"
    with pytest.raises(StoreError, match=r"SQLiteStore\('.*c.db'\): could not open the file: "):
        SQLiteStore(missing)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database\n" * 200)
    with pytest.raises(StoreError, match=r"junk.db'\): could not open the file: file is not a"):
        SQLiteStore(junk)
    assert junk.read_bytes() == b"not a database\n" * 200  # left as it was
    with pytest.raises(StoreError, match="could not open the file"):
        SQLiteStore(tmp_path)  # a directory


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
    assert reads == [3]  # and the template of arrays, until the results are known
    assert f(["b", "a"]) == ["B", "A"]  # both in the local layer: no read
    assert reads == [3]
    fresh = cache_batch_variable("t", cache=store, local_maxsize=100)(f.__wrapped__)
    assert fresh(["a"]) == ["A"]  # another process would read it from the file
    assert reads == [3, 2]
